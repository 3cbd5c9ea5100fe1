"""Streaming (Dask/Parquet) fit against the in-memory fit: memory, speed, quality.

Writes synthetic census-like rows as Parquet (one file of ``--partition-rows``
rows per partition), then, each in a fresh Python so that its peak memory is
its own:

- ``stream_<rows>``: ``MMoEClassifierRegressor().fit(ddf[features],
  ddf[labels])`` streamed from ``dask.dataframe.read_parquet``, 1 epoch,
  batch 1024, MMoE defaults, for every ``--rows``;
- ``memory_<rows>``: the same fit on the pandas frame read from the same
  Parquet files, for ``--memory-rows``;
- ``census_{stream,memory}`` (with ``--census``): census-income's training
  file written as Parquet, streamed and in memory, 3 epochs, test ROC AUC.

Each record has the peak resident memory of the whole process (``VmHWM``,
Python and torch included), the fit's wall time and rows per second (the fit
includes the encoder's and the tasks' passes), and the training epochs' own
rows per second (``history_[i]["duration"]``). Results go to
``results/scale_<tag>.jsonl`` and ``.md``. Targets (issue 9): the 20 M-row
stream's peak at most 1.3x the 2 M-row stream's and at most 3 GB; streaming
fit rows/s at least 0.8x in-memory at 2 M rows; census streamed AUC within
0.002 of in memory.

    python benchmarks/scale.py --rows 2000000 20000000 --memory-rows 2000000 \\
        --census --tag full
    python benchmarks/scale.py --rows 200000 --memory-rows 200000 \\
        --partition-rows 50000 --census --tag small      # a quick check
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import _data

BATCH_SIZE = 1024


def write_synthetic(directory, n_rows, partition_rows):
    """Write ``n_rows`` synthetic rows as Parquet files of ``partition_rows``.

    Each file is generated on its own (seeded by its number), so writing 20 M
    rows never holds more than one partition.

    Parameters
    ----------
    directory : pathlib.Path
    n_rows, partition_rows : int

    Returns
    -------
    pathlib.Path
        The dataset folder (reused when it already holds the files).
    """
    path = directory / f"synthetic_{n_rows}_{partition_rows}"
    starts = range(0, n_rows, partition_rows)
    if path.exists() and len(list(path.glob("*.parquet"))) == len(starts):
        return path
    path.mkdir(parents=True, exist_ok=True)
    for number, start in enumerate(starts):
        size = min(partition_rows, n_rows - start)
        X, Y = _data.synthetic_census(size, seed=number)
        frame = pd.concat([X, Y], axis=1)
        frame.to_parquet(path / f"part-{number:05d}.parquet", index=False)
    return path


def write_census(directory, partition_rows):
    """Write census-income's training file as Parquet; return (path, test X, Y)."""
    X, Y = _data.load_census(split="data")
    path = directory / f"census_{partition_rows}"
    if not path.exists():
        path.mkdir(parents=True)
        frame = pd.concat([X, Y], axis=1)
        for number, start in enumerate(range(0, len(frame), partition_rows)):
            part = frame.iloc[start : start + partition_rows]
            part.to_parquet(path / f"part-{number:05d}.parquet", index=False)
    return path


# -- what runs in each child ---------------------------------------------------


def _peak_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _estimator(max_iter):
    from skmtl import MMoEClassifierRegressor

    return MMoEClassifierRegressor(
        max_iter=max_iter, batch_size=BATCH_SIZE, random_state=0, distributed=False
    )


def _fit(estimator, X, Y, n_rows):
    start = time.perf_counter()
    estimator.fit(X, Y)
    seconds = time.perf_counter() - start
    epochs = sum(record["duration"] for record in estimator.history_)
    return {
        "rows": n_rows,
        "fit_seconds": seconds,
        "fit_rows_per_s": n_rows * estimator.n_iter_ / seconds,
        "epoch_rows_per_s": n_rows * estimator.n_iter_ / epochs,
    }


def child(path, mode, max_iter, census):
    """Fit on the Parquet dataset at ``path``; print one JSON record."""
    import dask.dataframe as dd

    labels = list(_data.LABELS)
    if mode == "stream":
        ddf = dd.read_parquet(path)
        features = [c for c in ddf.columns if c not in labels]
        X, Y = ddf[features], ddf[labels]
        n_rows, partitions = None, ddf.npartitions
    else:
        frame = pd.read_parquet(path)
        X, Y = frame.drop(columns=labels), frame[labels]
        n_rows, partitions = len(frame), None
        del frame
    estimator = _estimator(max_iter)
    if n_rows is None:  # counted by the fit's own first pass, not here
        n_rows = int(dd.read_parquet(path, columns=labels[:1]).shape[0].compute())
    record = _fit(estimator, X, Y, n_rows)
    record.update(peak_rss_mib=_peak_mib(), partitions=partitions)
    if census:
        X_test, Y_test = _data.load_census(split="test")
        scores = estimator.score_tasks(X_test, Y_test)
        record.update(
            test_auc=scores, mean_test_auc=float(np.mean(list(scores.values())))
        )
    print(json.dumps(record))


# -- the parent ----------------------------------------------------------------


def run_child(path, mode, max_iter=1, census=False, threads=None):
    """Run :func:`child` in a fresh Python; return its record."""
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    command = [sys.executable, __file__, "--child", str(path), mode, str(max_iter)]
    command += ["--census"] if census else []
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"{mode} fit on {path} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _checks(records):
    """The issue's targets, where the run has what they compare."""
    checks = {}
    streams = sorted(
        (r for r in records if r["name"].startswith("stream_")), key=lambda r: r["rows"]
    )
    if len(streams) >= 2:
        small, large = streams[0], streams[-1]
        ratio = large["peak_rss_mib"] / small["peak_rss_mib"]
        checks[f"peak {large['rows']} / peak {small['rows']} <= 1.3"] = (
            ratio,
            ratio <= 1.3,
        )
    if streams:
        peak = streams[-1]["peak_rss_mib"]
        checks[f"peak of {streams[-1]['rows']} rows <= 3072 MiB"] = (peak, peak <= 3072)
    by_name = {r["name"]: r for r in records}
    for stream in streams:
        memory = by_name.get(f"memory_{stream['rows']}")
        if memory:
            ratio = stream["fit_rows_per_s"] / memory["fit_rows_per_s"]
            checks[f"stream / memory fit rows/s at {stream['rows']} >= 0.8"] = (
                ratio,
                ratio >= 0.8,
            )
    if "census_stream" in by_name and "census_memory" in by_name:
        gap = abs(
            by_name["census_stream"]["mean_test_auc"]
            - by_name["census_memory"]["mean_test_auc"]
        )
        checks["census AUC gap, stream vs memory, <= 0.002"] = (gap, gap <= 0.002)
    return checks


def write_results(records, checks, tag, args, quiet=False):
    """Write ``results/scale_<tag>.jsonl`` and ``.md``."""
    out = HERE / "results" / f"scale_{tag}"
    Path(f"{out}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    lines = [
        (
            f"# scale_{tag}: streaming vs in-memory MMoE fit "
            f"(batch {BATCH_SIZE}, partitions of {args.partition_rows} rows)"
        ),
        "",
        (
            "| name | rows | epochs | peak RSS (MiB) | fit s | fit rows/s "
            "| epoch rows/s | mean test AUC |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        auc = f"{r['mean_test_auc']:.4f}" if "mean_test_auc" in r else ""
        lines.append(
            f"| {r['name']} | {r['rows']} | {r['epochs']} | {r['peak_rss_mib']:.0f} "
            f"| {r['fit_seconds']:.1f} | {r['fit_rows_per_s']:.0f} "
            f"| {r['epoch_rows_per_s']:.0f} | {auc} |"
        )
    lines += ["", "| target | value | met |", "|---|---:|---|"]
    lines += [
        f"| {k} | {v:.4g} | {'yes' if ok else 'NO'} |" for k, (v, ok) in checks.items()
    ]
    Path(f"{out}.md").write_text("\n".join(lines) + "\n")
    if not quiet:
        print("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[2_000_000, 20_000_000])
    parser.add_argument("--memory-rows", type=int, nargs="*", default=[2_000_000])
    parser.add_argument("--partition-rows", type=int, default=250_000)
    parser.add_argument("--census", action="store_true", help="also census-income AUC")
    parser.add_argument("--census-partition-rows", type=int, default=50_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/skmtl-scale"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--tag", default="run")
    args = parser.parse_args(argv)
    records = []

    def measure(name, path, mode, **kw):
        record = run_child(path, mode, threads=args.threads, **kw)
        record.update(name=name, epochs=kw.get("max_iter", 1))
        records.append(record)
        print(json.dumps(record), flush=True)
        # Rewritten after each fit, so an interrupted run keeps what it measured.
        write_results(records, _checks(records), args.tag, args, quiet=True)

    if args.census and _data.census_file(_data.default_data_dir(), "data") is None:
        parser.error(f"--census: no census-income files in {_data.default_data_dir()}")

    for rows in sorted(set(args.rows) | set(args.memory_rows)):
        path = write_synthetic(args.workdir, rows, args.partition_rows)
        if rows in args.rows:
            measure(f"stream_{rows}", path, "stream")
        if rows in args.memory_rows:
            measure(f"memory_{rows}", path, "memory")
    if args.census:
        path = write_census(args.workdir, args.census_partition_rows)
        for mode in ("stream", "memory"):
            measure(f"census_{mode}", path, mode, max_iter=3, census=True)
    write_results(records, _checks(records), args.tag, args)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), "--census" in sys.argv)
    else:
        main()
