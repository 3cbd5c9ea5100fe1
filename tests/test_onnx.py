"""skmtl.export.to_onnx: the ONNX model predicts what the estimator predicts.

Each exported model runs in onnxruntime on raw columns laid out by
``onnx_inputs``; its outputs must match ``predict_proba`` (and ``predict``
for regression and count tasks) within 1e-5, on the census sample and on
frames mixing every dtype the encoder accepts, with unseen categories,
missing values and multi-valued columns.
"""

import re

import numpy as np
import pandas as pd
import pytest
import torch
from test_encoder_reference import _mixed_frame as dtype_frame
from test_encoder_reference import _unseen as unseen_rows

from skmtl import (
    AITMEstimator,
    CrossStitchEstimator,
    DCNMultiTask,
    ESMMEstimator,
    FeatureEncoder,
    MMoEClassifierRegressor,
    PLEEstimator,
    SharedBottomEstimator,
    STAREstimator,
)
from skmtl.datasets import load_census_income_sample
from skmtl.tasks import BinaryTask

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from skmtl.export import onnx_inputs, to_onnx

TOLERANCE = 1e-5
SMALL = {"max_iter": 1, "random_state": 0, "embedding_dim": 4, "batch_size": 128}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _run(model, feeds):
    """Run ``model`` in onnxruntime; return its outputs by name."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def _expected(est, X):
    """The outputs predict_proba / predict give, by ONNX output name."""
    proba = est.predict_proba(X)
    if isinstance(est, (ESMMEstimator, AITMEstimator)):
        return {"probabilities": proba}
    proba = proba if isinstance(proba, list) else [proba]
    predictions = est.predict(X).reshape(len(X), -1)
    return {
        str(name): p if p is not None else predictions[:, k].astype(np.float64)
        for k, (name, p) in enumerate(zip(est.task_names_, proba))
    }


def _max_difference(est, X, missing_string="", model=None):
    """Export (unless given), check and run the model; the largest difference."""
    model = model or to_onnx(est, missing_string=missing_string)
    onnx.checker.check_model(model, full_check=True)
    got = _run(model, onnx_inputs(est, X, missing_string=missing_string))
    expected = _expected(est, X)
    assert list(got) == list(expected)
    differences = []
    for name, value in expected.items():
        assert got[name].shape == value.shape, name
        assert got[name].dtype == np.float64
        differences.append(float(np.abs(got[name] - value).max()))
    return max(differences)


# -- every architecture, on the census sample -----------------------------------


@pytest.fixture(scope="module")
def census():
    sample = load_census_income_sample()
    return (
        sample.train.data.iloc[:800],
        sample.train.target.iloc[:800],
        sample.test.data,
    )


def _funnel_targets(y):
    """never_married, then income_50k among them: a two-stage funnel."""
    first = y["never_married"]
    return pd.DataFrame({"married_no": first, "rich": first * y["income_50k"]})


ARCHITECTURES = [
    (MMoEClassifierRegressor, {}),
    (MMoEClassifierRegressor, {"gating": "shared"}),
    (PLEEstimator, {}),
    (PLEEstimator, {"n_levels": 1}),
    (DCNMultiTask, {}),
    (SharedBottomEstimator, {}),
    (CrossStitchEstimator, {}),
    (STAREstimator, {"domain_column": "sex"}),
    (ESMMEstimator, {}),
    (AITMEstimator, {}),
]


@pytest.mark.parametrize(
    "cls, params",
    ARCHITECTURES,
    ids=[
        f"{c.__name__}{p.get('gating', '')}{p.get('n_levels', '')}"
        for c, p in ARCHITECTURES
    ],
)
def test_every_architecture_matches_predict_proba_on_census(census, cls, params):
    X, y, X_test = census
    if cls in (ESMMEstimator, AITMEstimator):
        y = _funnel_targets(y)
    est = cls(**SMALL, **params).fit(X, y)
    assert _max_difference(est, X_test) <= TOLERANCE


def test_inputs_are_the_raw_columns_and_outputs_the_tasks(census):
    X, y, _ = census
    est = MMoEClassifierRegressor(**SMALL).fit(X, y)
    model = to_onnx(est, X.head(3))
    inputs = {i.name: i.type.tensor_type for i in model.graph.input}
    assert list(inputs) == [
        c for c in X.columns if c in set(est.encoder_.feature_names_in_)
    ]
    string, double = onnx.TensorProto.STRING, onnx.TensorProto.DOUBLE
    for column in est.encoder_.categorical_columns_:
        assert inputs[column].elem_type == string
    for column in est.encoder_.numeric_columns_:
        assert inputs[column].elem_type == double
    assert all(len(t.shape.dim) == 1 for t in inputs.values())
    assert [o.name for o in model.graph.output] == ["income_50k", "never_married"]
    domains = {o.domain: o.version for o in model.opset_import}
    assert domains == {"": 18, "ai.onnx.ml": 3}


# -- every dtype, task type and column kind ------------------------------------


def _pick(rng, values, n):
    return [values[i] for i in rng.randint(len(values), size=n)]


def _mixed_frame(n=400, seed=0):
    """The encoder tests' frame of every accepted dtype, plus two bag columns."""
    frame = dtype_frame(n, seed)
    rng = np.random.RandomState(seed + 1)
    bags = [["a", "b"], ["b"], None, [], ("c", "a", "b"), ["a", None]]
    frame["tags"] = pd.Series(_pick(rng, bags, n), dtype=object)
    frame["genres"] = _pick(rng, ["x|y", "y", None, "", "x||z"], n)
    return frame


def _mixed_targets(X, seed=0):
    rng = np.random.RandomState(seed)
    signal = X["num"].to_numpy() + (X["obj"] == "a").to_numpy()
    return pd.DataFrame(
        {
            "binary": (signal + rng.normal(size=len(X)) > 0).astype(int),
            "multiclass": pd.cut(
                signal, [-np.inf, -0.5, 0.5, np.inf], labels=["l", "m", "h"]
            ).astype(str),
            "regression": 100 + 10 * signal + rng.normal(size=len(X)),
            "count": rng.poisson(np.exp(0.3 * signal)),
        }
    )


def _unseen(frame):
    """Rows with unseen categories and bag values, columns reversed, one extra."""
    test = unseen_rows(frame)
    rows = test.index[10:12]
    test.loc[rows, "tags"] = pd.Series([["zz", "a"], ["q"]], index=rows)
    test.loc[test.index[12:14], "genres"] = "w|x"
    return test


_SPLIT = {"multi_valued_columns": ["genres"], "separator": "|"}
ENCODERS = [
    {"n_bins": 0, **_SPLIT},
    {"n_bins": 8, "min_frequency": 30, **_SPLIT},
    {
        "categorical_columns": ["int_cat", "mixed", "num_int"],
        "numeric_columns": ["num", "num_str"],
        "multi_valued_columns": ["tags", "genres"],
        "separator": "|",
    },
]


@pytest.mark.parametrize("encoder", ENCODERS, ids=["no_bins", "bins_rare", "declared"])
def test_every_dtype_and_task_type_match(encoder):
    X = _mixed_frame()
    est = MMoEClassifierRegressor(
        **SMALL, encoder=FeatureEncoder(**encoder), task_types={"count": "poisson"}
    ).fit(X, _mixed_targets(X))
    assert est.task_types_ == ["binary", "multiclass", "regression", "poisson"]
    test = _unseen(X)
    # A marker apart from "" tells missing bags from empty ones.
    assert _max_difference(est, test, missing_string="<NA>") <= TOLERANCE
    assert _max_difference(est, test.iloc[:1], missing_string="<NA>") <= TOLERANCE


def test_the_bag_width_is_free_and_an_empty_marker_serves_missing_bags_empty():
    frame = _mixed_frame()
    X = frame[["tags", "num", "bool"]]
    est = SharedBottomEstimator(**SMALL).fit(X, _mixed_targets(frame)[["binary"]])
    model = to_onnx(est)
    feeds = onnx_inputs(est, X)
    wide = {
        **feeds,
        "tags": np.hstack([feeds["tags"], np.full((len(X), 4), "", dtype=object)]),
    }
    assert np.array_equal(_run(model, wide)["binary"], _run(model, feeds)["binary"])
    # With missing_string="" a missing bag is an empty one: as [] in the frame.
    as_empty = X.assign(tags=[[] if v is None else v for v in X["tags"]])
    np.testing.assert_allclose(
        _run(model, feeds)["binary"], est.predict_proba(as_empty)[0], atol=TOLERANCE
    )


def test_numpy_input_and_one_task_from_a_1d_y():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 4))
    est = DCNMultiTask(**SMALL).fit(X, X[:, 0] + rng.normal(size=300))
    model = to_onnx(est)
    assert [i.name for i in model.graph.input] == ["x0", "x1", "x2", "x3"]
    assert _max_difference(est, X, model=model) <= TOLERANCE


@pytest.mark.parametrize(
    "columns, n_bins",
    [(["num"], 0), (["obj"], 32), (["tags"], 32), (["tags", "num"], 0)],
    ids=["numeric_only", "categorical_only", "bags_only", "bags_and_numbers"],
)
def test_inputs_of_one_kind(columns, n_bins):
    frame = _mixed_frame(200)
    est = PLEEstimator(**SMALL, encoder=FeatureEncoder(n_bins=n_bins))
    est.fit(frame[columns], _mixed_targets(frame)["binary"])
    difference = _max_difference(est, frame[columns], missing_string="<NA>")
    assert difference <= TOLERANCE


# -- what cannot be exported ---------------------------------------------------


class _WrappedEncoder(FeatureEncoder):
    def encode(self, X):
        return super().encode(X)


class _OddTask(BinaryTask):
    pass


def test_errors_name_what_cannot_be_exported():
    frame = _mixed_frame(200)
    X, y = frame[["obj", "num", "cat"]], _mixed_targets(frame)[["binary"]]
    X = X.assign(obj=X["obj"].replace("d", ""))  # "" is then a category
    custom = SharedBottomEstimator(**SMALL, encoder=_WrappedEncoder()).fit(X, y)
    with pytest.raises(
        TypeError, match=re.escape("_WrappedEncoder (it overrides 'encode')")
    ):
        to_onnx(custom)
    odd = SharedBottomEstimator(**SMALL, task_types={"binary": _OddTask}).fit(X, y)
    with pytest.raises(TypeError, match=re.escape("tasks 'binary' of type '_OddTask'")):
        to_onnx(odd, missing_string="<NA>")
    est = SharedBottomEstimator(**SMALL).fit(X, y)
    with pytest.raises(
        ValueError, match=re.escape("missing_string='a' is a known category of 'obj'")
    ):
        to_onnx(est, missing_string="a")
    with pytest.raises(
        ValueError, match=re.escape("missing_string='' is a known category of 'obj'")
    ):
        to_onnx(est)
    with pytest.raises(
        ValueError, match=re.escape("opset must be an int from 18 to 20; got 17")
    ):
        to_onnx(est, missing_string="<NA>", opset=17)
    named_like_a_task = SharedBottomEstimator(**SMALL).fit(
        X.rename(columns={"num": "binary"}), y
    )
    with pytest.raises(ValueError, match=re.escape("after the columns 'binary'")):
        to_onnx(named_like_a_task, missing_string="<NA>")
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        to_onnx(SharedBottomEstimator())
