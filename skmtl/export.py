"""Export a fitted estimator to ONNX: raw columns in, predictions out.

:func:`to_onnx` returns one ``onnx.ModelProto`` holding the fitted
:class:`~skmtl.FeatureEncoder` (vocabularies, imputation, scaling and bins, as
ONNX-ML ``LabelEncoder`` and comparison nodes) followed by the network and
each task's output transform, so a serving system runs it with onnxruntime
alone. :func:`onnx_inputs` lays out a DataFrame as the model's inputs.
"""

import contextlib
import copy
import io
import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from skmtl._cells import category_codes, from_arrow, numeric_matrix, read_bags
from skmtl._encoder import FeatureEncoder
from skmtl._estimators import _FunnelMixin
from skmtl._validation import as_feature_frame, check_is_fitted, format_names
from skmtl.nn import FeatureBatch
from skmtl.nn._layers import FeatureInput
from skmtl.tasks import BinaryTask, MulticlassTask, PoissonTask, RegressionTask

__all__ = ["onnx_inputs", "to_onnx"]

#: ONNX opset of the default domain (onnxruntime >= 1.17 runs it).
OPSET = 18
# Opsets to_onnx accepts: reductions take their axes as an input from 18 on,
# and torch.onnx's TorchScript exporter stops at 20.
_OPSETS = range(18, 21)
_PARTS = ("categorical", "numeric", "multi_valued")
_NETWORK_INPUTS = {part: f"skmtl_network/{part}" for part in _PARTS}
# What encode() does that the exported nodes reproduce: these methods must be
# FeatureEncoder's own.
_ENCODER_METHODS = (
    "encode",
    "_encode_categorical",
    "_encode_bins",
    "_scale",
    "_encode_bags",
    "_read_bags",
)


def _import_onnx():
    try:
        import onnx
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "skmtl.export needs the onnx package: pip install 'skmtl[onnx]'."
        ) from error
    return onnx


def _check_encoder(encoder):
    """Raise ``TypeError`` unless ``encoder`` encodes as FeatureEncoder does."""
    overridden = [
        name
        for name in _ENCODER_METHODS
        if getattr(type(encoder), name, None) is not getattr(FeatureEncoder, name)
    ]
    if not isinstance(encoder, FeatureEncoder) or overridden:
        detail = f" (it overrides {format_names(overridden)})" if overridden else ""
        raise TypeError(
            f"Cannot export the encoder {type(encoder).__name__}{detail}: only "
            "skmtl.FeatureEncoder's encoding has ONNX nodes. Fit the estimator "
            "with encoder=FeatureEncoder(...)."
        )


class _BagPooling(nn.Module):
    """EmbeddingBag with padding row 0, as a gather and a masked sum.

    torch.onnx's TorchScript exporter rejects ``embedding_bag`` with a
    ``padding_idx``; this computes the same mean or sum (padding left out of
    both) with plain tensor ops.
    """

    def __init__(self, bags):
        super().__init__()
        self.weight = bags.weight
        self.mode = bags.mode

    def forward(self, index):
        # index: (R, L), 0 = padding -> (R, D)
        kept = (index != 0).unsqueeze(2).to(self.weight.dtype)  # (R, L, 1)
        pooled = (F.embedding(index, self.weight) * kept).sum(dim=1)
        if self.mode == "mean":
            pooled = pooled / kept.sum(dim=1).clamp(min=1.0)
        return pooled


def _export_copy(network):
    """A CPU float32 copy of ``network`` in eval mode, with exportable bags."""
    network = copy.deepcopy(network).cpu().float().eval()
    for module in network.modules():
        if isinstance(module, FeatureInput) and module.bags is not None:
            module.bags = _BagPooling(module.bags)
    return network


def _logcumsumexp(g, x, dim):
    """ONNX for ``torch.logcumsumexp`` over the last axis (the funnels' stages).

    ``out[..., k] = logsumexp(x[..., :k + 1])``: each prefix is a row of a
    mask (0 where ``j <= k``, -inf elsewhere) added to ``x``, and
    ``ReduceLogSumExp`` reduces it, stably, without a loop.
    """
    from torch.onnx import symbolic_helper

    axis = symbolic_helper._get_const(dim, "i", "dim")
    rank = symbolic_helper._get_tensor_rank(x)
    if axis not in (-1, None if rank is None else rank - 1):
        raise TypeError(
            "Cannot export torch.logcumsumexp except over the last axis; "
            f"got dim={axis} of a tensor of rank {rank}."
        )

    def const(value):
        return g.op("Constant", value_t=torch.tensor(value))

    n = g.op("Gather", g.op("Shape", x), const(-1))  # a scalar
    positions = g.op("Range", const(0), n, const(1))  # (n,)
    after = g.op(
        "Greater",
        g.op("Unsqueeze", positions, const([0])),  # j: (1, n)
        g.op("Unsqueeze", positions, const([1])),  # k: (n, 1)
    )  # (k, j): whether j comes after k
    mask = g.op("CastLike", g.op("Where", after, const(float("-inf")), const(0.0)), x)
    prefixes = g.op("Add", g.op("Unsqueeze", x, const([-2])), mask)  # (..., n, n)
    return g.op("ReduceLogSumExp", prefixes, const([-1]), keepdims_i=0)


@contextlib.contextmanager
def _export_symbolics(opset):
    """Register, for one export, ONNX functions of ops torch.onnx lacks."""
    torch.onnx.register_custom_op_symbolic("aten::logcumsumexp", _logcumsumexp, opset)
    try:
        yield
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::logcumsumexp", opset)


def _task_heads(estimator):
    """(name, kind, first output, n outputs, constants) of each task's output."""
    kinds = {
        BinaryTask: "binary",
        MulticlassTask: "multiclass",
        RegressionTask: "regression",
        PoissonTask: "poisson",
    }
    unknown = [t.name for t in estimator.tasks_ if type(t) not in kinds]
    if unknown:
        types = sorted(
            {type(t).__name__ for t in estimator.tasks_ if type(t) not in kinds}
        )
        raise TypeError(
            f"Cannot export tasks {format_names(unknown)} of type "
            f"{format_names(types)}: ONNX outputs exist for the task types "
            "binary, multiclass, regression and poisson."
        )
    heads, start = [], 0
    for task in estimator.tasks_:
        constants = {
            "mean": float(getattr(task, "mean", 0.0)),
            "scale": float(getattr(task, "scale", 1.0)),
        }
        heads.append(
            (str(task.name), kinds[type(task)], start, task.n_outputs, constants)
        )
        start += task.n_outputs
    return heads


class _Predictor(nn.Module):
    """Encoded tensors -> the outputs of predict_proba / predict, in float64."""

    def __init__(self, network, parts, heads, funnel):
        super().__init__()
        self.network = network
        self.parts = parts
        self.heads = heads
        self.funnel = funnel

    def _batch(self, tensors):
        given = dict(zip(self.parts, tensors))
        first = tensors[0]
        n = first.shape[0]
        categorical = given.get(
            "categorical", first.new_zeros((n, 0), dtype=torch.long)
        )
        numeric = given.get("numeric", first.new_zeros((n, 0), dtype=torch.float32))
        bags = given.get("multi_valued", first.new_zeros((n, 0, 0), dtype=torch.long))
        return FeatureBatch(categorical, numeric, bags)

    def forward(self, *tensors):
        # The probabilities are computed from float64 logits, as predict_proba does.
        logits = self.network(self._batch(tensors)).double()
        if self.funnel:
            log_reach = F.logsigmoid(logits)  # (N, n_stages)
            log_before = F.pad(log_reach[:, :-1], (1, 0))
            conditional = torch.exp(torch.clamp(log_reach - log_before, max=0.0))
            return torch.stack([torch.exp(log_reach), conditional], dim=2)
        return tuple(self._head(logits, *head[1:]) for head in self.heads)

    @staticmethod
    def _head(logits, kind, start, size, constants):
        out = logits[:, start : start + size]
        if kind == "binary":
            positive = torch.sigmoid(out)
            return torch.cat([1.0 - positive, positive], dim=1)
        if kind == "multiclass":
            return torch.softmax(out, dim=1)
        if kind == "regression":
            return out[:, 0] * constants["scale"] + constants["mean"]
        return constants["mean"] * torch.exp(out[:, 0])  # poisson


def _parts(encoder):
    """The FeatureBatch fields the encoder fills."""
    present = {
        "categorical": bool(encoder.categorical_columns_ or encoder.bin_edges_),
        "numeric": bool(encoder.numeric_columns_),
        "multi_valued": bool(encoder.multi_valued_columns_),
    }
    return [part for part in _PARTS if present[part]]


def _trace_inputs(estimator, X_sample, parts):
    """Encoded rows to trace the network with: X_sample's, or two rows of zeros."""
    encoder = estimator.encoder_
    if X_sample is not None:
        encoded = encoder.encode(as_feature_frame(estimator, X_sample, reset=False))
        arrays = dict(zip(_PARTS, encoded))
        arrays["numeric"] = arrays["numeric"].astype(np.float32)
        return tuple(torch.as_tensor(arrays[part]) for part in parts)
    n_codes = len(encoder.cardinalities_)
    shapes = {
        "categorical": (2, n_codes),
        "numeric": (2, len(encoder.numeric_columns_)),
        "multi_valued": (2, len(encoder.multi_valued_columns_), 2),
    }
    dtypes = {"numeric": torch.float32}
    return tuple(
        torch.zeros(shapes[part], dtype=dtypes.get(part, torch.long)) for part in parts
    )


def _output_names(heads, funnel):
    if funnel:
        return ["probabilities"]
    return [name for name, *_ in heads]


def _network_model(estimator, X_sample, opset):
    """Export the network and output transforms with torch.onnx (TorchScript)."""
    onnx = _import_onnx()
    encoder = estimator.encoder_
    parts = _parts(encoder)
    heads = _task_heads(estimator)
    funnel = isinstance(estimator, _FunnelMixin)
    predictor = _Predictor(_export_copy(estimator.module_), parts, heads, funnel)
    inputs = _trace_inputs(estimator, X_sample, parts)
    names = [_NETWORK_INPUTS[part] for part in parts]
    outputs = _output_names(heads, funnel)
    axes = {
        _NETWORK_INPUTS["categorical"]: {0: "N"},
        _NETWORK_INPUTS["numeric"]: {0: "N"},
        _NETWORK_INPUTS["multi_valued"]: {0: "N", 2: "L"},
    }
    dynamic = {name: axes[name] for name in names}
    dynamic.update({name: {0: "N"} for name in outputs})
    buffer = io.BytesIO()
    with torch.no_grad(), _export_symbolics(opset), warnings.catch_warnings():
        # The tracer warns about Python values taken from shapes; the batch and
        # bag axes are declared dynamic, and the network's other shapes are fixed.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # dynamo=False is deliberate: the torch.export-based exporter needs
        # onnxscript, and the TorchScript one exports every skmtl network.
        warnings.filterwarnings(
            "ignore", "You are using the legacy", DeprecationWarning
        )
        warnings.filterwarnings(
            "ignore", "The feature will be removed", DeprecationWarning
        )
        warnings.filterwarnings("ignore", "Constant folding", UserWarning)
        torch.onnx.export(
            predictor,
            inputs,
            buffer,
            input_names=names,
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=opset,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def _check_names(encoder, network_graph, outputs):
    """Raise ``ValueError`` where a column name is taken in the network's graph."""
    taken = {v for node in network_graph.node for v in (*node.input, *node.output)}
    taken |= {t.name for t in network_graph.initializer} | set(outputs)
    columns = [
        *encoder.categorical_columns_,
        *encoder.multi_valued_columns_,
        *encoder.numeric_columns_,
    ]
    clashes = [c for c in columns if str(c) in taken]
    if clashes:
        raise ValueError(
            f"Cannot name the ONNX inputs after the columns {format_names(clashes)}: "
            "a task or a value of the network's graph has the same name."
        )


def to_onnx(estimator, X_sample=None, *, missing_string="", opset=OPSET):
    """Export a fitted estimator to an ONNX model that reads the raw columns.

    The model holds the fitted encoder (vocabularies, median imputation,
    scaling, quantile bins), the network and each task's output transform,
    so serving it needs onnxruntime (or any ONNX runtime with the ONNX-ML
    ``LabelEncoder``) and no Python.

    Parameters
    ----------
    estimator : MultiTaskEstimator
        A fitted skmtl estimator with a :class:`~skmtl.FeatureEncoder`.
    X_sample : DataFrame or None, default=None
        A few rows of raw features to trace the network with; by default rows
        of code 0. The exported model does not depend on it.
    missing_string : str, default=""
        The string that marks a missing cell of a categorical input (and, when
        not empty, a missing multi-valued cell). It must not be a known
        category of any column.
    opset : int, default=18
        Opset of the default ONNX domain, from 18 to 20; ``ai.onnx.ml`` is at
        opset 3.

    Returns
    -------
    onnx.ModelProto
        Inputs, one per column the encoder uses, named by the column, in the
        order of ``fit``, with a dynamic batch axis ``N``:

        - categorical column: string tensor of shape (N,), each cell the
          string ``str`` gives the value (``1`` -> ``"1"``, ``True`` ->
          ``"True"``), ``missing_string`` where missing;
        - numeric column: double tensor of shape (N,), NaN where missing;
        - multi-valued column: string tensor of shape (N, L) (``L`` shared by
          all multi-valued inputs), each row a bag's values padded with
          ``""``; a missing cell is ``missing_string`` in slot 0 (with the
          default ``""`` it is served as an empty bag).

        Outputs, float64: one per task, named by the task, with the
        probabilities ``predict_proba`` returns (shape (N, n_classes)) for a
        classification task and the value ``predict`` returns (shape (N,))
        for a regression or count task; for ESMM and AITM one output
        ``"probabilities"`` of shape (N, n_stages, 2), as their
        ``predict_proba``.

    Raises
    ------
    TypeError
        If the estimator's encoder is not a :class:`~skmtl.FeatureEncoder`
        (or overrides its encoding), or a task's type has no ONNX output.
    ValueError
        If ``missing_string`` or ``""`` is a known category, or a column is
        named like a task.

    See Also
    --------
    onnx_inputs : Lay out a DataFrame as the model's inputs.

    Notes
    -----
    The network is exported with ``torch.onnx.export``'s TorchScript
    exporter (``dynamo=False``) in float32; a model trained with
    ``precision="bf16"`` predicts under bf16 autocast, so its ONNX outputs
    differ by bf16 rounding. Extra columns of ``fit`` that the encoder does
    not use are not inputs.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> import pandas as pd
    >>> from skmtl import MMoEClassifierRegressor
    >>> from skmtl.export import onnx_inputs, to_onnx
    >>> X = pd.DataFrame({"city": ["Paris", "Rome", None, "Oslo"] * 10,
    ...                   "age": [31.0, np.nan, 52.0, 40.0] * 10})
    >>> y = pd.DataFrame({"bought": [0, 1, 0, 1] * 10, "spent": np.arange(40.0)})
    >>> est = MMoEClassifierRegressor(max_iter=2, random_state=0).fit(X, y)
    >>> model = to_onnx(est)
    >>> [i.name for i in model.graph.input], [o.name for o in model.graph.output]
    (['city', 'age'], ['bought', 'spent'])
    >>> session = ort.InferenceSession(model.SerializeToString())
    >>> proba, spent = session.run(None, onnx_inputs(est, X))
    >>> bool(np.abs(proba - est.predict_proba(X)[0]).max() < 1e-5)
    True
    """
    onnx = _import_onnx()
    from onnx import helper

    from skmtl._onnx_encoder import (
        ML_OPSET,
        check_encoder_markers,
        encoder_inputs,
        encoder_nodes,
    )

    if opset not in _OPSETS:
        raise ValueError(
            f"opset must be an int from {_OPSETS[0]} to {_OPSETS[-1]}; got {opset!r}."
        )
    check_is_fitted(estimator, "module_")
    encoder = estimator.encoder_
    _check_encoder(encoder)
    check_encoder_markers(encoder, missing_string)
    network = _network_model(estimator, X_sample, opset)
    graph = network.graph
    outputs = [o.name for o in graph.output]
    _check_names(encoder, graph, outputs)
    nodes, initializers = encoder_nodes(encoder, missing_string, _NETWORK_INPUTS)
    merged = helper.make_graph(
        [*nodes, *graph.node],
        "skmtl_" + type(estimator).__name__,
        encoder_inputs(encoder),
        list(graph.output),
        [*initializers, *graph.initializer],
    )
    model = helper.make_model(
        merged,
        opset_imports=[
            helper.make_opsetid("", opset),
            helper.make_opsetid("ai.onnx.ml", ML_OPSET),
        ],
        producer_name="skmtl",
        ir_version=network.ir_version,
    )
    onnx.checker.check_model(model)
    return model


def _categorical_strings(series, column, missing_string):
    codes, strings = category_codes(series, column, "fitted")
    table = np.append(np.asarray(strings, dtype=object), missing_string)
    return table[codes]  # -1 (missing) takes the marker


def _bag_strings(encoder, cells, missing, column, missing_string):
    declared = list(encoder.multi_valued_columns or [])
    separator = encoder.separator if column in declared else None
    lengths, codes, strings = read_bags(cells, missing, column, separator, "fitted")
    width = max(1, int(lengths.max(initial=0)))
    out = np.full((len(cells), width), "", dtype=object)
    starts = np.cumsum(lengths) - lengths
    rows = np.repeat(np.arange(len(lengths)), lengths)
    slots = np.arange(len(codes)) - np.repeat(starts, lengths)
    out[rows, slots] = np.asarray(strings, dtype=object)[codes]
    out[missing, 0] = missing_string
    return out


def _pad_bags(bags):
    """Pad every multi-valued column's (N, L_j) strings to the widest L."""
    width = max(b.shape[1] for b in bags.values())
    for column, strings in bags.items():
        padding = np.full((len(strings), width - strings.shape[1]), "", dtype=object)
        bags[column] = np.hstack([strings, padding])
    return bags


def onnx_inputs(estimator, X, *, missing_string=""):
    """Lay out raw features as the inputs of the model :func:`to_onnx` exports.

    Parameters
    ----------
    estimator : MultiTaskEstimator
        The fitted estimator that was exported.
    X : DataFrame or array-like of shape (n_samples, n_features)
        Raw features, as for ``predict``.
    missing_string : str, default=""
        The ``missing_string`` given to :func:`to_onnx`.

    Returns
    -------
    dict
        Input name -> numpy array: object arrays of str of shape
        (n_samples,) for categorical columns, float64 arrays of shape
        (n_samples,) for numeric ones, object arrays of str of shape
        (n_samples, L) for multi-valued ones (one ``L`` for all), ready for
        ``onnxruntime.InferenceSession.run``.

    See Also
    --------
    to_onnx : Export the estimator.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmtl import MMoEClassifierRegressor
    >>> from skmtl.export import onnx_inputs
    >>> X = pd.DataFrame({"city": ["Paris", None] * 10, "n": [1.0, 2.0] * 10})
    >>> est = MMoEClassifierRegressor(max_iter=1).fit(X, [0, 1] * 10)
    >>> feeds = onnx_inputs(est, X.head(2))
    >>> feeds["city"], feeds["n"]
    (array(['Paris', ''], dtype=object), array([1., 2.]))
    """
    check_is_fitted(estimator, "module_")
    encoder = estimator.encoder_
    frame = as_feature_frame(estimator, X, reset=False)
    encoder._check_columns(frame)
    feeds = {
        str(c): _categorical_strings(frame[c], c, missing_string)
        for c in encoder.categorical_columns_
    }
    bags = {}
    for column in encoder.multi_valued_columns_:
        cells = from_arrow(frame[column]).to_numpy(dtype=object)
        bags[str(column)] = _bag_strings(
            encoder, cells, pd.isna(cells), column, missing_string
        )
    if bags:
        feeds.update(_pad_bags(bags))
    numbers = numeric_matrix(frame, encoder.numeric_columns_)
    feeds.update(
        {str(c): numbers[:, j].copy() for j, c in enumerate(encoder.numeric_columns_)}
    )
    return feeds
