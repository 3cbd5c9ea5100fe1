"""Benchmark skmtl against a bare-PyTorch reference and peer libraries.

Each measurement is a function ``measure(ctx) -> list[dict]`` registered in
:data:`MEASUREMENTS`; the runner adds medians, spreads, ratios to the bare
reference measured in the same run, and the run's settings, then writes JSON
lines and a Markdown table. Never collected by pytest (no ``test_`` names).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
# The repo root first, so the checkout's skmtl is timed even when not installed.
sys.path[:0] = [str(HERE.parent), str(HERE)]
import _data
import bare_reference as bare
import peers

MEASUREMENTS = {}


def register(name):
    """Add a measurement function to :data:`MEASUREMENTS` under ``name``.

    Parameters
    ----------
    name : str
        Key used by ``--only`` and as the record-name prefix.

    Returns
    -------
    decorator : callable
    """

    def decorator(func):
        MEASUREMENTS[name] = func
        return func

    return decorator


@dataclass
class Context:
    """What every measurement gets: settings, raw data, cached encodings.

    Attributes
    ----------
    args : argparse.Namespace
        Parsed command line.
    X : pandas.DataFrame of shape (n_samples, 39)
        Raw features.
    Y : pandas.DataFrame of shape (n_samples, 2)
        0/1 labels.
    source : str
        Where the rows came from.
    """

    args: argparse.Namespace
    X: object
    Y: object
    source: str
    _cache: dict = field(default_factory=dict)

    def encoded(self):
        """Return the pandas pre-encoding of ``X`` (computed once)."""
        if "enc" not in self._cache:
            state = _data.fit_pre_encoder(self.X)
            self._cache["enc"] = _data.pre_encode(self.X, self.Y, state)
        return self._cache["enc"]


def record(name, what, values, unit="s", warmup=None, baseline=None, **extra):
    """Make a partial record; :func:`finish` adds the statistics.

    Parameters
    ----------
    name : str
        Unique measurement name.
    what : str
        One line saying what was timed.
    values : list of float
        One value per repeat.
    unit : str, default="s"
    warmup : list of float, default=None
        Warm-up values, reported but not in the median.
    baseline : str, default=None
        Name of the record the ratio is taken against.
    **extra
        Anything else worth keeping (errors, versions, throughput).

    Returns
    -------
    rec : dict
    """
    rec = {"name": name, "what": what, "unit": unit, "values": list(values)}
    rec.update(warmup=warmup or [], baseline=baseline, **extra)
    return rec


def timed(func, *args, **kwargs):
    """Call ``func`` and return its wall seconds, CPU seconds and result."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = func(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def bare_epochs(ctx, model_name, batch_size):
    """Time bare-reference epochs: per repeat a fresh model, one warm-up epoch.

    Returns
    -------
    warmup, epochs : list of float
        Warm-up seconds per repeat; mean timed-epoch seconds per repeat.
    """
    enc, warmup, epochs = ctx.encoded(), [], []
    for rep in range(ctx.args.repeats):
        model, opt = bare.build(model_name, enc, seed=rep)
        gen = torch.Generator().manual_seed(rep)
        warmup.append(bare.train_epoch(model, opt, enc, batch_size, gen))
        times = [
            bare.train_epoch(model, opt, enc, batch_size, gen)
            for _ in range(ctx.args.epochs)
        ]
        epochs.append(float(np.mean(times)))
    return warmup, epochs


@register("bare")
def measure_bare(ctx):
    """Bare MMoE and PLE epoch seconds at batch 1024 and 256."""
    out = []
    for model_name in ("mmoe", "ple"):
        for bs in (1024, 256):
            warm, vals = bare_epochs(ctx, model_name, bs)
            label = {"mmoe": "MMoE", "ple": "PLE"}[model_name]
            what = f"bare {label} train epoch, batch {bs}"
            name = f"bare_{model_name}_epoch_bs{bs}"
            out.append(record(name, what, vals, warmup=warm, baseline=name))
    return out


@register("bare_predict")
def measure_bare_predict(ctx):
    """Bare MMoE predict_proba seconds over all rows, batches of 8192."""
    enc = ctx.encoded()
    model, _ = bare.build("mmoe", enc)
    warm = [timed(bare.predict_proba, model, enc)[0]]
    vals = [timed(bare.predict_proba, model, enc)[0] for _ in range(ctx.args.repeats)]
    rate = len(enc.y) / float(np.median(vals))
    name = "bare_mmoe_predict"
    what = "bare MMoE predict_proba, all rows, batch 8192"
    return [record(name, what, vals, warmup=warm, baseline=name, rows_per_s=rate)]


@register("encoders")
def measure_encoders(ctx):
    """Pandas pre-encoding and sklearn ColumnTransformer fit+transform."""

    def pandas_fn():
        return _data.pre_encode(ctx.X, ctx.Y, _data.fit_pre_encoder(ctx.X))

    def sklearn_fn():
        return _column_transformer().fit_transform(ctx.X)

    out = []
    for name, what, fn in [
        ("pandas_pre_encode", "pandas factorize + impute/scale -> tensors", pandas_fn),
        ("sklearn_column_transformer", "ColumnTransformer fit_transform", sklearn_fn),
    ]:
        warm = [timed(fn)[0]]
        vals = [timed(fn)[0] for _ in range(ctx.args.repeats)]
        out.append(record(name, what, vals, warmup=warm, baseline="pandas_pre_encode"))
    return out


def _column_transformer():
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder, StandardScaler

    ordinal = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    return ColumnTransformer(
        [("cat", ordinal, _data.CATEGORICAL), ("num", numeric, _data.CONTINUOUS)]
    )


def peak_rss_mb(snippet, threads=1):
    """Run ``snippet`` in a fresh python and return its peak RSS in MiB.

    Parameters
    ----------
    snippet : str
        Python code; ``_data`` and ``bare_reference`` are importable.
    threads : int, default=1
        ``torch.set_num_threads`` in the child.

    Returns
    -------
    mib : float
        The child's own ``ru_maxrss`` (KiB on Linux) / 1024.
    """
    code = (
        f"import sys, torch; sys.path.insert(0, {str(HERE)!r}); "
        f"torch.set_num_threads({threads})\n{snippet}\n"
        "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    cmd = [sys.executable, "-c", code]
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return int(proc.stdout.split()[-1]) / 1024


@register("memory")
def measure_memory(ctx):
    """Peak RSS: loading + pre-encoding alone, then plus one bare MMoE epoch."""
    a = ctx.args
    load = (
        "import _data, bare_reference as b\n"
        f"X, Y, _ = _data.load_dataset({a.data!r}, {a.nrows!r}, {a.rows!r}, "
        f"{a.synthetic!r})\n"
        "enc = _data.pre_encode(X, Y, _data.fit_pre_encoder(X))\n"
    )
    train = "m, o = b.build('mmoe', enc)\nb.train_epoch(m, o, enc, 1024)\n"
    load_mb = peak_rss_mb(load, a.threads)
    fit_mb = peak_rss_mb(load + train, a.threads)
    return [
        record("rss_load_encode", "peak RSS: load + pre-encode", [load_mb], "MiB",
               baseline="rss_load_encode"),
        record("rss_bare_mmoe_fit", "peak RSS: load + pre-encode + 1 bare MMoE "
               "epoch", [fit_mb], "MiB", baseline="rss_load_encode"),
    ]  # fmt: skip


@register("peers")
def measure_peers(ctx):
    """Peer libraries' epoch seconds, each in a subprocess of the peers venv."""
    python = peers.peers_python()
    if python is None:
        msg = f"no peers venv at {peers.VENV}; run python benchmarks/peers.py --setup"
        return [record("peers", "peer libraries", [], error=msg)]
    return [_run_peer(ctx, python, name) for name in peers.PEERS]


def _run_peer(ctx, python, name):
    a = ctx.args
    cmd = [str(python), str(HERE / "peers.py"), "--run", name, "--epochs", str(a.epochs),
           "--threads", str(a.threads), "--batch-size", "1024"]  # fmt: skip
    for flag, value in [("--data", a.data), ("--nrows", a.nrows), ("--rows", a.rows)]:
        if value is not None:
            cmd += [flag, str(value)]
    cmd += ["--synthetic"] if a.synthetic else []
    what = f"{name} train epoch, batch 1024 (library's own loop)"
    baseline = f"bare_{name.split('_')[1]}_epoch_bs1024"
    # check=False: a failing peer becomes an error record, not a crash.
    proc = subprocess.run(
        cmd, check=False, capture_output=True, text=True, timeout=a.peer_timeout
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(peers.MARKER)]
    if proc.returncode or not lines:
        err = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return record(name, what, [], baseline=baseline, error="\n".join(err))
    res = json.loads(lines[-1][len(peers.MARKER) :])
    return record(name, what, res["epochs"], warmup=res["warmup"], baseline=baseline,
                  version=res["version"])  # fmt: skip


def _history_epoch_seconds(history):
    # skmtl's history_ record keys are not fixed yet; take the first time-like one.
    for key in ("time", "seconds", "duration", "epoch_time", "dur"):
        if history and key in history[0]:
            return [float(h[key]) for h in history]
    return None


def skmtl_fit_epochs(ctx, make_estimator, name, baseline):
    """Time an skmtl estimator's ``fit`` on the raw frame; one small helper.

    ``make_estimator(max_iter)`` returns an unfitted estimator. Per repeat a
    warm-up ``fit`` with ``max_iter=1`` is excluded, then ``fit`` with
    ``max_iter=--epochs`` is timed; the value is its wall time per epoch, so it
    includes encoding and set-up that the bare epoch does not.

    Returns
    -------
    rec : dict
    """
    warm, vals, per_epoch = [], [], []
    for _ in range(ctx.args.repeats):
        warm.append(timed(make_estimator(1).fit, ctx.X, ctx.Y)[0])
        est = make_estimator(ctx.args.epochs)
        vals.append(timed(est.fit, ctx.X, ctx.Y)[0] / ctx.args.epochs)
        per_epoch += _history_epoch_seconds(getattr(est, "history_", None)) or []
    what = "fit on raw DataFrame, seconds per epoch (incl. encoding)"
    return record(name, what, vals, warmup=warm, baseline=baseline,
                  history_epoch_seconds=per_epoch)  # fmt: skip


def _skmtl_kwargs(max_iter):
    return {"embedding_dim": 8, "expert_hidden_sizes": (64,),
            "tower_hidden_sizes": (32,), "batch_size": 1024,
            "learning_rate_init": 1e-3, "max_iter": max_iter, "random_state": 0,
            "device": "cpu"}  # fmt: skip


@register("skmtl")
def measure_skmtl(ctx):
    """skmtl MMoE and PLE fit; a skip record while skmtl lacks them."""
    try:
        from skmtl import MMoEClassifierRegressor, PLEEstimator
    except ImportError as exc:
        return [record("skmtl", "skmtl estimators", [], error=f"skipped: {exc}")]

    def mmoe(max_iter):
        return MMoEClassifierRegressor(n_experts=8, **_skmtl_kwargs(max_iter))

    def ple(max_iter):
        return PLEEstimator(**_skmtl_kwargs(max_iter))

    return [
        skmtl_fit_epochs(ctx, mmoe, "skmtl_mmoe_fit", "bare_mmoe_epoch_bs1024"),
        skmtl_fit_epochs(ctx, ple, "skmtl_ple_fit", "bare_ple_epoch_bs1024"),
    ]


def finish(records, ctx, load_before):
    """Add statistics, ratios to the baselines, and the run's settings.

    Returns
    -------
    records : list of dict
    """
    medians = {r["name"]: np.median(r["values"]) for r in records if r["values"]}
    env = {
        "threads": ctx.args.threads,
        "rows": len(ctx.X),
        "source": ctx.source,
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus {platform.node()}",
        "loadavg_before_after": [load_before, os.getloadavg()[0]],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    for r in records:
        vals = r["values"]
        r["median"] = float(np.median(vals)) if vals else None
        r["spread"] = float(np.ptp(vals)) if vals else None
        base = medians.get(r["baseline"])
        r["ratio"] = float(r["median"] / base) if vals and base else None
        r.update(env)
    return records


def markdown(records):
    """Return the records as a Markdown table."""
    lines = ["| name | what | median | spread | unit | ratio vs bare | n | note |",
             "|---|---|---:|---:|---|---:|---:|---|"]  # fmt: skip

    def fmt(v):
        return "" if v is None else f"{v:.3g}"

    for r in records:
        note = (r.get("error") or "").replace("\n", " ")[:120]
        if "rows_per_s" in r:
            note = f"{r['rows_per_s']:.3g} rows/s"
        lines.append(f"| {r['name']} | {r['what']} | {fmt(r['median'])} | "
                     f"{fmt(r['spread'])} | {r['unit']} | {fmt(r['ratio'])} | "
                     f"{len(r['values'])} | {note} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    """Parse the command line (see ``--help``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="census folder ($SKMTL_DATA)")
    p.add_argument("--rows", type=int, default=None, help="scale to N rows")
    p.add_argument("--nrows", type=int, default=None, help="read first N lines")
    p.add_argument("--synthetic", action="store_true", help="never read files")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2, help="timed epochs per repeat")
    p.add_argument("--threads", type=int, default=None, help="2; --quick: 1")
    p.add_argument("--only", nargs="*", default=None, choices=sorted(MEASUREMENTS))
    p.add_argument("--quick", action="store_true", help="tiny smoke run, no peers")
    p.add_argument("--peer-timeout", type=int, default=1800)
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--tag", default=None, help="results file name stem")
    args = p.parse_args(argv)
    # --quick uses 1 thread: 2 threads on a busy 2-core machine spin-wait.
    default_threads = 1 if args.quick else 2
    args.threads = default_threads if args.threads is None else args.threads
    if args.quick:
        args.nrows, args.repeats, args.epochs = args.nrows or 4096, 1, 1
        args.only = args.only or [m for m in MEASUREMENTS if m != "peers"]
    return args


def main(argv=None):
    """Run the selected measurements and write ``<out>/<tag>.jsonl`` + ``.md``."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    X, Y, source = _data.load_dataset(args.data, args.nrows, args.rows, args.synthetic)
    ctx = Context(args, X, Y, source)
    records = []
    for name in args.only or MEASUREMENTS:
        print(f"[{time.strftime('%H:%M:%S')}] {name} ...", file=sys.stderr, flush=True)
        records += MEASUREMENTS[name](ctx)
    records = finish(records, ctx, load_before)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = args.tag or ("quick" if args.quick else f"rows{len(X)}_t{args.threads}")
    with open(out / f"{tag}.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    table = markdown(records)
    (out / f"{tag}.md").write_text(
        f"# {tag}: {source}, threads {args.threads}\n\n" + table
    )
    print(table)


if __name__ == "__main__":
    main()
