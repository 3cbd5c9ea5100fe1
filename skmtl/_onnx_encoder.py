"""The fitted FeatureEncoder as ONNX nodes: raw column tensors -> network inputs.

The nodes reproduce :meth:`skmtl.FeatureEncoder.encode` exactly, with ONNX-ML
``LabelEncoder`` for the vocabularies and plain comparisons for the rest:

- a categorical column is a string tensor of shape (N,); ``LabelEncoder``
  maps each known category to its code ``1..K``, the missing marker to
  ``K + 1`` and everything else (unseen or rare) to 0;
- numeric columns are double tensors of shape (N,), NaN where missing; they
  are imputed with the medians (``IsNaN`` + ``Where``), standardised
  (``Sub``, ``Div``) in float64 as numpy does, then cast to float32;
- a bin code is 1 + the number of inner edges ``<=`` the value (numpy's
  ``searchsorted(side="right") + 1``), counted by ``LessOrEqual`` and
  ``ReduceSum`` against edges padded with +inf, and ``len(edges) + 2`` for
  NaN;
- a multi-valued column is a string tensor of shape (N, L) padded with
  ``""``; ``LabelEncoder`` maps ``""`` to -1 (the networks' padding), the
  missing marker to ``K + 1`` and unknown values to 0.
"""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from skmtl._validation import format_names

#: ai.onnx.ml opset: LabelEncoder with string keys and int64 values.
ML_OPSET = 3
#: Prefix of every value the encoder nodes create.
PREFIX = "skmtl_encode/"


class _Nodes:
    """Collects nodes and initializers under unique, prefixed names."""

    def __init__(self):
        self.nodes, self.initializers = [], []
        self._count = 0

    def name(self, hint):
        self._count += 1
        return f"{PREFIX}{hint}_{self._count}"

    def constant(self, hint, array):
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def add(self, op, inputs, hint, *, domain="", output=None, **attributes):
        output = output or self.name(hint)
        self.nodes.append(
            helper.make_node(
                op, inputs, [output], name=self.name(op), domain=domain, **attributes
            )
        )
        return output


def _columns_knowing(columns, vocabularies, value):
    return [c for c, known in zip(columns, vocabularies) if value in set(known)]


def check_encoder_markers(encoder, missing_string):
    """Raise ``ValueError`` where a marker string is also a known category.

    Parameters
    ----------
    encoder : FeatureEncoder
        Fitted.
    missing_string : str
        The string that marks a missing cell.
    """
    bags = (encoder.multi_valued_columns_, encoder.multi_valued_categories_)
    clashes = _columns_knowing(
        encoder.categorical_columns_, encoder.categories_, missing_string
    )
    if missing_string:  # "" is the bags' padding, checked below
        clashes += _columns_knowing(*bags, missing_string)
    padding = _columns_knowing(*bags, "")
    problems = []
    if clashes:
        problems.append(
            f"missing_string={missing_string!r} is a known category of "
            f"{format_names(clashes)}; pass another missing_string"
        )
    if padding:
        problems.append(
            "'' (the padding of multi-valued inputs) is a known value of "
            f"{format_names(padding)}"
        )
    if problems:
        raise ValueError("Cannot export the encoder: " + "; ".join(problems) + ".")


def _label_encoder(nodes, source, keys, values, default, hint):
    return nodes.add(
        "LabelEncoder",
        [source],
        hint,
        domain="ai.onnx.ml",
        keys_strings=[str(k) for k in keys],
        values_int64s=[int(v) for v in values],
        default_int64=int(default),
    )


def _categorical_codes(nodes, encoder, missing_string):
    """One (N, 1) int64 code column per categorical column."""
    columns = []
    for column, categories in zip(encoder.categorical_columns_, encoder.categories_):
        n_known = len(categories)
        codes = _label_encoder(
            nodes,
            str(column),
            [*categories, missing_string],
            [*range(1, n_known + 1), n_known + 1],
            0,
            "codes",
        )
        columns.append(nodes.add("Unsqueeze", [codes, _axes(nodes, 1)], "codes"))
    return columns


def _axes(nodes, *axes):
    return nodes.constant("axes", np.asarray(axes, dtype=np.int64))


def _numeric_matrix(nodes, encoder):
    """The numeric inputs as one (N, n_numeric) float64 matrix, and its NaN mask."""
    columns = [
        nodes.add("Unsqueeze", [str(c), _axes(nodes, 1)], "number")
        for c in encoder.numeric_columns_
    ]
    values = (
        columns[0]
        if len(columns) == 1
        else nodes.add("Concat", columns, "numbers", axis=1)
    )
    return values, nodes.add("IsNaN", [values], "missing")


def _scaled(nodes, encoder, values, missing):
    """Impute with the medians and standardise, in float64, then cast to float32."""
    medians = nodes.constant("medians", encoder.medians_.astype(np.float64))
    means = nodes.constant("means", encoder.means_.astype(np.float64))
    scales = nodes.constant("scales", encoder.scales_.astype(np.float64))
    imputed = nodes.add("Where", [missing, medians, values], "imputed")
    centred = nodes.add("Sub", [imputed, means], "centred")
    scaled = nodes.add("Div", [centred, scales], "scaled")
    return nodes.add("Cast", [scaled], "scaled", to=TensorProto.FLOAT)


def _bin_codes(nodes, encoder, values, missing):
    """The (N, n_numeric) int64 bin codes of the numeric columns."""
    edges = encoder.bin_edges_
    width = 1 + max(len(e) for e in edges)
    # +inf pads each column's edges: no finite value reaches it.
    table = np.full((1, len(edges), width), np.inf)
    for j, column_edges in enumerate(edges):
        table[0, j, : len(column_edges)] = column_edges
    wide = nodes.add("Unsqueeze", [values, _axes(nodes, 2)], "wide")
    below = nodes.add(
        "LessOrEqual", [nodes.constant("edges", table), wide], "below"
    )  # (N, n_numeric, width)
    counts = nodes.add(
        "ReduceSum",
        [nodes.add("Cast", [below], "below", to=TensorProto.INT64), _axes(nodes, 2)],
        "counts",
        keepdims=0,
    )
    codes = nodes.add("Add", [counts, nodes.constant("one", np.int64(1))], "bins")
    nan_codes = np.asarray([len(e) + 2 for e in edges], dtype=np.int64)
    return nodes.add(
        "Where", [missing, nodes.constant("nan_bins", nan_codes), codes], "bins"
    )


def _bags(nodes, encoder, missing_string):
    """The (N, n_multi_valued, L) int64 bags; the inputs share their width L."""
    bags = []
    for column, categories in zip(
        encoder.multi_valued_columns_, encoder.multi_valued_categories_
    ):
        n_known = len(categories)
        keys = [*categories, ""]
        values = [*range(1, n_known + 1), -1]
        if missing_string:
            keys.append(missing_string)
            values.append(n_known + 1)
        codes = _label_encoder(nodes, str(column), keys, values, 0, "bag")
        bags.append(nodes.add("Unsqueeze", [codes, _axes(nodes, 1)], "bag"))
    return bags[0] if len(bags) == 1 else nodes.add("Concat", bags, "bags", axis=1)


def encoder_nodes(encoder, missing_string, outputs):
    """Return the nodes and initializers that encode the raw inputs.

    Parameters
    ----------
    encoder : FeatureEncoder
        Fitted; its column names are the input names.
    missing_string : str
        Marks a missing categorical (or multi-valued) cell.
    outputs : dict
        Names to give the encoded tensors: keys ``"categorical"`` (int64,
        (N, n_codes)), ``"numeric"`` (float32, (N, n_numeric)) and
        ``"multi_valued"`` (int64, (N, n_multi_valued, L)); only the parts the
        encoder has are made.

    Returns
    -------
    nodes : list of onnx.NodeProto
    initializers : list of onnx.TensorProto
    """
    nodes = _Nodes()
    codes = _categorical_codes(nodes, encoder, missing_string)
    if encoder.numeric_columns_:
        values, missing = _numeric_matrix(nodes, encoder)
        nodes.add(
            "Identity",
            [_scaled(nodes, encoder, values, missing)],
            "numeric",
            output=outputs["numeric"],
        )
        if encoder.bin_edges_:
            codes.append(_bin_codes(nodes, encoder, values, missing))
    if codes:
        nodes.add("Concat", codes, "codes", axis=1, output=outputs["categorical"])
    if encoder.multi_valued_columns_:
        nodes.add(
            "Identity",
            [_bags(nodes, encoder, missing_string)],
            "bags",
            output=outputs["multi_valued"],
        )
    return nodes.nodes, nodes.initializers


def encoder_inputs(encoder):
    """Return the graph inputs: one per fitted column, in the order of ``fit``.

    Parameters
    ----------
    encoder : FeatureEncoder
        Fitted.

    Returns
    -------
    list of onnx.ValueInfoProto
    """
    kinds = {c: (TensorProto.STRING, ["N"]) for c in encoder.categorical_columns_}
    kinds.update(
        {c: (TensorProto.STRING, ["N", "L"]) for c in encoder.multi_valued_columns_}
    )
    kinds.update({c: (TensorProto.DOUBLE, ["N"]) for c in encoder.numeric_columns_})
    order = getattr(encoder, "feature_names_in_", None)
    order = list(kinds) if order is None else [c for c in order if c in kinds]
    return [helper.make_tensor_value_info(str(c), *kinds[c]) for c in order]
