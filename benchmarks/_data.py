"""Census-income loading, synthetic scaling data and pandas pre-encoding.

Shared by ``run.py`` (main environment) and ``peers.py`` (run inside the peers'
virtual environment), so it imports only numpy, pandas and torch.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent

# Short names from the table in shared/data/census-income/README.md, file order.
COLUMNS = [
    "age", "class_worker", "det_ind_code", "det_occ_code", "education",
    "wage_per_hour", "hs_college", "marital_stat", "major_ind_code",
    "major_occ_code", "race", "hisp_origin", "sex", "union_member",
    "unemp_reason", "full_or_part_emp", "capital_gains", "capital_losses",
    "stock_dividends", "tax_filer_stat", "region_prev_res", "state_prev_res",
    "det_hh_fam_stat", "det_hh_summ", "instance_weight", "mig_chg_msa",
    "mig_chg_reg", "mig_move_reg", "mig_same", "mig_prev_sunbelt", "num_emp",
    "fam_under_18", "country_father", "country_mother", "country_self",
    "citizenship", "own_or_self", "vet_question", "vet_benefits",
    "weeks_worked", "year", "income",
]  # fmt: skip
CONTINUOUS = [
    "age", "wage_per_hour", "capital_gains", "capital_losses",
    "stock_dividends", "num_emp", "weeks_worked",
]  # fmt: skip
# instance_weight is a sampling weight, marital_stat and income become labels.
DROPPED = ["instance_weight", "marital_stat", "income"]
CATEGORICAL = [c for c in COLUMNS if c not in CONTINUOUS and c not in DROPPED]
LABELS = ["income_50k", "never_married"]

# Distinct values per categorical column in census-income.data (README table;
# the migration columns counted from the file), used by the synthetic generator.
CARDINALITIES = {
    "class_worker": 9, "det_ind_code": 52, "det_occ_code": 47, "education": 17,
    "hs_college": 3, "major_ind_code": 24, "major_occ_code": 15, "race": 5,
    "hisp_origin": 10, "sex": 2, "union_member": 3, "unemp_reason": 6,
    "full_or_part_emp": 8, "tax_filer_stat": 6, "region_prev_res": 6,
    "state_prev_res": 51, "det_hh_fam_stat": 38, "det_hh_summ": 8,
    "mig_chg_msa": 10, "mig_chg_reg": 9, "mig_move_reg": 10, "mig_same": 3,
    "mig_prev_sunbelt": 4, "fam_under_18": 5, "country_father": 43,
    "country_mother": 43, "country_self": 43, "citizenship": 5,
    "own_or_self": 3, "vet_question": 3, "vet_benefits": 3, "year": 2,
}  # fmt: skip


def default_data_dir():
    """Return the census-income folder: ``$SKMTL_DATA`` or ``../shared/...``.

    Returns
    -------
    path : pathlib.Path
        Folder expected to hold ``census-income.data.gz`` and ``.test.gz``.
    """
    env = os.environ.get("SKMTL_DATA")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "data" / "census-income"


def census_file(data_dir, split):
    """Return the path of one census split, gzipped or not.

    Parameters
    ----------
    data_dir : str or pathlib.Path
        Folder holding the UCI files.
    split : {"data", "test"}
        ``"data"`` is the training file, ``"test"`` the test file.

    Returns
    -------
    path : pathlib.Path or None
        The file, or None when neither form exists.
    """
    for suffix in (".gz", ""):
        path = Path(data_dir) / f"census-income.{split}{suffix}"
        if path.exists():
            return path
    return None


def load_census(data_dir=None, split="data", nrows=None):
    """Read one census-income file into raw features and two 0/1 labels.

    Parameters
    ----------
    data_dir : str or pathlib.Path, default=None
        Folder holding the files; None means :func:`default_data_dir`.
    split : {"data", "test"}, default="data"
        Which file to read.
    nrows : int, default=None
        Read only the first ``nrows`` lines (for quick runs).

    Returns
    -------
    X : pandas.DataFrame of shape (n_samples, 39)
        Strings for the 32 categorical columns (NaN where the file has ``?``),
        float64 for the 7 continuous ones.
    Y : pandas.DataFrame of shape (n_samples, 2)
        ``income_50k`` and ``never_married`` as int8 0/1.
    """
    data_dir = default_data_dir() if data_dir is None else data_dir
    path = census_file(data_dir, split)
    if path is None:
        raise FileNotFoundError(f"no census-income.{split}[.gz] in {data_dir}")
    # The integer-coded nominal columns (det_ind_code, year ...) are read as
    # strings too: they are categories, and skmtl will receive them that way.
    dtypes = {c: ("float64" if c in CONTINUOUS else "str") for c in COLUMNS}
    raw = pd.read_csv(
        path,
        header=None,
        names=COLUMNS,
        dtype=dtypes,
        sep=",",
        skipinitialspace=True,  # fields are separated by ", "
        na_values=["?"],
        keep_default_na=False,
        nrows=nrows,
    )
    Y = pd.DataFrame(
        {
            "income_50k": (raw["income"] == "50000+.").astype("int8"),
            "never_married": (raw["marital_stat"] == "Never married").astype("int8"),
        }
    )
    return raw.drop(columns=DROPPED), Y


def resample_census(X, Y, n_rows, seed=0):
    """Draw ``n_rows`` census rows with replacement (vectorised).

    Parameters
    ----------
    X : pandas.DataFrame of shape (n_samples, n_features)
        Raw features.
    Y : pandas.DataFrame of shape (n_samples, n_tasks)
        Labels.
    n_rows : int
        Rows wanted (may exceed ``n_samples``).
    seed : int, default=0
        Seed of the row draw.

    Returns
    -------
    X_big : pandas.DataFrame of shape (n_rows, n_features)
    Y_big : pandas.DataFrame of shape (n_rows, n_tasks)
    """
    idx = np.random.default_rng(seed).integers(0, len(X), size=n_rows)
    X_big = X.take(idx).reset_index(drop=True)
    return X_big, Y.take(idx).reset_index(drop=True)


def synthetic_census(n_rows, seed=0):
    """Make a census-like raw DataFrame without the data files.

    Categorical columns get string values with the census cardinalities and a
    skewed (Zipf-like) frequency, continuous columns census-like ranges; the
    labels depend on a few columns so a model has signal to learn.

    Parameters
    ----------
    n_rows : int
        Number of rows.
    seed : int, default=0
        Seed of every draw.

    Returns
    -------
    X : pandas.DataFrame of shape (n_rows, 39)
    Y : pandas.DataFrame of shape (n_rows, 2)
    """
    rng = np.random.default_rng(seed)
    cols = {}
    for name in COLUMNS:
        if name in DROPPED:
            continue
        if name in CONTINUOUS:
            cols[name] = _synthetic_numeric(name, n_rows, rng)
        else:
            k = CARDINALITIES[name]
            p = 1.0 / np.arange(1, k + 1)
            codes = rng.choice(k, size=n_rows, p=p / p.sum())
            # Fancy-indexing an object array is the fast way to make strings.
            values = np.array([f"{name}_{j}" for j in range(k)], dtype=object)
            cols[name] = pd.array(values[codes], dtype="str")
    X = pd.DataFrame(cols)
    score = X["age"].to_numpy() / 30 + (cols["sex"] == "sex_0").astype(float)
    never = rng.random(n_rows) < 1 / (1 + np.exp(score - 1.5))
    income = rng.random(n_rows) < 0.15 * (score > 2)
    Y = pd.DataFrame({"income_50k": income, "never_married": never}).astype("int8")
    return X, Y


def _synthetic_numeric(name, n_rows, rng):
    if name == "age":
        return rng.integers(0, 91, size=n_rows).astype("float64")
    if name == "weeks_worked":
        return rng.integers(0, 53, size=n_rows).astype("float64")
    if name == "num_emp":
        return rng.integers(0, 7, size=n_rows).astype("float64")
    # Money columns are mostly zero with a heavy tail, as in the census.
    heavy = rng.lognormal(6.0, 1.5, size=n_rows)
    return np.where(rng.random(n_rows) < 0.9, 0.0, heavy)


N_BINS = 32  # quantile bins per numeric column, as FeatureEncoder(n_bins=32)


@dataclass
class Encoded:
    """Pre-encoded tensors, the input of the bare reference and the peers.

    The code layout is FeatureEncoder's, so the networks have the same tables:
    a categorical column's code 0 is unknown, ``1..K`` its known values and
    ``K + 1`` missing; each numeric column adds a bin column with codes
    ``1..len(edges) + 1`` by range and ``len(edges) + 2`` for missing.

    Attributes
    ----------
    codes : torch.Tensor of shape (n_samples, n_categorical + n_continuous), int64
        Category codes, then bin codes.
    dense : torch.Tensor of shape (n_samples, n_continuous), float32
        Median-imputed, standardised continuous columns.
    y : torch.Tensor of shape (n_samples, n_tasks), float32
        0/1 labels.
    cardinalities : list of int
        Table size per code column.
    columns : list of str
        Name per code column: :data:`CATEGORICAL`, then ``"<col>_bin"``.
    """

    codes: torch.Tensor
    dense: torch.Tensor
    y: torch.Tensor
    cardinalities: list
    columns: list


def _bin_edges(observed, n_bins):
    """FeatureEncoder's inner edges: quantiles, or a frequent value alone in a bin."""
    values, counts = np.unique(observed, return_counts=True)
    if counts.max() * n_bins <= observed.size or values.size == 1:
        return np.unique(np.quantile(observed, np.linspace(0, 1, n_bins + 1)[1:-1]))
    mode = values[counts.argmax()]
    cuts = np.quantile(observed[observed != mode], np.linspace(0, 1, n_bins)[1:-1])
    return np.unique(np.r_[cuts, mode, np.nextafter(mode, np.inf)])


def fit_pre_encoder(X, n_bins=N_BINS):
    """Learn the pandas pre-encoding: categories, bin edges, medians, scales.

    Parameters
    ----------
    X : pandas.DataFrame of shape (n_samples, n_features)
        Raw training features.
    n_bins : int, default=N_BINS
        Quantile bins per continuous column (inner edges deduplicated; a value
        covering more than ``1 / n_bins`` of the column gets a bin of its own).

    Returns
    -------
    state : dict
        ``categories`` (column -> Index of seen values), ``edges`` (inner
        quantile edges per continuous column), ``median``, ``mean`` and
        ``std`` (float64 arrays over :data:`CONTINUOUS`).
    """
    categories = {c: pd.Index(X[c].dropna().unique()) for c in CATEGORICAL}
    num = X[CONTINUOUS].to_numpy(dtype="float64")
    edges = [_bin_edges(col[~np.isnan(col)], n_bins) for col in num.T]
    median = np.nanmedian(num, axis=0)
    filled = np.where(np.isnan(num), median, num)
    std = filled.std(axis=0)
    # A constant column would divide by zero; scale it by 1 instead.
    std[std == 0] = 1.0
    return {
        "categories": categories,
        "edges": edges,
        "median": median,
        "mean": filled.mean(0),
        "std": std,
    }


def pre_encode(X, Y, state):
    """Apply a fitted pre-encoding and return torch tensors.

    Parameters
    ----------
    X : pandas.DataFrame of shape (n_samples, n_features)
        Raw features.
    Y : pandas.DataFrame of shape (n_samples, n_tasks)
        0/1 labels.
    state : dict
        Output of :func:`fit_pre_encoder`.

    Returns
    -------
    encoded : Encoded
        Codes, dense features, labels and cardinalities.
    """
    n_cat = len(CATEGORICAL)
    codes = np.empty((len(X), n_cat + len(CONTINUOUS)), dtype=np.int64)
    cards = []
    for j, col in enumerate(CATEGORICAL):
        known = state["categories"][col]
        # get_indexer gives -1 for unseen values and NaN; +1 makes that code 0.
        codes[:, j] = known.get_indexer(X[col]) + 1
        codes[X[col].isna().to_numpy(), j] = len(known) + 1
        cards.append(len(known) + 2)
    num = X[CONTINUOUS].to_numpy(dtype="float64")
    missing = np.isnan(num)
    for j, edges in enumerate(state["edges"]):
        binned = np.searchsorted(edges, num[:, j], side="right") + 1
        codes[:, n_cat + j] = np.where(missing[:, j], len(edges) + 2, binned)
        cards.append(len(edges) + 3)
    num = np.where(missing, state["median"], num)
    dense = ((num - state["mean"]) / state["std"]).astype(np.float32)
    # torch.tensor copies: the pandas buffer may be read-only.
    y = torch.tensor(Y.to_numpy(dtype=np.float32))
    columns = CATEGORICAL + [f"{c}_bin" for c in CONTINUOUS]
    return Encoded(torch.from_numpy(codes), torch.from_numpy(dense), y, cards, columns)


def load_dataset(data_dir=None, nrows=None, rows=None, synthetic=False, seed=0):
    """Return the raw training frame a benchmark run uses.

    Parameters
    ----------
    data_dir : str or pathlib.Path, default=None
        Census folder; None means :func:`default_data_dir`.
    nrows : int, default=None
        Read only the first ``nrows`` lines of the training file.
    rows : int, default=None
        Scale to this many rows: resample census rows with replacement, or
        synthesise them when ``synthetic`` is true or the files are absent.
    synthetic : bool, default=False
        Never read the files.
    seed : int, default=0
        Seed of resampling or synthesis.

    Returns
    -------
    X : pandas.DataFrame of shape (n_rows, 39)
    Y : pandas.DataFrame of shape (n_rows, 2)
    source : str
        Where the rows came from, for the results file.
    """
    data_dir = default_data_dir() if data_dir is None else Path(data_dir)
    have_files = census_file(data_dir, "data") is not None
    if synthetic or not have_files:
        n = rows or nrows or 199_523
        return (*synthetic_census(n, seed), f"synthetic({n})")
    X, Y = load_census(data_dir, "data", nrows=nrows)
    if rows is None:
        return X, Y, f"census-income.data[:{len(X)}]"
    return (*resample_census(X, Y, rows, seed), f"census resampled({rows})")
