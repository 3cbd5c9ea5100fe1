"""Raw cells read column by column, vectorised: category strings, bags, numbers.

A categorical value is identified by the string ``Series.astype(str)`` gives
it, as the encoder always did, so ``1`` and ``"1"`` are one category and bool,
integer and category columns are handled alike. Strings are made only for a
column's distinct values: the column is factorized (C-level hashing), its
uniques are converted, and the codes index them. The exception is a column
whose hashing would merge values that have different strings (``1``, ``1.0``
and ``True`` in one object column, ``0.0`` and ``-0.0``): it is converted
cell by cell, as before.
"""

import itertools

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype, is_bool_dtype, is_numeric_dtype, is_scalar

from skmtl._validation import arrow_types_mapper, format_names

#: Cell types that make a multi-valued ("bag") cell.
BAG_TYPES = (list, tuple, np.ndarray)
# infer_dtype kinds of an object column whose distinct values all have distinct
# strings: factorizing them merges nothing that astype(str) keeps apart.
_SAFE_OBJECT_KINDS = frozenset({"string", "integer", "boolean", "bytes", "empty"})
_HINT = (
    "Categorical cells must be scalars, multi-valued cells lists, tuples or 1-D "
    "arrays of scalars (see the multi_valued_columns and separator parameters)."
)
# What a list in a column means, by how its kind was decided.
_LIST_PROBLEMS = {
    "declared": "a list in a column declared in categorical_columns",
    "auto": "a list in a column whose first value is a scalar",
    "fitted": "a list in a column that held scalars in fit",
    "bag": "a nested list (a bag's values must be scalars)",
}


class BadCells(TypeError):
    """Cells of the wrong kind in one column; see :func:`raise_bad_cells`."""

    def __init__(self, column, problem, example):
        super().__init__(f"{column!r}: {problem} (e.g. {_short_repr(example)})")
        self.column = column


def _short_repr(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def raise_bad_cells(problems):
    """Raise one ``TypeError`` naming every column in ``problems``.

    Parameters
    ----------
    problems : list of BadCells
        One per offending column.
    """
    problems = sorted(problems, key=lambda p: str(p.column))
    details = "; ".join(str(p) for p in problems[:5])
    if len(problems) > 5:
        details += f"; and {len(problems) - 5} more columns"
    raise TypeError(f"Cells of the wrong kind in {details}. {_HINT}")


def from_arrow(series):
    """Return a pyarrow-backed column as the equivalent pandas column.

    Arrow strings are kept (they factorize fast and convert to the same
    strings); other Arrow types go through :func:`arrow_types_mapper`, so a
    pyarrow-backed frame is read exactly as the pandas frame pyarrow gives.
    """
    dtype = series.dtype
    if not isinstance(dtype, pd.ArrowDtype):
        return series
    import pyarrow as pa

    arrow_type = dtype.pyarrow_dtype
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return series
    return series.array.__arrow_array__().to_pandas(types_mapper=arrow_types_mapper)


def _first_non_scalar(values):
    return next((v for v in values if not is_scalar(v)), None)


def _examples(values, n=3):
    """Up to ``n`` distinct values (by repr: they may be unhashable)."""
    seen = {}
    for value in values:
        seen.setdefault(repr(value), value)
        if len(seen) == n:
            break
    return list(seen.values())


def _check_scalars(uniques, column, context):
    """Raise BadCells for the first value that is not a scalar (list, dict...)."""
    bad = [v for v in uniques if not is_scalar(v)]
    if bad:
        problem = (
            _LIST_PROBLEMS[context]
            if isinstance(bad[0], BAG_TYPES)
            else ("a non-scalar value" + (" in a bag" if context == "bag" else ""))
        )
        raise BadCells(column, problem, bad[0])


def _strings(uniques):
    """``astype(str)`` of a column's distinct non-missing values, as objects."""
    if isinstance(uniques.dtype, pd.StringDtype):
        return uniques.to_numpy(dtype=object)
    return pd.Series(uniques, dtype=uniques.dtype).astype(str).to_numpy(dtype=object)


def _codes_of_strings(series):
    """Factorize the strings of every cell (the slow path, as before)."""
    missing = series.isna().to_numpy()
    codes, uniques = pd.factorize(series.astype(str).to_numpy(dtype=object))
    codes[missing] = -1
    return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)


def _category_dtype_codes(series, column, context):
    categories = series.cat.categories
    if categories.dtype == object and infer_dtype(categories) != "string":
        _check_scalars(categories, column, context)
    codes = series.cat.codes.to_numpy().astype(np.int64)
    return codes, _strings(categories)


def _object_codes(series, values, column, context):
    """Codes of an object column, converting cells only when hashing may merge."""
    codes, uniques = pd.factorize(values)
    # Distinct strings stay distinct; only a non-string cell can be equal to
    # another value with a different string (True == 1 == 1.0).
    if infer_dtype(uniques, skipna=False) in ("string", "empty"):
        return codes, uniques
    _check_scalars(uniques, column, context)
    if infer_dtype(values, skipna=True) not in _SAFE_OBJECT_KINDS:
        return _codes_of_strings(series)
    return codes, _strings(uniques)


def category_codes(series, column, context):
    """Return ``(codes, strings)``: each cell's index into ``strings``, -1 if missing.

    Parameters
    ----------
    series : pandas.Series
        One column (or a bag's values).
    column : str
        Its name, for errors.
    context : {"declared", "auto", "fitted", "bag"}
        Why its cells must be scalars, for the error on a list.

    Returns
    -------
    codes : ndarray of shape (n_cells,), dtype int64
    strings : ndarray of str objects
        ``astype(str)`` of each distinct value; two may be equal (``1``, ``"1"``).
    """
    series = from_arrow(series)
    if isinstance(series.dtype, pd.CategoricalDtype):
        return _category_dtype_codes(series, column, context)
    numpy_backed = isinstance(series.dtype, np.dtype)
    values = series.to_numpy() if numpy_backed else series.array
    try:
        if values.dtype == object:
            codes, strings = _object_codes(series, values, column, context)
        else:
            codes, uniques = pd.factorize(values)
            # Equal floats have equal strings, except 0.0 and -0.0.
            if uniques.dtype.kind == "f" and bool((uniques == 0).any()):
                return _codes_of_strings(series)
            strings = _strings(uniques)
    except BadCells:
        raise
    except TypeError:  # unhashable: a list, array, dict or set in a cell
        _check_scalars([_first_non_scalar(values)], column, context)
        raise
    return codes.astype(np.int64, copy=False), strings


def first_value_is_bag(series):
    """Whether the first non-missing cell of an object column is a bag."""
    # A loop that stops at the first value: the column's isna() costs more.
    for cell in series.to_numpy():
        if isinstance(cell, BAG_TYPES):
            return True
        if not pd.isna(cell):
            return False
    return False


def _split_strings(cells, separator):
    """Split string cells on ``separator``, dropping empty values (one per string)."""
    tokens = {}
    out = []
    for cell in cells:
        if isinstance(cell, str):
            if cell not in tokens:
                tokens[cell] = [t for t in cell.split(separator) if t]
            cell = tokens[cell]
        out.append(cell)
    return out


# What a scalar in a multi-valued column means, by how its kind was decided.
_SCALAR_PROBLEMS = {
    "declared": "a scalar in a column declared in multi_valued_columns",
    "detected": "a scalar in a column whose first value is a list",
    "fitted": "a scalar in a column that held lists in fit",
}


def _check_bags(cells, column, separator, context):
    for cell in cells:
        if not isinstance(cell, BAG_TYPES):
            problem = _SCALAR_PROBLEMS[context]
            if context == "declared" and separator is None and isinstance(cell, str):
                problem += " (set separator to split strings)"
            raise BadCells(column, problem, cell)
        if isinstance(cell, np.ndarray) and cell.ndim != 1:
            raise BadCells(column, _LIST_PROBLEMS["bag"], cell)


def read_bags(cells, missing, column, separator, context):
    """Return the values of a multi-valued column's cells, flat, as codes.

    Parameters
    ----------
    cells : ndarray of shape (n_cells,), dtype object
        The column's cells.
    missing : ndarray of shape (n_cells,), dtype bool
        Where a cell is missing (None, NaN...); its bag is empty.
    column : str
        The column's name, for errors.
    separator : str or None
        When set, string cells are split on it (empty values dropped).
    context : {"declared", "detected", "fitted"}
        How the column was found multi-valued, for errors.

    Returns
    -------
    lengths : ndarray of shape (n_cells,), dtype int64
        Number of values in each cell's bag. Missing values inside a bag are
        dropped.
    codes : ndarray of shape (lengths.sum(),), dtype int64
        Each value's index into ``strings``, bag after bag.
    strings : ndarray of str objects
        ``astype(str)`` of each distinct value.
    """
    present_rows = np.flatnonzero(~missing)
    present = cells[present_rows]
    if separator is not None:
        present = _split_strings(present, separator)
    _check_bags(present, column, separator, context)
    lengths = np.fromiter(map(len, present), dtype=np.int64, count=len(present))
    flat = np.fromiter(
        itertools.chain.from_iterable(present), dtype=object, count=int(lengths.sum())
    )
    codes, strings = category_codes(pd.Series(flat, dtype=object), column, "bag")
    kept = codes >= 0
    if not kept.all():
        rows = np.repeat(np.arange(len(present)), lengths)
        lengths = np.bincount(rows[kept], minlength=len(present))
        codes = codes[kept]
    all_lengths = np.zeros(len(cells), dtype=np.int64)
    all_lengths[present_rows] = lengths
    return all_lengths, codes, strings


def pack_bags(lengths, values, width, out):
    """Write bags of ``values`` into the rows of ``out``, cut at ``width`` slots.

    Parameters
    ----------
    lengths : ndarray of shape (n_rows,), dtype int64
        Values per row.
    values : ndarray of shape (lengths.sum(),)
        The values, row after row.
    width : int
        Slots per row; longer bags are cut.
    out : ndarray of shape (n_rows, width)
        Filled in place where a row has values.
    """
    starts = np.cumsum(lengths) - lengths
    rows = np.repeat(np.arange(len(lengths)), lengths)
    slots = np.arange(len(values)) - np.repeat(starts, lengths)
    inside = slots < width
    out[rows[inside], slots[inside]] = values[inside]


def numeric_values(series):
    """Return a column as float64 (NaN where missing) and cells that are not numbers.

    Parameters
    ----------
    series : pandas.Series
        A column read as numbers: numeric dtypes directly, strings parsed.

    Returns
    -------
    values : ndarray of shape (n_cells,), dtype float64
    wrong : list
        Up to three cells that are not real numbers (empty when all are).
    """
    series = from_arrow(series)
    dtype = series.dtype
    if is_numeric_dtype(dtype) and not is_bool_dtype(dtype):
        if dtype.kind == "c":
            return None, _examples(series[series.notna()])
        return series.to_numpy(dtype=np.float64, na_value=np.nan), []
    numbers = pd.to_numeric(series, errors="coerce")
    wrong = series[numbers.isna().to_numpy() & series.notna().to_numpy()]
    if len(wrong):
        return None, _examples(wrong)
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan), []


def numeric_matrix(frame, columns, read=None):
    """Return the numeric columns as a float64 array, with clear errors.

    Parameters
    ----------
    frame : pandas.DataFrame
        The input.
    columns : list
        Numeric columns, in output order.
    read : callable or None, default=None
        ``read(column)`` returns what :func:`numeric_values` returns; None reads
        ``frame[column]`` with it.

    Returns
    -------
    ndarray of shape (n_rows, len(columns)), dtype float64
        NaN where a value is missing.
    """
    if read is None:
        read = lambda column: numeric_values(frame[column])
    values = np.empty((len(frame), len(columns)))
    wrong = {}
    for j, column in enumerate(columns):
        column_values, examples = read(column)
        if examples:
            wrong[column] = examples
        else:
            values[:, j] = column_values
    check_numbers(wrong, values, columns)
    return values


def check_numbers(wrong, values, columns):
    """Raise ``ValueError`` naming columns with non-numbers or infinite values.

    Parameters
    ----------
    wrong : dict
        Column -> examples of cells that are not real numbers.
    values : ndarray of shape (n_rows, len(columns))
        The columns read as floats.
    columns : list
        Their names.
    """
    if wrong:
        details = "; ".join(f"{c!r}: {v}" for c, v in sorted(wrong.items(), key=str))
        raise ValueError(
            f"Numeric columns {format_names(wrong)} contain values that are not "
            f"real numbers (e.g. {details}). Declare them in categorical_columns "
            "or clean them."
        )
    infinite = [c for c, column in zip(columns, values.T) if np.isinf(column).any()]
    if infinite:
        raise ValueError(
            f"Numeric columns {format_names(infinite)} contain infinite values; "
            "replace them (e.g. by NaN, which is imputed with the median)."
        )
