"""
Binary, multiclass and regression tasks in one model
====================================================

A multi-task model does not need its tasks to be of one kind. Here one
:class:`~skmtl.MMoEClassifierRegressor` learns, for a subscription service's
customers,

- ``churned``: will the customer leave? (binary, labels ``"no"``/``"yes"``)
- ``segment``: their value segment (multiclass, ``"bronze"``, ``"silver"``,
  ``"gold"``)
- ``next_spend``: what they will spend next month (regression). A customer who
  churns spends nothing next month *because they are no longer a customer*:
  that row is outside the task's sample space, so its label is NaN and the
  row is left out of that task's loss, while it still trains the other two.

The task types are inferred (``task_types="auto"``). The model sits in a
scikit-learn :class:`~sklearn.pipeline.Pipeline`, the number of experts is
chosen by :class:`~sklearn.model_selection.GridSearchCV` on the regression
task alone (:func:`skmtl.metrics.make_task_scorer`), and the fitted pipeline
is saved with joblib, reloaded and checked to predict exactly the same.
"""

# %%
# Data
# ----

import argparse
from pathlib import Path

import joblib
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from skmtl import MMoEClassifierRegressor
from skmtl.metrics import make_task_scorer


def make_customers(n_samples, random_state=0):
    """Raw customer features and three tasks that depend on them."""
    rng = np.random.RandomState(random_state)
    plan = rng.choice(["basic", "plus", "pro"], n_samples, p=[0.5, 0.3, 0.2])
    region = rng.choice(["north", "south", "east", "west"], n_samples)
    tenure = rng.gamma(2.0, 12.0, n_samples)  # months
    spend = (
        rng.lognormal(3.5, 0.5, n_samples)
        * pd.Series(plan).map({"basic": 1.0, "plus": 1.6, "pro": 2.5}).to_numpy()
    )
    calls = rng.poisson(1.5, n_samples)
    X = pd.DataFrame(
        {
            "plan": plan,
            "region": region,
            "tenure_months": tenure,
            "monthly_spend": spend,
            "support_calls": calls,
        }
    )
    churn_logit = 0.6 * calls - 0.05 * tenure + (region == "south") - 1.0
    churned = rng.uniform(size=n_samples) < 1 / (1 + np.exp(-churn_logit))
    value = np.log(spend) + 0.02 * tenure + rng.normal(0, 0.2, n_samples)
    segment = pd.cut(
        value, np.quantile(value, [0, 0.5, 0.85, 1]),
        labels=["bronze", "silver", "gold"], include_lowest=True,
    ).astype(str)  # fmt: skip
    next_spend = spend * (1.02 + 0.01 * (plan == "pro")) + rng.normal(0, 3, n_samples)
    Y = pd.DataFrame(
        {
            "churned": np.where(churned, "yes", "no"),
            "segment": segment,
            # Churned customers have no next month: outside this task's space.
            "next_spend": np.where(churned, np.nan, next_spend),
        }
    )
    return X, Y


def add_features(X):
    """Stateless feature engineering: spend per month of tenure."""
    X = X.copy()
    X["spend_per_tenure"] = X["monthly_spend"] / (1.0 + X["tenure_months"])
    return X


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Mixed task types in one model.")
    parser.add_argument("--full", action="store_true", help="more rows and epochs")
    parser.add_argument("--n-samples", type=int, default=None)
    parser.add_argument("--max-iter", type=int, default=None, help="epochs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default=".", help="folder for figure and model")
    args = parser.parse_args(argv)
    if args.n_samples is None:
        args.n_samples = 20_000 if args.full else 3_000
    if args.max_iter is None:
        args.max_iter = 30 if args.full else 15
    return args


# %%
# Model selection
# ---------------
# ``make_task_scorer("next_spend")`` rates a candidate by the R² of the
# regression task on its labelled rows only. The scorer calls the estimator's
# ``score_tasks``, which a Pipeline does not have, so the search wraps the
# estimator and the Pipeline wraps the search; the preprocessing step is
# stateless, so fitting it outside the cross-validation leaks nothing.


def build_pipeline(max_iter):
    model = MMoEClassifierRegressor(
        expert_hidden_sizes=(32,),
        tower_hidden_sizes=(16,),
        max_iter=max_iter,
        device="cpu",
        random_state=0,
    )
    search = GridSearchCV(
        model,
        {"n_experts": [2, 4, 8]},
        scoring=make_task_scorer("next_spend"),
        cv=3,
    )
    return Pipeline(
        [("features", FunctionTransformer(add_features)), ("model", search)]
    )


def report(pipe, X_test, Y_test):
    search = pipe.named_steps["model"]
    best = search.best_estimator_
    print("Grid search on next_spend R² (3-fold):")
    for params, mean, std in zip(
        search.cv_results_["params"],
        search.cv_results_["mean_test_score"],
        search.cv_results_["std_test_score"],
    ):
        print(f"  n_experts={params['n_experts']}: {mean:.4f} ± {std:.4f}")
    print(f"Best: {search.best_params_}")
    print(f"Inferred task types: {dict(zip(best.task_names_, best.task_types_))}")
    scores = best.score_tasks(pipe[:-1].transform(X_test), Y_test)
    print("Test scores (ROC AUC, accuracy, R²):")
    for task, score in scores.items():
        print(f"  {task:10s} {score:.4f}")
    return scores


# %%
# Persistence
# -----------
# The whole fitted pipeline pickles with joblib; the network inside is saved
# on the CPU, so the file also loads on a machine without a GPU. Functions
# (here ``add_features``) are pickled by reference: the process that loads
# the file must be able to import them, so keep them in a module, not in the
# script that saves.


def save_and_reload(pipe, X_test, path):
    joblib.dump(pipe, path)
    loaded = joblib.load(path)
    before, after = pipe.predict(X_test), loaded.predict(X_test)
    assert (before == after).all(), "reloaded model predicts differently"
    for p, q in zip(pipe.predict_proba(X_test), loaded.predict_proba(X_test)):
        assert (p is None and q is None) or np.array_equal(p, q)
    print(f"Saved to {path}; the reloaded pipeline predicts identically.")


# %%
# Plot
# ----
# Left: the search's cross-validated R² per number of experts. Middle: the
# regression task's predictions on test customers who stayed. Right: each
# task's training loss per epoch for the refitted best model.


def plot(pipe, X_test, Y_test, path):
    search = pipe.named_steps["model"]
    best = search.best_estimator_
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    n_experts = [p["n_experts"] for p in search.cv_results_["params"]]
    axes[0].errorbar(
        n_experts, search.cv_results_["mean_test_score"],
        yerr=search.cv_results_["std_test_score"], marker="o", capsize=4,
    )  # fmt: skip
    axes[0].set(
        xticks=n_experts,
        xlabel="n_experts", ylabel="next_spend R² (3-fold CV)",
        title="Grid search on one task",
    )  # fmt: skip
    labelled = Y_test["next_spend"].notna().to_numpy()
    column = best.task_names_.index("next_spend")
    predicted = pipe.predict(X_test)[labelled, column].astype(float)
    actual = Y_test["next_spend"].to_numpy()[labelled]
    axes[1].scatter(actual, predicted, s=6, alpha=0.4)
    limits = [min(actual.min(), predicted.min()), max(actual.max(), predicted.max())]
    axes[1].plot(limits, limits, color="black", linewidth=1, label="y = x")
    axes[1].set(
        xlabel="actual next_spend", ylabel="predicted next_spend",
        title=f"Regression task, {labelled.sum()} labelled test rows",
    )  # fmt: skip
    axes[1].legend()
    for task in best.task_names_:
        losses = [record["train_loss_per_task"][task] for record in best.history_]
        axes[2].plot(range(1, len(losses) + 1), losses, label=task)
    axes[2].set(
        xlabel="epoch", ylabel="training loss (labelled rows)", yscale="log",
        title="Per-task training loss of the best model",
    )  # fmt: skip
    axes[2].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    X, Y = make_customers(args.n_samples)
    print(f"{Y['next_spend'].isna().sum()} of {len(Y)} rows have no next_spend label")
    X_train, X_test, Y_train, Y_test = train_test_split(X, Y, random_state=0)
    pipe = build_pipeline(args.max_iter).fit(X_train, Y_train)
    report(pipe, X_test, Y_test)
    save_and_reload(pipe, X_test, out / "mixed_tasks_pipeline.joblib")
    plot(pipe, X_test, Y_test, out / "mixed_tasks.png")
    print(f"Wrote {out / 'mixed_tasks.png'}")


if __name__ == "__main__":
    main()
