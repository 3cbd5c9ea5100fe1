"""
Entire-space conversion: ESMM and AITM against a model trained on clicks
=========================================================================

A conversion (purchase) can only follow a click, so the usual conversion
model is trained on the clicked impressions only, and then used to rank all
impressions. The clicked rows are a biased sample of them (sample-selection
bias), and few (data sparsity): ESMM (Ma et al., SIGIR 2018) trains on every
impression instead, with a loss on pCTR and on pCTCVR = pCTR x pCVR, and AITM
(Xi et al., KDD 2021) transfers what the click tower learnt to the purchase
tower.

:func:`skmtl.datasets.make_funnel_synthetic` knows the conversion
probability of *every* impression, clicked or not, so each model's pCVR can
be judged where it is used: over the entire space. We compare

- ESMM and AITM trained on all impressions (``funnel=["click", "purchase"]``),
- a Shared-Bottom binary model of ``purchase`` trained on the clicked rows,

by the ROC AUC of their pCVR against the true conversion probability (each
row weighs as a positive with that probability and as a negative with its
complement, the AUC expected over the draws), over the clicked test
impressions and over all of them, and plot their mean pCVR against the truth
by how likely the impression was to be clicked.

By default: 20,000 training impressions (about 2,000 clicks and 300
purchases), 5 epochs, a few seconds on one CPU core; ``--full`` uses 200,000
impressions and 10 epochs::

    python examples/plot_funnel_esmm.py [--full] [--out results/]
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
from sklearn.metrics import roc_auc_score

from skmtl import AITMEstimator, ESMMEstimator, SharedBottomEstimator
from skmtl.datasets import make_funnel_synthetic

FUNNEL = ["click", "purchase"]
COLORS = {"ESMM": "tab:orange", "AITM": "tab:green", "clicked only": "tab:blue"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="ESMM vs a clicked-only model.")
    parser.add_argument("--full", action="store_true", help="larger run")
    parser.add_argument("--n-samples", type=int, default=None, help="training rows")
    parser.add_argument("--max-iter", type=int, default=None, help="epochs")
    parser.add_argument("--seed", type=int, default=0, help="data and model seed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default=".", help="folder for the figure")
    args = parser.parse_args(argv)
    n_samples, max_iter = (200_000, 10) if args.full else (20_000, 5)
    args.n_samples = args.n_samples or n_samples
    args.max_iter = args.max_iter or max_iter
    return args


def expected_auc(p_true, score):
    """ROC AUC of ``score`` against labels drawn with probability ``p_true``."""
    n = len(score)
    labels = np.r_[np.ones(n), np.zeros(n)]
    return roc_auc_score(
        labels, np.r_[score, score], sample_weight=np.r_[p_true, 1 - p_true]
    )


# %%
# Training
# --------
# The funnel models see every impression and both labels; the baseline sees
# the clicked impressions and their purchase label only, with twice the
# epochs (its data is ten times smaller).


def fit_models(X, Y, args):
    """Return {model name: pCVR function of X}."""
    common = {"batch_size": 256, "device": "cpu", "random_state": args.seed}
    models = {}
    for name, cls in (("ESMM", ESMMEstimator), ("AITM", AITMEstimator)):
        est = cls(funnel=FUNNEL, max_iter=args.max_iter, **common).fit(X, Y)
        # predict_proba: (rows, stages, (joint, conditional)); pCVR is the
        # purchase stage's probability given the click.
        models[name] = lambda X, est=est: est.predict_proba(X)[:, 1, 1]
    clicked = Y["click"].to_numpy() == 1
    baseline = SharedBottomEstimator(
        max_iter=2 * args.max_iter, **{**common, "batch_size": 64}
    ).fit(X[clicked], Y["purchase"][clicked])
    models["clicked only"] = lambda X: baseline.predict_proba(X)[:, 1]
    return models


def evaluate(models, X_test, Y_test, truth):
    """Ranking quality of each model's pCVR, on clicked rows and on all rows."""
    cvr = truth["cvr"].to_numpy()
    clicked = Y_test["click"].to_numpy() == 1
    predictions = {name: predict(X_test) for name, predict in models.items()}
    predictions["truth"] = cvr
    scores = {}
    for name, pcvr in predictions.items():
        scores[name] = {
            "clicked impressions": expected_auc(cvr[clicked], pcvr[clicked]),
            "all impressions": expected_auc(cvr, pcvr),
        }
        clicked_auc, all_auc = scores[name].values()
        print(
            f"{name:>13}: pCVR AUC on clicked {clicked_auc:.4f}, "
            f"on all impressions {all_auc:.4f}"
        )
    return predictions, scores


# %%
# Plot
# ----
# Left: on the clicked impressions the clicked-only model is already behind
# (it learns from a tenth of the rows: data sparsity); over all impressions
# the gap widens, since most impressions look like few of the rows it was
# trained on (sample-selection bias). Right: by decile of the true click
# probability, the clicked-only model overestimates the conversion rate of
# the impressions least likely to be clicked; ESMM and AITM follow the truth.


def plot(predictions, scores, truth, args, path):
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    spaces = ["clicked impressions", "all impressions"]
    names = [*COLORS, "truth"]
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = [scores[name][space] for space in spaces]
        positions = np.arange(len(spaces)) + (i - (len(names) - 1) / 2) * width
        bars = left.bar(
            positions, values, width, label=name, color=COLORS.get(name, "0.6")
        )
        left.bar_label(bars, fmt="%.3f", fontsize=8)
    left.set_xticks(np.arange(len(spaces)), spaces)
    low = min(min(s.values()) for s in scores.values())
    left.set_ylim(low - 0.05, 1.0)
    left.set_ylabel("pCVR ROC AUC against the true conversion probability")
    left.legend(loc="upper right", fontsize=9)
    left.set_title("Ranking conversions")

    deciles = np.quantile(truth["ctr"], np.linspace(0, 1, 11))
    group = np.clip(np.searchsorted(deciles, truth["ctr"], side="right") - 1, 0, 9)
    x = np.arange(1, 11)

    def mean_by_decile(values):
        return np.bincount(group, values) / np.bincount(group)

    right.plot(x, mean_by_decile(predictions["truth"]), "k--", label="true pCVR")
    for name, color in COLORS.items():
        right.plot(x, mean_by_decile(predictions[name]), "o-", color=color, label=name)
    right.set_xlabel("decile of the true click probability (1: least likely clicked)")
    right.set_ylabel("mean pCVR")
    right.set_title("Calibration over the entire space")
    right.legend(fontsize=9)
    right.grid(alpha=0.3)
    fig.suptitle(
        f"make_funnel_synthetic: {args.n_samples:,} training impressions, "
        f"{args.max_iter} epochs, seed {args.seed}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_test = max(args.n_samples // 2, 1_000)
    X, Y, truth = make_funnel_synthetic(
        args.n_samples + n_test, return_proba=True, random_state=args.seed
    )
    train, test = slice(0, args.n_samples), slice(args.n_samples, None)
    models = fit_models(X[train], Y[train], args)
    predictions, scores = evaluate(models, X[test], Y[test], truth[test])
    path = out / "funnel_esmm.png"
    plot(predictions, scores, truth[test], args, path)
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
