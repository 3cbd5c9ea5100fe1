"""Multi-task datasets: Census-Income (KDD), Ali-CCP and synthetic generators.

The census loaders follow the two multi-task setups of the MMoE paper [1]_ on the
UCI Census-Income (KDD) data [3]_; ``make_multitask_synthetic`` implements the
paper's synthetic regression tasks of controlled relatedness.
``load_ali_ccp`` reads the click-and-conversion data of the ESMM paper [4]_;
``make_funnel_synthetic`` and ``make_multidomain_synthetic`` generate a
click-purchase funnel and several domains with known probabilities.

References
----------
.. [1] J. Ma, Z. Zhao, X. Yi, J. Chen, L. Hong and E. H. Chi. "Modeling Task
   Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts".
   KDD 2018. https://doi.org/10.1145/3219819.3220007
.. [2] H. Tang, J. Liu, M. Zhao and X. Gong. "Progressive Layered Extraction
   (PLE): A Novel Multi-Task Learning (MTL) Model for Personalized
   Recommendations". RecSys 2020. https://doi.org/10.1145/3383313.3412236
.. [3] T. Lane and R. Kohavi. "Census-Income (KDD)". UCI Machine Learning
   Repository, dataset 117. https://doi.org/10.24432/C5N30T
.. [4] X. Ma, L. Zhao, G. Huang, Z. Wang, Z. Hu, X. Zhu and K. Gai. "Entire
   Space Multi-Task Model: An Effective Approach for Estimating Post-Click
   Conversion Rate". SIGIR 2018. https://doi.org/10.1145/3209978.3210104
"""

import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch, check_random_state

from skmtl._validation import format_names

__all__ = [
    "get_data_home",
    "load_ali_ccp",
    "load_census_income",
    "load_census_income_sample",
    "make_funnel_synthetic",
    "make_multidomain_synthetic",
    "make_multitask_synthetic",
]

CENSUS_URL = "https://archive.ics.uci.edu/dataset/117/census+income+kdd"

# Short names (shared/data/census-income/README.md, after keras-mmoe), in file
# order. Column 41 is the class label, kept raw as ``income``.
_COLUMNS = (
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
)  # fmt: skip
# The attributes ``census-income.names`` calls continuous (the instance weight
# is continuous too but is never a feature). Every other column is a nominal
# code, including the integer-coded ones (det_ind_code, year, ...).
_CONTINUOUS = (
    "age", "wage_per_hour", "capital_gains", "capital_losses",
    "stock_dividends", "num_emp", "weeks_worked",
)  # fmt: skip
_WEIGHT = "instance_weight"
_LABEL = "income"
_INCOME_POSITIVE = "50000+."
_INCOME_VALUES = frozenset({"- 50000.", _INCOME_POSITIVE})
_NEVER_MARRIED = "Never married"
# "At least college": any college attendance, with or without a degree.
COLLEGE_EDUCATION = (
    "Some college but no degree",
    "Associates degree-occup /vocational",
    "Associates degree-academic program",
    "Bachelors degree(BA AB BS)",
    "Masters degree(MA MS MEng MEd MSW MBA)",
    "Prof school degree (MD DDS DVM LLB JD)",
    "Doctorate degree(PhD EdD)",
)
# Whole-file dtypes: object keeps ``?`` -> NaN and behaves alike under pandas 2
# and 3 (where the default string dtype would be ``str``).
_RAW_DTYPES = {
    name: (float if name in _CONTINUOUS or name == _WEIGHT else object)
    for name in _COLUMNS
}
_FILES = {"train": "census-income.data", "test": "census-income.test"}
_EXPECTED_ROWS = {"census-income.data": 199_523, "census-income.test": 99_762}
_SPLITS = ("train", "validation", "test", "all")
_SAMPLE_DIR = Path(__file__).resolve().parent / "data"
_SAMPLE_CSV = "census_income_sample.csv.gz"
_SAMPLE_RST = "census_income_sample.rst"


def _income_50k(raw):
    return (raw[_LABEL] == _INCOME_POSITIVE).astype(np.int64)


def _never_married(raw):
    return (raw["marital_stat"] == _NEVER_MARRIED).astype(np.int64)


def _college(raw):
    return raw["education"].isin(COLLEGE_EDUCATION).astype(np.int64)


# tasks -> (targets in order, source columns removed from the features). The raw
# income label is never a feature: it is not one of the 40 census attributes.
_TASKS = {
    "income_marital": (
        {"income_50k": _income_50k, "never_married": _never_married},
        ("marital_stat",),
    ),
    "education_marital": (
        {"college_education": _college, "never_married": _never_married},
        ("education", "marital_stat"),
    ),
}

_TASK_TEXT = {
    "income_marital": """\
Tasks ("income_marital", MMoE group 1 [1]; the census setup of PLE [2]):

- income_50k: 1 if the income label is ``50000+.`` (6.2 % positive).
- never_married: 1 if marital_stat is ``Never married`` (43 % positive).

marital_stat is removed from the features, leaving 39.""",
    "education_marital": """\
Tasks ("education_marital", MMoE group 2 [1]):

- college_education: 1 if education is "at least college", taken here as any
  college attendance: Some college but no degree, both Associates degrees,
  Bachelors, Masters, Prof school and Doctorate degrees (33.6 % positive in
  the training file).
- never_married: 1 if marital_stat is ``Never married`` (43 % positive).

education and marital_stat are removed from the features, leaving 38.""",
}

_DESCR = """\
.. _census_income_dataset:

Census-Income (KDD) dataset
---------------------------

Weighted census records from the 1994 and 1995 Current Population Surveys of
the U.S. Census Bureau: 40 attributes (7 continuous, 33 nominal) and an income
label, with 199,523 training rows (census-income.data) and 99,762 test rows
(census-income.test). Values ``?`` are missing (NaN).

{tasks}

The income label is never a feature. The survey's instance weight is returned
as ``sample_weight``; ``census-income.names`` says it should not be used as an
input. Nominal columns are strings (object dtype), including the integer-coded
det_ind_code, det_occ_code, own_or_self, vet_benefits and year; the 7
continuous attributes are float64.

Splits: "train" is census-income.data; census-income.test is split 1:1 at
random (``random_state``) into "validation" and "test", as in [1].

Source: UCI Machine Learning Repository, dataset 117, Census-Income (KDD),
{url}. Donors: Terran Lane and Ronny Kohavi, Data Mining and Visualization,
Silicon Graphics. Licence: CC BY 4.0, as stated by UCI.

References

[1] J. Ma, Z. Zhao, X. Yi, J. Chen, L. Hong and E. H. Chi. Modeling Task
    Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts.
    KDD 2018, section 6.3.
[2] H. Tang, J. Liu, M. Zhao and X. Gong. Progressive Layered Extraction
    (PLE): A Novel Multi-Task Learning (MTL) Model for Personalized
    Recommendations. RecSys 2020, section 5.2.
[3] D. Dua and C. Graff. UCI Machine Learning Repository, 2017. University
    of California, Irvine, School of Information and Computer Sciences.
"""


def get_data_home(data_home=None):
    """Return the folder where skmtl looks for downloaded data sets.

    The folder is, in order of precedence, ``data_home``, the environment
    variable ``SKMTL_DATA`` or ``~/skmtl_data``. A leading ``~`` is expanded.
    Nothing is created on disk.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder to use. ``None`` falls back to ``SKMTL_DATA``, then to
        ``~/skmtl_data``.

    Returns
    -------
    str
        The path of the data folder, which may not exist.

    See Also
    --------
    load_census_income : Reads its files from this folder.

    Examples
    --------
    >>> from skmtl.datasets import get_data_home
    >>> get_data_home("/tmp/my_data")
    '/tmp/my_data'
    """
    if data_home is None:
        data_home = os.environ.get("SKMTL_DATA", os.path.join("~", "skmtl_data"))
    return os.path.expanduser(os.fspath(data_home))


def _find_file(data_home, name):
    """Return the first existing candidate path of ``name`` in ``data_home``."""
    home = Path(data_home)
    candidates = [
        folder / f"{name}{suffix}"
        for folder in (home, home / "census-income")
        for suffix in (".gz", "")
    ]
    for path in candidates:
        if path.is_file():
            return path
    looked = "\n".join(f"  {p}" for p in candidates)
    raise FileNotFoundError(
        f"Census-Income (KDD) file {name!r} not found. Looked in:\n{looked}\n"
        f"Download census-income.data.gz and census-income.test.gz from the UCI "
        f"Machine Learning Repository (dataset 117, {CENSUS_URL}) into "
        f"{data_home!s}, or pass data_home= or set the SKMTL_DATA environment "
        f"variable to the folder holding them."
    )


def _read_csv(source, *, header):
    """Read census rows, raw or with a header, keeping ``?`` as the only NaN."""
    return pd.read_csv(
        source,
        header=header,
        names=list(_COLUMNS) if header is None else None,
        skipinitialspace=True,
        na_values=["?"],
        # Only "?" marks a missing value; pandas' default NA strings do not.
        keep_default_na=False,
        dtype=_RAW_DTYPES,
    )


def _check_labels(raw, where):
    bad = set(raw[_LABEL].dropna().unique()) - _INCOME_VALUES
    if bad or raw[_LABEL].isna().any():
        shown = ", ".join(sorted(repr(b) for b in bad)[:5]) or "missing values"
        raise ValueError(
            f"{where} is not in the Census-Income (KDD) format: its last column "
            f"(the income label) should hold only '- 50000.' or '50000+.', "
            f"got {shown}. Is it the 42-column UCI file?"
        )


def _read_census_file(path):
    """Read one UCI file and check its row count and label column."""
    raw = _read_csv(path, header=None)
    expected = _EXPECTED_ROWS[path.name.removesuffix(".gz")]
    if len(raw) != expected:
        raise ValueError(
            f"{path} has {len(raw):,} rows, expected {expected:,} for the UCI "
            f"Census-Income (KDD) file. The file may be truncated or not the "
            f"original; download it again from {CENSUS_URL}."
        )
    _check_labels(raw, str(path))
    return raw


def _check_tasks(tasks):
    if tasks not in _TASKS:
        raise ValueError(f"tasks must be one of {sorted(_TASKS)}, got {tasks!r}.")


def _make_bunch(raw, tasks, as_frame, descr):
    """Turn raw census rows into a Bunch for one task setup (shared parser)."""
    makers, dropped = _TASKS[tasks]
    removed = set(dropped) | {_WEIGHT, _LABEL}
    feature_names = [c for c in _COLUMNS if c not in removed]
    data = raw[feature_names]
    target = pd.DataFrame(
        {name: make(raw) for name, make in makers.items()}, index=raw.index
    )
    weight = raw[_WEIGHT].rename("sample_weight")
    bunch = Bunch(
        feature_names=feature_names,
        target_names=list(makers),
        categorical_features=[c for c in feature_names if c not in _CONTINUOUS],
        numeric_features=[c for c in feature_names if c in _CONTINUOUS],
        DESCR=descr,
    )
    if as_frame:
        bunch.update(
            frame=pd.concat([data, target], axis=1),
            data=data,
            target=target,
            sample_weight=weight,
        )
    else:
        bunch.update(
            frame=None,
            data=data.to_numpy(dtype=object),
            target=target.to_numpy(),
            sample_weight=weight.to_numpy(),
        )
    return bunch


def _halves(n_rows, random_state):
    """Split row positions 1:1 at random; each half keeps file order."""
    order = check_random_state(random_state).permutation(n_rows)
    half = n_rows // 2
    return np.sort(order[:half]), np.sort(order[half:])


def load_census_income(
    data_home=None,
    *,
    tasks="income_marital",
    as_frame=True,
    split="train",
    random_state=0,
):
    """Load the UCI Census-Income (KDD) data as a two-task problem.

    Reads ``census-income.data.gz`` and ``census-income.test.gz`` (or the
    uncompressed ``census-income.data`` and ``census-income.test``) from
    ``data_home`` or its ``census-income`` subfolder. Nothing is downloaded:
    get the files from the UCI repository, dataset 117
    (https://archive.ics.uci.edu/dataset/117/census+income+kdd).

    ================  ==================================================
    Rows              199,523 train; 99,762 test (49,881 validation and
                      49,881 test)
    Features          39 ("income_marital") or 38 ("education_marital")
    Targets           2 binary tasks
    Missing values    ``?`` in 8 nominal columns, as NaN
    ================  ==================================================

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding the files; see :func:`get_data_home`.
    tasks : {"income_marital", "education_marital"}, default="income_marital"
        The task setup of the MMoE paper [1]_.

        - "income_marital" (MMoE group 1, and the census setup of PLE [2]_):
          ``income_50k`` is 1 for income label ``50000+.``, ``never_married``
          is 1 for marital_stat ``Never married``; marital_stat is removed
          from the features.
        - "education_marital" (MMoE group 2): ``college_education`` is 1 when
          education is at least college, taken as any college attendance
          (the values in ``skmtl.datasets.COLLEGE_EDUCATION``: some college
          without degree, both Associates degrees, Bachelors, Masters, Prof
          school and Doctorate); ``never_married`` as above. education and
          marital_stat are removed from the features.

        The income label and the instance weight are never features.
    as_frame : bool, default=True
        If True, ``data`` and ``target`` are DataFrames and ``frame`` joins
        them. If False, ``data`` is an object ndarray, ``target`` an int64
        ndarray and ``frame`` is None.
    split : {"train", "validation", "test", "all"}, default="train"
        "train" is ``census-income.data``. "validation" and "test" are two
        disjoint random halves of ``census-income.test`` that together cover
        it, as in [1]_. "all" returns a Bunch holding the three.
    random_state : int, RandomState instance or None, default=0
        Seed of the validation/test split. Ignored for ``split="train"``.
        Pass the same int to separate calls for "validation" and "test" so
        that they are disjoint; ``split="all"`` draws the split once.

    Returns
    -------
    :class:`~sklearn.utils.Bunch`
        For ``split="all"``, a Bunch with keys "train", "validation" and
        "test", each a dataset Bunch. A dataset Bunch has:

        data : DataFrame or ndarray of shape (n_samples, n_features)
            The features. Nominal columns hold strings (object dtype, NaN
            where missing), including the integer codes det_ind_code,
            det_occ_code, own_or_self, vet_benefits and year; the 7
            continuous columns are float64.
        target : DataFrame or ndarray of shape (n_samples, 2)
            The binary labels, int64, columns in ``target_names``.
        frame : DataFrame of shape (n_samples, n_features + 2) or None
            ``data`` and ``target`` side by side. Its index is the row
            number in the source file.
        sample_weight : Series or ndarray of shape (n_samples,)
            The survey's instance weight (float64).
        feature_names : list of str
            Names of the feature columns.
        target_names : list of str
            Names of the tasks.
        categorical_features : list of str
            The nominal feature columns.
        numeric_features : list of str
            The continuous feature columns.
        DESCR : str
            Description of the data, its source and the task setup.

    Raises
    ------
    FileNotFoundError
        If a file is missing; the message lists every path tried.
    ValueError
        If a file does not have the published number of rows or its last
        column is not the income label.

    See Also
    --------
    load_census_income_sample : A 6,000-row sample shipped with skmtl.

    References
    ----------
    .. [1] J. Ma et al. "Modeling Task Relationships in Multi-task Learning
       with Multi-gate Mixture-of-Experts". KDD 2018.
    .. [2] H. Tang et al. "Progressive Layered Extraction (PLE)". RecSys 2020.

    Examples
    --------
    The full files are not shipped; the same structure on the shipped sample:

    >>> from skmtl.datasets import load_census_income_sample
    >>> train = load_census_income_sample().train
    >>> train.target_names
    ['income_50k', 'never_married']

    With the files in ``~/skmtl_data``, ``load_census_income(split="all")``
    returns the train, validation and test Bunches.
    """
    _check_tasks(tasks)
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {list(_SPLITS)}, got {split!r}.")
    data_home = get_data_home(data_home)
    descr = _DESCR.format(tasks=_TASK_TEXT[tasks], url=CENSUS_URL)
    parts = {}
    if split in ("train", "all"):
        raw = _read_census_file(_find_file(data_home, _FILES["train"]))
        parts["train"] = _make_bunch(raw, tasks, as_frame, descr)
    if split != "train":
        raw = _read_census_file(_find_file(data_home, _FILES["test"]))
        validation, test = _halves(len(raw), random_state)
        for name, rows in (("validation", validation), ("test", test)):
            if split in (name, "all"):
                parts[name] = _make_bunch(raw.iloc[rows], tasks, as_frame, descr)
    return Bunch(**parts) if split == "all" else parts[split]


def load_census_income_sample(*, tasks="income_marital", as_frame=True):
    """Load the small Census-Income (KDD) sample shipped with skmtl.

    4,000 rows drawn from ``census-income.data`` and 2,000 from
    ``census-income.test``, stratified on the two labels of
    "income_marital", for examples and quick starts. See
    ``skmtl/data/census_income_sample.rst`` (also in ``DESCR``) for how it
    was made: ``benchmarks/make_census_sample.py``.

    Parameters
    ----------
    tasks : {"income_marital", "education_marital"}, default="income_marital"
        The task setup; see :func:`load_census_income`.
    as_frame : bool, default=True
        If True, ``data`` and ``target`` are DataFrames; if False, ndarrays.

    Returns
    -------
    :class:`~sklearn.utils.Bunch`
        Keys "train" and "test", each a dataset Bunch with the keys described
        in :func:`load_census_income`. The index of ``frame`` is the row
        number in the source UCI file.

    See Also
    --------
    load_census_income : The full data set.

    Examples
    --------
    >>> from skmtl.datasets import load_census_income_sample
    >>> sample = load_census_income_sample()
    >>> sample.train.data.shape, sample.test.target.shape
    ((4000, 39), (2000, 2))
    >>> sample.train.target.columns.tolist()
    ['income_50k', 'never_married']
    """
    _check_tasks(tasks)
    raw = _read_csv(_SAMPLE_DIR / _SAMPLE_CSV, header=0)
    _check_labels(raw, _SAMPLE_CSV)
    provenance = (_SAMPLE_DIR / _SAMPLE_RST).read_text(encoding="utf-8")
    descr = provenance + "\n" + _TASK_TEXT[tasks] + "\n"
    parts = {}
    for split in ("train", "test"):
        rows = raw[raw["source_file"] == _FILES[split]]
        rows = rows.set_index(rows["source_row"].astype(np.int64).rename(None))
        parts[split] = _make_bunch(rows, tasks, as_frame, descr)
    return Bunch(**parts)


def _check_integers(**lows):
    """Check integer arguments: name -> (value, smallest allowed)."""
    for name, (value, low) in lows.items():
        if not isinstance(value, Integral) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")


def _check_synthetic_params(
    n_samples, n_features, n_tasks, task_correlation, scale, noise, n_sine
):
    _check_integers(
        n_samples=(n_samples, 1),
        n_tasks=(n_tasks, 1),
        n_features=(n_features, 1),
        n_sine=(n_sine, 0),
    )
    if n_features < n_tasks:
        raise ValueError(
            f"n_features must be >= n_tasks, since each task needs its own "
            f"orthogonal direction; got n_features={n_features} and "
            f"n_tasks={n_tasks}."
        )
    # n_tasks unit vectors with equal pairwise cosine p exist iff their Gram
    # matrix (1 - p) I + p 11^T is positive semi-definite: p >= -1/(n_tasks-1).
    low = -1.0 if n_tasks <= 2 else -1.0 / (n_tasks - 1)
    if not isinstance(task_correlation, Real) or not (low <= task_correlation <= 1.0):
        raise ValueError(
            f"task_correlation must be a number in [{low:g}, 1] for "
            f"n_tasks={n_tasks}, got {task_correlation!r}."
        )
    for name, value in (("scale", scale), ("noise", noise)):
        if not isinstance(value, Real) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}.")


def _psd_cholesky(gram):
    """Lower-triangular L with L @ L.T == gram, for a PSD (maybe singular) gram."""
    k = gram.shape[0]
    lower = np.zeros_like(gram)
    for j in range(k):
        diag = gram[j, j] - lower[j, :j] @ lower[j, :j]
        lower[j, j] = np.sqrt(max(diag, 0.0))
        # A zero pivot (p = 1, or p = -1/(k-1)) leaves its column at zero.
        if lower[j, j] > 1e-12:
            rest = gram[j + 1 :, j] - lower[j + 1 :, :j] @ lower[j, :j]
            lower[j + 1 :, j] = rest / lower[j, j]
    return lower


def _task_weights(n_features, n_tasks, task_correlation, scale, rng):
    """Weights of shape (n_features, n_tasks), pairwise cosine task_correlation."""
    # n_tasks random orthonormal directions u_1..u_k (QR of a Gaussian matrix)
    basis, _ = np.linalg.qr(rng.standard_normal((n_features, n_tasks)))
    gram = np.full((n_tasks, n_tasks), float(task_correlation))
    np.fill_diagonal(gram, 1.0)
    # w_i = c * sum_j L_ij u_j. For two tasks L = [[1, 0], [p, sqrt(1 - p^2)]],
    # which is exactly the paper's w1 = c u1, w2 = c (p u1 + sqrt(1 - p^2) u2).
    return scale * basis @ _psd_cholesky(gram).T


def make_multitask_synthetic(
    n_samples=10000,
    n_features=100,
    task_correlation=0.5,
    *,
    n_tasks=2,
    scale=1.0,
    noise=0.01,
    n_sine=10,
    coef=False,
    as_frame=False,
    random_state=None,
):
    """Generate regression tasks of controlled relatedness (MMoE synthetic data).

    The generator of section 4.1 of the MMoE paper [1]_: draw orthonormal
    vectors ``u_1, u_2``, set ``w_1 = c u_1`` and
    ``w_2 = c (p u_1 + sqrt(1 - p^2) u_2)`` so that the cosine of ``w_1`` and
    ``w_2`` is ``p``, draw ``x ~ N(0, I)`` and set, for each task ``i``,

    ``y_i = w_i^T x + sum_{j=1..m} sin(alpha_j w_i^T x + beta_j) + eps_i``.

    The label correlation grows with ``p``, though not equal to it, because
    of the sine terms.

    Parameters
    ----------
    n_samples : int, default=10000
        Number of samples.
    n_features : int, default=100
        Dimension ``d`` of ``x``; must be at least ``n_tasks``.
    task_correlation : float, default=0.5
        The cosine ``p`` between every pair of task weight vectors, in
        ``[-1, 1]`` for two tasks and in ``[-1 / (n_tasks - 1), 1]`` for
        more (the smallest value for which such vectors exist).
    n_tasks : int, default=2
        Number of tasks. With more than two, ``w_i = c sum_j L_ij u_j`` for
        ``n_tasks`` orthonormal ``u_j`` and ``L`` the Cholesky factor of the
        matrix with ones on the diagonal and ``p`` elsewhere, so every pair
        has cosine ``p``; for two tasks this is the paper's construction.
    scale : float, default=1.0
        The scale ``c``: the norm of every weight vector.
    noise : float, default=0.01
        Standard deviation of the Gaussian noise ``eps_i``. The paper writes
        ``N(0, 0.01)``.
    n_sine : int, default=10
        Number ``m`` of sine terms; 0 gives linear tasks.
    coef : bool, default=False
        If True, also return the weight vectors.
    as_frame : bool, default=False
        If True, return DataFrames with columns ``x0, x1, ...`` and
        ``y0, y1, ...``.
    random_state : int, RandomState instance or None, default=None
        Seed for the directions, the sine parameters, ``x`` and the noise.

    Returns
    -------
    X : ndarray or DataFrame of shape (n_samples, n_features)
        The inputs.
    Y : ndarray or DataFrame of shape (n_samples, n_tasks)
        The regression targets, one column per task.
    coef : ndarray of shape (n_features, n_tasks)
        The weight vectors ``w_i`` as columns. Only if ``coef=True``.

    Raises
    ------
    ValueError
        If a count is not a positive integer, ``n_features < n_tasks``,
        ``task_correlation`` is out of range, or ``scale``, ``noise`` or
        ``n_sine`` is negative.

    See Also
    --------
    load_census_income : The real two-task data of the same paper.

    Notes
    -----
    The paper does not publish ``c``, ``m`` or the sine parameters. Here
    ``alpha_j`` and ``beta_j`` are drawn from ``N(0, 1)`` with
    ``random_state`` and shared by all tasks, as in the paper where both tasks
    use the same ``alpha_j, beta_j``; the directions ``u_j`` are random.

    References
    ----------
    .. [1] J. Ma et al. "Modeling Task Relationships in Multi-task Learning
       with Multi-gate Mixture-of-Experts". KDD 2018, section 4.1.

    Examples
    --------
    >>> import numpy as np
    >>> from skmtl.datasets import make_multitask_synthetic
    >>> X, Y, W = make_multitask_synthetic(
    ...     1000, 20, task_correlation=0.8, coef=True, random_state=0
    ... )
    >>> X.shape, Y.shape
    ((1000, 20), (1000, 2))
    >>> cosine = W[:, 0] @ W[:, 1] / np.linalg.norm(W, axis=0).prod()
    >>> round(float(cosine), 6)
    0.8
    """
    _check_synthetic_params(
        n_samples, n_features, n_tasks, task_correlation, scale, noise, n_sine
    )
    rng = check_random_state(random_state)
    weights = _task_weights(n_features, n_tasks, task_correlation, scale, rng)
    alpha = rng.standard_normal(n_sine)
    beta = rng.standard_normal(n_sine)
    X = rng.standard_normal((n_samples, n_features))
    linear = X @ weights  # (n_samples, n_tasks)
    # (n_samples, n_tasks, n_sine) summed over the sine terms
    sines = np.sin(linear[..., None] * alpha + beta).sum(axis=-1)
    Y = linear + sines + noise * rng.standard_normal((n_samples, n_tasks))
    if as_frame:
        X = pd.DataFrame(X, columns=[f"x{i}" for i in range(n_features)])
        Y = pd.DataFrame(Y, columns=[f"y{i}" for i in range(n_tasks)])
    return (X, Y, weights) if coef else (X, Y)


def _check_rates(**rates):
    for name, value in rates.items():
        if not isinstance(value, Real) or isinstance(value, bool) or not 0 < value < 1:
            raise ValueError(f"{name} must be a number in (0, 1), got {value!r}.")


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic function


def _intercept(scores, target, weights):
    """The b with weighted mean of sigmoid(b + scores) equal to ``target``."""
    low, high = -50.0, 50.0
    for _ in range(100):  # bisection: the mean grows with b
        middle = (low + high) / 2
        if np.average(_sigmoid(middle + scores), weights=weights) > target:
            high = middle
        else:
            low = middle
    return (low + high) / 2


def _names(prefix, n):
    return np.array([f"{prefix}{i}" for i in range(n)], dtype=object)


def make_funnel_synthetic(
    n_samples=20000,
    *,
    n_items=200,
    n_segments=20,
    click_rate=0.1,
    conversion_rate=0.15,
    return_proba=False,
    random_state=None,
):
    """Generate impressions, clicks and purchases with known probabilities.

    Every row is an impression of an item to a user segment, with four
    numeric context features. Each item has a latent quality ``a_i`` and
    appeal ``b_i``, each segment an affinity ``s_g``, all ``N(0, 1)``, and
    for the row's item ``i``, segment ``g`` and numbers ``x``:

    - P(click) = sigmoid(c + a_i + 0.5 b_i + 0.5 s_g + 0.5 x_0)
    - P(purchase | click) = sigmoid(v + 1.5 a_i + 0.5 s_g - 0.5 x_0 + 0.5 x_1)

    with ``c`` and ``v`` set so that the mean click probability is
    ``click_rate`` and the mean conversion probability among clicks is
    ``conversion_rate``. Items are shown with popularity proportional to
    ``1 / (rank + 10)``. Clicks are drawn, then purchases among the clicks;
    a row without a click has no purchase.

    Clicked rows over-represent good items, and a rarely clicked item has
    few clicked rows from which to learn its conversion rate: a conversion
    model trained on clicked rows only suffers the sample-selection bias and
    data sparsity that ESMM [1]_ addresses. Since the conversion probability
    is known for every row, also the non-clicked ones, a model's conversion
    predictions can be judged over the entire space.

    Parameters
    ----------
    n_samples : int, default=20000
        Number of impressions.
    n_items : int, default=200
        Number of items (categorical column ``item``).
    n_segments : int, default=20
        Number of user segments (categorical column ``segment``).
    click_rate : float, default=0.1
        Mean click probability, in (0, 1).
    conversion_rate : float, default=0.15
        Mean conversion probability among clicks (weighted by the click
        probability), in (0, 1).
    return_proba : bool, default=False
        If True, also return the true probabilities.
    random_state : int, RandomState instance or None, default=None
        Seed of the latent effects, the impressions and the draws.

    Returns
    -------
    X : DataFrame of shape (n_samples, 6)
        ``item`` and ``segment`` (strings such as ``"item3"``), and the
        numbers ``x0``... ``x3``.
    Y : DataFrame of shape (n_samples, 2)
        ``click`` and ``purchase``, int64 0/1; ``purchase`` is 0 where
        ``click`` is.
    proba : DataFrame of shape (n_samples, 3)
        Only if ``return_proba``: ``ctr`` (P(click)), ``cvr`` (P(purchase |
        click), defined on every row) and ``ctcvr`` (their product).

    Raises
    ------
    ValueError
        If a count is not a positive integer or a rate is not in (0, 1).

    See Also
    --------
    skmtl.ESMMEstimator : Learns the funnel over the entire space.

    References
    ----------
    .. [1] X. Ma et al. "Entire Space Multi-Task Model: An Effective Approach
       for Estimating Post-Click Conversion Rate". SIGIR 2018.

    Examples
    --------
    >>> from skmtl.datasets import make_funnel_synthetic
    >>> X, Y, proba = make_funnel_synthetic(10000, return_proba=True, random_state=0)
    >>> list(X.columns), list(Y.columns)
    (['item', 'segment', 'x0', 'x1', 'x2', 'x3'], ['click', 'purchase'])
    >>> round(float(proba.ctr.mean()), 3)
    0.1
    >>> bool((Y.purchase <= Y.click).all())
    True
    """
    _check_integers(
        n_samples=(n_samples, 1), n_items=(n_items, 1), n_segments=(n_segments, 1)
    )
    _check_rates(click_rate=click_rate, conversion_rate=conversion_rate)
    rng = check_random_state(random_state)
    quality, appeal = rng.standard_normal((2, n_items))
    affinity = rng.standard_normal(n_segments)
    popularity = 1.0 / (np.arange(n_items) + 10.0)
    item = rng.choice(n_items, n_samples, p=popularity / popularity.sum())
    segment = rng.randint(n_segments, size=n_samples)
    x = rng.standard_normal((n_samples, 4))
    click_score = (
        quality[item] + 0.5 * appeal[item] + 0.5 * affinity[segment] + 0.5 * x[:, 0]
    )
    buy_score = (
        1.5 * quality[item] + 0.5 * affinity[segment] - 0.5 * x[:, 0] + 0.5 * x[:, 1]
    )
    ctr = _sigmoid(_intercept(click_score, click_rate, None) + click_score)
    cvr = _sigmoid(_intercept(buy_score, conversion_rate, ctr) + buy_score)
    click = rng.uniform(size=n_samples) < ctr
    purchase = click & (rng.uniform(size=n_samples) < cvr)
    X = pd.DataFrame(
        {
            "item": _names("item", n_items)[item],
            "segment": _names("segment", n_segments)[segment],
        }
    )
    X[[f"x{j}" for j in range(4)]] = x
    Y = pd.DataFrame(
        {"click": click.astype(np.int64), "purchase": purchase.astype(np.int64)}
    )
    if not return_proba:
        return X, Y
    return X, Y, pd.DataFrame({"ctr": ctr, "cvr": cvr, "ctcvr": ctr * cvr})


def make_multidomain_synthetic(
    n_samples=10000,
    n_features=8,
    *,
    n_domains=4,
    n_tasks=2,
    shared_fraction=0.5,
    domain_shift=1.0,
    scale=3.0,
    return_proba=False,
    random_state=None,
):
    """Generate binary tasks on several domains that share part of their signal.

    Rows belong to ``n_domains`` domains of unequal sizes (domain ``d`` with
    probability proportional to ``1 / (d + 1)``). Each domain's features are
    shifted: ``x ~ N(m_d, I)`` with ``m_d ~ N(0, domain_shift^2 I)``. Task
    ``t`` in domain ``d`` has the weight vector

    ``w_td = sqrt(shared_fraction) u_t + sqrt(1 - shared_fraction) v_td``

    with ``u_t`` (shared by all domains) and the ``v_td`` (each domain's own)
    orthonormal, so the weights of two domains have cosine
    ``shared_fraction``, and the label is drawn with probability
    ``sigmoid(scale * w_td . (x - m_d) + b_td)``, ``b_td ~ N(0, 1)``.

    A model that learns shared weights and a cheap per-domain correction
    (STAR [1]_) should beat one that sees the domain only as one more input.

    Parameters
    ----------
    n_samples : int, default=10000
        Number of rows.
    n_features : int, default=8
        Number of numeric features; must exceed ``n_domains``, so the ``u_t``
        and ``v_td`` can be orthonormal.
    n_domains : int, default=4
        Number of domains.
    n_tasks : int, default=2
        Number of binary tasks.
    shared_fraction : float, default=0.5
        Cosine between two domains' weight vectors of a task, in [0, 1]: 1
        makes the domains differ only by their shift and intercept, 0 makes
        their weights orthogonal.
    domain_shift : float, default=1.0
        Standard deviation of the domains' feature means.
    scale : float, default=3.0
        Norm of the weight vectors: larger values make the labels less
        noisy.
    return_proba : bool, default=False
        If True, also return the true probabilities.
    random_state : int, RandomState instance or None, default=None
        Seed of the weights, the rows and the draws.

    Returns
    -------
    X : DataFrame of shape (n_samples, n_features + 1)
        ``domain`` (strings ``"domain0"``...), then ``x0``, ``x1``...
    Y : DataFrame of shape (n_samples, n_tasks)
        Binary labels ``y0``, ``y1``..., int64.
    proba : ndarray of shape (n_samples, n_tasks)
        Only if ``return_proba``: the probability of each label.

    Raises
    ------
    ValueError
        If a count is not a positive integer, ``n_features <= n_domains``,
        or a number is out of range.

    See Also
    --------
    skmtl.STAREstimator : One model with shared and per-domain weights.

    References
    ----------
    .. [1] X.-R. Sheng et al. "One Model to Serve All: Star Topology Adaptive
       Recommender for Multi-Domain CTR Prediction". CIKM 2021.

    Examples
    --------
    >>> from skmtl.datasets import make_multidomain_synthetic
    >>> X, Y = make_multidomain_synthetic(1000, n_domains=3, random_state=0)
    >>> X.columns[:3].tolist(), Y.shape
    (['domain', 'x0', 'x1'], (1000, 2))
    >>> X.domain.value_counts().index.tolist()  # sizes proportional to 1, 1/2, 1/3
    ['domain0', 'domain1', 'domain2']
    """
    _check_integers(
        n_samples=(n_samples, 1),
        n_features=(n_features, 1),
        n_domains=(n_domains, 1),
        n_tasks=(n_tasks, 1),
    )
    if n_features <= n_domains:
        raise ValueError(
            "n_features must be > n_domains, for a shared direction and one per "
            f"domain; got n_features={n_features} and n_domains={n_domains}."
        )
    for name, value, high in (
        ("shared_fraction", shared_fraction, 1.0),
        ("domain_shift", domain_shift, np.inf),
        ("scale", scale, np.inf),
    ):
        if (
            not isinstance(value, Real)
            or isinstance(value, bool)
            or not 0 <= value <= high
        ):
            bounds = "[0, 1]" if high == 1.0 else ">= 0"
            raise ValueError(f"{name} must be a number {bounds}, got {value!r}.")
    rng = check_random_state(random_state)
    # Per task: column 0 is u_t, column 1 + d is v_td (orthonormal, QR).
    bases = np.linalg.qr(rng.standard_normal((n_tasks, n_features, n_domains + 1)))[0]
    weights = (
        np.sqrt(shared_fraction) * bases[:, :, :1]
        + np.sqrt(1.0 - shared_fraction) * bases[:, :, 1:]
    )  # (T, F, D)
    intercepts = rng.standard_normal((n_domains, n_tasks))
    means = domain_shift * rng.standard_normal((n_domains, n_features))
    sizes = 1.0 / np.arange(1, n_domains + 1)
    domain = rng.choice(n_domains, n_samples, p=sizes / sizes.sum())
    centred = rng.standard_normal((n_samples, n_features))
    # (n, F) . (n, F, T) -> (n, T): each row with its domain's weights
    logits = scale * np.einsum("nf,tfn->nt", centred, weights[:, :, domain])
    proba = _sigmoid(logits + intercepts[domain])
    labels = (rng.uniform(size=proba.shape) < proba).astype(np.int64)
    X = pd.DataFrame({"domain": _names("domain", n_domains)[domain]})
    X[[f"x{j}" for j in range(n_features)]] = centred + means[domain]
    Y = pd.DataFrame(labels, columns=[f"y{t}" for t in range(n_tasks)])
    return (X, Y, proba) if return_proba else (X, Y)


ALI_CCP_URL = "https://tianchi.aliyun.com/dataset/408"
# Fields kept as features, as in the preprocessing of torch-rechub (after the
# AITM code): 23 categorical fields (the feature id), and the value of 8 of
# them as a number, named "D<field>".
_ALI_CCP_CATEGORICAL = (
    "101", "121", "122", "124", "125", "126", "127", "128", "129", "205",
    "206", "207", "210", "216", "508", "509", "702", "853", "301", "109_14",
    "110_14", "127_14", "150_14",
)  # fmt: skip
_ALI_CCP_VALUED = ("109_14", "110_14", "127_14", "150_14", "508", "509", "702", "853")
_ALI_CCP_NUMERIC = tuple(f"D{field}" for field in _ALI_CCP_VALUED)
_ALI_CCP_TARGETS = ("click", "purchase")
_ALI_CCP_SPLITS = {"train": "train", "validation": "val", "test": "test"}

_ALI_CCP_DESCR = """\
.. _ali_ccp_dataset:

Ali-CCP (Alibaba Click and Conversion Prediction) dataset
---------------------------------------------------------

Impressions from the Taobao recommender logs with two binary targets, click
and purchase (a purchase always follows a click), published with the ESMM
paper [1]: about 42 million training and 43 million test impressions. Raw
rows that purchase without a click are dropped, as in the ESMM and AITM
preprocessing.

Features: 23 categorical fields (feature ids, as strings) and 8 numeric
values (columns ``D<field>``), the columns of the preprocessing of
torch-rechub [3] after the AITM code [2]. Read from: {source}.

Source: Alibaba Tianchi, dataset 408, {url}. Terms of use are Tianchi's.

References

[1] X. Ma et al. Entire Space Multi-Task Model: An Effective Approach for
    Estimating Post-Click Conversion Rate. SIGIR 2018.
[2] D. Xi et al. Modeling the Sequential Dependence among Audience Multi-step
    Conversions with Multi-task Learning in Targeted Display Advertising.
    KDD 2021.
[3] torch-rechub, examples/ranking/data/ali-ccp/preprocess_ali_ccp.py.
"""


def _ali_ccp_candidates(data_home, split):
    """Paths tried for a split: (preprocessed candidates, raw candidate pairs)."""
    home = Path(data_home)
    folders = (home, home / "ali-ccp")
    tag = _ALI_CCP_SPLITS[split]
    preprocessed = [
        folder / f"ali_ccp_{tag}{suffix}"
        for folder in folders
        for suffix in (".csv", "_sample.csv")
    ]
    raw_split = "train" if split == "train" else "test"
    raw = [
        (
            folder / f"sample_skeleton_{raw_split}.csv",
            folder / f"common_features_{raw_split}.csv",
        )
        for folder in folders
    ]
    return preprocessed, raw


def _parse_ali_ccp_features(text, where):
    """Parse a feature list: {field: (feature, value)} of the fields kept.

    Items ``field\\x02feature\\x03value`` are joined by ``\\x01``. A field
    given several times keeps its last feature, as the reference
    preprocessing does.
    """
    features = {}
    for item in text.split("\x01"):
        field, sep, rest = item.partition("\x02")
        feature, sep2, value = rest.partition("\x03")
        if not (sep and sep2):
            raise ValueError(
                f"{where} is not in the Ali-CCP format: feature {item[:40]!r} is not "
                "'field\\x02feature\\x03value'."
            )
        if field in _ALI_CCP_CATEGORICAL:
            features[field] = (feature, value)
    return features


def _read_skeleton(path, parity, nrows):
    """Stream the sample skeleton: labels, common-feature key and features per row.

    ``parity`` None keeps every row; 0 or 1 keeps the even or odd ones.
    """
    rows = []
    with open(path, encoding="utf-8") as lines:
        n_kept = 0
        for number, line in enumerate(lines, start=1):
            fields = line.rstrip("\r\n").split(",")
            where = f"{path}, line {number}"
            if (
                len(fields) != 6
                or fields[1] not in ("0", "1")
                or fields[2] not in ("0", "1")
            ):
                raise ValueError(
                    f"{where} is not in the Ali-CCP sample_skeleton format: expected "
                    "'sample_id,click,purchase,common_feature_index,feature_num,"
                    "feature_list' with 0/1 labels."
                )
            if fields[1] == "0" and fields[2] == "1":
                continue  # a purchase without a click: dropped, as in ESMM/AITM
            n_kept += 1
            if parity is not None and (n_kept - 1) % 2 != parity:
                continue
            rows.append((int(fields[1]), int(fields[2]), fields[3],
                         _parse_ali_ccp_features(fields[5], where)))  # fmt: skip
            if nrows is not None and len(rows) >= nrows:
                break
    return rows


def _read_common_features(path, keys):
    """Stream the common features, keeping only the ``keys`` the rows refer to."""
    common = {}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            key, _, rest = line.rstrip("\r\n").partition(",")
            if key in keys:
                _, _, feature_list = rest.partition(",")
                common[key] = _parse_ali_ccp_features(
                    feature_list, f"{path}, line {number}"
                )
    missing = keys - common.keys()
    if missing:
        raise ValueError(
            f"{len(missing)} common feature indices of the sample skeleton are not in "
            f"{path} (e.g. {min(missing)!r}); are the two files of the same split?"
        )
    return common


def _read_raw_ali_ccp(skeleton, common_path, split, nrows):
    """Join the raw files' rows with their common features into one frame."""
    # The test file is split 1:1: even rows validation, odd rows test.
    parity = {"train": None, "validation": 0, "test": 1}[split]
    rows = _read_skeleton(skeleton, parity, nrows)
    common = _read_common_features(common_path, {key for _, _, key, _ in rows})
    records = []
    for click, purchase, key, own in rows:
        features = {**own, **common[key]}
        record = {"click": click, "purchase": purchase}
        record.update({f: features.get(f, (np.nan,))[0] for f in _ALI_CCP_CATEGORICAL})
        record.update(
            {
                f"D{f}": float(features[f][1]) if f in features else np.nan
                for f in _ALI_CCP_VALUED
            }
        )
        records.append(record)
    columns = [*_ALI_CCP_TARGETS, *_ALI_CCP_CATEGORICAL, *_ALI_CCP_NUMERIC]
    frame = pd.DataFrame.from_records(records, columns=columns)
    return frame.astype({c: object for c in _ALI_CCP_CATEGORICAL})


def _read_preprocessed_ali_ccp(path, nrows):
    """Read the preprocessed CSV layout, checking its columns."""
    dtypes = {c: object for c in _ALI_CCP_CATEGORICAL}
    dtypes.update({c: np.float64 for c in _ALI_CCP_NUMERIC})
    dtypes.update({c: np.int64 for c in _ALI_CCP_TARGETS})
    frame = pd.read_csv(path, nrows=nrows, dtype=dtypes)
    expected = [*_ALI_CCP_TARGETS, *_ALI_CCP_CATEGORICAL, *_ALI_CCP_NUMERIC]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path} is not in the preprocessed Ali-CCP layout: it lacks the columns "
            f"{format_names(missing)}."
        )
    return frame[expected]


def load_ali_ccp(data_home=None, *, split="train", nrows=None):
    """Load the Ali-CCP click and conversion data (ESMM's public data set).

    Nothing is downloaded: get the files from Alibaba Tianchi, dataset 408
    (https://tianchi.aliyun.com/dataset/408). Two layouts are read, from
    ``data_home`` or its ``ali-ccp`` subfolder, the first found in this
    order:

    - *preprocessed*: ``ali_ccp_train.csv``, ``ali_ccp_val.csv`` and
      ``ali_ccp_test.csv`` (or ``ali_ccp_<split>_sample.csv``), as written
      by torch-rechub's ``preprocess_ali_ccp.py``: a header, ``click``,
      ``purchase``, the 23 categorical fields as integer codes (0: rare or
      absent) and the 8 numeric columns min-max scaled;
    - *raw*: ``sample_skeleton_{train,test}.csv`` with
      ``common_features_{train,test}.csv``, the published files. Each
      skeleton line is ``sample_id,click,purchase,common_feature_index,
      feature_num,feature_list``; each common-features line is
      ``common_feature_index,feature_num,feature_list``; a feature list
      joins ``field_id \\x02 feature_id \\x03 value`` items with ``\\x01``.
      Lines are streamed: memory grows with the rows returned (``nrows``),
      not with the files. A field absent from a row is NaN; a field given
      several times keeps its last feature. Rows with a purchase but no
      click (noise in the logs) are dropped.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding the files; see :func:`get_data_home`.
    split : {"train", "validation", "test"}, default="train"
        In the raw layout, "train" is the training file and "validation"
        and "test" are the even and odd rows of the test file.
    nrows : int or None, default=None
        Read at most this many rows (the first ones of the split).

    Returns
    -------
    :class:`~sklearn.utils.Bunch`
        With the keys:

        data : DataFrame of shape (n_samples, 31)
            The 23 categorical fields (strings, object dtype: feature ids in
            the raw layout, codes in the preprocessed one), then the 8
            numeric columns ``D<field>`` (float64).
        target : DataFrame of shape (n_samples, 2)
            ``click`` and ``purchase``, int64 0/1.
        frame : DataFrame of shape (n_samples, 33)
            ``target`` and ``data`` side by side.
        feature_names : list of str
            Names of the feature columns.
        target_names : list of str
            ``["click", "purchase"]``: the funnel of :class:`skmtl.ESMMEstimator`.
        categorical_features : list of str
            The 23 categorical columns.
        numeric_features : list of str
            The 8 numeric columns.
        filenames : list of str
            The files read.
        DESCR : str
            Description of the data and its source.

    Raises
    ------
    FileNotFoundError
        If no layout's files are found; the message lists every path tried.
    ValueError
        If a file is not in its layout's format.

    See Also
    --------
    skmtl.ESMMEstimator : The model the data was published with.
    make_funnel_synthetic : A click-purchase funnel with known probabilities.

    References
    ----------
    .. [1] X. Ma et al. "Entire Space Multi-Task Model: An Effective Approach
       for Estimating Post-Click Conversion Rate". SIGIR 2018.

    Examples
    --------
    With the files in ``~/skmtl_data/ali-ccp``::

        from skmtl import ESMMEstimator
        from skmtl.datasets import load_ali_ccp

        train = load_ali_ccp(split="train", nrows=1_000_000)
        est = ESMMEstimator(funnel=train.target_names)
        est.fit(train.data, train.target)
    """
    if split not in _ALI_CCP_SPLITS:
        raise ValueError(
            f"split must be one of {list(_ALI_CCP_SPLITS)}, got {split!r}."
        )
    if nrows is not None:
        _check_integers(nrows=(nrows, 1))
    data_home = get_data_home(data_home)
    preprocessed, raw = _ali_ccp_candidates(data_home, split)
    found = next((path for path in preprocessed if path.is_file()), None)
    if found is not None:
        frame, files = _read_preprocessed_ali_ccp(found, nrows), [found]
    else:
        pair = next((p for p in raw if p[0].is_file() and p[1].is_file()), None)
        if pair is None:
            looked = "\n".join(
                f"  {p}" for p in [*preprocessed, *(q for p in raw for q in p)]
            )
            raise FileNotFoundError(
                f"Ali-CCP files for split {split!r} not found. Looked for the "
                f"preprocessed CSV, then the raw pair (both files), in:\n{looked}\n"
                f"Download the data from Alibaba Tianchi (dataset 408, {ALI_CCP_URL}) "
                f"into {data_home!s}, or pass data_home= or set the SKMTL_DATA "
                "environment variable to the folder holding it."
            )
        frame, files = _read_raw_ali_ccp(*pair, split, nrows), list(pair)
    features = [*_ALI_CCP_CATEGORICAL, *_ALI_CCP_NUMERIC]
    return Bunch(
        data=frame[features],
        target=frame[list(_ALI_CCP_TARGETS)],
        frame=frame,
        feature_names=features,
        target_names=list(_ALI_CCP_TARGETS),
        categorical_features=list(_ALI_CCP_CATEGORICAL),
        numeric_features=list(_ALI_CCP_NUMERIC),
        filenames=[str(f) for f in files],
        DESCR=_ALI_CCP_DESCR.format(
            source=", ".join(f.name for f in files), url=ALI_CCP_URL
        ),
    )
