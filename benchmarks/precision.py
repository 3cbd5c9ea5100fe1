"""bf16 against fp32 training: epoch seconds and census-income test AUC.

For MMoE and PLE with the benchmark settings (embedding 8, 8 experts of 64 for
MMoE, 2 levels of 2 shared + 2 task experts for PLE, towers (32,), batch 1024,
Adam 1e-3), each seed fits one model with ``precision="fp32"`` and one with
``precision="bf16"``, interleaved so that a change of load hits both, and
records the mean epoch time (epochs 2.. of the fit, the first being the
warm-up) and the test AUC of both tasks. The issue's target: the bf16 epoch at
most 0.6x the fp32 one, with AUCs within 0.001.

Run on a quiet machine (results/precision.{jsonl,md})::

    python benchmarks/precision.py --epochs 3 --seeds 0 1 2 --threads 1

``--quick`` fits 1 epoch on 4096 rows (a smoke run, not a measurement).
"""

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
import _data
import run

PRECISIONS = ("fp32", "bf16")


def fit_and_score(model_name, precision, seed, data, epochs):
    """Fit one model; return its per-epoch seconds and per-task test AUC.

    Parameters
    ----------
    model_name : {"mmoe", "ple"}
    precision : {"fp32", "bf16"}
    seed : int
        ``random_state`` of the estimator.
    data : tuple
        ``(X_train, Y_train, X_test, Y_test)`` frames.
    epochs : int
        ``max_iter``.

    Returns
    -------
    dict
        ``epoch_seconds`` (list, first epoch included), ``fit_seconds``,
        ``auc`` (task -> test ROC AUC).
    """
    X, Y, X_test, Y_test = data
    est = run.skmtl_estimator(model_name, epochs, 1024)
    est.set_params(precision=precision, random_state=seed)
    total, _, epoch_seconds = run.fit_with_epoch_times(est, X, Y)
    auc = {
        task: float(score) for task, score in est.score_tasks(X_test, Y_test).items()
    }
    return {"epoch_seconds": epoch_seconds, "fit_seconds": total, "auc": auc}


def timed_epoch(epoch_seconds):
    """Mean epoch seconds after the warm-up epoch (the only one if it is alone)."""
    return float(
        np.mean(epoch_seconds[1:] if len(epoch_seconds) > 1 else epoch_seconds)
    )


def measure(args, data):
    """Fit every (model, seed, precision); return one record per fit."""
    records = []
    for model_name in args.models:
        for seed in args.seeds:
            for precision in PRECISIONS:
                start = time.strftime("%H:%M:%S")
                print(
                    f"[{start}] {model_name} seed {seed} {precision}", file=sys.stderr
                )
                res = fit_and_score(model_name, precision, seed, data, args.epochs)
                records.append(
                    {"model": model_name, "seed": seed, "precision": precision,
                     "epoch": timed_epoch(res["epoch_seconds"]), **res}
                )  # fmt: skip
    return records


def summary(records):
    """Per model: bf16/fp32 epoch ratio and AUC differences, seed by seed."""
    rows = []
    for model_name in dict.fromkeys(r["model"] for r in records):
        by = {
            (r["seed"], r["precision"]): r for r in records if r["model"] == model_name
        }
        for seed in sorted({s for s, _ in by}):
            fp32, bf16 = by[(seed, "fp32")], by[(seed, "bf16")]
            rows.append(
                {
                    "model": model_name,
                    "seed": seed,
                    "fp32_epoch": fp32["epoch"],
                    "bf16_epoch": bf16["epoch"],
                    "ratio": bf16["epoch"] / fp32["epoch"],
                    "fp32_auc": fp32["auc"],
                    "bf16_auc": bf16["auc"],
                    "auc_diff": {
                        t: bf16["auc"][t] - fp32["auc"][t] for t in fp32["auc"]
                    },
                }
            )
    return rows


def markdown(rows, env):
    """The summary as a Markdown table, with the run's settings."""
    title = (
        f"# precision: {env['rows']} training rows, {env['epochs']} epochs, "
        f"threads {env['threads']}, {env['machine']}"
    )
    header = (
        "| model | seed | fp32 epoch s | bf16 epoch s | bf16 / fp32 | "
        "fp32 AUC | bf16 AUC | AUC bf16 - fp32 |"
    )
    lines = [title, "", header, "|---|---:|---:|---:|---:|---|---|---|"]

    def aucs(values):
        return ", ".join(f"{t} {v:.4f}" for t, v in values.items())

    for r in rows:
        diffs = ", ".join(f"{t} {v:+.4f}" for t, v in r["auc_diff"].items())
        lines.append(
            f"| {r['model']} | {r['seed']} | {r['fp32_epoch']:.3g} | "
            f"{r['bf16_epoch']:.3g} | {r['ratio']:.2f} | {aucs(r['fp32_auc'])} | "
            f"{aucs(r['bf16_auc'])} | {diffs} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    """Parse the command line (see ``--help``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="census folder ($SKMTL_DATA)")
    p.add_argument("--nrows", type=int, default=None, help="first N training rows")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--models", nargs="+", default=["mmoe", "ple"],
                   choices=["mmoe", "ple"])  # fmt: skip
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="1 epoch, 4096 rows, 1 seed")
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--tag", default="precision", help="results file name stem")
    args = p.parse_args(argv)
    if args.quick:
        args.nrows, args.epochs, args.seeds = args.nrows or 4096, 1, [0]
    return args


def main(argv=None):
    """Run the fits and write ``<out>/<tag>.jsonl`` (one line per fit) + ``.md``."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    X, Y = _data.load_census(args.data, "data", nrows=args.nrows)
    X_test, Y_test = _data.load_census(args.data, "test")
    records = measure(args, (X, Y, X_test, Y_test))
    env = {
        "rows": len(X),
        "epochs": args.epochs,
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus {platform.node()}",
        "loadavg_before_after": [load_before, os.getloadavg()[0]],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"{args.tag}.jsonl", "w") as f:
        f.writelines(json.dumps({**r, **env}) + "\n" for r in records)
    table = markdown(summary(records), env)
    (out / f"{args.tag}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
