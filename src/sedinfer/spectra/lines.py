"""Rest-frame (vacuum) wavelengths of the galaxy lines marked in the occlusion figures.

The lines of Jespersen et al. (§5.3, Figs. 13–14): the ionised-gas emission lines Hα, Hβ,
[O II] λλ3727, 3730 and [O III] λλ4960, 5008, and the stellar absorption lines Ca II H & K,
Sr II λλ4078, 4217, Fe I λλ4385, 5271, 5330, the Mg I b triplet and Na I D.

Wavelengths are **vacuum**, like the SDSS grid. The emission lines are the vacuum values of the
SDSS spectroscopic pipeline's line list (idlspec2d ``emlines.par``: Hα 6564.61, Hβ 4862.68,
[O II] 3727.09, 3729.88, [O III] 4960.295, 5008.240 Å). The absorption lines are the air
wavelengths of the NIST Atomic Spectra Database (Kramida et al., NIST ASD v5) converted with
Morton (2000, ApJS 130, 403, eq. 8; :func:`sedinfer.spectra.skylines.air_to_vacuum`), rounded to
0.01 Å; ``wave_air_aa`` keeps the air values, and a test checks both columns agree (the SDSS
emission-line values included, within 0.02 Å).

The Fe I lines are three strong lines inside the Lick Fe4383, Fe5270 and Fe5335 bands (Worthey
et al. 1994, ApJS 94, 687); at SDSS resolution they are blends with other Fe I and Ca I lines.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GalaxyLine:
    """A line (or multiplet) drawn as one label: vacuum and air wavelengths (Å, rest frame) of
    its components, ``kind`` ``"emission"`` or ``"absorption"``, and a plot label."""

    name: str
    label: str
    wave_vac_aa: tuple[float, ...]
    wave_air_aa: tuple[float, ...]
    kind: str


GALAXY_LINES: tuple[GalaxyLine, ...] = (
    GalaxyLine("H_alpha", "Hα", (6564.61,), (6562.80,), "emission"),
    GalaxyLine("H_beta", "Hβ", (4862.68,), (4861.33,), "emission"),
    GalaxyLine("OII_3727", "[O II]", (3727.09, 3729.88), (3726.03, 3728.82), "emission"),
    GalaxyLine("OIII_5008", "[O III]", (4960.30, 5008.24), (4958.91, 5006.84), "emission"),
    GalaxyLine("CaII_HK", "Ca II H&K", (3934.78, 3969.59), (3933.66, 3968.47), "absorption"),
    GalaxyLine("SrII", "Sr II", (4078.86, 4216.71), (4077.71, 4215.52), "absorption"),
    GalaxyLine("FeI", "Fe I", (4384.78, 5271.00, 5329.52), (4383.54, 5269.54, 5328.04), "absorption"),
    GalaxyLine("MgI_b", "Mg I b", (5168.76, 5174.13, 5185.05), (5167.32, 5172.68, 5183.60), "absorption"),
    GalaxyLine("NaI_D", "Na D", (5891.58, 5897.56), (5889.95, 5895.92), "absorption"),
)
"""The lines of the occlusion figures (module docstring for the sources)."""

H_ALPHA_VAC_AA: float = GALAXY_LINES[0].wave_vac_aa[0]
"""Hα, vacuum rest wavelength (Å)."""


def line(name: str) -> GalaxyLine:
    """The :data:`GALAXY_LINES` entry called ``name`` (e.g. ``"H_alpha"``)."""
    for entry in GALAXY_LINES:
        if entry.name == name:
            return entry
    raise KeyError(f"no line {name!r}; known: {[e.name for e in GALAXY_LINES]}")


__all__ = ["GALAXY_LINES", "GalaxyLine", "H_ALPHA_VAC_AA", "line"]
