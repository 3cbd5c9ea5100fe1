"""Quality bar: per-task test AUC on census-income with the peers' budget.

Census-income group 1 (income > 50K, never married), the test file split 1:1
into validation/test (``skmtl.datasets.load_census_income``), 3 epochs,
embedding 8, experts of 64 units (MMoE: 8 experts; PLE: its defaults, 2
levels of 2 shared and 3 per-task experts, so 8 per level), towers of 32,
batch 1024, Adam 1e-3; every other setting at its default. The defaults were
chosen on the validation half (``benchmarks/select_defaults.py``); this script
scores the test half. Prints one JSON line per model and seed, then the mean
and standard deviation; with ``--out``, also writes the JSON lines there and a
Markdown summary next to them.

Usage::

    python benchmarks/quality.py --data ../shared/data/census-income \\
        --models mmoe ple --seeds 0 1 2 3 4 --out benchmarks/results/quality_test.jsonl
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
# The repo root first, so this checkout's skmtl is measured, not an installed one.
sys.path.insert(0, str(HERE.parent))
import skmtl  # noqa: E402
from skmtl import (  # noqa: E402
    MMoEClassifierRegressor,
    PLEEstimator,
    SharedBottomEstimator,
)
from skmtl.datasets import load_census_income  # noqa: E402

BUDGET = {
    "embedding_dim": 8,
    "tower_hidden_sizes": (32,),
    "batch_size": 1024,
    "learning_rate_init": 1e-3,
    "optimizer": "adam",
    "max_iter": 3,
    "device": "cpu",
}
MODELS = {
    "mmoe": lambda seed: MMoEClassifierRegressor(
        n_experts=8, expert_hidden_sizes=(64,), random_state=seed, **BUDGET
    ),
    "ple": lambda seed: PLEEstimator(
        expert_hidden_sizes=(64,), random_state=seed, **BUDGET
    ),
    "shared_bottom": lambda seed: SharedBottomEstimator(random_state=seed, **BUDGET),
}
# The PLE paper's (Tang et al., RecSys 2020) PLE on census-income group 1.
PAPER_PLE = {"income_50k": 0.9522, "never_married": 0.9945}


def summary_lines(records, command, threads):
    """Markdown summary: mean ± std (numpy.std) per model and task."""
    tasks = list(PAPER_PLE)
    lines = [
        "# quality: census-income group 1, test AUC",
        "",
        f"Command: `{command}`",
        "",
        f"skmtl {skmtl.__version__}, torch {torch.__version__}, "
        f"{threads} torch thread(s), Python "
        f"{platform.python_version()}. Mean ± std (numpy.std) over seeds; the "
        "test half of census-income.test (49,881 rows), scored once.",
        "",
        "| model | seeds | " + " | ".join(tasks) + " | fit s (mean) |",
        "|---|---|" + "---|" * len(tasks) + "---|",
    ]
    for model in dict.fromkeys(r["model"] for r in records):
        rows = [r for r in records if r["model"] == model]
        cells = [
            f"{np.mean([r[t] for r in rows]):.4f} ± {np.std([r[t] for r in rows]):.4f}"
            for t in tasks
        ]
        seeds = ", ".join(str(r["seed"]) for r in rows)
        fit = np.mean([r["fit_s"] for r in rows])
        lines.append(f"| {model} | {seeds} | {' | '.join(cells)} | {fit:.0f} |")
    paper = " | ".join(f"{PAPER_PLE[t]:.4f}" for t in tasks)
    lines += [f"| PLE paper (Tang et al. 2020) | | {paper} | |", ""]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="census-income folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--models", nargs="+", default=["mmoe", "ple"], choices=list(MODELS)
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="JSON-lines file to write")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train = load_census_income(args.data, split="train")
    test = load_census_income(args.data, split="test")
    records = []
    for name in args.models:
        scores = []
        for seed in args.seeds:
            start = time.perf_counter()
            est = MODELS[name](seed).fit(train.data, train.target)
            fit_seconds = time.perf_counter() - start
            scores.append(est.score_tasks(test.data, test.target))
            records.append(
                {
                    "model": name,
                    "seed": seed,
                    "fit_s": round(fit_seconds, 1),
                    **{k: round(v, 6) for k, v in scores[-1].items()},
                }
            )
            print(json.dumps(records[-1]), flush=True)
        for task in scores[0]:
            values = [s[task] for s in scores]
            print(
                f"{name:14s} {task:14s} mean {np.mean(values):.4f} "
                f"std {np.std(values):.4f} over seeds {args.seeds}"
            )
    if args.out:
        out = Path(args.out)
        out.write_text("".join(json.dumps(r) + "\n" for r in records))
        command = "python benchmarks/quality.py " + " ".join(sys.argv[1:])
        out.with_suffix(".md").write_text("\n".join(summary_lines(records, command, args.threads)))


if __name__ == "__main__":
    main()
