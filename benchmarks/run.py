"""Benchmark skmtl against a bare-PyTorch reference and peer libraries.

Each measurement is a function ``measure(ctx) -> list[dict]`` registered in
:data:`MEASUREMENTS`; the runner adds medians, spreads, ratios to the bare
reference measured in the same run, and the run's settings, then writes JSON
lines and a Markdown table. Never collected by pytest (no ``test_`` names).
"""

import argparse
import functools
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


def bare_run(ctx, model_name, batch_size, encode, n_experts=8):
    """Time bare-reference repeats: per repeat a fresh model, one warm-up epoch.

    With ``encode`` each repeat starts from the raw frame (pandas pre-encoding
    included), so its total is the bare end-to-end "fit" of ``1 + --epochs``
    epochs; otherwise the cached encoding is used.

    Returns
    -------
    warmup, epochs, totals : list of float
        Per repeat: warm-up epoch seconds, mean timed-epoch seconds, seconds
        from the raw frame (or the first epoch) to the end of the last epoch.
    """
    warmup, epochs, totals = [], [], []
    for rep in range(ctx.args.repeats):
        start = time.perf_counter()
        if encode:
            enc = _data.pre_encode(ctx.X, ctx.Y, _data.fit_pre_encoder(ctx.X))
        else:
            enc = ctx.encoded()
        model, opt = bare.build(model_name, enc, seed=rep, n_experts=n_experts)
        gen = torch.Generator().manual_seed(rep)
        warmup.append(bare.train_epoch(model, opt, enc, batch_size, gen))
        times = [
            bare.train_epoch(model, opt, enc, batch_size, gen)
            for _ in range(ctx.args.epochs)
        ]
        totals.append(time.perf_counter() - start)
        epochs.append(float(np.mean(times)))
    return warmup, epochs, totals


LABELS = {"mmoe": "MMoE", "ple": "PLE", "dcn": "DCN", "shared_bottom": "Shared-Bottom"}


# Model and batch size of every bare, skmtl and paired measurement.
CONFIGS = [("mmoe", 1024), ("mmoe", 256), ("ple", 1024), ("ple", 256),
                ("dcn", 1024), ("shared_bottom", 1024)]  # fmt: skip


@register("bare")
def measure_bare(ctx):
    """Bare epoch seconds for each of CONFIGS, and the fit at batch 1024."""
    out = []
    for model_name, bs in CONFIGS:
        warm, vals, totals = bare_run(ctx, model_name, bs, encode=bs == 1024)
        label = LABELS[model_name]
        name = f"bare_{model_name}_epoch_bs{bs}"
        what = f"bare {label} train epoch, batch {bs}"
        out.append(record(name, what, vals, warmup=warm, baseline=name))
        if bs == 1024:
            name = f"bare_{model_name}_fit_bs1024"
            what = (f"bare {label}: pandas pre-encoding + "
                    f"{1 + ctx.args.epochs} epochs, batch 1024")  # fmt: skip
            out.append(record(name, what, totals, baseline=name))
    return out


@register("bare_predict")
def measure_bare_predict(ctx):
    """Bare MMoE predict_proba over all rows, from tensors and from the frame."""
    enc = ctx.encoded()
    state = _data.fit_pre_encoder(ctx.X)
    model, _ = bare.build("mmoe", enc)

    def from_frame():
        return bare.predict_proba(model, _data.pre_encode(ctx.X, ctx.Y, state))

    out = []
    for name, what, fn in [
        ("bare_mmoe_predict", "bare MMoE predict_proba from tensors, batch 4096",
         lambda: bare.predict_proba(model, enc)),
        ("bare_mmoe_predict_frame",
         "bare MMoE: pandas encoding (fitted) + predict_proba, batch 4096",
         from_frame),
    ]:  # fmt: skip
        warm = [timed(fn)[0]]
        vals = [timed(fn)[0] for _ in range(ctx.args.repeats)]
        rate = len(enc.y) / float(np.median(vals))
        out.append(
            record(name, what, vals, warmup=warm, baseline=name, rows_per_s=rate)
        )
    return out


@register("encoders")
def measure_encoders(ctx):
    """Pandas pre-encoding, sklearn ColumnTransformer, skmtl FeatureEncoder."""
    from skmtl import FeatureEncoder

    def pandas_fn():
        return _data.pre_encode(ctx.X, ctx.Y, _data.fit_pre_encoder(ctx.X))

    def sklearn_fn():
        return _column_transformer().fit_transform(ctx.X)

    def skmtl_fn():
        return FeatureEncoder().fit(ctx.X).encode(ctx.X)

    fitted = FeatureEncoder().fit(ctx.X)
    reference = reference_encoder_class()().fit(ctx.X)
    sklearn_ct = _column_transformer()
    out = []
    for name, what, fn, baseline in [
        ("pandas_pre_encode", "pandas codes + bins + impute/scale -> tensors",
         pandas_fn, "pandas_pre_encode"),
        ("sklearn_column_transformer", "ColumnTransformer fit_transform (no bins)",
         sklearn_fn, "pandas_pre_encode"),
        ("skmtl_feature_encoder", "FeatureEncoder().fit(X).encode(X) (32 bins)",
         skmtl_fn, "pandas_pre_encode"),
        ("sklearn_column_transformer_fit", "ColumnTransformer fit alone (no bins)",
         lambda: sklearn_ct.fit(ctx.X), "sklearn_column_transformer_fit"),
        ("skmtl_feature_encoder_fit", "FeatureEncoder().fit(X) alone (32 bins)",
         lambda: FeatureEncoder().fit(ctx.X), "sklearn_column_transformer_fit"),
        ("reference_encoder_encode",
         "encode(X) of the FeatureEncoder of commit f390fa9 (tests/_reference_encoder.py)",
         lambda: reference.encode(ctx.X), "reference_encoder_encode"),
        ("skmtl_feature_encoder_encode", "fitted FeatureEncoder encode(X)",
         lambda: fitted.encode(ctx.X), "reference_encoder_encode"),
    ]:  # fmt: skip
        warm = [timed(fn)[0]]
        vals = [timed(fn)[0] for _ in range(ctx.args.repeats)]
        out.append(record(name, what, vals, warmup=warm, baseline=baseline))
    return out


def reference_encoder_class():
    """The FeatureEncoder before the vectorised rewrite, kept by the tests."""
    import importlib.util

    path = HERE.parent / "tests" / "_reference_encoder.py"
    spec = importlib.util.spec_from_file_location("_reference_encoder", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ReferenceFeatureEncoder


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


# Run in a fresh python by measure_memory: load the frame, note the resident
# memory, reset the high-water mark, run the job, print a JSON line.
_MEMORY_CHILD = """
import json, sys, time, torch
sys.path[:0] = [{root!r}, {here!r}]
torch.set_num_threads({threads})
import _data, run
X, Y, _ = _data.load_dataset({data!r}, {nrows!r}, {rows!r}, {synthetic!r})
loaded = run.rss_mib()
run.MEMORY_IMPORTS[{job!r}]()
before = run.rss_mib()
reset = run.reset_peak_rss()
start = time.perf_counter()
extra = run.MEMORY_JOBS[{job!r}](X, Y)
seconds = time.perf_counter() - start
print(json.dumps(dict(before=before, peak=run.peak_rss_mib(), reset=reset,
                      seconds=seconds, import_mib=before - loaded, **extra)))
"""


def _status_kib(field_name):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return None


def rss_mib():
    """Return this process's resident memory in MiB (Linux ``VmRSS``)."""
    return _status_kib("VmRSS") / 1024


def reset_peak_rss():
    """Reset the ``VmHWM`` high-water mark; return whether the kernel allowed it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib():
    """Return the resident high-water mark in MiB since the last reset."""
    return _status_kib("VmHWM") / 1024


def _job_skmtl_fit(X, Y):
    from skmtl import MMoEClassifierRegressor

    est = MMoEClassifierRegressor(n_experts=8, **_skmtl_kwargs(1, 1024))
    _, _, (epoch,) = fit_with_epoch_times(est, X, Y)
    n_codes = len(est.encoder_.cardinalities_)
    n_num = len(est.encoder_.numeric_columns_)
    n_tasks = Y.shape[1]
    # int64 codes, float32 numeric, float32 targets and weights, as fit holds them.
    tensors = len(X) * (8 * n_codes + 4 * n_num + 8 * n_tasks)
    params = sum(p.numel() * p.element_size() for p in est.module_.parameters())
    mib = {"tensors_mib": tensors / 2**20, "model_mib": params / 2**20}
    return {**mib, "epoch_seconds": epoch}


def _job_bare_fit(X, Y):
    enc = _data.pre_encode(X, Y, _data.fit_pre_encoder(X))
    model, opt = bare.build("mmoe", enc)
    epoch = bare.train_epoch(model, opt, enc, 1024)
    tensors = sum(t.numel() * t.element_size() for t in (enc.codes, enc.dense, enc.y))
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    mib = {"tensors_mib": tensors / 2**20, "model_mib": params / 2**20}
    return {**mib, "epoch_seconds": epoch}


MEMORY_JOBS = {"skmtl_fit": _job_skmtl_fit, "bare_fit": _job_bare_fit}


def _import_skmtl():
    import skmtl  # noqa: F401  (scikit-learn and scipy come with it: ~75 MiB)


# What each job imports beyond torch, pandas and numpy, loaded before the
# baseline RSS: a library's code is paid once per process, not per fit, and is
# reported apart as ``import_mib``.
MEMORY_IMPORTS = {"skmtl_fit": _import_skmtl, "bare_fit": lambda: None}


def memory_child(ctx, job):
    """Run one of :data:`MEMORY_JOBS` in a fresh python; return its JSON dict."""
    a = ctx.args
    code = _MEMORY_CHILD.format(
        root=str(HERE.parent), here=str(HERE), threads=a.threads, data=a.data,
        nrows=a.nrows, rows=a.rows, synthetic=a.synthetic, job=job,
    )  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


@register("memory")
def measure_memory(ctx):
    """Peak RSS and wall time of a one-epoch fit (skmtl and bare) in a child.

    The value is the growth of resident memory over the loaded raw frame and
    the imported library (high-water mark after the fit minus RSS before it;
    the import's own MiB are in ``import_mib``); ``x_tensors_model`` divides it
    by the encoded tensors + parameters the fit holds.
    """
    out = []
    for job, model in (("bare_fit", "bare"), ("skmtl_fit", "skmtl")):
        res = memory_child(ctx, job)
        grow = res["peak"] - res["before"]
        base = res["tensors_mib"] + res["model_mib"]
        what = (
            f"{model} MMoE one-epoch fit: peak RSS over the loaded frame and imports"
            f"{' (pandas pre-encoding included)' if model == 'bare' else ''}"
        )
        out.append(
            record(
                f"rss_{model}_mmoe_fit",
                what,
                [grow],
                "MiB",
                baseline="rss_bare_mmoe_fit",
                rss_after_load=res["before"],
                peak_total=res["peak"],
                peak_reset=res["reset"],
                tensors_model_mib=base,
                x_tensors_model=grow / base,
                import_mib=res["import_mib"],
            )
        )
        out.append(
            record(
                f"{model}_mmoe_epoch1",
                f"{model} MMoE first epoch alone, batch 1024 (in the memory child)",
                [res["epoch_seconds"]],
                baseline="bare_mmoe_epoch1",
            )
        )
        out.append(
            record(
                f"{model}_mmoe_fit1",
                f"{model} MMoE fit, 1 epoch from the raw frame (in the memory child)",
                [res["seconds"]],
                baseline="bare_mmoe_fit1",
            )
        )
    return out


@register("peers")
def measure_peers(ctx):
    """Peer libraries' epoch and predict seconds, each in a peers-venv subprocess."""
    python = peers.peers_python()
    if python is None:
        msg = f"no peers venv at {peers.VENV}; run python benchmarks/peers.py --setup"
        return [record("peers", "peer libraries", [], error=msg)]
    return [rec for name in peers.PEERS for rec in _run_peer(ctx, python, name)]


def _run_peer(ctx, python, name):
    a = ctx.args
    cmd = [str(python), str(HERE / "peers.py"), "--run", name, "--epochs", str(a.epochs),
           "--threads", str(a.threads), "--batch-size", "1024",
           "--predict-repeats", str(a.repeats)]  # fmt: skip
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
        return [record(name, what, [], baseline=baseline, error="\n".join(err))]
    res = json.loads(lines[-1][len(peers.MARKER) :])
    skmtl_name = f"skmtl_{name.split('_')[1]}_epoch_bs1024"
    epochs = record(name, what, res["epochs"], warmup=res["warmup"], baseline=baseline,
                    version=res["version"], skmtl_baseline=skmtl_name)  # fmt: skip
    if name.split("_")[1] != "mmoe":  # skmtl's predict is measured for MMoE only
        return [epochs]
    predict = record(
        f"{name}_predict",
        f"{name} predict every row from encoded arrays, batch {peers.PREDICT_BATCH}"
        " (library's own predict)",
        res["predict"], warmup=res["predict_warmup"], baseline="bare_mmoe_predict",
        version=res["version"], skmtl_baseline="skmtl_mmoe_predict_proba",
        rows_per_s=res["rows"] / float(np.median(res["predict"])),
    )  # fmt: skip
    return [epochs, predict]


def fit_with_epoch_times(est, X, Y):
    """Fit ``est`` on the raw frame; return its total and per-epoch times.

    skmtl records the wall time of each epoch's training steps in
    ``history_[i]["duration"]``; everything else in ``fit`` (validation,
    encoding, tensors, network build) is the rest of the total.

    Returns
    -------
    total : float
        Wall seconds of ``fit``.
    setup : float
        Seconds of ``fit`` outside the epochs' training steps.
    epochs : list of float
        Seconds of each epoch, the first one included.
    """
    start = time.perf_counter()
    est.fit(X, Y)
    total = time.perf_counter() - start
    epochs = [record["duration"] for record in est.history_]
    return total, total - sum(epochs), epochs


def _skmtl_kwargs(max_iter, batch_size):
    return {"embedding_dim": 8, "tower_hidden_sizes": (32,),
            "batch_size": batch_size, "learning_rate_init": 1e-3,
            "max_iter": max_iter, "random_state": 0, "device": "cpu"}  # fmt: skip


def skmtl_estimator(model_name, max_iter, batch_size, n_experts=8):
    """Return the unfitted skmtl estimator with the benchmark's settings."""
    import skmtl

    kw = _skmtl_kwargs(max_iter, batch_size)
    if model_name == "mmoe":
        return skmtl.MMoEClassifierRegressor(
            n_experts=n_experts, expert_hidden_sizes=(64,), **kw
        )
    if model_name == "ple":
        return skmtl.PLEEstimator(
            n_levels=2, n_shared_experts=2, n_task_experts=2,
            expert_hidden_sizes=(64,), **kw,
        )  # fmt: skip
    if model_name == "dcn":
        return skmtl.DCNMultiTask(**kw)
    return skmtl.SharedBottomEstimator(**kw)


def n_parameters(module):
    """Return the number of scalar parameters of a torch module."""
    return sum(p.numel() for p in module.parameters())


def skmtl_run(ctx, model_name, batch_size, n_experts=8):
    """Time ``--repeats`` skmtl fits of ``1 + --epochs`` epochs on the raw frame.

    Checks that the network has the bare reference's parameter count.

    Returns
    -------
    firsts, epochs, totals, setups : list of float
        Per repeat: the warm-up (first) epoch, the mean of the other epochs,
        the whole ``fit``, and the set-up before training.
    est : estimator
        The last fitted estimator.
    """
    firsts, epochs, totals, setups = [], [], [], []
    for _ in range(ctx.args.repeats):
        est = skmtl_estimator(model_name, 1 + ctx.args.epochs, batch_size, n_experts)
        total, setup, times = fit_with_epoch_times(est, ctx.X, ctx.Y)
        firsts.append(times[0])
        epochs.append(float(np.mean(times[1:])))
        totals.append(total)
        setups.append(setup)
    if model_name in bare.MODELS:
        model, _ = bare.build(model_name, ctx.encoded(), n_experts=n_experts)
        got, want = n_parameters(est.module_), n_parameters(model)
        if got != want:
            raise AssertionError(
                f"skmtl {model_name} has {got} parameters, the bare one {want}"
            )
    return firsts, epochs, totals, setups, est


@register("skmtl")
def measure_skmtl(ctx):
    """skmtl MMoE, PLE (batch 1024 and 256), DCN, Shared-Bottom (1024): fit."""
    out = []
    for model_name, bs in CONFIGS:
        firsts, epochs, totals, setups, est = skmtl_run(ctx, model_name, bs)
        if (model_name, bs) == ("mmoe", 1024):
            ctx._cache["skmtl_mmoe"] = est
        has_bare = model_name in bare.MODELS
        label = LABELS[model_name]
        name = f"skmtl_{model_name}_epoch_bs{bs}"
        what = f"skmtl {label} train epoch inside fit, batch {bs}"
        baseline = f"bare_{model_name}_epoch_bs{bs}" if has_bare else None
        n_params = n_parameters(est.module_)
        out.append(record(name, what, epochs, warmup=firsts, baseline=baseline,
                          n_parameters=n_params))  # fmt: skip
        if bs == 1024:
            name = f"skmtl_{model_name}_fit_bs1024"
            what = f"skmtl {label} fit(X, Y), {1 + ctx.args.epochs} epochs, batch 1024"
            baseline = f"bare_{model_name}_fit_bs1024" if has_bare else None
            out.append(record(name, what, totals, baseline=baseline,
                              setup_seconds=setups))  # fmt: skip
    return out


@register("paired")
def measure_paired(ctx):
    """skmtl/bare epoch ratio with the two runs interleaved, repeat by repeat.

    ``bare`` and ``skmtl`` run minutes apart, so a change in the machine's
    load lands in their ratio; here each repeat runs one bare repeat, then one
    skmtl ``fit``, and the value is that repeat's ratio of mean epoch times.
    """
    out = []
    one = argparse.Namespace(**{**vars(ctx.args), "repeats": 1})
    single = Context(one, ctx.X, ctx.Y, ctx.source, ctx._cache)
    for model_name, bs in CONFIGS:
        ratios, bare_s, skmtl_s = [], [], []
        for _ in range(ctx.args.repeats):
            bare_s += bare_run(single, model_name, bs, encode=False)[1]
            skmtl_s += skmtl_run(single, model_name, bs)[1]
            ratios.append(skmtl_s[-1] / bare_s[-1])
        what = f"skmtl / bare {LABELS[model_name]} epoch, batch {bs}, interleaved"
        out.append(record(f"paired_{model_name}_bs{bs}", what, ratios, unit="x",
                          bare_epoch_s=bare_s, skmtl_epoch_s=skmtl_s))  # fmt: skip
    return out


@register("skmtl_predict")
def measure_skmtl_predict(ctx):
    """skmtl MMoE predict_proba on the raw frame, and on encoded tensors."""
    from skmtl._training import PREDICT_BATCH_SIZE, predict_logits

    est = ctx._cache.get("skmtl_mmoe")
    if est is None:
        est = skmtl_estimator("mmoe", 1, 1024).fit(ctx.X, ctx.Y)
    features = est._features(ctx.X)

    def from_tensors(batch_size=PREDICT_BATCH_SIZE):
        return torch.sigmoid(predict_logits(est.module_, features, batch_size))

    # The network at other batch sizes: what PREDICT_BATCH_SIZE was chosen by.
    other_sizes = [
        (f"skmtl_mmoe_predict_tensors_b{size}",
         f"skmtl MMoE network from encoded tensors, batch {size}",
         functools.partial(from_tensors, size), "skmtl_mmoe_predict_tensors")
        for size in (1024, 16384) if size != PREDICT_BATCH_SIZE
    ]  # fmt: skip
    out = []
    for name, what, fn, baseline in [
        ("skmtl_mmoe_predict_proba", "skmtl MMoE predict_proba(X) from the raw frame",
         lambda: est.predict_proba(ctx.X), "bare_mmoe_predict_frame"),
        ("skmtl_mmoe_predict_tensors",
         f"skmtl MMoE network from encoded tensors (predict_logits + sigmoid), "
         f"batch {PREDICT_BATCH_SIZE}",
         from_tensors, "bare_mmoe_predict"),
        *other_sizes,
    ]:  # fmt: skip
        warm = [timed(fn)[0]]
        vals = [timed(fn)[0] for _ in range(ctx.args.repeats)]
        rate = len(ctx.X) / float(np.median(vals))
        out.append(record(name, what, vals, warmup=warm, baseline=baseline,
                          rows_per_s=rate))  # fmt: skip
    return out


# Batch sizes of the serving measurement, and calls per repeat at each.
SERVING_SIZES = {1: 200, 100: 100, 10_000: 10}


def median_call_seconds(fn, n_calls):
    """Median wall seconds of ``n_calls`` calls of ``fn`` (after one call)."""
    fn()
    times = []
    for _ in range(n_calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@register("serving")
def measure_serving(ctx):
    """Per-call latency and rows/s of predict at the batch sizes a server uses.

    skmtl's ``predict_proba`` from the raw frame against the bare MMoE from
    pre-encoded tensors (``inference_mode``, sigmoid, numpy out), on the same
    first rows. Each repeat's value is the median of ``SERVING_SIZES[n]`` calls.
    """
    enc = ctx.encoded()
    model, _ = bare.build("mmoe", enc)
    model.eval()
    est = ctx._cache.get("skmtl_mmoe")
    if est is None:
        est = skmtl_estimator("mmoe", 1, 1024).fit(ctx.X, ctx.Y)
    out = []
    for n, n_calls in SERVING_SIZES.items():
        n = min(n, len(ctx.X))
        codes, dense, frame = enc.codes[:n], enc.dense[:n], ctx.X.iloc[:n]

        def bare_fn(codes=codes, dense=dense):
            with torch.inference_mode():
                return torch.sigmoid(model(codes, dense)).numpy()

        bare_name = f"bare_mmoe_predict_n{n}"
        for name, what, fn in [
            (bare_name, f"bare MMoE predict_proba from tensors, {n} rows per call",
             bare_fn),
            (f"skmtl_mmoe_predict_proba_n{n}",
             f"skmtl MMoE predict_proba from the raw frame, {n} rows per call",
             lambda frame=frame: est.predict_proba(frame)),
        ]:  # fmt: skip
            vals = [median_call_seconds(fn, n_calls) for _ in range(ctx.args.repeats)]
            rate = n / float(np.median(vals))
            out.append(record(name, what, vals, baseline=bare_name, rows_per_s=rate,
                              calls_per_repeat=n_calls))  # fmt: skip
    return out


@register("experts")
def measure_experts(ctx):
    """MMoE epoch seconds for 2, 4, 8 and 16 experts, skmtl and bare, batch 1024."""
    out = []
    for n in (2, 4, 8, 16):
        warm, vals, _ = bare_run(ctx, "mmoe", 1024, encode=False, n_experts=n)
        name = f"bare_mmoe_epoch_e{n}"
        out.append(
            record(
                name,
                f"bare MMoE train epoch, {n} experts",
                vals,
                warmup=warm,
                baseline="bare_mmoe_epoch_e2",
            )
        )
        firsts, epochs, *_ = skmtl_run(ctx, "mmoe", 1024, n_experts=n)
        out.append(
            record(
                f"skmtl_mmoe_epoch_e{n}",
                f"skmtl MMoE train epoch inside fit, {n} experts",
                epochs,
                warmup=firsts,
                baseline=name,
            )
        )
    return out


def warm_up(ctx):
    """Run both stacks once on a few rows, so no measurement pays first calls."""
    small = Context(ctx.args, ctx.X.iloc[:2048], ctx.Y.iloc[:2048], ctx.source)
    model, opt = bare.build("mmoe", small.encoded())
    bare.train_epoch(model, opt, small.encoded(), 256)
    skmtl_estimator("mmoe", 1, 256).fit(small.X, small.Y)


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
        # On a loaded machine a repeat can be descheduled for seconds; the
        # minimum is the least disturbed one.
        r["min"] = float(np.min(vals)) if vals else None
        base = medians.get(r["baseline"])
        r["ratio"] = float(r["median"] / base) if vals and base else None
        if r.get("skmtl_baseline") in medians and vals:
            r["ratio_vs_skmtl"] = float(r["median"] / medians[r["skmtl_baseline"]])
        r.update(env)
    return records


def markdown(records):
    """Return the records as a Markdown table."""
    lines = ["| name | what | median | min | spread | unit | ratio vs bare | n | note |",
             "|---|---|---:|---:|---:|---|---:|---:|---|"]  # fmt: skip

    def fmt(v):
        return "" if v is None else f"{v:.3g}"

    for r in records:
        note = (r.get("error") or "").replace("\n", " ")[:120]
        if "rows_per_s" in r:
            note = f"{r['rows_per_s']:.3g} rows/s"
        if "x_tensors_model" in r:
            note = (
                f"{r['x_tensors_model']:.2f}x tensors+model "
                f"({r['tensors_model_mib']:.0f} MiB); peak {r['peak_total']:.0f} MiB; "
                f"imports {r.get('import_mib', 0):.0f} MiB"
            )
        if "ratio_vs_skmtl" in r:
            what = "time" if "rows_per_s" in r else "epoch"
            note = f"{r['ratio_vs_skmtl']:.2f}x skmtl's {what}" + (
                f"; {note}" if "rows_per_s" in r else ""
            )
        if "n_parameters" in r:
            note = f"{r['n_parameters']} parameters"
        lines.append(f"| {r['name']} | {r['what']} | {fmt(r['median'])} | "
                     f"{fmt(r.get('min'))} | "
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
    warm_up(ctx)
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
