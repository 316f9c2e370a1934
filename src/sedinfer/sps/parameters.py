"""Parameter names, physical limits and validation of parameter batches.

The physical limits below are where the forward model is defined (grid support, positivity),
not a prior: priors live in :mod:`sedinfer.priors`. Values outside raise a
:class:`~sedinfer.errors.ParameterError` that names the parameter, the row and the range.

Notes on the edges of the template grids (documented choices, not silent clipping):
``log_z`` below the lowest BC03 metallicity (log Z/Z_sun = -2.30) uses the lowest grid
spectrum, so the PopSED prior range down to -2.6 is accepted; ``t_burst`` and ``age`` larger
than the age of the Universe at the galaxy's redshift start star formation at the Big Bang.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from sedinfer.errors import ParameterError

#: name -> (low, high, unit, description)
PARAMETERS: dict[str, tuple[float, float, str, str]] = {
    "redshift": (0.0, 10.0, "", "redshift"),
    "log_mass": (-2.0, 16.0, "dex(Msun)", "log10 stellar mass formed"),
    "log_z": (-2.6, 0.7, "dex", "log10 stellar metallicity Z/Z_sun"),
    "age": (1e-3, 20.0, "Gyr", "time since the start of star formation"),
    "tau": (1e-3, 100.0, "Gyr", "SFH e-folding time"),
    "f_burst": (0.0, 1.0, "", "fraction of the mass formed in the burst"),
    "t_burst": (1e-4, 20.0, "Gyr", "lookback time of the burst"),
    "av": (0.0, 10.0, "mag", "V-band attenuation (Calzetti)"),
    "tau_bc": (0.0, 10.0, "", "birth-cloud optical depth at 5500 A"),
    "tau_ism": (0.0, 10.0, "", "diffuse-ISM optical depth at 5500 A"),
    "n_dust": (-4.0, 2.0, "", "slope delta of the modified Calzetti curve"),
    "log_u": (-4.0, 0.0, "dex", "log10 ionisation parameter"),
    "qpah": (0.1, 4.58, "%", "PAH mass fraction (DL07)"),
    "umin": (0.1, 20.0, "", "minimum radiation field U_min (DL07)"),
    "gamma": (0.0, 1.0, "", "fraction of dust heated by U > U_min (DL07)"),
    "f_agn": (0.0, 10.0, "", "AGN torus luminosity / intrinsic bolometric stellar luminosity"),
}
for _i in range(1, 10):
    PARAMETERS[f"kappa{_i}"] = (0.0, 1.0, "", "stick-breaking variable of the Dirichlet SFH weights")


def as_batch(theta, names: Sequence[str], low: Sequence[float], high: Sequence[float],
             dtype: torch.dtype = torch.float32, device=None) -> dict[str, torch.Tensor]:
    """Validate ``theta`` ((N, D) in ``names`` order, (D,), or a mapping name -> (N,)) and
    return a dict name -> (N,) tensor. Raises ParameterError naming the culprit."""
    names = tuple(names)
    if isinstance(theta, Mapping):
        unknown = [k for k in theta if k not in names]
        missing = [k for k in names if k not in theta]
        if unknown:
            raise ParameterError(f"unknown parameter(s) {unknown}; this model takes {list(names)}")
        if missing:
            raise ParameterError(f"missing parameter(s) {missing}; this model takes {list(names)}")
        cols = [torch.as_tensor(theta[k], dtype=dtype, device=device).reshape(-1) for k in names]
        sizes = {c.shape[0] for c in cols}
        if len(sizes) > 1:
            raise ParameterError(f"parameter columns have different lengths {sorted(sizes)}")
        theta = torch.stack(cols, -1)
    else:
        theta = torch.as_tensor(theta, dtype=dtype, device=device)
        if theta.ndim == 1:
            theta = theta.unsqueeze(0)
        if theta.ndim != 2 or theta.shape[-1] != len(names):
            raise ParameterError(f"theta has shape {tuple(theta.shape)}; expected (N, {len(names)}) with "
                                 f"columns {list(names)}, or a dict of columns")
    check_values(theta, names, low, high)
    return {k: theta[:, i] for i, k in enumerate(names)}


def check_values(theta: torch.Tensor, names: Sequence[str], low, high) -> None:
    """Raise ParameterError for the first non-finite or out-of-range value, column by column."""
    values = theta.detach()
    bad_finite = ~torch.isfinite(values)
    lo = torch.as_tensor(np.asarray(low, dtype=np.float64), dtype=values.dtype, device=values.device)
    hi = torch.as_tensor(np.asarray(high, dtype=np.float64), dtype=values.dtype, device=values.device)
    bad_range = (values < lo) | (values > hi)
    if not (bad_finite.any() or bad_range.any()):
        return
    for j, name in enumerate(names):
        for mask, what in ((bad_finite[:, j], "non-finite"), (bad_range[:, j], "out-of-range")):
            rows = torch.nonzero(mask).flatten()
            if len(rows):
                r = int(rows[0])
                raise ParameterError(
                    f"parameter '{name}' has {what} value {values[r, j].item():.6g} in row {r} "
                    f"({len(rows)} row(s) affected); expected a finite value in [{float(low[j]):g}, "
                    f"{float(high[j]):g}]")
