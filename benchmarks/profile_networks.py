"""Time one training step of each skmtl network, and its parts, on random inputs.

A step is forward, backward and an Adam step on census-income sizes: 39 code
columns (32 categorical + 7 quantile-bin columns, census cardinalities) embedded
in 8 dimensions, 7 numeric columns (d_in = 319), 2 binary tasks, the estimators'
default architectures (MMoE 8 experts of 64, PLE 2 levels of 2 shared + 2 task
experts of 64, DCN and Shared-Bottom defaults, towers of 32). Each part (input
layer, body, every PLE level, towers) is also timed alone, forward and
backward on inputs captured from a forward pass, and the Adam step alone.

``--baseline REV`` also builds every network from ``skmtl/`` at git revision
REV, and ``--bare`` the hand-written model of ``bare_reference.py`` (whole
step only); all variants are timed interleaved, repeat by repeat, so a change
in the machine's load hits each. Wall and CPU (``process_time``) times
are recorded; on a shared machine compare CPU minima. Results go to a table on
stdout and, with ``--out``, JSON lines (one record per network, batch size,
variant and part). Not collected by pytest.

Examples
--------
python benchmarks/profile_networks.py --baseline HEAD~3 --out /tmp/profile.jsonl
python benchmarks/profile_networks.py --networks ple --batch-sizes 1024 --repeats 15
"""

import argparse
import importlib
import io
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The checkout first, so the working tree's skmtl is timed even when installed.
sys.path[:0] = [str(ROOT), str(HERE)]
import _data
import bare_reference as bare

N_NUMERIC = 7
N_TASKS = 2
# Codes 0 (unknown) and K + 1 (missing) besides the K known values; the bin
# columns have 32 bins.
CARDINALITIES = [k + 2 for k in _data.CARDINALITIES.values()]
CARDINALITIES += [_data.N_BINS + 2] * N_NUMERIC
ARCHITECTURES = {
    "mmoe": ("MMoE", {"n_experts": 8, "expert_hidden_sizes": (64,)}),
    "ple": ("PLE", {"n_levels": 2, "n_shared_experts": 2, "n_task_experts": 2,
                    "expert_hidden_sizes": (64,)}),
    "dcn": ("DCN", {}),
    "shared_bottom": ("SharedBottom", {}),
}  # fmt: skip


def builder(nn_module):
    """Return ``build(name)`` making the network ``name`` from ``skmtl.nn`` module."""

    def build(name):
        class_name, kwargs = ARCHITECTURES[name]
        cls = getattr(nn_module, class_name)
        return cls(CARDINALITIES, N_NUMERIC, [1] * N_TASKS, embedding_dim=8,
                   tower_hidden_sizes=(32,), **kwargs)  # fmt: skip

    return build


def build_bare(name):
    """Return the hand-written model of ``benchmarks/bare_reference.py``."""
    return bare.MODELS[name](CARDINALITIES, N_NUMERIC, n_tasks=N_TASKS)


def random_batch(batch_size, seed=0):
    """Return ``(network inputs, 0/1 targets)`` for one batch of random rows."""
    gen = torch.Generator().manual_seed(seed)
    codes = [torch.randint(0, k, (batch_size,), generator=gen) for k in CARDINALITIES]
    numeric = torch.randn(batch_size, N_NUMERIC, generator=gen)
    targets = torch.randint(0, 2, (batch_size, N_TASKS), generator=gen).float()
    return (torch.stack(codes, 1), numeric), targets


# The only two places that know the networks' call convention.
def forward(net, inputs):
    """Return the network's logits for ``inputs``."""
    return net(*inputs)


def embed(net, inputs):
    """Return the input layer's representation of ``inputs``."""
    return net.input(*inputs)


def load_nn_at(revision):
    """Import ``skmtl.nn`` as it was at git ``revision``, beside the current one.

    The ``skmtl`` tree of that revision is unpacked into a temporary folder
    and imported with the current ``skmtl`` modules set aside; afterwards they
    are put back, and the old modules live on through the returned module.
    """
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "skmtl"],
                         check=True, capture_output=True).stdout  # fmt: skip
    folder = tempfile.mkdtemp(prefix="skmtl-baseline-")
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(folder, filter="data")

    def ours(name):
        return name == "skmtl" or name.startswith("skmtl.")

    current = {k: m for k, m in sys.modules.items() if ours(k)}
    for name in current:
        del sys.modules[name]
    sys.path.insert(0, folder)
    try:
        return importlib.import_module("skmtl.nn")
    finally:
        sys.path.remove(folder)
        for name in [k for k in sys.modules if ours(k)]:
            del sys.modules[name]
        sys.modules.update(current)


def _backward_through(function, inputs):
    """Return a callable running ``function(inputs)`` forward and backward."""
    out = function(inputs)
    grad = torch.randn_like(out)

    def run():
        function(inputs).backward(grad)

    return run


def parts(net, inputs, targets):
    """Return ``{part: callable}``: the whole step, then each part alone.

    Every part but ``adam`` runs forward and backward on inputs captured from
    one forward pass (detached, so a part's backward stops at its input). A
    bare model has no parts: only ``step`` and ``adam``.
    """
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        loss = F.binary_cross_entropy_with_logits(forward(net, inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # Adam's state exists before "adam" is timed alone
    out = {"step": step, "adam": optimizer.step}
    if not hasattr(net, "represent"):
        return out
    with torch.no_grad():
        x = embed(net, inputs)
        body = net.represent(x)
    x, body = x.requires_grad_(), body.requires_grad_()
    out["input"] = _backward_through(lambda i: embed(net, i), inputs)
    out["body"] = _backward_through(net.represent, x)
    for i, level in enumerate(getattr(net, "levels", [])):
        out[f"body: level {i}"] = _backward_through(level, x)
        with torch.no_grad():
            x = level(x).requires_grad_()
    out["towers"] = _backward_through(net.towers, body)
    return out


def time_calls(function, n_calls):
    """Return the mean wall and CPU milliseconds of ``n_calls`` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n_calls):
        function()
    scale = 1e3 / n_calls
    return (time.perf_counter() - wall) * scale, (time.process_time() - cpu) * scale


def profile(name, batch_size, variants, args):
    """Time every part of network ``name`` for each variant, interleaved.

    Returns
    -------
    records : list of dict
        One per variant and part, with wall and CPU milliseconds per repeat.
    """
    inputs, targets = random_batch(batch_size)
    runs, n_params = {}, {}
    for label, build in variants.items():
        torch.manual_seed(0)
        net = build(name)
        n_params[label] = sum(p.numel() for p in net.parameters())
        runs[label] = parts(net, inputs, targets)
        for function in runs[label].values():
            time_calls(function, 2)  # warm-up
    times = {(v, p): ([], []) for v in runs for p in runs[v]}
    for _ in range(args.repeats):
        for label, functions in runs.items():
            for part, function in functions.items():
                wall, cpu = time_calls(function, args.steps)
                times[label, part][0].append(wall)
                times[label, part][1].append(cpu)
    return [
        {"network": name, "batch_size": batch_size, "variant": label, "part": part,
         "n_parameters": n_params[label], "unit": "ms", "wall": wall, "cpu": cpu}
        for (label, part), (wall, cpu) in times.items()
    ]  # fmt: skip


def table(records):
    """Return the records as a Markdown table of minima and medians."""
    header = ("| network | batch | variant | part | CPU min | CPU median | wall min "
              "| vs first variant (CPU min) |")  # fmt: skip
    lines = [header, "|---|---:|---|---|---:|---:|---:|---:|"]
    first = {}
    for r in records:
        key = (r["network"], r["batch_size"], r["part"])
        cpu_min = min(r["cpu"])
        first.setdefault(key, cpu_min)
        cells = [r["network"], r["batch_size"], r["variant"], r["part"],
                 f"{cpu_min:.2f}", f"{np.median(r['cpu']):.2f}",
                 f"{min(r['wall']):.2f}", f"{first[key] / cpu_min:.2f}x"]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    """Parse the command line (see ``--help``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--networks", nargs="*", default=list(ARCHITECTURES),
                   choices=list(ARCHITECTURES))  # fmt: skip
    p.add_argument("--batch-sizes", nargs="*", type=int, default=[1024, 256])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=7, help="timed rounds per part")
    p.add_argument("--steps", type=int, default=10, help="calls per timed round")
    p.add_argument("--baseline", default=None, help="git revision to compare with")
    p.add_argument("--bare", action="store_true", help="time bare_reference.py too")
    p.add_argument("--out", default=None, help="JSON lines file to write")
    return p.parse_args(argv)


def main(argv=None):
    """Profile the selected networks and print (and optionally write) the results."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    import skmtl.nn

    variants = {}
    if args.bare:
        variants["bare"] = build_bare
    if args.baseline:
        variants[args.baseline] = builder(load_nn_at(args.baseline))
    variants["worktree"] = builder(skmtl.nn)
    load_before = os.getloadavg()[0]
    records = []
    for name in args.networks:
        for batch_size in args.batch_sizes:
            records += profile(name, batch_size, variants, args)
    settings = {
        "threads": args.threads, "repeats": args.repeats, "steps": args.steps,
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus {platform.node()}",
        "loadavg_before_after": [load_before, os.getloadavg()[0]],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }  # fmt: skip
    print(table(records))
    if args.out:
        with open(args.out, "w") as f:
            f.writelines(json.dumps({**r, **settings}) + "\n" for r in records)


if __name__ == "__main__":
    main()
