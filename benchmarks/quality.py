"""Quality bar: per-task test AUC on census-income with the peers' budget.

Census-income group 1 (income > 50K, never married), the test file split 1:1
into validation/test (``skmtl.datasets.load_census_income``), 3 epochs,
embedding 8, 8 experts of 64 units, towers of 32, batch 1024, Adam 1e-3; every
other setting at its default. Prints one JSON line per model and seed, then the
mean and standard deviation.

Usage::

    python benchmarks/quality.py --data ../shared/data/census-income --seeds 0 1 2
"""

import argparse
import json
import time

import numpy as np
import torch

from skmtl import MMoEClassifierRegressor, SharedBottomEstimator
from skmtl.datasets import load_census_income

BUDGET = {
    "embedding_dim": 8,
    "tower_hidden_sizes": (32,),
    "batch_size": 1024,
    "learning_rate_init": 1e-3,
    "max_iter": 3,
    "device": "cpu",
}
MODELS = {
    "mmoe": lambda seed: MMoEClassifierRegressor(
        n_experts=8, expert_hidden_sizes=(64,), random_state=seed, **BUDGET
    ),
    "shared_bottom": lambda seed: SharedBottomEstimator(random_state=seed, **BUDGET),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="census-income folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--models", nargs="+", default=list(MODELS), choices=list(MODELS)
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train = load_census_income(args.data, split="train")
    test = load_census_income(args.data, split="test")
    for name in args.models:
        scores = []
        for seed in args.seeds:
            start = time.perf_counter()
            est = MODELS[name](seed).fit(train.data, train.target)
            fit_seconds = time.perf_counter() - start
            scores.append(est.score_tasks(test.data, test.target))
            print(
                json.dumps(
                    {
                        "model": name,
                        "seed": seed,
                        "fit_s": round(fit_seconds, 1),
                        **{k: round(v, 4) for k, v in scores[-1].items()},
                    }
                )
            )
        for task in scores[0]:
            values = [s[task] for s in scores]
            print(
                f"{name:14s} {task:14s} mean {np.mean(values):.4f} "
                f"std {np.std(values):.4f} over seeds {args.seeds}"
            )


if __name__ == "__main__":
    main()
