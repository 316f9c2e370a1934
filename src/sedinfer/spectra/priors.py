"""Population priors of the SDSS + WISE mocks: infrared parameters coupled to the optical, or not.

Both priors share the optical block (what the SDSS spectrum constrains) and the infrared
marginals; they differ only in the dependence between the two blocks (docs/infrared.md):

* **coupled**: the infrared parameters are drawn given the optical ones,
  - q_PAH rises with metallicity (Draine et al. 2007, ApJ 663, 866: median 1.0 % below
    12 + log O/H = 8.1, 3.55 % above; Rémy-Ruyer et al. 2015, A&A 582, A121): a logistic step
    in log Z/Z_sun at −0.59 (8.1 − 8.69, Asplund et al. 2009), width 0.15 dex, scatter 0.4 %;
  - U_min rises with specific SFR (Magdis et al. 2012, ApJ 760, 6: ⟨U⟩ ∝ SFR/M_dust, rising as
    (1 + z)^1.15 on the main sequence and above it): log U_min = 0.5 (log sSFR/yr⁻¹ + 10) +
    1.15 log(1 + z) ± 0.2 dex, the slope 0.5 between U ∝ sSFR (fixed M_dust/M_*) and the flatter
    law implied by M_dust/M_* rising with sSFR (da Cunha et al. 2010, MNRAS 403, 1894);
  - with an AGN component (``f_agn``), log f_agn = −3.5 + (log M − 10.5) + 0.5 (log U + 2.5)
    ± 0.7 dex: AGN are more common in massive hosts (Kauffmann et al. 2003, MNRAS 346, 1055) and
    show high [O III]/Hβ, which the model's nebular lines carry through log U; the pivot puts
    4.8 % of the selected mocks at W1 − W2 > 0.8 (Stern et al. 2012), against 1.7 % without the
    AGN component (600 mocks, seed 1);
* **separable**: the same draw with each infrared column permuted at random across galaxies,
  which keeps every marginal exactly (also after a selection on the optical) and makes the
  infrared independent of the optical, as SED codes assume.

γ (the fraction of dust at U > U_min) is independent in both: LogUniform(0.001, 0.15)
(prospector-α, Leja et al. 2017). The optical block: redshift with density ∝ z on [0.002, 0.5]
and mass formed log M ~ TruncatedNormal(10.5, 0.8) on [8, 12.3], chosen so that after the
r < 17.77 selection of :mod:`sedinfer.spectra.simulate` the median redshift is 0.135 and the
median r 16.85 (500 mocks, ``scripts/ir_mock_summary.py``; the MGS has median z ≈ 0.10); diffuse and
birth-cloud optical depths Uniform(0, 1.5) and Uniform(0, 2); log Z/Z_sun around the stellar
mass–metallicity relation of Gallazzi et al. (2005, MNRAS 362, 41; median ≈ −0.6 below
10^9.5 M_sun, ≈ +0.1 above 10^11, scatter 0.3 → 0.1 dex); every other parameter from the
model's default prior. The velocity dispersion, not an SPS parameter, follows
log σ_v = 2.15 + 0.3 (log M − 10.5) ± 0.08 dex in [50, 300] km/s (σ ∝ M_*^0.3, Zahid et al.
2016, ApJ 832, 203). All numbers are in :class:`Couplings`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from sedinfer.errors import ParameterError
from sedinfer.priors import Distribution, LogUniform, Prior, TruncatedNormal, Uniform

IR_PARAMS: tuple[str, ...] = ("qpah", "umin", "gamma", "f_agn")
"""Infrared parameters, where a model has them; everything else is optical."""
PRIOR_KINDS: tuple[str, ...] = ("coupled", "separable")

_MZR_LOG_M = np.array([8.5, 9.5, 10.0, 10.5, 11.0, 11.5, 12.5])
_MZR_LOG_Z = np.array([-0.65, -0.60, -0.30, -0.05, 0.07, 0.12, 0.15])
_MZR_SCATTER = np.array([0.30, 0.30, 0.25, 0.15, 0.10, 0.10, 0.10])


@dataclass(frozen=True)
class Couplings:
    """Numbers of the population prior (module docstring); log is log10 throughout."""

    qpah_low: float = 1.0
    qpah_high: float = 3.55
    qpah_log_z_pivot: float = -0.59
    qpah_log_z_width: float = 0.15
    qpah_scatter: float = 0.4
    umin_log_at_ssfr_1e10: float = 0.0
    umin_ssfr_slope: float = 0.5
    umin_z_slope: float = 1.15
    umin_scatter_dex: float = 0.2
    agn_log_f_pivot: float = -3.5
    agn_mass_slope: float = 1.0
    agn_log_u_slope: float = 0.5
    agn_scatter_dex: float = 0.7
    veldisp_log_pivot: float = 2.15
    veldisp_mass_slope: float = 0.3
    veldisp_scatter_dex: float = 0.08
    veldisp_range_kms: tuple[float, float] = (50.0, 300.0)


def truncated_normal(u: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor | float, low: float,
                     high: float) -> torch.Tensor:
    """Inverse CDF of Normal(loc, scale) truncated to [low, high] at u ∈ (0, 1), elementwise,
    with a location (and optionally a scale) per element; float64."""
    loc = loc.to(torch.float64)
    a = torch.special.ndtr((low - loc) / scale)
    b = torch.special.ndtr((high - loc) / scale)
    p = (a + u * (b - a)).clamp(1e-15, 1 - 1e-15)
    return (loc + scale * torch.special.ndtri(p)).clamp(low, high)


def permute_columns(theta: torch.Tensor, columns: list[int], generator: torch.Generator | None = None
                    ) -> torch.Tensor:
    """A copy of ``theta`` (N, D) with each listed column permuted independently across rows."""
    out = theta.clone()
    n = theta.shape[0]
    for j in columns:
        out[:, j] = theta[torch.randperm(n, generator=generator), j]
    return out


class MockPrior:
    """The coupled or separable population prior over an SPS model's parameters.

    ``model``: an :class:`sedinfer.SPSModel` with dust emission (``qpah``, ``umin``, ``gamma``;
    ``f_agn`` too when it has an AGN component). ``optical`` replaces the default distribution of
    optical parameters by name (giving ``log_z`` turns off the mass–metallicity relation).
    """

    def __init__(self, model, kind: str = "coupled", optical: Prior | dict[str, Distribution] | None = None,
                 couplings: Couplings | None = None, z_max: float = 0.5) -> None:
        if kind not in PRIOR_KINDS:
            raise ParameterError(f"prior kind {kind!r} is unknown; expected one of {list(PRIOR_KINDS)}")
        names = tuple(model.param_names)
        missing = [n for n in ("qpah", "umin", "gamma") if n not in names]
        if missing:
            raise ParameterError(f"the mock prior needs an SPS model with dust emission (parameters "
                                 f"{missing} missing); use SPSModel(nebular=True, dust_emission=True)")
        self.model, self.kind, self.couplings = model, kind, couplings or Couplings()
        self.names = names
        self.ir_names = tuple(n for n in IR_PARAMS if n in names)
        self.optical_names = tuple(n for n in names if n not in self.ir_names)
        given = dict(optical.distributions if isinstance(optical, Prior) else (optical or {}))
        unknown = [n for n in given if n not in self.optical_names]
        if unknown:
            raise ParameterError(f"optical prior has parameters {unknown} that are not optical parameters "
                                 f"of the model ({list(self.optical_names)})")
        base = {"log_mass": TruncatedNormal(10.5, 0.8, 8.0, 12.3), "tau_ism": Uniform(0.0, 1.5),
                "tau_bc": Uniform(0.0, 2.0)}
        self.use_mzr = "log_z" not in given
        self.z_range = (0.002, float(z_max)) if "redshift" not in given else None
        if self.z_range is not None and not 0.002 < z_max <= model.config.z_max:
            raise ParameterError(f"z_max must be in (0.002, {model.config.z_max}] (the model's z_max), "
                                 f"got {z_max}")
        special = {"log_z": self.use_mzr, "redshift": self.z_range is not None}
        dists = {n: given.get(n, base.get(n, model.prior[n])) for n in self.optical_names
                 if not special.get(n, False)}
        self.optical = Prior(dists)
        self.gamma = LogUniform(0.001, 0.15)

    def __repr__(self) -> str:
        return (f"MockPrior(kind={self.kind!r}, optical={self.optical_names}, infrared={self.ir_names}, "
                f"z_range={self.z_range}, mzr={self.use_mzr})")

    def describe(self) -> dict:
        """JSON-ready description (kind, distributions, couplings), for file metadata."""
        from dataclasses import asdict

        return {"kind": self.kind, "optical": self.optical.to_dict(),
                "redshift_density_propto_z": self.z_range,
                "mass_metallicity_relation": self.use_mzr, "gamma": self.gamma.to_dict(),
                "infrared": list(self.ir_names), "couplings": asdict(self.couplings)}

    # ------------------------------------------------------------------------------ draws
    def sample(self, n: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``{"theta": (n, D) float64 in model.param_names order, "veldisp_kms": (n,)}``; for the
        separable kind, the infrared columns of a coupled draw permuted (:meth:`separate`)."""
        draw = self.sample_coupled(n, generator)
        if self.kind == "separable":
            draw["theta"] = self.separate(draw["theta"], generator)
        return draw

    def separate(self, theta: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The separable version of a (coupled, possibly selected) draw ``theta`` (N, D)."""
        return permute_columns(theta, [self.names.index(n) for n in self.ir_names], generator)

    def sample_coupled(self, n: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """A coupled draw (see :meth:`sample`)."""
        c = self.couplings
        opt = self.optical.sample(n, generator=generator, dtype=torch.float64)
        cols = {name: opt[:, i] for i, name in enumerate(self.optical.names)}
        if self.z_range is not None:         # density ∝ z: inverse CDF of z² between the ends
            lo2, hi2 = self.z_range[0] ** 2, self.z_range[1] ** 2
            cols["redshift"] = torch.sqrt(lo2 + _rand(n, generator) * (hi2 - lo2))
        log_m = cols["log_mass"]
        if self.use_mzr:
            lz = self.model.prior["log_z"]
            loc = torch.as_tensor(np.interp(log_m.numpy(), _MZR_LOG_M, _MZR_LOG_Z))
            scale = torch.as_tensor(np.interp(log_m.numpy(), _MZR_LOG_M, _MZR_SCATTER))
            u = _rand(n, generator)
            cols["log_z"] = truncated_normal(u, loc, scale, lz.low, lz.high)
        ir = self._infrared(cols, n, generator)
        theta = torch.stack([cols[k] if k in cols else ir[k] for k in self.names], -1)
        lo, hi = np.log10(c.veldisp_range_kms[0]), np.log10(c.veldisp_range_kms[1])
        loc = c.veldisp_log_pivot + c.veldisp_mass_slope * (log_m - 10.5)
        veldisp = 10 ** truncated_normal(_rand(n, generator), loc, c.veldisp_scatter_dex, lo, hi)
        return {"theta": theta, "veldisp_kms": veldisp}

    def _infrared(self, cols: dict[str, torch.Tensor], n: int, generator) -> dict[str, torch.Tensor]:
        c, prior = self.couplings, self.model.prior
        q = prior["qpah"]
        step = torch.sigmoid((cols["log_z"] - c.qpah_log_z_pivot) / c.qpah_log_z_width)
        out = {"qpah": truncated_normal(_rand(n, generator), c.qpah_low + (c.qpah_high - c.qpah_low) * step,
                                        c.qpah_scatter, q.low, q.high)}
        log_ssfr = self._log_ssfr(cols)
        um = prior["umin"]
        loc = (c.umin_log_at_ssfr_1e10 + c.umin_ssfr_slope * (log_ssfr + 10.0)
               + c.umin_z_slope * torch.log10(1 + cols["redshift"]))
        out["umin"] = 10 ** truncated_normal(_rand(n, generator), loc, c.umin_scatter_dex,
                                             math.log10(um.low), math.log10(um.high))
        g = self.gamma
        out["gamma"] = g.icdf(_rand(n, generator)).clamp(g.low, g.high)
        if "f_agn" in self.ir_names:
            fa = prior["f_agn"]
            lo, hi = math.log10(max(fa.low, 1e-5)), math.log10(fa.high)
            loc = (c.agn_log_f_pivot + c.agn_mass_slope * (cols["log_mass"] - 10.5)
                   + c.agn_log_u_slope * (cols.get("log_u", torch.full_like(loc, -2.5)) + 2.5))
            out["f_agn"] = 10 ** truncated_normal(_rand(n, generator), loc, c.agn_scatter_dex, lo, hi)
        for name in self.ir_names:
            if name not in out:     # an infrared parameter without a coupling: the model's prior
                out[name] = prior[name].icdf(_rand(n, generator))
        return out

    def _log_ssfr(self, cols: dict[str, torch.Tensor]) -> torch.Tensor:
        """log10 sSFR (1/yr, 100 Myr) of the optical parameters (infrared ones do not enter)."""
        filler = {k: torch.full_like(cols["redshift"], 0.5 * (lo + hi)) for k, lo, hi in
                  zip(self.names, self.model.low, self.model.high, strict=True) if k in self.ir_names}
        derived = self.model.derived({**cols, **filler})
        return torch.nan_to_num(derived["log_ssfr"].to(torch.float64), nan=-14.0, neginf=-14.0).clamp(-14, -7)


def _rand(n: int, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, generator=generator, dtype=torch.float64)


__all__ = ["Couplings", "IR_PARAMS", "MockPrior", "PRIOR_KINDS", "permute_columns", "truncated_normal"]
