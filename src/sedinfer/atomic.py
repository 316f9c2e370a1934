"""Atomic file output and versioned model files, shared by every part of the package.

Each writer puts its bytes in a temporary file in the destination folder and renames it over
the destination, so a killed job never leaves a half-written file. Model files are dicts of
tensors and plain values (JSON strings for nested configuration) tagged with a format name and
version, read back with ``torch.load(weights_only=True)``: no arbitrary pickles.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sedinfer.errors import SedinferError


def write_atomic(path: str | os.PathLike, write: Callable[[str], None], suffix: str = ".tmp") -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)          # mkstemp makes 0600; outputs are for everyone to read
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically."""
    return write_atomic(path, lambda tmp: Path(tmp).write_text(text))


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure atomically (format from the suffix, PNG by default) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    try:
        return write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=fmt), suffix=f".{fmt}")
    finally:
        plt.close(fig)


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` atomically."""
    import torch

    return write_atomic(path, lambda tmp: torch.save(obj, tmp))


def load_versioned(path: str | os.PathLike, fmt: str, version: int, what: str,
                   device: Any = "cpu") -> dict:
    """Read a model file written with ``{"format": fmt, "format_version": v, ...}``; v ≤ ``version``."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise SedinferError(f"no {what} file at {path}")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - report any unreadable file the same way
        raise SedinferError(f"{path} is not a readable sedinfer {what} file: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise SedinferError(f"{path} is not a sedinfer {what} file (format {fmt!r} expected)")
    if payload.get("format_version", 0) > version:
        raise SedinferError(f"{path} has format version {payload['format_version']}; this sedinfer reads "
                            f"up to {version}: upgrade sedinfer")
    return payload


__all__ = ["write_atomic", "write_text", "save_figure", "save_torch", "load_versioned"]
