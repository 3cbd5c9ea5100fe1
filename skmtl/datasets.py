"""Multi-task datasets: UCI Census-Income (KDD) and the MMoE synthetic tasks.

The census loaders follow the two multi-task setups of the MMoE paper [1]_ on the
UCI Census-Income (KDD) data [3]_; ``make_multitask_synthetic`` implements the
paper's synthetic regression tasks of controlled relatedness.

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
"""

import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch, check_random_state

__all__ = [
    "get_data_home",
    "load_census_income",
    "load_census_income_sample",
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


def _check_synthetic_params(
    n_samples, n_features, n_tasks, task_correlation, scale, noise, n_sine
):
    for name, value, low in (
        ("n_samples", n_samples, 1),
        ("n_tasks", n_tasks, 1),
        ("n_features", n_features, 1),
        ("n_sine", n_sine, 0),
    ):
        if not isinstance(value, Integral) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
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
