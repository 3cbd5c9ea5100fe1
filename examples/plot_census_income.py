"""
Six multi-task architectures on census-income
=============================================

The real-data experiment of the MMoE paper (Ma et al., KDD 2018, group 1) and
the census setup of the PLE paper (Tang et al., RecSys 2020): predict, from
the UCI Census-Income (KDD) records, whether a person earns more than $50K
(``income_50k``) and whether they were never married (``never_married``).

We train the Shared-Bottom baseline, the One-gate MoE, MMoE, CGC (a one-level
PLE), PLE and a DCN bottom with one tower per task, with the same embeddings,
towers, batch size and optimiser, and report each task's ROC AUC on the test
half of ``census-income.test``.

By default the script runs on the small sample shipped with skmtl (4,000
training and 2,000 test rows) in well under a minute; the numbers are then
only a smoke test. ``--full --data DIR`` trains on the full UCI files
(199,523 training rows) with the budget of ``docs/reproduction.md``::

    python examples/plot_census_income.py --full --data /path/to/census-income \\
        --seeds 0 1 2 --out results/
"""

# %%
# Settings
# --------
# The shared budget (embedding 8, towers of 32, Adam 1e-3) and each
# architecture's own sizes: 8 experts of 64 units for the MoE models, 2 levels
# of 2 shared + 2 per-task experts for PLE (1 level for CGC). Everything else
# stays at skmtl's defaults. The full run uses batches of 1024 for 3 epochs;
# on the 4,000-row sample that would be 12 optimisation steps, so the default
# run uses batches of 128 for 10 epochs instead.

import argparse
import json
import os
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import sklearn
import torch

import skmtl
from skmtl import (
    DCNMultiTask,
    MMoEClassifierRegressor,
    PLEEstimator,
    SharedBottomEstimator,
)
from skmtl.datasets import load_census_income, load_census_income_sample

MOE = {"n_experts": 8, "expert_hidden_sizes": (64,)}
PLE = {"n_shared_experts": 2, "n_task_experts": 2, "expert_hidden_sizes": (64,)}
MODELS = {
    "Shared-Bottom": lambda **kw: SharedBottomEstimator(**kw),
    "One-gate MoE": lambda **kw: MMoEClassifierRegressor(gating="shared", **MOE, **kw),
    "MMoE": lambda **kw: MMoEClassifierRegressor(gating="per_task", **MOE, **kw),
    "CGC": lambda **kw: PLEEstimator(n_levels=1, **PLE, **kw),
    "PLE": lambda **kw: PLEEstimator(n_levels=2, **PLE, **kw),
    "DCN": lambda **kw: DCNMultiTask(**kw),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Six MTL models on census-income.")
    parser.add_argument(
        "--full", action="store_true", help="train on the full UCI files (--data)"
    )
    parser.add_argument(
        "--data", default=None, help="folder of census-income.{data,test}.gz"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--max-iter", type=int, default=None, help="epochs")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default=".", help="folder for the figure and JSON")
    return parser.parse_args(argv)


def load(args):
    """Return (train, test) dataset Bunches."""
    if args.full:
        train = load_census_income(args.data, split="train")
        test = load_census_income(args.data, split="test")
        return train, test
    sample = load_census_income_sample()
    return sample.train, sample.test


# %%
# Training and scoring
# --------------------
# Every model is fitted on the raw DataFrame: skmtl's ``FeatureEncoder``
# embeds the 32 nominal columns and the quantile bins of the 7 continuous
# ones, and standardises the continuous values. ``score_tasks`` returns each
# task's ROC AUC on the test rows.


def run(args):
    train, test = load(args)
    budget = {
        "embedding_dim": 8,
        "tower_hidden_sizes": (32,),
        "batch_size": args.batch_size or (1024 if args.full else 128),
        "learning_rate_init": 1e-3,
        "max_iter": args.max_iter or (3 if args.full else 10),
        "device": "cpu",
    }
    records = []
    for name in args.models:
        for seed in args.seeds:
            start = time.perf_counter()
            est = MODELS[name](random_state=seed, **budget)
            est.fit(train.data, train.target)
            fit_s = time.perf_counter() - start
            scores = est.score_tasks(test.data, test.target)
            records.append({"model": name, "seed": seed, "fit_s": fit_s, **scores})
            print(
                f"{name:14s} seed {seed}: "
                + "  ".join(f"{t} {s:.4f}" for t, s in scores.items())
                + f"  ({fit_s:.1f} s)",
                flush=True,
            )
    return records, list(train.target.columns), budget, len(train.data), len(test.data)


def summarise(records, tasks, models):
    """Return {model: {task: (mean, std)}} over seeds."""
    summary = {}
    for name in models:
        rows = [r for r in records if r["model"] == name]
        summary[name] = {
            task: (
                float(np.mean([r[task] for r in rows])),
                float(np.std([r[task] for r in rows])),
            )
            for task in tasks
        }
    return summary


def print_table(summary, tasks, n_seeds):
    header = f"{'model':14s}" + "".join(f"  {t:>17s}" for t in tasks)
    print(f"\nTest ROC AUC, mean ± std over {n_seeds} seed(s)")
    print(header)
    print("-" * len(header))
    for name, per_task in summary.items():
        cells = "".join(f"  {m:>8.4f} ± {s:.4f}" for m, s in per_task.values())
        print(f"{name:14s}{cells}")


# %%
# Plot
# ----
# One panel per task, since the two AUCs live on different scales (about 0.95
# and 0.99); each panel's y axis is zoomed onto its bars so that differences
# of a few thousandths are visible. Error bars are one standard deviation
# over seeds.


def plot(summary, tasks, title, path):
    names = list(summary)
    colors = plt.get_cmap("tab10").colors
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 4.4))
    x = np.arange(len(names))
    for ax, task in zip(np.atleast_1d(axes), tasks):
        means = np.array([summary[n][task][0] for n in names])
        stds = np.array([summary[n][task][1] for n in names])
        bars = ax.bar(
            x, means, yerr=stds, capsize=4, color=colors[: len(names)], label=names
        )
        low, high = (means - stds).min(), (means + stds).max()
        margin = max(high - low, 1e-3) * 0.35
        ax.set_ylim(low - margin, min(high + margin, 1.0))
        ax.bar_label(bars, labels=[f"{m:.4f}" for m in means], fontsize=8, padding=2)
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_title(task)
        ax.set_ylabel("test ROC AUC")
        ax.grid(axis="y", alpha=0.3)
    handles = np.atleast_1d(axes)[0].patches[: len(names)]
    fig.legend(handles, names, loc="lower center", ncol=len(names), frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records, tasks, budget, n_train, n_test = run(args)
    summary = summarise(records, tasks, args.models)
    print_table(summary, tasks, len(args.seeds))
    data = "full UCI files" if args.full else "shipped sample"
    title = (
        f"Census-income ({data}: {n_train:,} train / {n_test:,} test rows), "
        f"{budget['max_iter']} epochs, {len(args.seeds)} seed(s)"
    )
    stem = "census_income_full" if args.full else "census_income"
    plot(summary, tasks, title, out / f"{stem}.png")
    meta = {
        "skmtl": skmtl.__version__,
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "budget": {
            k: list(v) if isinstance(v, tuple) else v for k, v in budget.items()
        },
        "n_train": n_train,
        "n_test": n_test,
        "seeds": args.seeds,
        "threads": args.threads,
    }
    with open(out / f"{stem}.json", "w") as f:
        json.dump({"meta": meta, "records": records}, f, indent=1)
    print(f"\nWrote {out / f'{stem}.png'} and {out / f'{stem}.json'}")


if __name__ == "__main__":
    main()
