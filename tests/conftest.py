"""Shared fixtures: small synthetic data sets with known signal, real files."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

CENSUS_FILES = ("census-income.data", "census-income.test")


def census_home():
    """Return the folder holding the census-income files.

    ``SKMTL_DATA`` names it (CI sets it, so the files must be there: the test
    fails); without it ``../shared/data/census-income`` is tried and the test
    skips when the files are absent.
    """
    env = os.environ.get("SKMTL_DATA")
    home = Path(env) if env else Path(__file__).parents[2] / "shared/data/census-income"
    for folder in (home, home / "census-income"):
        if all(
            (folder / f"{name}.gz").is_file() or (folder / name).is_file()
            for name in CENSUS_FILES
        ):
            return folder
    message = f"census-income files {CENSUS_FILES} (or .gz) not found in {home}"
    if env:
        pytest.fail(f"{message}, although SKMTL_DATA names that folder")
    pytest.skip(f"{message}; set SKMTL_DATA")


def make_two_task_frame(n_samples=1200, random_state=0):
    """Raw mixed columns and two binary tasks that depend on them.

    ``clicked`` depends on a categorical and a numeric column, ``bought`` on
    another numeric column and the same categorical one, so both tasks carry
    signal a model must find in embeddings and dense inputs alike.
    """
    rng = np.random.RandomState(random_state)
    city = rng.choice(["paris", "rome", "oslo", "lima"], n_samples)
    age = rng.normal(40, 12, n_samples)
    income = rng.lognormal(10, 0.5, n_samples)
    noise = rng.choice(["a", "b", "c"], n_samples)
    city_effect = pd.Series(city).map({"paris": 2.0, "rome": -2.0, "oslo": 1.0, "lima": -1.0})
    z1 = city_effect.to_numpy() + (age - 40) / 6 + rng.normal(0, 0.5, n_samples)
    z2 = city_effect.to_numpy() + (np.log(income) - 10) * 4 + rng.normal(0, 0.5, n_samples)
    X = pd.DataFrame({"city": city, "age": age, "income": income, "noise": noise})
    Y = pd.DataFrame({"clicked": (z1 > 0).astype(int), "bought": (z2 > 0).astype(int)})
    return X, Y


@pytest.fixture
def two_task_data():
    X, Y = make_two_task_frame()
    return X.iloc[:900], Y.iloc[:900], X.iloc[900:], Y.iloc[900:]


@pytest.fixture
def mixed_task_data():
    """A binary, a multiclass and a regression task on the same rows."""
    rng = np.random.RandomState(1)
    n = 1200
    X = pd.DataFrame(
        {
            "shop": rng.choice(["s1", "s2", "s3"], n),
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
        }
    )
    score = X.x1 + 2 * (X.shop == "s1")
    Y = pd.DataFrame(
        {
            "converted": np.where(score > 0.5, "yes", "no"),
            "segment": pd.cut(X.x2, [-np.inf, -0.5, 0.5, np.inf], labels=["lo", "mid", "hi"]).astype(str),
            "spend": 3 * X.x1 - 2 * X.x2 + rng.normal(0, 0.1, n),
        }
    )
    return X, Y


@pytest.fixture
def torch_one_thread():
    """Run a test's small models on one torch thread, then restore the count.

    Small networks gain nothing from threads, and on a CPU shared with other
    jobs the threads wait on each other; tests that check thread counts set
    their own.
    """
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
