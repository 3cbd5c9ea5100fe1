"""Resolve the ``device`` parameter and move fitted modules between machines."""

import warnings

import torch

from skmtl.exceptions import DeviceWarning


def resolve_device(device):
    """Return the ``torch.device`` that ``device`` asks for.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` picks CUDA when available, else the CPU; anything else is
        passed to ``torch.device``.

    Returns
    -------
    torch.device
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device ({exc}); use 'auto', "
            "'cpu', 'cuda' or 'cuda:N'."
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available; use "
            "device='auto' or 'cpu'."
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} was requested but MPS is not available.")
    return resolved


def loadable_device(device):
    """Return ``device`` if this machine has it, else the CPU with a DeviceWarning.

    Parameters
    ----------
    device : torch.device
        The device a model was fitted on.

    Returns
    -------
    torch.device
    """
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }.get(device.type, False)
    if available:
        return device
    warnings.warn(
        f"This model was fitted on {device} which is not available here; it is "
        "loaded on the CPU.",
        DeviceWarning,
        stacklevel=3,
    )
    return torch.device("cpu")


def _cpu_has_native_bf16():
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), on Linux."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "")
    except OSError:  # not Linux: no cheap, reliable way to tell
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def resolve_precision(precision, device):
    """Return ``"fp32"`` or ``"bf16"`` for the ``precision`` parameter on ``device``.

    Parameters
    ----------
    precision : {"fp32", "bf16", "auto"}
        ``"auto"`` is ``"bf16"`` where ``device`` computes bfloat16 natively: a
        CUDA GPU that supports it, or a CPU with AVX512-BF16 or AMX.
    device : torch.device

    Returns
    -------
    str
    """
    if precision != "auto":
        return precision
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
    else:
        native = device.type == "cpu" and _cpu_has_native_bf16()
    return "bf16" if native else "fp32"
