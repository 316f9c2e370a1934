"""Photometric filter curves and reference (numpy) synthetic photometry.

Curves come from sedpy's bundled ``.par`` files (no network), from group aliases such as
``"sdss"`` or from two-column text files (wavelength in Å, transmission per photon).
Photometry follows the photon-counting AB convention::

    maggies = ∫ f_λ R λ dλ / ∫ (3631 Jy · c / λ²) R λ dλ

The fast differentiable torch photometry lives in the SPS model; this module is the
reference it is tested against.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from sedpy import observate

from sedinfer.errors import FilterError
from sedinfer.units import AB_ZEROPOINT_FNU_CGS, C_AA_PER_S

FILTER_GROUPS: dict[str, tuple[str, ...]] = {
    "sdss": ("sdss_u0", "sdss_g0", "sdss_r0", "sdss_i0", "sdss_z0"),
    "wise": ("wise_w1", "wise_w2", "wise_w3", "wise_w4"),
    "2mass": ("twomass_J", "twomass_H", "twomass_Ks"),
    "twomass": ("twomass_J", "twomass_H", "twomass_Ks"),
    "galex": ("galex_FUV", "galex_NUV"),
    "hsc": ("hsc_g", "hsc_r", "hsc_i", "hsc_z", "hsc_y"),
    "lsst": tuple(f"lsst_baseline_{b}" for b in "ugrizy"),
    "decam": ("decam_g", "decam_r", "decam_i", "decam_z", "decam_Y"),
}
"""Group aliases (case-insensitive) and the sedpy filter names they expand to."""

VEGA_TO_AB: dict[str, float] = {
    # m_AB - m_Vega. WISE: Jarrett et al. (2011); 2MASS: Blanton & Roweis (2007).
    "wise_w1": 2.699,
    "wise_w2": 3.339,
    "wise_w3": 5.174,
    "wise_w4": 6.620,
    "twomass_J": 0.91,
    "twomass_H": 1.39,
    "twomass_Ks": 1.85,
}

_HOW_TO_LIST = (
    "list the names with sedinfer.filters.available_filters(), use a group alias "
    f"({', '.join(FILTER_GROUPS)}) or give the path of a two-column text file "
    "(wavelength in Å, transmission)"
)


@lru_cache(maxsize=1)
def _available() -> tuple[str, ...]:
    return tuple(observate.list_available_filters())


def available_filters() -> list[str]:
    """Names of the filter curves bundled with sedpy, sorted."""
    return list(_available())


def _frozen(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float64)
    x.setflags(write=False)
    return x


@dataclass(frozen=True, eq=False)
class FilterCurve:
    """One transmission curve: ``wave_aa`` (L,) ascending in Å, ``trans`` (L,) >= 0."""

    name: str
    wave_aa: np.ndarray
    trans: np.ndarray

    def __post_init__(self) -> None:
        wave, trans = _frozen(self.wave_aa), _frozen(self.trans)
        if wave.ndim != 1 or wave.shape != trans.shape or wave.size < 2:
            raise FilterError(f"filter {self.name!r}: wave_aa and trans must be 1-d, same length >= 2")
        finite = np.all(np.isfinite(wave) & np.isfinite(trans))
        if not finite or np.any(np.diff(wave) <= 0) or np.any(trans < 0):
            raise FilterError(f"filter {self.name!r}: need finite ascending wave_aa and finite trans >= 0")
        object.__setattr__(self, "wave_aa", wave)
        object.__setattr__(self, "trans", trans)

    @classmethod
    def from_arrays(cls, name: str, wave_aa: np.ndarray, trans: np.ndarray) -> FilterCurve:
        """Clean a raw curve: drop non-finite points, sort, clip negatives to 0 and trim
        the support where ``trans > 0``, keeping one zero point at each end where present."""
        wave = np.asarray(wave_aa, dtype=np.float64).ravel()
        tr = np.asarray(trans, dtype=np.float64).ravel()
        if wave.shape != tr.shape:
            raise FilterError(f"filter {name!r}: {wave.size} wavelengths but {tr.size} transmissions")
        ok = np.isfinite(wave) & np.isfinite(tr) & (wave > 0)
        order = np.argsort(wave[ok], kind="stable")
        wave, tr = wave[ok][order], np.clip(tr[ok][order], 0.0, None)
        pos = np.flatnonzero(tr > 0)
        if pos.size == 0:
            raise FilterError(f"filter {name!r} has no positive transmission")
        if np.any(np.diff(wave) <= 0):
            raise FilterError(f"filter {name!r} has repeated wavelengths")
        keep = slice(max(pos[0] - 1, 0), min(pos[-1] + 2, wave.size))
        return cls(name, wave[keep], tr[keep])

    def integrals(self) -> tuple[float, float]:
        """Exact ``(∫ R λ dλ [Å²], ∫ R / λ dλ [dimensionless])`` for the piecewise-linear R."""
        a, b = self.wave_aa[:-1], self.wave_aa[1:]
        r0, r1 = self.trans[:-1], self.trans[1:]
        h = b - a
        i_lam = np.sum(h / 6.0 * (r0 * (2 * a + b) + r1 * (a + 2 * b)))
        log_ratio = np.log1p(h / a)
        i_inv = np.sum((r0 * (b * log_ratio - h) + r1 * (h - a * log_ratio)) / h)
        return float(i_lam), float(i_inv)


def _unknown(name: str, candidates: Sequence[str], what: str = "filter") -> FilterError:
    """Build a FilterError naming ``name`` with close matches from ``candidates``."""
    lower = {c.lower(): c for c in candidates}
    close = [lower[c] for c in difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.6)]
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return FilterError(f"unknown {what} {name!r}{hint} ({_HOW_TO_LIST})")


@lru_cache(maxsize=256)
def _sedpy_curve(name: str) -> FilterCurve:
    (filt,) = observate.load_filters([name], min_trans=0.0)
    return FilterCurve.from_arrays(name, filt.wavelength, filt.transmission)


def _file_curve(path: Path) -> FilterCurve:
    try:
        data = np.loadtxt(path, usecols=(0, 1), ndmin=2, comments="#")
    except (OSError, ValueError, IndexError) as err:
        raise FilterError(
            f"cannot read filter file {str(path)!r} ({err}); expected two whitespace-separated "
            "columns: wavelength in Å and transmission"
        ) from err
    return FilterCurve.from_arrays(path.stem, data[:, 0], data[:, 1])


def _resolve(entry: str | os.PathLike | FilterCurve) -> list[FilterCurve]:
    """Curves for one entry: a FilterCurve, group alias, sedpy name or file path."""
    if isinstance(entry, FilterCurve):
        return [entry]
    if not isinstance(entry, (str, os.PathLike)):
        raise FilterError(f"filter entries must be names or paths, got {entry!r}")
    text = os.fspath(entry)
    if isinstance(entry, str) and text.lower() in FILTER_GROUPS:
        return [_sedpy_curve(n) for n in FILTER_GROUPS[text.lower()]]
    if isinstance(entry, str) and text in _available():
        return [_sedpy_curve(text)]
    if os.path.isfile(text):
        return [_file_curve(Path(text))]
    if isinstance(entry, os.PathLike) or os.sep in text or "/" in text:
        raise FilterError(f"filter file {text!r} does not exist ({_HOW_TO_LIST})")
    raise _unknown(text, [*_available(), *FILTER_GROUPS])


class Filters:
    """An ordered set of B filter curves.

    ``names`` is one entry or a sequence of entries; each entry is a sedpy filter name
    (``"sdss_r0"``), a group alias (``"sdss"``, ``"wise"``, ``"2mass"``, ...; see
    :data:`FILTER_GROUPS`), a path to a two-column text file (Å, transmission; named by
    the file stem) or a :class:`FilterCurve`. Per-filter arrays have shape (B,).
    """

    def __init__(self, names: str | os.PathLike | FilterCurve | Sequence[str | os.PathLike | FilterCurve]):
        entries = [names] if isinstance(names, (str, os.PathLike, FilterCurve)) else list(names)
        curves = tuple(c for entry in entries for c in _resolve(entry))
        if not curves:
            raise FilterError(f"no filters given ({_HOW_TO_LIST})")
        self.names: tuple[str, ...] = tuple(c.name for c in curves)
        dupes = sorted({n for n in self.names if self.names.count(n) > 1})
        if dupes:
            raise FilterError(f"filter(s) {dupes} given more than once (after expanding group aliases)")
        self._curves = curves
        self._index = {n: i for i, n in enumerate(self.names)}
        integrals = np.array([c.integrals() for c in curves])
        self.wave_min_aa: np.ndarray = _frozen([c.wave_aa[0] for c in curves])
        """Blue support edge per filter, Å, (B,)."""
        self.wave_max_aa: np.ndarray = _frozen([c.wave_aa[-1] for c in curves])
        """Red support edge per filter, Å, (B,)."""
        self.pivot_wave_aa: np.ndarray = _frozen(np.sqrt(integrals[:, 0] / integrals[:, 1]))
        """Pivot wavelength sqrt(∫Rλdλ / ∫R/λ dλ) per filter, Å, (B,)."""
        self.ab_norm: np.ndarray = _frozen(AB_ZEROPOINT_FNU_CGS * C_AA_PER_S * integrals[:, 1])
        """∫ (3631 Jy as f_λ) R λ dλ per filter, erg/s/cm² · Å (f_λ · λ · dλ), (B,).
        Exact for the piecewise-linear curve: the denominator of the AB flux in maggies."""
        sha = hashlib.sha256()
        for c in curves:
            sha.update(c.name.encode() + b"\0" + c.wave_aa.tobytes() + c.trans.tobytes())
        self._digest = sha.hexdigest()

    # --- container protocol -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._curves)

    def __iter__(self) -> Iterator[FilterCurve]:
        return iter(self._curves)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __getitem__(self, key: int | str) -> FilterCurve:
        if isinstance(key, str):
            if key not in self._index:
                raise _unknown(key, self.names, what="filter in this set")
            return self._curves[self._index[key]]
        return self._curves[key]

    def index(self, name: str) -> int:
        """Position of filter ``name`` in this set."""
        if name not in self._index:
            raise _unknown(name, self.names, what="filter in this set")
        return self._index[name]

    def __repr__(self) -> str:
        return f"Filters({list(self.names)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Filters) and self._digest == other._digest

    def __hash__(self) -> int:
        return hash(self._digest)

    @property
    def digest(self) -> str:
        """SHA-256 hex digest of the names and curves, a stable key for on-disk caches."""
        return self._digest

    # --- magnitude systems --------------------------------------------------------------

    def vega_to_ab(self, names: str | Sequence[str] | None = None) -> np.ndarray:
        """Offsets ``m_AB - m_Vega`` (mag), shape (len(names),); defaults to this set's names.

        Known for WISE (Jarrett et al. 2011) and 2MASS (Blanton & Roweis 2007).
        """
        names = self.names if names is None else ([names] if isinstance(names, str) else list(names))
        names = [m for n in names for m in FILTER_GROUPS.get(n.lower(), (n,))]
        missing = [n for n in names if n not in VEGA_TO_AB]
        if missing:
            raise FilterError(
                f"no Vega-to-AB offset known for filter(s) {missing}; offsets are known for "
                f"{sorted(VEGA_TO_AB)}. Give fluxes in AB (maggies) for other bands."
            )
        return np.array([VEGA_TO_AB[n] for n in names], dtype=np.float64)

    # --- reference photometry ----------------------------------------------------------

    def transmission_on(self, wave_aa: np.ndarray) -> np.ndarray:
        """Curves linearly interpolated onto ``wave_aa`` (L,) Å, zero outside: shape (B, L)."""
        wave = np.asarray(wave_aa, dtype=np.float64)
        return np.stack([np.interp(wave, c.wave_aa, c.trans, left=0.0, right=0.0) for c in self])

    def maggies_from_spectrum(self, wave_aa: np.ndarray, flam_cgs: np.ndarray) -> np.ndarray:
        """AB fluxes (maggies) of observed-frame spectra, photon-counting convention.

        ``wave_aa`` (L,) ascending, Å; ``flam_cgs`` (..., L) in erg/s/cm²/Å. Returns (..., B).
        Both integrals (spectrum and 3631 Jy reference) are trapezoid sums on the spectrum
        grid with the curve interpolated onto it, so a flat 3631 Jy spectrum gives exactly
        1 on any grid; on a fine grid the denominator converges to :attr:`ab_norm`.
        Raises FilterError if a band reaches beyond the spectrum.
        """
        wave = np.asarray(wave_aa, dtype=np.float64)
        flam = np.asarray(flam_cgs, dtype=np.float64)
        if wave.ndim != 1 or wave.size < 2 or np.any(np.diff(wave) <= 0):
            raise ValueError("wave_aa must be a 1-d strictly increasing array of >= 2 wavelengths")
        if flam.shape[-1:] != wave.shape:
            raise ValueError(f"flam_cgs last axis ({flam.shape}) must match wave_aa ({wave.shape})")
        for c in self:
            pos = c.wave_aa[c.trans > 0]
            if pos[0] < wave[0] or pos[-1] > wave[-1]:
                raise FilterError(
                    f"filter {c.name!r} ({pos[0]:.1f}-{pos[-1]:.1f} Å) is not covered by the "
                    f"spectrum ({wave[0]:.1f}-{wave[-1]:.1f} Å)"
                )
        dw = np.diff(wave)
        trap = np.zeros_like(wave)
        trap[:-1] += 0.5 * dw
        trap[1:] += 0.5 * dw
        weights = self.transmission_on(wave) * (wave * trap)  # (B, L), Å²
        ab_flam = AB_ZEROPOINT_FNU_CGS * C_AA_PER_S / wave**2  # (L,), erg/s/cm²/Å
        return flam @ weights.T / (weights @ ab_flam)
