"""Serving speed: onnxruntime on the exported model next to ``predict_proba``.

Fits an MMoE (skmtl's defaults) on the census-income train file, exports it
with :func:`skmtl.export.to_onnx`, and scores the census test frame in
batches of 1, 100 and 10,000 rows three ways:

- ``predict_proba``: ``est.predict_proba(frame)`` on each raw batch;
- ``onnx``: ``session.run`` on the batch's input arrays, laid out beforehand
  (what a server that receives column arrays runs);
- ``onnx_from_frame``: ``onnx_inputs(est, frame)`` then ``session.run`` (a
  Python server that receives DataFrames).

Each record holds rows/s over all its calls and, for 1 and 100 rows, the
median latency per call. The context adds ``max_abs_diff``: the largest
difference between onnxruntime's probabilities and ``predict_proba``'s over
the whole test frame, in one call each. Both runtimes use ``--threads``
threads. Results go to ``benchmarks/results/onnx_serving.{jsonl,md}``
(``--out``, ``--tag``)::

    SKMTL_DATA=../shared/data/census-income python benchmarks/onnx_serving.py
    python benchmarks/onnx_serving.py --train-rows 5000 --calls 20 \\
        --out /tmp/onnx_smoke                        # smoke run
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
from _data import default_data_dir

BATCH_SIZES = (1, 100, 10_000)
RESULTS = Path(__file__).resolve().parent / "results"


def _fit(data_dir, train_rows, max_iter):
    from skmtl import MMoEClassifierRegressor
    from skmtl.datasets import load_census_income

    train = load_census_income(data_dir, split="train")
    X, Y = train.data, train.target
    if train_rows:
        X, Y = X.iloc[:train_rows], Y.iloc[:train_rows]
    est = MMoEClassifierRegressor(max_iter=max_iter, random_state=0)
    return est.fit(X, Y)


def _session(model, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options)


def _batches(frame, size, calls):
    """``calls`` consecutive batches of ``size`` rows (wrapping around)."""
    starts = [(i * size) % max(1, len(frame) - size + 1) for i in range(calls)]
    return [frame.iloc[s : s + size] for s in starts]


def _time_calls(function, inputs):
    """Wall seconds of each call of ``function`` on each input, after one warm-up."""
    function(inputs[0])
    seconds = []
    for item in inputs:
        start = time.perf_counter()
        function(item)
        seconds.append(time.perf_counter() - start)
    return seconds


def _record(name, size, seconds):
    record = {
        "name": name,
        "batch_rows": size,
        "calls": len(seconds),
        "rows_per_s": size * len(seconds) / sum(seconds),
    }
    if size <= 100:
        record["median_latency_ms"] = 1000 * statistics.median(seconds)
    return record


def measure(est, frame, threads, calls):
    """Return one record per (way of scoring, batch size)."""
    from skmtl.export import onnx_inputs, to_onnx

    session = _session(to_onnx(est), threads)
    records = []
    for size in BATCH_SIZES:
        n_calls = calls if size <= 100 else max(1, min(calls, len(frame) // size))
        batches = _batches(frame, size, n_calls)
        feeds = [onnx_inputs(est, batch) for batch in batches]
        ways = {
            "predict_proba": (est.predict_proba, batches),
            "onnx": (lambda f: session.run(None, f), feeds),
            "onnx_from_frame": (
                lambda b: session.run(None, onnx_inputs(est, b)),
                batches,
            ),
        }
        for name, (function, inputs) in ways.items():
            records.append(_record(name, size, _time_calls(function, inputs)))
    return records


def max_abs_diff(est, frame, threads):
    """Largest |onnxruntime - predict_proba| over every task, row and class."""
    import numpy as np

    from skmtl.export import onnx_inputs, to_onnx

    outputs = _session(to_onnx(est), threads).run(None, onnx_inputs(est, frame))
    expected = est.predict_proba(frame)
    return max(
        float(np.max(np.abs(np.asarray(got) - np.asarray(want))))
        for got, want in zip(outputs, expected)
    )


def _context(args, n_test):
    import onnxruntime

    return {
        "threads": args.threads,
        "test_rows": n_test,
        "train_rows": args.train_rows or "all",
        "max_iter": args.max_iter,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "machine": platform.processor() or platform.machine(),
        "loadavg": os.getloadavg(),
    }


def write(records, context, out, tag):
    """Write the records as JSON lines and a Markdown table; print the table."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({**r, **context}) + "\n" for r in records]
    (out / f"{tag}.jsonl").write_text("".join(lines))
    by_size = {(r["batch_rows"], r["name"]): r for r in records}
    table = [
        f"# ONNX serving: census test frame, {context['threads']} thread(s)\n",
        "| batch rows | way | rows/s | median ms per call | vs predict_proba |",
        "|---:|---|---:|---:|---:|",
    ]
    for (size, name), r in sorted(by_size.items()):
        base = by_size[(size, "predict_proba")]["rows_per_s"]
        latency = r.get("median_latency_ms")
        table.append(
            f"| {size:,} | {name} | {r['rows_per_s']:,.0f} | "
            f"{'' if latency is None else f'{latency:.3f}'} | "
            f"{r['rows_per_s'] / base:.2f}x |"
        )
    table.append(f"\nContext: {json.dumps(context)}\n")
    (out / f"{tag}.md").write_text("\n".join(table))
    print("\n".join(table))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-rows", type=int, default=0, help="0: all")
    parser.add_argument("--max-iter", type=int, default=1)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--tag", default="onnx_serving")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from skmtl.datasets import load_census_income

    data_dir = args.data or default_data_dir()
    est = _fit(data_dir, args.train_rows, args.max_iter)
    test = load_census_income(data_dir, split="test").data
    records = measure(est, test, args.threads, args.calls)
    context = _context(args, len(test))
    context["max_abs_diff"] = max_abs_diff(est, test, args.threads)
    write(records, context, args.out, args.tag)


if __name__ == "__main__":
    main()
