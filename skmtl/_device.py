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
