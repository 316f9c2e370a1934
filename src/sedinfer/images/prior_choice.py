"""Which score priors a dust-map fit uses: ``--prior MODE [--prior-dir DIR]`` resolved to weight
files with their SHA-256, or prior objects given in Python (issue 18 §6).

Modes: ``conditional`` = s(S) + s(D | S) (``host.pt`` + ``dust_given_host.pt``),
``unconditional`` = s(S) + s(D) (``host.pt`` + ``dust.pt``), ``none`` = the likelihood alone;
the files come from ``prior_dir`` or the shipped folder ``sedinfer/data/dustmap_priors``
(:data:`~sedinfer.images.shipped.SHIPPED_PRIOR_DIR`). Missing, unreadable or wrong-kind weights
are an error before any fit (never a silent fit without priors). Weight files are loaded where a
chunk runs, once per process (:meth:`PriorSpec.load`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sedinfer.digest import file_sha256
from sedinfer.errors import SedinferError
from sedinfer.images.errors import ImageError
from sedinfer.images.shipped import SHIPPED_PRIOR_DIR, data_path

PRIOR_MODES = ("conditional", "unconditional", "none")
PRIOR_FILES = {"conditional": ("host.pt", "dust_given_host.pt"), "unconditional": ("host.pt", "dust.pt")}


@dataclass(frozen=True)
class PriorSpec:
    """Which priors a run uses: ``mode`` and either weight files (loaded where the chunk runs,
    cached per process) or in-memory objects (any score callables; ``mode`` 'custom')."""

    mode: str = "none"
    host_path: str | None = None
    dust_path: str | None = None
    host_sha256: str | None = None
    dust_sha256: str | None = None
    host: Any = field(default=None, compare=False, repr=False)
    dust: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_objects(cls, host=None, dust=None, label: str = "custom") -> PriorSpec:
        """Priors given in Python: a host score s(S) and a dust score s(D | S) or s(D), or None."""
        return cls(mode=label if (host is not None or dust is not None) else "none", host=host, dust=dust)

    def describe(self) -> dict:
        """JSON-able record of the priors (files and SHA-256, or the objects' classes and cards)."""
        out: dict[str, Any] = {"mode": self.mode}
        for tag in ("host", "dust"):
            path, obj = getattr(self, f"{tag}_path"), getattr(self, tag)
            if path is not None:
                out[tag] = {"file": str(path), "sha256": getattr(self, f"{tag}_sha256")}
            elif obj is not None:
                out[tag] = {"object": type(obj).__name__, "kind": getattr(obj, "kind", None),
                            "card": getattr(obj, "card", None) or None}
            else:
                out[tag] = None
        return out

    def label(self) -> str:
        """Short text for FITS headers."""
        if self.mode in ("none", "custom") and self.host is None and self.dust is None \
                and self.host_path is None and self.dust_path is None:
            return "none (likelihood alone)"
        files = [Path(p).name for p in (self.host_path, self.dust_path) if p]
        return f"{self.mode}: " + (" + ".join(files) if files else "objects given in Python")

    def load(self) -> tuple[Any, Any]:
        """(host prior, dust prior), loading weight files once per process."""
        return (_object_or_file(self.host, self.host_path, self.host_sha256),
                _object_or_file(self.dust, self.dust_path, self.dust_sha256))


_PRIOR_CACHE: dict[tuple[str, str | None], Any] = {}


def _object_or_file(obj: Any, path: str | None, sha256: str | None) -> Any:
    """``obj`` if given, else the prior in ``path`` (cached per process by path and SHA-256), else None."""
    if obj is not None:
        return obj
    if not path:
        return None
    key = (str(path), sha256)
    if key not in _PRIOR_CACHE:
        from sedinfer.images.prior import load

        _PRIOR_CACHE[key] = load(path)
    return _PRIOR_CACHE[key]


def resolve_priors(mode: str, prior_dir: str | os.PathLike | None = None) -> PriorSpec:
    """The :class:`PriorSpec` of ``--prior MODE [--prior-dir DIR]``; errors name what is missing."""
    if mode not in PRIOR_MODES:
        raise ImageError(f"--prior must be one of {PRIOR_MODES}, got {mode!r}")
    if mode == "none":
        if prior_dir is not None:
            raise ImageError("--prior none fits the likelihood alone; do not also give --prior-dir")
        return PriorSpec("none")
    shipped = prior_dir is None
    folder = data_path(SHIPPED_PRIOR_DIR) if shipped else Path(prior_dir)
    names = PRIOR_FILES[mode]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        if shipped:
            raise ImageError(
                f"--prior {mode}: the shipped dust-map priors are not in this installation ({folder} "
                f"has no {', '.join(missing)}): the priors are not trained yet. Pass --prior-dir DIR "
                f"with {' and '.join(names)} (written by scripts/train_dust_priors.py), or --prior none "
                "to fit with the likelihood alone (the no-prior baseline)")
        raise ImageError(f"--prior {mode}: {folder} has no {', '.join(missing)} (need {' and '.join(names)}, "
                         "as written by scripts/train_dust_priors.py); or use --prior none")
    host_path, dust_path = (folder / n for n in names)
    spec = PriorSpec(mode, str(host_path.resolve()), str(dust_path.resolve()), file_sha256(host_path),
                     file_sha256(dust_path))
    try:                                                 # unreadable or wrong-kind weights: fail now
        host, dust = spec.load()
    except SedinferError as exc:
        raise ImageError(f"--prior {mode}: {exc}") from exc
    want = {"conditional": "dust_given_host", "unconditional": "dust"}[mode]
    if getattr(host, "kind", None) != "host" or getattr(dust, "kind", None) != want:
        raise ImageError(f"--prior {mode}: {host_path.name} holds a {getattr(host, 'kind', '?')!r} prior and "
                         f"{dust_path.name} a {getattr(dust, 'kind', '?')!r} prior; expected 'host' and "
                         f"{want!r}")
    return spec


__all__ = ["PRIOR_MODES", "PRIOR_FILES", "PriorSpec", "resolve_priors", "file_sha256"]
