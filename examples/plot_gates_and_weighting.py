"""
Gates and task weighting on census-income
=========================================

Which experts does each task use, and how should the tasks' losses be weighed?
We fit MMoE on census-income (income above 50K, never married) once per
task-weighting strategy — equal weights, static weights, the PLE paper's
dynamic schedule, uncertainty weighting (Kendall et al. 2018) and GradNorm
(Chen et al. 2018) — print each task's test ROC AUC, and draw the mean gate of
each task over the experts, the AUCs, and how the learnt weights moved.

By default it runs on the sample shipped with skmtl (about a minute on 2
cores); ``--full --data DIR`` uses the full UCI files::

    python examples/plot_gates_and_weighting.py --full --data /path/to/census-income
"""

# %%
# Settings
# --------
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from skmtl import MMoEClassifierRegressor
from skmtl.datasets import load_census_income, load_census_income_sample
from skmtl.inspection import plot_gate_heatmap
from skmtl.weighting import DynamicWeights, GradNorm

STRATEGIES = {
    "equal": None,
    "static (income x2)": {"income_50k": 2.0},
    "dynamic (PLE)": DynamicWeights(initial=[1.0, 1.0], decay=[1.0, 0.8]),
    "uncertainty": "uncertainty",
    "GradNorm": GradNorm(alpha=1.5),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Gates and task weighting.")
    parser.add_argument("--full", action="store_true", help="use the full UCI files")
    parser.add_argument("--data", default=None, help="census-income folder (--full)")
    parser.add_argument("--max-iter", type=int, default=None, help="epochs")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=".", help="folder for the figure")
    return parser.parse_args(argv)


def load(args):
    """Return (train, test) Bunches: the full files or the shipped sample."""
    if args.full:
        return (
            load_census_income(args.data, split="train"),
            load_census_income(args.data, split="test"),
        )
    sample = load_census_income_sample()
    return sample.train, sample.test


# %%
# One MMoE per strategy
# ---------------------
# Same seed, architecture and budget; only ``loss_weights`` changes.


def fit_all(args, train, test):
    """Fit one MMoE per strategy; return {name: (estimator, per-task AUC)}."""
    # Small data needs smaller batches to take enough steps.
    batch_size = args.batch_size or (1024 if args.full else 128)
    max_iter = args.max_iter or (3 if args.full else 8)
    results = {}
    for name, weighting in STRATEGIES.items():
        est = MMoEClassifierRegressor(
            n_experts=8,
            loss_weights=weighting,
            batch_size=batch_size,
            max_iter=max_iter,
            random_state=args.seed,
            device="cpu",
        ).fit(train.data, train.target)
        results[name] = (est, est.score_tasks(test.data, test.target))
    return results


def print_table(results, tasks):
    print(f"{'strategy':20s}" + "".join(f"{t:>16s}" for t in tasks) + "  final weights")
    for name, (est, scores) in results.items():
        weights = est.history_[-1]["task_weights"]
        shown = ", ".join(f"{w:.2f}" for w in weights.values())
        print(
            f"{name:20s}" + "".join(f"{scores[t]:16.4f}" for t in tasks) + f"  {shown}"
        )


# %%
# Figure: gates, AUCs and learnt weights
# --------------------------------------


def plot(results, tasks, X_test, path):
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    plot_gate_heatmap(results["equal"][0], X_test, ax=axes[0])
    axes[0].set_title("MMoE (equal weights): mean gate per task")
    names = list(results)
    width = 0.8 / len(tasks)
    for k, task in enumerate(tasks):
        values = [results[n][1][task] for n in names]
        axes[1].bar(np.arange(len(names)) + k * width, values, width, label=task)
    low = min(min(s.values()) for _, s in results.values())
    axes[1].set_ylim(low - 0.01, 1.006)  # headroom for the legend
    axes[1].set_xticks(
        np.arange(len(names)) + width / 2, names, rotation=20, ha="right"
    )
    axes[1].set_ylabel("test ROC AUC")
    axes[1].set_title("Test AUC by weighting strategy")
    axes[1].legend(loc="upper right", ncol=2)
    for name in ("dynamic (PLE)", "uncertainty", "GradNorm"):
        history = results[name][0].history_
        for task, style in zip(tasks, ("-", "--")):
            axes[2].plot(
                [h["epoch"] for h in history],
                [h["task_weights"][task] for h in history],
                style,
                label=f"{name}: {task}",
            )
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("task weight used in the epoch")
    axes[2].set_title("How the weights moved")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)
    train, test = load(args)
    tasks = list(train.target.columns)
    results = fit_all(args, train, test)
    print_table(results, tasks)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(results, tasks, test.data, out / "gates_and_weighting.png")
    print(f"figure: {out / 'gates_and_weighting.png'}")


if __name__ == "__main__":
    main()
