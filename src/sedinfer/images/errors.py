"""Errors of the image model and its inputs (a leaf module: nothing to import but the base class)."""

from __future__ import annotations

from sedinfer.errors import SedinferError


class ImageError(SedinferError, ValueError):
    """An image cube, variance, PSF or band list is unusable; the message names what and why."""


__all__ = ["ImageError"]
