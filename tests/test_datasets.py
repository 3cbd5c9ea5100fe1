"""Tests for skmtl.datasets: census loaders, shipped sample, synthetic tasks."""

import doctest
import gzip
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import census_home

from skmtl import datasets
from skmtl.datasets import (
    get_data_home,
    load_census_income,
    load_census_income_sample,
    make_multitask_synthetic,
)

CONTINUOUS = [
    "age", "wage_per_hour", "capital_gains", "capital_losses",
    "stock_dividends", "num_emp", "weeks_worked",
]  # fmt: skip
CODES = ["det_ind_code", "det_occ_code", "own_or_self", "vet_benefits", "year"]
NEVER_FEATURES = {"instance_weight", "income", "income_50k", "never_married"}
# Written out here, independently of the module, so a change there is caught.
COLLEGE = {
    "Some college but no degree",
    "Associates degree-occup /vocational",
    "Associates degree-academic program",
    "Bachelors degree(BA AB BS)",
    "Masters degree(MA MS MEng MEd MSW MBA)",
    "Prof school degree (MD DDS DVM LLB JD)",
    "Doctorate degree(PhD EdD)",
}
SAMPLE_CSV = Path(datasets.__file__).parent / "data" / "census_income_sample.csv.gz"


@pytest.fixture(scope="module")
def real_home():
    return census_home()


@pytest.fixture(scope="module")
def real_all(real_home):
    return load_census_income(real_home, split="all")


@pytest.fixture(scope="module")
def sample():
    return load_census_income_sample()


# --- get_data_home -----------------------------------------------------------


def test_get_data_home_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("SKMTL_DATA", str(tmp_path / "from_env"))
    assert get_data_home(tmp_path / "given") == str(tmp_path / "given")
    assert get_data_home() == str(tmp_path / "from_env")
    monkeypatch.delenv("SKMTL_DATA")
    assert get_data_home() == os.path.join(os.path.expanduser("~"), "skmtl_data")
    assert get_data_home("~/x") == os.path.join(os.path.expanduser("~"), "x")
    assert not (tmp_path / "given").exists()
    assert not (tmp_path / "from_env").exists()


# --- shipped sample ----------------------------------------------------------


def _check_structure(bunch, n_rows, dropped):
    assert set(bunch) >= {
        "frame", "data", "target", "feature_names", "target_names",
        "sample_weight", "DESCR",
    }  # fmt: skip
    assert bunch.data.shape == (n_rows, 41 - 1 - len(dropped))
    assert bunch.target.shape == (n_rows, 2)
    assert list(bunch.data.columns) == bunch.feature_names
    assert list(bunch.target.columns) == bunch.target_names
    assert list(bunch.frame.columns) == bunch.feature_names + bunch.target_names
    assert not NEVER_FEATURES.intersection(bunch.feature_names)
    assert not set(dropped).intersection(bunch.feature_names)
    assert bunch.sample_weight.shape == (n_rows,)
    assert (bunch.sample_weight > 0).all()
    assert bunch.sample_weight.index.equals(bunch.data.index)
    for name in bunch.feature_names:
        expected = np.float64 if name in CONTINUOUS else object
        assert bunch.data[name].dtype == expected, name
    for name in CODES:
        assert isinstance(bunch.data[name].dropna().iloc[0], str), name
    assert set(np.unique(bunch.target.to_numpy())) == {0, 1}
    assert sorted(bunch.categorical_features + bunch.numeric_features) == sorted(
        bunch.feature_names
    )


def test_sample_structure_and_balance(sample):
    assert set(sample) == {"train", "test"}
    _check_structure(sample.train, 4000, ["marital_stat"])
    _check_structure(sample.test, 2000, ["marital_stat"])
    assert sample.train.target_names == ["income_50k", "never_married"]
    # The counts printed by benchmarks/make_census_sample.py.
    assert sample.train.target.sum().to_dict() == {
        "income_50k": 248,
        "never_married": 1734,
    }
    assert sample.test.target.sum().to_dict() == {
        "income_50k": 124,
        "never_married": 865,
    }
    assert sample.train.frame.index.is_unique


def test_sample_matches_raw_file_and_missing_values(sample):
    raw = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False)
    train = raw[raw["source_file"] == "census-income.data"]
    frame = sample.train.frame
    assert frame.index.tolist() == train["source_row"].astype(int).tolist()
    assert frame["income_50k"].tolist() == (train["income"] == "50000+.").tolist()
    is_q = (train["state_prev_res"] == "?").to_numpy()
    assert is_q.any()
    assert np.array_equal(frame["state_prev_res"].isna().to_numpy(), is_q)
    assert not (sample.train.data == "?").any().any()


def test_sample_education_marital(sample):
    edu = load_census_income_sample(tasks="education_marital")
    _check_structure(edu.train, 4000, ["marital_stat", "education"])
    assert edu.train.target_names == ["college_education", "never_married"]
    expected = sample.train.data["education"].isin(COLLEGE).astype(int)
    assert edu.train.target["college_education"].equals(expected)
    assert 0.25 < expected.mean() < 0.40
    assert "at least college" in edu.train.DESCR


def test_sample_as_numpy(sample):
    arrays = load_census_income_sample(as_frame=False)
    assert arrays.train.frame is None
    assert isinstance(arrays.train.data, np.ndarray)
    assert arrays.train.data.dtype == object
    assert arrays.train.target.dtype == np.int64
    assert np.array_equal(arrays.train.target, sample.train.target.to_numpy())
    assert np.array_equal(
        arrays.test.sample_weight, sample.test.sample_weight.to_numpy()
    )


def test_sample_descr_provenance(sample):
    descr = sample.train.DESCR
    for text in ("UCI", "117", "Terran Lane", "Ronny Kohavi", "CC BY 4.0",
                 "make_census_sample.py", "20180819", "4,000", "2,000"):  # fmt: skip
        assert text in descr, text


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tasks": "income"}, "tasks must be one of"),
        ({"split": "valid"}, "split must be one of"),
    ],
)
def test_invalid_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_census_income(tmp_path, **kwargs)


def test_sample_invalid_tasks():
    with pytest.raises(ValueError, match="tasks must be one of"):
        load_census_income_sample(tasks="education")


def test_module_doctests():
    result = doctest.testmod(datasets, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


# --- errors on the real loader, with fake files --------------------------------


def test_missing_file_lists_every_path(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_census_income(tmp_path)
    message = str(info.value)
    for path in (
        tmp_path / "census-income.data.gz",
        tmp_path / "census-income.data",
        tmp_path / "census-income" / "census-income.data.gz",
        tmp_path / "census-income" / "census-income.data",
    ):
        assert str(path) in message
    assert "https://archive.ics.uci.edu/dataset/117/census+income+kdd" in message
    assert "SKMTL_DATA" in message


def _raw_lines(n):
    raw = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False, nrows=n)
    return [", ".join(row) + "\n" for row in raw.iloc[:, :42].to_numpy()]


def test_wrong_row_count(tmp_path):
    with gzip.open(tmp_path / "census-income.data.gz", "wt") as f:
        f.writelines(_raw_lines(3))
    expected = f"{tmp_path / 'census-income.data.gz'} has 3 rows, expected 199,523"
    with pytest.raises(ValueError, match=re.escape(expected)):
        load_census_income(tmp_path)


def test_uncompressed_file_in_subfolder_is_found(tmp_path):
    folder = tmp_path / "census-income"
    folder.mkdir()
    (folder / "census-income.test").write_text("".join(_raw_lines(4)))
    expected = f"{folder / 'census-income.test'} has 4 rows, expected 99,762"
    with pytest.raises(ValueError, match=re.escape(expected)):
        load_census_income(tmp_path, split="test")


# --- real files (skipped when absent) -----------------------------------------


def test_real_shapes_and_balance(real_all):
    train, val, test = real_all.train, real_all.validation, real_all.test
    _check_structure(train, 199_523, ["marital_stat"])
    _check_structure(val, 49_881, ["marital_stat"])
    _check_structure(test, 49_881, ["marital_stat"])
    # Counts in shared/data/census-income/README.md.
    assert train.target.sum().to_dict() == {
        "income_50k": 12_382,
        "never_married": 86_485,
    }
    both = pd.concat([val.target, test.target])
    assert both.sum().to_dict() == {"income_50k": 6_186, "never_married": 43_143}
    assert train.target["income_50k"].mean() == pytest.approx(0.062, abs=0.001)
    assert train.target["never_married"].mean() == pytest.approx(0.43, abs=0.01)
    # Every "?" of the migration columns is in a year-95 row (README).
    assert train.data["mig_chg_msa"].isna().sum() == 99_696
    assert set(train.data["year"].unique()) == {"94", "95"}


def test_real_validation_test_split(real_home, real_all):
    val, test = real_all.validation.frame.index, real_all.test.frame.index
    assert len(val) == len(test)
    assert val.intersection(test).empty
    assert sorted(val.union(test)) == list(range(99_762))
    again = load_census_income(real_home, split="validation")
    assert again.frame.index.equals(val)
    other = load_census_income(real_home, split="test", random_state=1)
    assert not other.frame.index.equals(test)


def test_real_sample_rows_equal_full_rows(real_all, sample):
    full = real_all.train.frame.loc[sample.train.frame.index]
    pd.testing.assert_frame_equal(full, sample.train.frame)
    weight = real_all.train.sample_weight.loc[sample.train.frame.index]
    pd.testing.assert_series_equal(weight, sample.train.sample_weight)


def test_real_education_marital(real_home):
    edu = load_census_income(real_home, tasks="education_marital", as_frame=False)
    assert edu.data.shape == (199_523, 38)
    assert edu.frame is None
    assert edu.target.sum(axis=0).tolist() == [67_003, 86_485]


# --- synthetic tasks -----------------------------------------------------------


def _cosine(a, b):
    return a @ b / (np.linalg.norm(a) * np.linalg.norm(b))


@pytest.mark.parametrize(
    "n_tasks, p",
    [(2, 0.0), (2, 0.5), (2, 1.0), (2, -1.0), (3, 0.3), (4, -1 / 3), (5, 1.0)],
)
def test_synthetic_weight_cosine(n_tasks, p):
    X, Y, W = make_multitask_synthetic(
        50, 10, p, n_tasks=n_tasks, scale=2.0, coef=True, random_state=0
    )
    assert X.shape == (50, 10)
    assert Y.shape == (50, n_tasks)
    assert W.shape == (10, n_tasks)
    assert np.allclose(np.linalg.norm(W, axis=0), 2.0)
    for i in range(n_tasks):
        for j in range(i + 1, n_tasks):
            assert _cosine(W[:, i], W[:, j]) == pytest.approx(p, abs=1e-9)


def test_synthetic_label_correlation_grows_with_p():
    r = {}
    for p in (0.0, 0.5, 1.0):
        _, Y = make_multitask_synthetic(20_000, 20, p, random_state=0)
        r[p] = np.corrcoef(Y.T)[0, 1]
    assert abs(r[0.0]) < 0.05
    assert r[1.0] > 0.99
    assert r[0.0] < r[0.5] - 0.1 < r[1.0] - 0.2


def test_synthetic_is_the_paper_formula():
    # Without sines or noise the labels are exactly X @ W.
    X, Y, W = make_multitask_synthetic(
        100, 8, 0.5, n_sine=0, noise=0.0, coef=True, random_state=0
    )
    assert np.allclose(Y, X @ W)
    # Two tasks: w2 = p w1 + sqrt(1 - p^2) c u2 with u2 a unit vector orthogonal
    # to w1 (c = 1 here).
    u2 = (W[:, 1] - 0.5 * W[:, 0]) / np.sqrt(1 - 0.25)
    assert np.linalg.norm(u2) == pytest.approx(1.0)
    assert u2 @ W[:, 0] == pytest.approx(0.0, abs=1e-12)


def test_synthetic_reproducible_and_frames():
    X1, Y1 = make_multitask_synthetic(30, 5, random_state=3)
    X2, Y2 = make_multitask_synthetic(30, 5, random_state=3)
    X3, _ = make_multitask_synthetic(30, 5, random_state=4)
    assert np.array_equal(X1, X2) and np.array_equal(Y1, Y2)
    assert not np.array_equal(X1, X3)
    Xf, Yf = make_multitask_synthetic(30, 5, n_tasks=3, as_frame=True, random_state=3)
    assert list(Xf.columns) == ["x0", "x1", "x2", "x3", "x4"]
    assert list(Yf.columns) == ["y0", "y1", "y2"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"task_correlation": 1.5}, r"task_correlation must be a number in \[-1, 1\]"),
        ({"task_correlation": -1.01}, "task_correlation must be"),
        ({"task_correlation": -0.6, "n_tasks": 3}, r"in \[-0.5, 1\] for n_tasks=3"),
        ({"task_correlation": "0.5"}, "task_correlation must be"),
        ({"n_tasks": 0}, "n_tasks must be an integer >= 1"),
        ({"n_samples": 0}, "n_samples must be an integer >= 1"),
        ({"n_samples": 10.0}, "n_samples must be an integer"),
        ({"n_features": 2, "n_tasks": 3}, "n_features must be >= n_tasks"),
        ({"scale": -1.0}, "scale must be a number >= 0"),
        ({"noise": -0.1}, "noise must be a number >= 0"),
        ({"n_sine": -1}, "n_sine must be an integer >= 0"),
        ({"n_sine": 2.5}, "n_sine must be an integer"),
    ],
)
def test_synthetic_invalid_arguments(kwargs, match):
    params = {"n_samples": 10, "n_features": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_multitask_synthetic(**params)
