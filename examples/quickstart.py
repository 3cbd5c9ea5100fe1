"""
Quickstart: two tasks, one model
================================

Fit MMoE and the Shared-Bottom baseline on a 6,000-row sample of UCI
Census-Income (shipped with skmtl) to predict two targets at once, income above
50K and "never married", then print each task's test ROC AUC.

Run it with ``python examples/quickstart.py``.
"""

# %%
# Load the sample: raw strings and numbers, one target column per task.
from skmtl import MMoEClassifierRegressor, SharedBottomEstimator
from skmtl.datasets import load_census_income_sample

sample = load_census_income_sample()
X_train, Y_train = sample.train.data, sample.train.target
X_test, Y_test = sample.test.data, sample.test.target
print(
    f"{len(X_train)} training rows, {X_train.shape[1]} raw columns, tasks: "
    f"{list(Y_train.columns)}"
)

# %%
# Fit both models; the DataFrame goes in as it is.
models = {
    "MMoE": MMoEClassifierRegressor(n_experts=8, max_iter=10, random_state=0),
    "Shared-Bottom": SharedBottomEstimator(max_iter=10, random_state=0),
}
print(f"\n{'model':14s}" + "".join(f"{task:>16s}" for task in Y_train.columns))
for name, model in models.items():
    model.fit(X_train, Y_train)
    scores = model.score_tasks(X_test, Y_test)  # ROC AUC per binary task
    print(f"{name:14s}" + "".join(f"{scores[task]:16.3f}" for task in Y_train.columns))

# %%
# Predictions: one column per task, and one probability array per task.
mmoe = models["MMoE"]
print("\npredict ->", mmoe.predict(X_test.head(3)).tolist())
print(
    "P(income > 50K) ->", mmoe.predict_proba(X_test.head(3))[0][:, 1].round(3).tolist()
)
