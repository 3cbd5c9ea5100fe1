"""Training on the real census-income files reaches the published test AUC.

The README's quality budget (MMoE, 8 experts of 64, towers of 32, embedding
8, batch 1024, Adam 1e-3, 3 epochs; every other setting at its default, as in
``benchmarks/quality.py``) on the 199,523 training rows, scored on the
49,881 test rows. The expected AUCs are those printed by::

    SKMTL_DATA=../shared/data/census-income python -m pytest tests/test_real_data.py -s

CI sets ``SKMTL_DATA``; when it is set the files must be there, so this test
fails rather than skips. Without it, the files are looked for in
``../shared/data/census-income`` and the test skips when they are absent.
"""

import pytest
from conftest import census_home

from skmtl import MMoEClassifierRegressor
from skmtl.datasets import load_census_income

# Seed 0, measured on 2 CPU threads (torch 2.13.0) with the defaults chosen on
# validation (mode-split bins); 1 thread gave 0.9526 / 0.9945 too. Over seeds
# 0-4 the standard deviation is 0.0004 (income) and 0.00004 (never married),
# and thread count or BLAS changes the last digits like a seed does. 0.0015 is
# about four of those deviations, yet below the 0.0017 that seed 0 lost with
# the earlier quantile-only bins (0.9509): losing the bins' gain fails.
PUBLISHED_AUC = {"income_50k": 0.9526, "never_married": 0.9945}
TOLERANCE = 0.0015


@pytest.mark.slow
def test_mmoe_reaches_published_census_auc():
    data = load_census_income(census_home(), split="all")
    est = MMoEClassifierRegressor(
        n_experts=8,
        expert_hidden_sizes=(64,),
        tower_hidden_sizes=(32,),
        embedding_dim=8,
        batch_size=1024,
        learning_rate_init=1e-3,
        max_iter=3,
        device="cpu",
        random_state=0,
    ).fit(data.train.data, data.train.target)
    scores = est.score_tasks(data.test.data, data.test.target)
    print("test AUC:", {task: round(auc, 4) for task, auc in scores.items()})
    for task, expected in PUBLISHED_AUC.items():
        assert scores[task] == pytest.approx(expected, abs=TOLERANCE), task
