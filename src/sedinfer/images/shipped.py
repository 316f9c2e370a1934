"""What the package ships for ``sedinfer dustmap fit``: its data folder, the folder the trained
dust-map prior weights are to ship in, and the example cubes of ``--demo``.

Nothing is read at import; the paths may not exist in an installation (the errors say so).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sedinfer.images.errors import ImageError

SHIPPED_PRIOR_DIR = "dustmap_priors"
"""Folder of ``sedinfer/data`` where the package's trained prior weights are to ship."""
DEMO_DIR = ("demo", "dustmap")
"""Folder of ``sedinfer/data`` where example cubes for ``--demo`` are to ship."""


def data_path(*parts: str) -> Path:
    """A path inside the installed ``sedinfer/data`` folder (it may not exist)."""
    return Path(str(resources.files("sedinfer") / "data")).joinpath(*parts)


def demo_cubes() -> list[Path]:
    """The shipped example cubes of ``--demo``; an :class:`ImageError` when none ship."""
    folder = data_path(*DEMO_DIR)
    cubes = sorted(p for p in folder.glob("*.fits")) if folder.is_dir() else []
    if not cubes:
        raise ImageError(f"--demo: this installation ships no example cubes (nothing in {folder}); "
                         "run 'sedinfer dustmap simulate --n 2 --out DIR' and fit DIR instead")
    return cubes


__all__ = ["SHIPPED_PRIOR_DIR", "DEMO_DIR", "data_path", "demo_cubes"]
