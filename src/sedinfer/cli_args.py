"""Argument types and checks shared by the ``sedinfer`` subcommands.

A leaf module: it imports nothing from :mod:`sedinfer.cli` or the ``cli_*`` subcommand modules,
which all import from here (no import cycle between the command line and its subcommands).
"""

from __future__ import annotations

import argparse
import os


def _int_at_least(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0, "an integer >= 0")


def filter_list(text: str) -> str | list[str]:
    """``--filters`` value: a group alias / single name, or a comma-separated list of names."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a filter group alias or comma-separated filter names")
    return names[0] if len(names) == 1 else names


def check_output(path: str, overwrite: bool) -> None:
    """Fail early (before a long computation) on an output that cannot be written."""
    from sedinfer.catalog import catalog_format
    from sedinfer.errors import CatalogError

    catalog_format(path)
    if os.path.exists(path) and not overwrite:
        raise CatalogError(f"{path!r} already exists; pass --overwrite to replace it")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CatalogError(f"output directory {parent!r} does not exist")


def add_cluster_arguments(group, what: str = "run the chunks",
                          workers_help: str = "workers of --scheduler local (default: number of CPUs)",
                          ) -> None:
    """``--scheduler ADDRESS`` and ``--workers N`` (the Dask options every long command shares)."""
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help=f"{what} on a Dask cluster at ADDRESS; 'local' starts a LocalCluster")
    group.add_argument("--workers", type=positive_int, default=None, help=workers_help)


__all__ = ["positive_int", "non_negative_int", "filter_list", "check_output", "add_cluster_arguments"]
