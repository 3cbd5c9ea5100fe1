"""Save and load fitted estimators safely: tensors in safetensors, the rest in JSON.

A model file is one `safetensors` file. Its layout:

- 8 bytes: little-endian length N of the header;
- N bytes: the safetensors JSON header, giving each tensor's dtype, shape
  and byte range, and ``"__metadata__"``: ``{"format": "skmtl", "skmtl":
  <document>, "sha256": <digest>}``;
- the tensors' bytes.

The *document* is a JSON object of sections: ``format_version``,
``versions``, ``estimator`` (class), ``params``, ``attributes`` (history,
epochs, device...), ``encoder``, ``tasks``, ``module`` and ``weighting``. A
tensor appears in it as ``{"__tensor__": name}``; tensor names are the
section and the path to the tensor joined by dots (``module.towers.weight``,
``weighting.log_variances_``), so a new section (an optimizer's state, say) is
one more :func:`encode` call. The digest is the SHA-256 of the document and
of every tensor (name, dtype, shape, bytes), so a file edited or damaged
after saving is refused.

Values JSON lacks are tagged objects with one reserved key: ``__tuple__``,
``__dict__`` (keys that are not strings), ``__ndarray__``, ``__device__``,
``__random_state__``, ``__class__`` and ``__object__``. Classes are stored by
name and found among the subclasses already defined of a few known bases
(estimators, encoders, tasks, task weightings, torch optimizers): loading
imports nothing and unpickles nothing. Anything else (a function, an object
of another kind) cannot be saved, and the error names where it is.
"""

import hashlib
import json
import os
import platform
from pathlib import Path

import numpy as np
import safetensors
import sklearn
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from skmtl._base import MultiTaskEstimator
from skmtl._device import loadable_device, resolve_device
from skmtl._encoder import FeatureEncoder
from skmtl._validation import check_is_fitted, format_names
from skmtl.exceptions import ModelFileError
from skmtl.tasks import Task
from skmtl.weighting import TaskWeighting, resolve_weighting

__all__ = ["load"]

FORMAT_VERSION = 1

# The reserved keys of tagged values; a dict using one as a key is stored as
# a list of pairs, so it cannot be mistaken for a tag.
_TAGS = {
    "__tuple__",
    "__dict__",
    "__ndarray__",
    "__device__",
    "__random_state__",
    "__class__",
    "__object__",
    "__tensor__",
}

# Parameters that only shape training, and a value that can replace them
# for saving without changing the predictions.
_TRAINING_ONLY = {"lr_scheduler": None}

# Attributes the document stores in sections of their own; the optimizer and
# scheduler are not saved.
_SECTIONS = {"module_", "encoder_", "tasks_", "weighting_", "_optimizer", "_scheduler"}


# -- classes by name --------------------------------------------------------------


def _class_families():
    """The bases whose subclasses a file may name, and where they may appear."""
    return {
        "__class__": (Task, TaskWeighting, torch.optim.Optimizer),
        "__object__": (FeatureEncoder, TaskWeighting),
    }


def class_name(cls):
    """Return the name a file stores for ``cls``: its module and qualified name.

    Parameters
    ----------
    cls : type

    Returns
    -------
    str
    """
    return f"{cls.__module__}.{cls.__qualname__}"


def _subclasses(base):
    """Every class defined so far that derives from ``base`` (itself included)."""
    found, stack = [], [base]
    while stack:
        cls = stack.pop()
        if cls not in found:
            found.append(cls)
            stack.extend(cls.__subclasses__())
    return found


def find_class(name, bases):
    """Return the already-defined subclass of ``bases`` that ``name`` names.

    Nothing is imported: a class defined in a module of your own is found once
    you have imported that module. A class that moved to another module of
    the same package is found by its qualified name when that is unique.

    Parameters
    ----------
    name : str
        As written by :func:`class_name`.
    bases : type or tuple of type

    Returns
    -------
    type
    """
    bases = bases if isinstance(bases, tuple) else (bases,)
    candidates = [cls for base in bases for cls in _subclasses(base)]
    exact = [cls for cls in candidates if class_name(cls) == name]
    if exact:
        return exact[0]
    package = name.split(".")[0]
    same = [
        cls
        for cls in candidates
        if name.endswith("." + cls.__qualname__)
        and cls.__module__.split(".")[0] == package
    ]
    if len(same) == 1:
        return same[0]
    raise ModelFileError(
        f"The file names the class {name!r}, which is not defined here (as a "
        f"subclass of {' or '.join(b.__name__ for b in bases)}); import the module "
        "that defines it before loading, or install the skmtl that saved the file."
    )


# -- values <-> JSON ----------------------------------------------------------------


def _unsupported(value, where):
    return TypeError(
        f"{where} holds {value!r} (a {type(value).__name__}), which a safe model "
        "file cannot describe: it stores JSON values (numbers, strings, lists, "
        "dicts, tuples, arrays) and classes or objects of skmtl, torch.optim "
        "and your subclasses of them, not functions or other objects. Use "
        "pickle or joblib for this model (load those only from trusted sources)."
    )


def _encode_object(value, where, tensors, key):
    """Encode what is not a plain JSON value, or raise naming ``where``."""
    if isinstance(value, torch.Tensor):
        if tensors is None:
            raise _unsupported(value, where)
        if key in tensors:
            raise ValueError(f"Two tensors would be stored as {key!r}.")
        tensors[key] = value.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(value, tuple):
        return {
            "__tuple__": [
                encode(v, where, tensors, f"{key}.{i}") for i, v in enumerate(value)
            ]
        }
    if isinstance(value, dict):
        pairs = [
            [encode(k, where), encode(v, where, tensors, f"{key}.{k}")]
            for k, v in value.items()
        ]
        return {"__dict__": pairs}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufUO":
        return {
            "__ndarray__": encode(value.tolist(), where),
            "dtype": value.dtype.str,
            "shape": list(value.shape),
        }
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, os.PathLike):  # a checkpoint_dir: kept as its string
        return os.fspath(value)
    if isinstance(value, np.random.RandomState):
        kind, keys, position, has_gauss, gauss = value.get_state(legacy=True)
        return {"__random_state__": [kind, keys.tolist(), position, has_gauss, gauss]}
    families = _class_families()
    if isinstance(value, type) and issubclass(value, families["__class__"]):
        return {"__class__": class_name(value)}
    if isinstance(value, families["__object__"]):
        params = (
            value.get_params(deep=False)
            if isinstance(value, FeatureEncoder)
            else value._init_params()
        )
        return {"__object__": class_name(type(value)), "params": encode(params, where)}
    raise _unsupported(value, where)


def encode(value, where, tensors=None, key=""):
    """Turn ``value`` into JSON values, moving its tensors into ``tensors``.

    Parameters
    ----------
    value : object
        JSON values, tuples, dicts, numpy arrays and scalars, devices, random
        states, classes and parameter objects of the known families, and,
        when ``tensors`` is given, torch tensors, nested in any way.
    where : str
        What ``value`` is, for the error message ("parameter 'encoder'").
    tensors : dict or None, default=None
        Receives each tensor, on the CPU, under its name; None refuses
        tensors.
    key : str, default=""
        Name prefix of the tensors found in ``value``.

    Returns
    -------
    object
        Made of dicts, lists, strings, numbers, booleans and None.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [encode(v, where, tensors, f"{key}.{i}") for i, v in enumerate(value)]
    if (
        isinstance(value, dict)
        and all(isinstance(k, str) for k in value)
        and not (set(value) & _TAGS)
    ):
        return {k: encode(v, where, tensors, f"{key}.{k}") for k, v in value.items()}
    return _encode_object(value, where, tensors, key)


def _decode_tag(tag, value, tensors):
    families = _class_families()
    content = value[tag]
    if tag == "__tensor__":
        if content not in tensors:
            raise ModelFileError(
                f"The document refers to a tensor {content!r} the file lacks."
            )
        return tensors[content]
    if tag == "__tuple__":
        return tuple(decode(v, tensors) for v in content)
    if tag == "__dict__":
        return {decode(k, tensors): decode(v, tensors) for k, v in content}
    if tag == "__ndarray__":
        array = np.asarray(decode(content, tensors), dtype=np.dtype(value["dtype"]))
        return array.reshape(value["shape"])
    if tag == "__device__":
        return torch.device(content)
    if tag == "__random_state__":
        kind, keys, position, has_gauss, gauss = content
        state = np.random.RandomState()
        state.set_state(
            (kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, gauss)
        )
        return state
    if tag == "__class__":
        return find_class(content, families["__class__"])
    cls = find_class(content, families["__object__"])
    return cls(**decode(value["params"], tensors))


def decode(value, tensors=None):
    """Invert :func:`encode`.

    Parameters
    ----------
    value : object
        What :func:`encode` returned, through ``json.loads``.
    tensors : dict or None, default=None
        Tensors by name.

    Returns
    -------
    object
    """
    if isinstance(value, list):
        return [decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    tags = _TAGS.intersection(value)
    if tags:
        return _decode_tag(tags.pop(), value, tensors or {})
    return {k: decode(v, tensors) for k, v in value.items()}


# -- the file -----------------------------------------------------------------------


def _tensor_bytes(tensor):
    return tensor.reshape(-1).view(torch.uint8).numpy().tobytes()


def _digest(text, tensors):
    """SHA-256 of the document and of every tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256(text.encode("utf-8"))
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(
            json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode()
        )
        digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()


def _unshared(tensors):
    """Copy tensors whose memory another one already uses (safetensors refuses them)."""
    seen, result = set(), {}
    for name, tensor in tensors.items():
        pointer = tensor.untyped_storage().data_ptr()
        result[name] = tensor.clone() if pointer in seen and tensor.numel() else tensor
        seen.add(pointer)
    return result


def write_model_file(path, document, tensors):
    """Write ``document`` (JSON values) and ``tensors`` as one safetensors file.

    The file is written beside ``path`` and renamed over it, so a failed write
    never leaves half a model behind.

    Parameters
    ----------
    path : str or path-like
    document : dict
        JSON values only (see :func:`encode`).
    tensors : dict
        Name -> CPU tensor.
    """
    tensors = _unshared(tensors)
    text = json.dumps(document)
    metadata = {"format": "skmtl", "skmtl": text, "sha256": _digest(text, tensors)}
    data = safetensors_bytes(tensors, metadata=metadata)
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _metadata_and_tensors(path):
    """Read the raw metadata and tensors, with one error for any unreadable file."""
    try:
        with safe_open(os.fspath(path), framework="pt", device="cpu") as file:
            metadata = file.metadata() or {}
            names = file.keys()
            tensors = {name: file.get_tensor(name) for name in names}
    except SafetensorError as exc:
        raise ModelFileError(
            f"{os.fspath(path)!r} is not a complete safetensors file: it was truncated "
            f"or damaged, or is another kind of file ({exc})."
        ) from None
    if metadata.get("format") != "skmtl" or "skmtl" not in metadata:
        raise ModelFileError(
            f"{os.fspath(path)!r} is a safetensors file but not an skmtl model: its "
            "metadata has no skmtl document. Save models with est.save(path)."
        )
    return metadata, tensors


def read_model_file(path):
    """Read a file written by :func:`write_model_file`, checking it first.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    document : dict
    tensors : dict
        Name -> CPU tensor.

    Raises
    ------
    ModelFileError
        If the file is truncated or damaged, not an skmtl model, from a newer
        format, or edited since it was written.
    """
    metadata, tensors = _metadata_and_tensors(path)
    where = repr(os.fspath(path))
    try:
        document = json.loads(metadata["skmtl"])
    except json.JSONDecodeError as exc:
        raise ModelFileError(
            f"The skmtl document in {where} is not valid JSON ({exc})."
        ) from None
    version = document.get("format_version") if isinstance(document, dict) else None
    if not isinstance(version, int) or version > FORMAT_VERSION:
        saved_by = (
            document.get("versions", {}).get("skmtl", "?")
            if isinstance(document, dict)
            else "?"
        )
        raise ModelFileError(
            f"{where} is in skmtl model format {version!r} (written by skmtl "
            f"{saved_by}); this skmtl {_skmtl_version()} reads formats up to "
            f"{FORMAT_VERSION}: upgrade skmtl to load it."
        )
    if metadata.get("sha256") != _digest(metadata["skmtl"], tensors):
        raise ModelFileError(
            f"{where} does not match the checksum written when it was saved: its "
            "document or tensors were edited or damaged since."
        )
    return document, tensors


# -- estimators <-> documents ---------------------------------------------------------


def _skmtl_version():
    from skmtl import __version__  # the package imports this module

    return __version__


def _versions():
    return {
        "skmtl": _skmtl_version(),
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
    }


def _encoder_section(encoder):
    if not hasattr(encoder, "_get_state"):
        raise TypeError(
            f"The fitted encoder is a {type(encoder).__name__}, which cannot describe "
            "its state as JSON (it has no _get_state method); the parameter "
            "'encoder' must be None or a FeatureEncoder to save the model. Such "
            "a model can still be pickled."
        )
    return {
        "class": class_name(type(encoder)),
        "state": encode(encoder._get_state(), "the fitted encoder"),
    }


def _task_section(task):
    entry = {
        "class": class_name(type(task)),
        "state": encode(task.get_state(), f"task {task.name!r}"),
    }
    if task.classes is not None:
        # JSON turns an object array of strings into str_ labels; keep the dtype.
        entry["classes_dtype"] = task.classes.dtype.str
    return entry


def _encode_parameter(name, value):
    try:
        return encode(value, f"parameter {name!r}")
    except TypeError as exc:
        if name not in _TRAINING_ONLY:
            raise
        raise TypeError(
            f"{exc} It only matters to training: set_params({name}="
            f"{_TRAINING_ONLY[name]!r}) before saving keeps the predictions."
        ) from None


def _attributes(est, params):
    """The fitted attributes without a section of their own, as JSON."""
    skipped = _SECTIONS | set(params)
    return {
        name: encode(value, f"fitted attribute {name!r}")
        for name, value in vars(est).items()
        if name not in skipped
    }


def estimator_document(est):
    """Describe a fitted estimator as a JSON document and named CPU tensors.

    Parameters
    ----------
    est : MultiTaskEstimator
        Fitted.

    Returns
    -------
    document : dict
    tensors : dict
    """
    check_is_fitted(est, "module_")
    params = est.get_params(deep=False)
    tensors = {}
    document = {
        "format_version": FORMAT_VERSION,
        "versions": _versions(),
        "estimator": class_name(type(est)),
        "params": {k: _encode_parameter(k, v) for k, v in params.items()},
        "attributes": _attributes(est, params),
        **model_sections(est, tensors),
    }
    return document, tensors


def model_sections(est, tensors, weighting_state=None):
    """The sections describing the fitted model: encoder, tasks, network, weighting.

    Parameters
    ----------
    est : MultiTaskEstimator
        Fitted, or being fitted.
    tensors : dict
        Receives the network's and the weighting's tensors.
    weighting_state : dict or None, default=None
        The weighting's state to store; None is its ``_get_state()``.

    Returns
    -------
    dict
        ``encoder``, ``tasks``, ``module`` and ``weighting`` sections.
    """
    if weighting_state is None:
        weighting_state = est.weighting_._get_state()
    return {
        "encoder": _encoder_section(est.encoder_),
        "tasks": [_task_section(task) for task in est.tasks_],
        "module": {
            "class": class_name(type(est.module_)),
            "state": encode(est.module_.state_dict(), "module_", tensors, "module"),
        },
        "weighting": {
            "class": class_name(type(est.weighting_)),
            "state": encode(weighting_state, "weighting_", tensors, "weighting"),
        },
    }


def optimizer_section(optimizer, tensors):
    """Describe a torch optimizer's state (moments, steps, parameter groups).

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    tensors : dict
        Receives its state tensors, named ``optimizer.state.<index>.<name>``.

    Returns
    -------
    dict
        ``class`` and ``state``; :func:`decode` of ``state`` gives what
        ``optimizer.load_state_dict`` takes.
    """
    return {
        "class": class_name(type(optimizer)),
        "state": encode(optimizer.state_dict(), "the optimizer", tensors, "optimizer"),
    }


def save_estimator(est, path):
    """Write a fitted estimator to ``path`` (see :meth:`MultiTaskEstimator.save`).

    Parameters
    ----------
    est : MultiTaskEstimator
    path : str or path-like
    """
    document, tensors = estimator_document(est)
    write_model_file(path, document, tensors)


def _rebuild_task(entry):
    cls = find_class(entry["class"], Task)
    fields = dict(decode(entry["state"]))
    kind = fields.pop("kind")
    task = cls(**fields)
    if task.kind != kind:
        raise ModelFileError(
            f"Task {task.name!r} was saved as {kind!r} but {cls.__name__} is "
            f"{task.kind!r}."
        )
    if "classes_dtype" in entry:
        task.classes = task.classes.astype(np.dtype(entry["classes_dtype"]))
    return task


def _check_weights(module, state, est):
    """Raise naming every tensor that does not fit the rebuilt network."""
    expected = module.state_dict()
    missing = set(expected) - set(state)
    unexpected = set(state) - set(expected)
    wrong = [
        f"{name} {tuple(state[name].shape)} (network {tuple(expected[name].shape)})"
        for name in sorted(set(expected) & set(state))
        if state[name].shape != expected[name].shape
        or state[name].dtype != expected[name].dtype
    ]
    if missing or unexpected or wrong:
        problems = []
        if missing:
            problems.append(f"missing {format_names(missing)}")
        if unexpected:
            problems.append(f"unexpected {format_names(unexpected)}")
        if wrong:
            problems.append(f"wrong shape or dtype {format_names(wrong)}")
        raise ModelFileError(
            f"The weights in the file do not fit the {type(module).__name__} network "
            f"that this skmtl {_skmtl_version()} builds for the saved "
            f"{type(est).__name__}: {'; '.join(problems)}."
        )


def _rebuild_network(est, section, tensors):
    # Building initialises weights at random: leave the caller's RNG alone.
    with torch.random.fork_rng(devices=est._rng_devices()):
        module = est._build_network(est._network_params())
    if class_name(type(module)) != section["class"]:
        raise ModelFileError(
            f"The file holds a {section['class']} network but {type(est).__name__} "
            f"builds a {class_name(type(module))} here."
        )
    state = decode(section["state"], tensors)
    _check_weights(module, state, est)
    module.load_state_dict(state)
    return module


def _rebuild_weighting(est, section, tensors):
    weighting = resolve_weighting(est.loss_weights, est.task_names_)
    if class_name(type(weighting)) != section["class"]:
        raise ModelFileError(
            f"The file holds a {section['class']} task weighting but loss_weights "
            f"gives a {class_name(type(weighting))} here."
        )
    weighting.setup(len(est.tasks_), est.module_.shared_parameters())
    weighting._set_state(decode(section["state"], tensors), est.device_)
    return weighting


def estimator_from_document(document, tensors, device=None):
    """Rebuild the estimator that :func:`estimator_document` described.

    Parameters
    ----------
    document : dict
    tensors : dict
    device : str, torch.device or None, default=None
        Where to put the network; None is the device it was fitted on, or
        the CPU with a DeviceWarning when this machine lacks it.

    Returns
    -------
    MultiTaskEstimator
    """
    cls = find_class(document["estimator"], MultiTaskEstimator)
    params = decode(document["params"])
    unknown = set(params) - set(cls().get_params(deep=False))
    if unknown:
        raise ModelFileError(
            f"The file sets parameters {format_names(unknown)} that {cls.__name__} "
            f"of skmtl {_skmtl_version()} does not have."
        )
    est = cls(**params)
    for name, value in document["attributes"].items():
        setattr(est, name, decode(value))
    est.device_ = (
        loadable_device(est.device_) if device is None else resolve_device(device)
    )
    encoder_section = document["encoder"]
    est.encoder_ = find_class(encoder_section["class"], FeatureEncoder)()
    est.encoder_._set_state(decode(encoder_section["state"]))
    est.tasks_ = [_rebuild_task(entry) for entry in document["tasks"]]
    est.module_ = _rebuild_network(est, document["module"], tensors)
    est.weighting_ = _rebuild_weighting(est, document["weighting"], tensors)
    return est


def load(path, *, device=None):
    """Load a model saved with ``est.save(path)``, without unpickling anything.

    The file is checked before anything is built: a truncated or edited
    file, one from a newer skmtl file format, or one whose weights do not fit
    the network its parameters describe raises
    :class:`~skmtl.exceptions.ModelFileError` saying what is wrong. Classes
    are looked up among those already defined, never imported, so loading a
    file cannot run code that was not already imported.

    Parameters
    ----------
    path : str or path-like
        A file written by ``save``.
    device : str, torch.device or None, default=None
        Where to put the network. None: the device it was fitted on, or the
        CPU with a :class:`~skmtl.exceptions.DeviceWarning` when this machine
        lacks it (a model saved from CUDA loads on a CPU-only machine).

    Returns
    -------
    estimator
        The fitted estimator, predicting as the one that was saved. Continued
        training (``partial_fit``, ``warm_start``) starts a fresh optimizer.

    See Also
    --------
    skmtl.MMoEClassifierRegressor.save : Write a model (every estimator has it).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, pandas as pd
    >>> import skmtl
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame({"color": rng.choice(["red", "blue"], 100),
    ...                   "size": rng.normal(size=100)})
    >>> Y = pd.DataFrame({"red": (X.color == "red").astype(int),
    ...                   "big": (X["size"] > 0).astype(int)})
    >>> est = skmtl.SharedBottomEstimator(max_iter=2, random_state=0).fit(X, Y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "model.safetensors")
    ...     est.save(path)
    ...     loaded = skmtl.load(path)
    >>> np.array_equal(loaded.predict_proba(X)[0], est.predict_proba(X)[0])
    True
    """
    document, tensors = read_model_file(path)
    return estimator_from_document(document, tensors, device)
