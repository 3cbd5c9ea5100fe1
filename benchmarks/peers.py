"""Peer libraries (DeepCTR-Torch, torch-rechub): set-up and epoch timing.

The peers live in their own virtual environment so the main one stays clean:

    python benchmarks/peers.py --setup            # make the venv, install peers
    <venv>/bin/python benchmarks/peers.py --run deepctr_mmoe --epochs 2 ...

``--run`` is what ``run.py`` calls in a subprocess; it prints one line
``PEER_RESULT {json}`` with the warm-up and timed epoch seconds, then the
seconds of predicting every row (``--predict-repeats`` times, batch
``PREDICT_BATCH`` as in the bare reference's predict). Each peer is trained
and scores with its own documented entry points (DeepCTR's ``fit`` and
``predict``, torch-rechub's ``MTLTrainer`` over its ``TorchDataset``), since
that is what a user of the library pays for.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _data

VENV = Path(os.environ.get("SKMTL_PEERS_VENV", "/tmp/peers-venv"))
PEERS = ["deepctr_mmoe", "deepctr_ple", "rechub_mmoe", "rechub_ple"]
MARKER = "PEER_RESULT "
# Rows per predict batch: skmtl's and the bare reference's predict batch.
PREDICT_BATCH = 4096


def peers_python():
    """Return the peers venv's python, or None when it was not set up.

    Returns
    -------
    path : pathlib.Path or None
    """
    python = VENV / "bin" / "python"
    return python if python.exists() else None


def setup_venv():
    """Create the peers venv and install the peers without touching torch.

    A dry run comes first; when it would install torch, the peers are
    installed with ``--no-deps`` so the system torch stays the only one.

    Returns
    -------
    log : str
        pip's output, for the record.
    """
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(VENV)], check=True
    )
    pip = [str(VENV / "bin" / "pip"), "install"]
    reqs = ["-r", str(Path(__file__).parent / "requirements.txt")]
    dry = subprocess.run(
        pip + ["--dry-run", *reqs], check=True, capture_output=True, text=True
    )
    would = [ln for ln in dry.stdout.splitlines() if ln.startswith("Would install")]
    extra = ["--no-deps"] if any(" torch-" in ln for ln in would) else []
    # check=False: a failed install is reported in the log, not raised.
    done = subprocess.run(
        pip + extra + reqs, check=False, capture_output=True, text=True
    )
    return dry.stdout + done.stdout + done.stderr


def _deepctr_columns(enc):
    from deepctr_torch.inputs import DenseFeat, SparseFeat

    sparse = [
        SparseFeat(c, vocabulary_size=k, embedding_dim=8)
        for c, k in zip(enc.columns, enc.cardinalities)
    ]
    return sparse + [DenseFeat(c, 1) for c in _data.CONTINUOUS]


def _deepctr_model(kind, enc):
    from deepctr_torch.models import MMOE, PLE

    # Same sizes as the bare reference; gates are a single linear layer and the
    # l2 terms are off, since the bare model has neither.
    common = {
        "dnn_feature_columns": _deepctr_columns(enc),
        "expert_dnn_hidden_units": (64,),
        "gate_dnn_hidden_units": (),
        "tower_dnn_hidden_units": (32,),
        "l2_reg_linear": 0.0,
        "l2_reg_embedding": 0.0,
        "task_types": ("binary", "binary"),
        "task_names": tuple(_data.LABELS),
        "seed": 0,
    }
    if kind == "mmoe":
        model = MMOE(num_experts=8, **common)
    else:
        model = PLE(shared_expert_num=2, specific_expert_num=2, num_levels=2, **common)
    model.compile("adam", loss=["binary_crossentropy", "binary_crossentropy"])
    return model


def _column_arrays(enc):
    x = {c: enc.codes[:, j].numpy() for j, c in enumerate(enc.columns)}
    x.update({c: enc.dense[:, j].numpy() for j, c in enumerate(_data.CONTINUOUS)})
    return x


def _timed_calls(fn, n_calls):
    times = []
    for _ in range(n_calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _deepctr_run(kind, enc, batch_size, n_epochs, n_predict):
    model = _deepctr_model(kind, enc)
    x, y = _column_arrays(enc), enc.y.numpy()
    # verbose=0 skips the per-batch train metrics DeepCTR would compute.
    epochs = _timed_calls(
        lambda: model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0), n_epochs
    )
    predict = _timed_calls(lambda: model.predict(x, PREDICT_BATCH), 1 + n_predict)
    return epochs, predict


def _rechub_model(kind, enc):
    from torch_rechub.basic.features import DenseFeature, SparseFeature
    from torch_rechub.models.multi_task import MMOE, PLE

    features = [
        SparseFeature(c, vocab_size=k, embed_dim=8)
        for c, k in zip(enc.columns, enc.cardinalities)
    ] + [DenseFeature(c) for c in _data.CONTINUOUS]
    types = ["classification", "classification"]
    # torch-rechub's MLP always adds BatchNorm1d; it cannot be switched off.
    expert = {"dims": [64]}
    towers = [{"dims": [32]}, {"dims": [32]}]
    if kind == "mmoe":
        return MMOE(features, types, 8, expert, towers)
    return PLE(features, types, 2, 2, 2, expert, towers)


def _rechub_run(kind, enc, batch_size, n_epochs, n_predict):
    from torch.utils.data import DataLoader
    from torch_rechub.trainers import MTLTrainer
    from torch_rechub.utils.data import PredictDataset, TorchDataset

    torch.manual_seed(0)
    model = _rechub_model(kind, enc)
    # weight_decay=0: plain Adam like the bare reference (rechub defaults 1e-5).
    trainer = MTLTrainer(
        model,
        ["classification", "classification"],
        optimizer_params={"lr": 1e-3, "weight_decay": 0.0},
        n_epoch=n_epochs,
        model_path=os.environ.get("TMPDIR", "/tmp"),
    )
    x = _column_arrays(enc)
    # The loaders DataGenerator.generate_dataloader builds for training and test.
    loader = DataLoader(
        TorchDataset(x, enc.y.numpy()), batch_size=batch_size, shuffle=True
    )
    test_loader = DataLoader(
        PredictDataset(x), batch_size=PREDICT_BATCH, shuffle=False
    )
    epochs = _timed_calls(lambda: trainer.train_one_epoch(loader), n_epochs)
    predict = _timed_calls(lambda: trainer.predict(model, test_loader), 1 + n_predict)
    return epochs, predict


RUNNERS = {"deepctr": _deepctr_run, "rechub": _rechub_run}


def run_peer(name, args):
    """Train one peer model; return its epoch and predict times (inside the venv).

    Parameters
    ----------
    name : str
        One of :data:`PEERS`, ``"<library>_<model>"``.
    args : argparse.Namespace
        Data, batch size, epochs, repeats and thread settings.

    Returns
    -------
    result : dict
        ``warmup`` and ``epochs`` (seconds), ``predict_warmup`` and
        ``predict`` (seconds to score every row), the library version, rows.
    """
    torch.set_num_threads(args.threads)
    lib, kind = name.split("_")
    X, Y, source = _data.load_dataset(args.data, args.nrows, args.rows, args.synthetic)
    enc = _data.pre_encode(X, Y, _data.fit_pre_encoder(X))
    # The peers print progress to stdout; keep stdout for the result line.
    with contextlib.redirect_stdout(sys.stderr):
        times, predict = RUNNERS[lib](
            kind, enc, args.batch_size, 1 + args.epochs, args.predict_repeats
        )
    module = {"deepctr": "deepctr_torch", "rechub": "torch_rechub"}[lib]
    from importlib.metadata import version

    dist = {"deepctr": "deepctr-torch", "rechub": "torch-rechub"}[lib]
    return {
        "peer": name,
        "module": module,
        "version": version(dist),
        "warmup": times[:1],
        "epochs": times[1:],
        "predict_warmup": predict[:1],
        "predict": predict[1:],
        "rows": len(X),
        "source": source,
    }


def _parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setup", action="store_true", help="create venv, install peers")
    p.add_argument("--run", choices=PEERS, help="time one peer (inside the venv)")
    p.add_argument("--data", default=None)
    p.add_argument("--nrows", type=int, default=None)
    p.add_argument("--rows", type=int, default=None)
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--predict-repeats", type=int, default=3)
    return p.parse_args(argv)


def main(argv=None):
    """Entry point: ``--setup`` or ``--run NAME``."""
    args = _parse(argv)
    if args.setup:
        print(setup_venv())
    if args.run:
        print(MARKER + json.dumps(run_peer(args.run, args)), flush=True)


if __name__ == "__main__":
    main()
