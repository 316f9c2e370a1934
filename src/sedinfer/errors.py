"""Exception types of sedinfer.

Every error names the culprit (parameter, column, filter) and what was expected, so a
command-line user can fix the input from the message alone.
"""

from __future__ import annotations


class SedinferError(Exception):
    """Base class of all sedinfer errors."""


class ParameterError(SedinferError, ValueError):
    """A model parameter is unknown, missing, non-finite, out of bounds or of the wrong shape."""


class FilterError(SedinferError, ValueError):
    """A filter name is unknown or a filter file is unreadable."""


class GridError(SedinferError, RuntimeError):
    """A template grid could not be found or read."""


class CatalogError(SedinferError, ValueError):
    """A catalog is missing columns or holds values that cannot be used."""
