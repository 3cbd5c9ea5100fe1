"""Safe save/load (safetensors + JSON) and device-independent pickles.

``est.save(path)`` / ``skmtl.load(path)`` must round-trip every estimator
bitwise without unpickling, refuse damaged, edited or newer files with a
clear error, and load a model saved from CUDA on a CPU-only machine. Pickles
must hold only CPU tensors, one copy of the network, and weighting state that
keeps training after loading.
"""

import io
import json
import pickle
import re
import warnings

import joblib
import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from sklearn.base import clone

import skmtl
from skmtl import (
    CrossStitchEstimator,
    DCNMultiTask,
    ESMMEstimator,
    FeatureEncoder,
    MMoEClassifierRegressor,
    PLEEstimator,
    SharedBottomEstimator,
    STAREstimator,
)
from skmtl._base import MultiTaskEstimator
from skmtl._persistence import (
    decode,
    encode,
    read_model_file,
    write_model_file,
)
from skmtl.exceptions import DeviceWarning, ModelFileError
from skmtl.nn import SharedBottom
from skmtl.tasks import MulticlassTask
from skmtl.weighting import DynamicWeights, GradNorm, UncertaintyWeights

_FAST = {"max_iter": 2, "batch_size": 64, "device": "cpu", "random_state": 0}

ESTIMATORS = {
    "mmoe_gradnorm": MMoEClassifierRegressor(
        n_experts=3, expert_hidden_sizes=(8,), loss_weights="gradnorm", **_FAST
    ),
    "ple_uncertainty": PLEEstimator(
        expert_hidden_sizes=(8,), loss_weights="uncertainty", **_FAST
    ),
    "dcn_dynamic": DCNMultiTask(
        deep_hidden_sizes=(16,),
        loss_weights=DynamicWeights([1.0, 2.0, 0.5], decay=0.8),
        **_FAST,
    ),
    "shared_bottom": SharedBottomEstimator(bottom_hidden_sizes=(16,), **_FAST),
    "cross_stitch": CrossStitchEstimator(column_hidden_sizes=(8,), **_FAST),
    "star": STAREstimator(domain_column="shop", star_hidden_sizes=(8,), **_FAST),
}


def _assert_same_predictions(a, b, X):
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert a.predict(X).dtype == b.predict(X).dtype
    for pa, pb in zip(a.predict_proba(X), b.predict_proba(X)):
        if pa is None:
            assert pb is None
        else:
            np.testing.assert_array_equal(pa, pb)


def _tensor_state(weighting):
    return {k: v for k, v in vars(weighting).items() if isinstance(v, torch.Tensor)}


@pytest.fixture
def saved(tmp_path, mixed_task_data):
    """A fitted MMoE and the path of its saved file."""
    X, Y = mixed_task_data
    est = clone(ESTIMATORS["mmoe_gradnorm"]).fit(X, Y)
    path = tmp_path / "model.safetensors"
    est.save(path)
    return est, path


# -- round trips ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_save_load_round_trip_is_exact(name, tmp_path, mixed_task_data):
    X, Y = mixed_task_data
    est = clone(ESTIMATORS[name]).fit(X, Y)
    est.save(tmp_path / "m.safetensors")
    loaded = skmtl.load(tmp_path / "m.safetensors")
    assert type(loaded) is type(est)
    _assert_same_predictions(est, loaded, X)
    assert repr(loaded.get_params()) == repr(est.get_params())
    assert loaded.tasks_ == est.tasks_
    assert loaded.history_ == est.history_ and loaded.n_iter_ == est.n_iter_
    assert loaded.best_iteration_ == est.best_iteration_
    np.testing.assert_array_equal(loaded.feature_names_in_, est.feature_names_in_)
    assert type(loaded.weighting_) is type(est.weighting_)
    assert loaded.weighting_.weights() == est.weighting_.weights()
    for key, value in _tensor_state(est.weighting_).items():
        assert torch.equal(getattr(loaded.weighting_, key), value), key


def test_continued_training_after_load_equals_after_unpickling(saved, mixed_task_data):
    """Both start a fresh optimizer from the same state, so they train alike."""
    X, Y = mixed_task_data
    est, path = saved
    unpickled = pickle.loads(pickle.dumps(est))
    loaded = skmtl.load(path)
    unpickled.partial_fit(X, Y)
    loaded.partial_fit(X, Y)
    assert loaded.n_iter_ == unpickled.n_iter_ == est.n_iter_ + 1
    _assert_same_predictions(unpickled, loaded, X)
    assert loaded.weighting_.weights() == unpickled.weighting_.weights()
    assert not np.array_equal(loaded.predict_proba(X)[0], est.predict_proba(X)[0])


def test_gradnorm_after_load_refers_to_the_loaded_network(saved):
    loaded = skmtl.load(saved[1])
    own = {id(p) for p in loaded.module_.parameters()}
    assert loaded.weighting_._shared
    assert all(id(p) in own for p in loaded.weighting_._shared)


def test_loading_never_unpickles(saved, monkeypatch, mixed_task_data):
    def refuse(*args, **kwargs):
        raise AssertionError("load unpickled something")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(joblib, "load", refuse)
    loaded = skmtl.load(saved[1])
    _assert_same_predictions(saved[0], loaded, mixed_task_data[0])


def test_loading_leaves_global_torch_rng_alone(saved):
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    skmtl.load(saved[1])
    assert torch.equal(torch.rand(3), expected)


def test_model_saved_from_cuda_loads_on_cpu(tmp_path, saved, mixed_task_data):
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA to exercise the fallback")
    est, _ = saved
    est.device_ = torch.device("cuda", 0)  # as if it had been fitted on a GPU
    est.save(tmp_path / "gpu.safetensors")
    est.device_ = torch.device("cpu")
    with pytest.warns(DeviceWarning, match="not available here"):
        loaded = skmtl.load(tmp_path / "gpu.safetensors")
    assert loaded.device_ == torch.device("cpu")
    _assert_same_predictions(est, loaded, mixed_task_data[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (
            skmtl.load(tmp_path / "gpu.safetensors", device="cpu").device_.type == "cpu"
        )


def test_parameters_beyond_json_round_trip(tmp_path, mixed_task_data):
    X, Y = mixed_task_data
    est = SharedBottomEstimator(
        bottom_hidden_sizes=(8, 4),
        task_types={"segment": MulticlassTask},
        class_weight={"converted": {"yes": 2.0}},
        loss_weights=GradNorm(alpha=1.0),
        optimizer=torch.optim.AdamW,
        encoder=FeatureEncoder(n_bins=4),
        random_state=np.random.RandomState(3),
        device=torch.device("cpu"),
        max_iter=1,
    ).fit(X, Y)
    est.save(tmp_path / "m.safetensors")
    loaded = skmtl.load(tmp_path / "m.safetensors")
    params, expected = loaded.get_params(), est.get_params()
    state, expected_state = params.pop("random_state"), expected.pop("random_state")
    assert repr(params) == repr(expected)
    for a, b in zip(state.get_state(), expected_state.get_state()):
        np.testing.assert_array_equal(a, b)
    assert loaded.optimizer is torch.optim.AdamW
    assert loaded.task_types["segment"] is MulticlassTask
    _assert_same_predictions(est, loaded, X)


def test_new_estimator_classes_save_without_changes(tmp_path, two_task_data):
    """Any subclass with a network class is rebuilt from its parameters."""

    class NarrowBottom(SharedBottom):
        pass

    class NarrowEstimator(MultiTaskEstimator):
        _network_class = NarrowBottom
        _own_parameters = {"width": 4}

        def _network_params(self):
            return {"bottom_hidden_sizes": (self.width,)}

    X, Y, X_test, _ = two_task_data
    est = NarrowEstimator(width=6, **_FAST).fit(X, Y)
    est.save(tmp_path / "m.safetensors")
    loaded = skmtl.load(tmp_path / "m.safetensors")
    assert type(loaded) is NarrowEstimator and loaded.width == 6
    _assert_same_predictions(est, loaded, X_test)


def test_json_encoding_of_awkward_values():
    tensors = {}
    value = {
        "tuple": (1, (2.5, None)),
        "int keys": {0: "a", 1: [True, False]},
        "__tuple__": "a key that looks like a tag",
        "nan": float("nan"),
        "numpy": [np.int64(3), np.float32(0.5), np.bool_(True)],
        "array": np.array([["a", None], ["b", "c"]], dtype=object),
        "empty": np.zeros((0, 3)),
        "device": torch.device("cpu"),
        "tensor": torch.arange(4.0),
    }
    text = json.dumps(encode(value, "value", tensors, "x"))
    back = decode(json.loads(text), tensors)
    assert back["tuple"] == (1, (2.5, None)) and back["int keys"] == {
        0: "a",
        1: [True, False],
    }
    assert back["__tuple__"] == "a key that looks like a tag"
    assert np.isnan(back["nan"]) and back["numpy"] == [3, 0.5, True]
    np.testing.assert_array_equal(back["array"], value["array"])
    assert back["array"].dtype == object and back["empty"].shape == (0, 3)
    assert back["device"] == torch.device("cpu")
    assert torch.equal(back["tensor"], value["tensor"]) and list(tensors) == [
        "x.tensor"
    ]


# -- what cannot be saved ------------------------------------------------------------


def _step_schedule(optimizer):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)


def _sum_losses(task_losses):
    return task_losses.sum()


@pytest.mark.parametrize(
    "params, where",
    [
        ({"lr_scheduler": _step_schedule}, "parameter 'lr_scheduler' holds <function"),
        ({"loss_weights": _sum_losses}, "parameter 'loss_weights' holds <function"),
    ],
)
def test_unsavable_parameters_are_named(params, where, tmp_path, two_task_data):
    X, Y, X_test, _ = two_task_data
    est = clone(ESTIMATORS["shared_bottom"]).set_params(**params).fit(X, Y)
    with pytest.raises(TypeError, match=re.escape(where)):
        est.save(tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    # Such a model still pickles, since these functions are importable.
    _assert_same_predictions(est, pickle.loads(pickle.dumps(est)), X_test)


def test_objects_json_cannot_describe_are_named():
    class MyEncoder:
        def fit(self, X):
            return self

        def encode(self, X):
            return X

    with pytest.raises(TypeError, match=re.escape("parameter 'encoder' holds <")):
        encode(MyEncoder(), "parameter 'encoder'")
    with pytest.raises(TypeError, match=re.escape("fitted attribute 'x_' holds")):
        encode(torch.zeros(2), "fitted attribute 'x_'")  # tensors need a section


def test_custom_encoder_cannot_be_saved(tmp_path, two_task_data):
    class MyEncoder(FeatureEncoder):
        def _get_state(self):
            return {"vocabulary": object()}

    X, Y, _, _ = two_task_data
    est = clone(ESTIMATORS["shared_bottom"]).set_params(encoder=MyEncoder()).fit(X, Y)
    with pytest.raises(TypeError, match=re.escape("the fitted encoder holds")):
        est.save(tmp_path / "m.safetensors")


def test_unfitted_estimator_cannot_be_saved(tmp_path):
    with pytest.raises(skmtl.exceptions.NotFittedError):
        SharedBottomEstimator().save(tmp_path / "m.safetensors")


# -- files that must be refused ------------------------------------------------------


def _rewrite(path, change):
    """Apply ``change`` to a saved file's document and write it back, validly signed."""
    document, tensors = read_model_file(path)
    change(document, tensors)
    write_model_file(path, document, tensors)


def test_newer_format_is_refused(saved):
    def newer(document, tensors):
        document["format_version"] = 99
        document["versions"]["skmtl"] = "9.0"

    _rewrite(saved[1], newer)
    with pytest.raises(
        ModelFileError, match=r"format 99 \(written by skmtl 9\.0\).*upgrade"
    ):
        skmtl.load(saved[1])


def test_truncated_file_is_refused(saved):
    data = saved[1].read_bytes()
    for size in (4, 100, len(data) // 2, len(data) - 1):
        saved[1].write_bytes(data[:size])
        with pytest.raises(ModelFileError, match="truncated or damaged"):
            skmtl.load(saved[1])


@pytest.mark.parametrize("where", ["document", "tensors"])
def test_edited_file_is_refused(where, saved):
    data = bytearray(saved[1].read_bytes())
    if where == "document":
        old = b'\\"n_experts\\": 3'
        assert data.count(old) == 1
        start = data.index(old)
        data[start : start + len(old)] = b'\\"n_experts\\": 4'
    else:
        data[-3] ^= 0x01  # one bit of the last tensor
    saved[1].write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="edited or damaged since"):
        skmtl.load(saved[1])


def test_weights_that_do_not_fit_the_network_are_named(saved):
    def fewer_experts(document, tensors):
        document["params"]["n_experts"] = 2

    _rewrite(saved[1], fewer_experts)
    with pytest.raises(
        ModelFileError, match=re.escape("do not fit the MMoE network")
    ) as info:
        skmtl.load(saved[1])
    assert "gates.weight" in str(info.value) and "wrong shape" in str(info.value)

    def extra_tensor(document, tensors):
        document["params"]["n_experts"] = 3
        tensors["module.spare"] = torch.zeros(2)
        document["module"]["state"]["spare"] = {"__tensor__": "module.spare"}

    _rewrite(saved[1], extra_tensor)
    with pytest.raises(ModelFileError, match=re.escape("unexpected 'spare'")):
        skmtl.load(saved[1])


def test_unknown_classes_and_other_files_are_refused(saved, tmp_path):
    def unknown(document, tensors):
        document["estimator"] = "mypackage.models.FancyEstimator"

    _rewrite(saved[1], unknown)
    with pytest.raises(
        ModelFileError, match=re.escape("'mypackage.models.FancyEstimator'")
    ):
        skmtl.load(saved[1])
    save_file({"w": torch.zeros(2)}, tmp_path / "plain.safetensors")
    with pytest.raises(ModelFileError, match="not an skmtl model"):
        skmtl.load(tmp_path / "plain.safetensors")
    (tmp_path / "model.joblib").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelFileError, match="not a complete safetensors file"):
        skmtl.load(tmp_path / "model.joblib")


# -- pickles: CPU tensors only, one network -----------------------------------------


class _TensorRecorder(pickle.Unpickler):
    """Unpickle, recording every tensor and parameter torch rebuilds."""

    def __init__(self, data):
        super().__init__(io.BytesIO(data))
        self.tensors = []

    def find_class(self, module, name):
        found = super().find_class(module, name)
        if module == "torch._utils" and name.startswith("_rebuild"):

            def record(*args, **kwargs):
                tensor = found(*args, **kwargs)
                self.tensors.append(tensor)
                return tensor

            return record
        return found


@pytest.mark.parametrize("loss_weights", ["uncertainty", "gradnorm"])
def test_gpu_pickle_holds_cpu_tensors_and_one_network(loss_weights, two_task_data):
    X, Y, X_test, _ = two_task_data
    gpu = torch.cuda.is_available()
    est = clone(ESTIMATORS["mmoe_gradnorm"]).set_params(
        loss_weights=loss_weights, device="cuda" if gpu else "cpu"
    )
    est.fit(X, Y)
    expected = est.predict_proba(X_test)
    if not gpu:
        est.device_ = torch.device("cuda", 0)  # as if it had been fitted on a GPU
    state = est.__getstate__()
    assert state["module_"] is not est.module_  # a CPU copy, not the live network
    copied = {id(p) for p in state["module_"].parameters()}
    assert all(id(p) in copied for p in getattr(state["weighting_"], "_shared", []))
    for tensor in [
        *state["module_"].state_dict().values(),
        *_tensor_state(state["weighting_"]).values(),
    ]:
        assert tensor.device.type == "cpu"
    recorder = _TensorRecorder(pickle.dumps(est))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeviceWarning)
        loaded = recorder.load()
    assert {t.device.type for t in recorder.tensors} == {"cpu"}
    n_parameters = len(list(est.module_.parameters()))
    n_rebuilt = sum(isinstance(t, torch.nn.Parameter) for t in recorder.tensors)
    assert n_rebuilt == n_parameters  # the network is stored once
    np.testing.assert_array_equal(loaded.predict_proba(X_test)[0], expected[0])
    own = {id(p) for p in loaded.module_.parameters()}
    assert all(id(p) in own for p in getattr(loaded.weighting_, "_shared", []))
    loaded.partial_fit(X, Y)  # keeps training, on the loaded network
    assert loaded.n_iter_ == est.n_iter_ + 1


def test_weighting_moves_every_tensor_it_owns():
    """Every tensor attribute follows the device, learnable ones stay leaves."""
    shared = [torch.nn.Parameter(torch.ones(3))]
    strategies = [UncertaintyWeights(), GradNorm(), DynamicWeights()]
    for strategy in strategies:
        strategy.setup(2, shared)
    strategies[1].combine(torch.stack([shared[0].sum(), 2 * shared[0].sum()]))
    strategies[1].end_epoch(1)
    for strategy in strategies:
        strategy._to("meta")
        for name, tensor in _tensor_state(strategy).items():
            assert tensor.device.type == "meta", (type(strategy).__name__, name)
    learnt = strategies[0].log_variances_
    assert learnt.is_leaf and learnt.requires_grad
    assert strategies[1]._shared[0] is shared[0]  # the network's, moved with it


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_model_saves_and_loads_on_cpu(tmp_path, two_task_data):
    X, Y, X_test, _ = two_task_data
    est = clone(ESTIMATORS["mmoe_gradnorm"]).set_params(device="cuda").fit(X, Y)
    est.save(tmp_path / "m.safetensors")
    on_gpu = skmtl.load(tmp_path / "m.safetensors")
    assert on_gpu.device_.type == "cuda"
    _assert_same_predictions(est, on_gpu, X_test)
    on_cpu = skmtl.load(tmp_path / "m.safetensors", device="cpu")
    # Same weights; only the kernels differ between the devices.
    np.testing.assert_allclose(
        on_cpu.predict_proba(X_test)[0], est.predict_proba(X_test)[0], atol=1e-5
    )


def test_funnel_estimator_round_trip(tmp_path):
    from skmtl.datasets import make_funnel_synthetic

    X, Y = make_funnel_synthetic(600, random_state=0)
    est = ESMMEstimator(funnel=list(Y.columns), **_FAST).fit(X, Y)
    est.save(tmp_path / "funnel.safetensors")
    loaded = skmtl.load(tmp_path / "funnel.safetensors")
    assert loaded.funnel == est.funnel
    _assert_same_predictions(est, loaded, X)
