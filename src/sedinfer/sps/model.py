"""The batched, differentiable stellar-population-synthesis forward model.

``SPSModel`` turns a batch of physical parameters θ (N, D) into rest-frame spectra, observed
spectra and filter photometry. For N galaxies, A age bins, Z metallicities and W pixels:

1. SFH → mass formed per age bin w (N, A) (:mod:`sedinfer.sps.sfh`), times 10^log_mass;
2. metallicity weights (N, Z), linear in log Z between the BC03 grid values;
3. young (< 10 Myr) and old stellar light as two dense matrix products with the resampled
   SSP grid; with nebular emission, Cloudy continuum + lines of the young stars (log U);
4. attenuation: Calzetti screen or Charlot & Fall: birth clouds with a power law
   (λ/5500 Å)^-1 as in FSPS/PROVABGS (or, as an option, the ISM curve) + diffuse ISM with the
   Kriek & Conroy curve; with dust emission, the absorbed luminosity is re-emitted with a DL07
   template (energy balance);
5. optionally (``agn=True``) the hot-dust emission of an AGN torus (:mod:`sedinfer.sps.agn`);
6. redshift, IGM and luminosity distance; filter fluxes by a tabulated projection.

Everything is a torch operation on the whole batch; gradients flow to every continuous
parameter. float32 by default; ``model.double()`` for float64.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch

from sedinfer.sps import parameters as P
from sedinfer.sps.agn import torus_luminosity
from sedinfer.sps.batching import cell_index, cell_matmul, grouped_matmul, map_chunks
from sedinfer.sps.cosmology import CosmologyTable
from sedinfer.sps.dust import (
    V_BAND_AA,
    charlot_fall,
    charlot_fall_curves,
    kriek_conroy_curve,
    power_law_curve,
)
from sedinfer.sps.plan import (
    ENERGY_MAX_POWER_LAW_AA,
    Plan,
    build_plan,
    energy_grid,
    photometry_grid,
    spectrum_grid,
)
from sedinfer.sps.projection import DZ_NODE, project
from sedinfer.sps.sfh import SFH, age_bins

_DUST_PARAMS = {"none": (), "calzetti": ("av",), "cf": ("tau_bc", "tau_ism", "n_dust")}
_DUST_ALIASES = {"charlot_fall": "cf", "charlot-fall": "cf", "cf00": "cf", None: "none", False: "none"}
_LN10 = float(np.log(10.0))
BIRTH_CLOUD_CURVES = ("power_law", "kc")
ISM_CURVES = ("kc", "power_law")


@dataclass(frozen=True)
class SPSConfig:
    """Everything that defines an :class:`SPSModel` (saved next to trained models)."""

    sfh: str = "nmf"
    dust: str = "cf"
    nebular: bool = False
    dust_emission: bool = False
    cosmology: str = "Planck18"
    z_max: float = 1.55
    metallicity_interp: str = "log"
    birth_cloud_curve: str = "power_law"
    birth_cloud_index: float = -1.0
    agn: bool = False
    ism_curve: str = "kc"

    def to_dict(self) -> dict:
        return asdict(self)


#: settings added after models were first saved, with the values those models were trained with
#: (sedinfer 0.1 applied the Kriek & Conroy curve to the birth clouds too)
LEGACY_SETTINGS: dict[str, object] = {"birth_cloud_curve": "kc", "birth_cloud_index": -1.0, "agn": False,
                                       "ism_curve": "kc"}


def saved_model_kwargs(kwargs: Mapping, saved_config: Mapping | None) -> dict:
    """:class:`SPSModel` keywords that rebuild a saved model as it was trained.

    ``kwargs`` are the keywords saved with the model, ``saved_config`` its saved
    :meth:`SPSConfig.to_dict`. Each setting of :data:`LEGACY_SETTINGS` is taken from
    ``saved_config`` or, when the model was saved before the setting existed, set to the legacy
    value, so a later change of the default does not change what a saved model computes.
    """
    out = dict(kwargs)
    saved = saved_config or {}
    for key, legacy in LEGACY_SETTINGS.items():
        out.setdefault(key, saved.get(key, legacy))
    return out


class SPSModel(torch.nn.Module):
    """Differentiable SPS model.

    Parameters
    ----------
    sfh : ``"nmf"`` (PopSED, default), ``"delayed"``, ``"exponential"``, ``"constant"``,
        ``"burst"``, ``"binned"``, or ``"<parametric>+burst"``.
    dust : ``"cf"`` (Charlot & Fall: birth clouds on a power law, diffuse ISM on the Kriek & Conroy
        curve with slope n_dust; default), ``"calzetti"`` or
        ``"none"``.
    nebular, dust_emission : switch on Cloudy nebular emission (``log_u``) and DL07 dust
        emission with energy balance (``qpah``, ``umin``, ``gamma``).
    cosmology : astropy cosmology or realization name (default Planck18).
    z_max : largest redshift the model accepts (photometry tables are built up to it).
    metallicity_interp : ``"log"`` (default) or ``"linear"`` interpolation in Z between grid
        metallicities (bagpipes interpolates linearly in Z).
    birth_cloud_curve : Charlot & Fall birth-cloud curve: ``"power_law"`` (default, FSPS
        ``dust_type=4`` as in PROVABGS/PopSED), τ_bc (λ/5500 Å)^birth_cloud_index, or ``"kc"``,
        the diffuse ISM's Kriek & Conroy curve with slope n_dust (sedinfer <= 0.1 and the models
        trained with it).
    birth_cloud_index : the power-law index (FSPS ``dust1_index``, default -1).
    ism_curve : Charlot & Fall diffuse-ISM curve: ``"kc"`` (default, Kriek & Conroy with slope
        n_dust) or ``"power_law"``, (λ/5500 Å)^n_dust at every λ (the original Charlot & Fall
        2000 model, FSPS ``dust_type=0``, bagpipes' ``CF00`` with n = -n_dust).
    agn : add the hot-dust emission of an AGN torus (:mod:`sedinfer.sps.agn`) with parameter
        ``f_agn``, its luminosity in units of the intrinsic bolometric stellar luminosity.
    prior : a :class:`sedinfer.priors.Prior` over ``param_names``; default: PopSED Table 1
        ranges (:func:`sedinfer.priors.default_prior`).
    """

    def __init__(self, sfh: str = "nmf", dust: str = "cf", nebular: bool = False,
                 dust_emission: bool = False, cosmology=None, z_max: float = 1.55,
                 metallicity_interp: str = "log", prior=None, birth_cloud_curve: str = "power_law",
                 birth_cloud_index: float = -1.0, agn: bool = False, ism_curve: str = "kc"):
        super().__init__()
        dust = _DUST_ALIASES.get(dust, dust)
        if dust not in _DUST_PARAMS:
            raise ValueError(f"unknown dust model {dust!r}; expected one of {sorted(_DUST_PARAMS)}")
        if dust_emission and dust == "none":
            raise ValueError("dust_emission=True re-emits absorbed light and needs dust attenuation "
                             "(dust='cf' or 'calzetti')")
        if metallicity_interp not in ("log", "linear"):
            raise ValueError(f"metallicity_interp must be 'log' or 'linear', got {metallicity_interp!r}")
        if birth_cloud_curve not in BIRTH_CLOUD_CURVES:
            raise ValueError(f"birth_cloud_curve must be one of {BIRTH_CLOUD_CURVES}, "
                             f"got {birth_cloud_curve!r}")
        if ism_curve not in ISM_CURVES:
            raise ValueError(f"ism_curve must be one of {ISM_CURVES}, got {ism_curve!r}")
        birth_cloud_index = float(birth_cloud_index)
        if not -4.0 <= birth_cloud_index <= 2.0:
            raise ValueError(f"birth_cloud_index must be in [-4, 2] (FSPS default -1), "
                             f"got {birth_cloud_index}")
        if not 0.0 < z_max <= 10.0:
            raise ValueError(f"z_max must be in (0, 10] (the IGM and cosmology tables), got {z_max}")
        self.sfh = SFH(sfh)
        self.sfh.validate()
        self.cosmo = CosmologyTable(cosmology, z_max=10.0)
        name = getattr(self.cosmo.cosmology, "name", None) or repr(self.cosmo.cosmology)
        self.config = SPSConfig(sfh=sfh, dust=dust, nebular=bool(nebular), dust_emission=bool(dust_emission),
                                cosmology=name, z_max=float(z_max), metallicity_interp=metallicity_interp,
                                birth_cloud_curve=birth_cloud_curve, birth_cloud_index=birth_cloud_index,
                                agn=bool(agn), ism_curve=ism_curve)
        names = ["redshift", "log_mass", "log_z", *self.sfh.param_names, *_DUST_PARAMS[dust]]
        if nebular:
            names.append("log_u")
        if dust_emission:
            names += ["qpah", "umin", "gamma"]
        if agn:
            names.append("f_agn")
        self.param_names: tuple[str, ...] = tuple(names)
        low = [P.PARAMETERS[n][0] for n in names]
        high = [P.PARAMETERS[n][1] for n in names]
        high[0] = float(z_max)
        self.low, self.high = tuple(low), tuple(high)
        self.age_centres_yr, self.age_edges_yr = age_bins(self.cosmo.age0_gyr)
        self._prior = prior
        self._plans: dict = {}
        self.register_buffer("_anchor", torch.zeros((), dtype=torch.float32), persistent=False)

    # ----------------------------------------------------------------------------- basics
    @property
    def dtype(self) -> torch.dtype:
        return self._anchor.dtype

    @property
    def device(self) -> torch.device:
        return self._anchor.device

    def _apply(self, fn, *args, **kwargs):
        self._plans = {}
        return super()._apply(fn, *args, **kwargs)

    @property
    def prior(self):
        """The prior over ``param_names`` (PopSED Table 1 ranges unless given)."""
        if self._prior is None:
            from sedinfer.priors import Uniform, default_prior

            prior = default_prior(self.param_names)
            if prior.bounds()[1][0] > self.config.z_max:
                prior = prior.replace(redshift=Uniform(0.0, self.config.z_max))
            self._prior = prior
        return self._prior

    @property
    def ndim(self) -> int:
        return len(self.param_names)

    def extra_repr(self) -> str:
        c = self.config
        bc = f", birth_cloud_curve={c.birth_cloud_curve!r}" if c.dust == "cf" else ""
        bc += f", ism_curve={c.ism_curve!r}" if c.dust == "cf" and c.ism_curve != "kc" else ""
        if c.dust == "cf" and c.birth_cloud_curve == "power_law":
            bc += f", birth_cloud_index={c.birth_cloud_index}"
        bc += ", agn=True" if c.agn else ""
        return (f"sfh={c.sfh!r}, dust={c.dust!r}{bc}, nebular={c.nebular}, dust_emission={c.dust_emission}, "
                f"cosmology={c.cosmology!r}, z_max={c.z_max}, params={self.param_names}")

    def parse(self, theta) -> dict[str, torch.Tensor]:
        """Validate θ ((N, D), (D,) or dict) and split it into named (N,) columns."""
        return P.as_batch(theta, self.param_names, self.low, self.high, self.dtype, self.device)

    # ------------------------------------------------------------------------------ plans
    def _plan(self, key, make_grid, curves=None, energy=None) -> Plan:
        if key not in self._plans:
            c = self.config
            self._plans[key] = build_plan(make_grid(), self.age_centres_yr, self.age_edges_yr,
                                          nebular=c.nebular, dust_emission=c.dust_emission,
                                          dtype=self.dtype, device=self.device, curves=curves,
                                          z_max=c.z_max, energy_wave_aa=energy, agn=c.agn)
        return self._plans[key]

    def photometry_plan(self, filters) -> Plan:
        curves = [(f.wave_aa, f.trans) for f in filters]
        lo = min(float(w[0]) for w, _ in curves)
        hi = max(float(w[-1]) for w, _ in curves)
        key = ("phot", tuple(filters.names), hash(filters))
        c = self.config
        power = c.birth_cloud_curve == "power_law" or c.ism_curve == "power_law"
        upper = ENERGY_MAX_POWER_LAW_AA if c.dust == "cf" and power else None
        energy = None if not c.dust_emission else energy_grid(wave_hi_aa=upper) if upper else energy_grid()
        return self._plan(key, lambda: photometry_grid(lo, hi, self.config.z_max), curves, energy)

    def spectrum_plan(self, wave_lo_aa: float, wave_hi_aa: float) -> Plan:
        key = ("spec", round(wave_lo_aa, 6), round(wave_hi_aa, 6))
        return self._plan(key, lambda: spectrum_grid(wave_lo_aa, wave_hi_aa, self.config.z_max))

    # ------------------------------------------------------------------------ the physics
    def sfh_weights(self, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """Stellar mass formed per age bin in M_sun, (N, A), float64."""
        t_age = self.cosmo.age_gyr_at(p["redshift"])
        p64 = {k: v.to(torch.float64) for k, v in p.items()}
        w = self.sfh.bin_weights(p64, t_age, self.age_centres_yr, self.age_edges_yr)
        return w * 10 ** p64["log_mass"].unsqueeze(-1)

    def metallicity_cell(self, log_z: torch.Tensor, grid_log_z: torch.Tensor):
        """Interval index (N,) of log Z on the SSP metallicities and the weight of its upper node,
        linear in log Z or in Z (``config``); constant beyond the grid ends."""
        if self.config.metallicity_interp == "log":
            return cell_index(log_z, grid_log_z.to(log_z.dtype))
        return cell_index(10**log_z, 10 ** grid_log_z.to(log_z.dtype))

    def metallicity_weights(self, log_z: torch.Tensor, grid_log_z: torch.Tensor) -> torch.Tensor:
        """The same interpolation as dense weights (N, Z) on the SSP metallicities."""
        i, f = self.metallicity_cell(log_z, grid_log_z)
        w = torch.zeros(log_z.shape + grid_log_z.shape, dtype=f.dtype, device=f.device)
        w = w.scatter(-1, i.unsqueeze(-1), (1 - f).unsqueeze(-1))
        return w.scatter_add(-1, i.unsqueeze(-1) + 1, f.unsqueeze(-1))

    def stellar_light(self, mass: torch.Tensor, log_z: torch.Tensor, plan: Plan):
        """Young (in birth clouds) and older stellar L_λ, each (N, W), from the mass formed per
        age bin ``mass`` (N, A): one product per metallicity interval with its two SSPs."""
        iz, fz = self.metallicity_cell(log_z, plan.grid_log_z)
        fz = fz.to(mass.dtype).unsqueeze(-1)
        m_young = mass[:, :plan.n_young] * plan.young_frac[:plan.n_young]
        m_old = mass * (1 - plan.young_frac)
        young = cell_matmul(torch.cat([(1 - fz) * m_young, fz * m_young], -1), iz, plan.ssp_young)
        old = cell_matmul(torch.cat([(1 - fz) * m_old, fz * m_old], -1), iz, plan.ssp)
        return young, old

    def rest_luminosity(self, p: dict[str, torch.Tensor], plan: Plan, parts: bool = False):
        """Rest-frame L_λ (N, W) in L_sun/Å on the plan's pixels.

        For photometry plans the attenuated nebular line luminosities (N, L) in L_sun are
        appended after the pixels, giving (N, W + L). With ``parts=True`` also returns a dict
        with the intrinsic (unattenuated) light, the absorbed luminosity and the dust emission,
        for energy-balance checks.
        """
        c = self.config
        mass = self.sfh_weights(p).to(self.dtype)                       # (N, A)
        young, old = self.stellar_light(mass, p["log_z"], plan)
        ny = plan.n_young
        lines = None
        if c.nebular:
            neb = self._nebular(p, plan, mass[:, :ny] * plan.young_frac[:ny])
            if plan.n_lines:
                neb, lines = neb[:, :-plan.n_lines], neb[:, -plan.n_lines:]
            young = young.add_(neb) if _no_grad(young, neb) else young + neb
        # CF attenuates young and old apart: the sum is then needed only on the energy pixels
        intrinsic = young + old if parts or c.dust != "cf" else None
        if c.dust == "none":
            lum, lines_att = intrinsic, lines
        elif c.dust == "calzetti":
            k = -0.4 * _LN10 * p["av"].unsqueeze(-1)
            v = plan.curve_terms.shape[-1]
            lum = torch.cat([intrinsic[:, :v] * torch.exp(k * plan.curve_terms[0]), intrinsic[:, v:]], -1)
            lines_att = None if lines is None else lines * torch.exp(k * plan.line_terms[0])
        else:
            lum, lines_att = self._charlot_fall(p, plan, old, young, lines)
        absorbed = dust_lum = None
        if c.dust_emission:
            e = plan.n_energy or lum.shape[-1]        # coarse energy pixels if the plan has them
            bare = intrinsic[:, :e] if intrinsic is not None else young[:, :e] + old[:, :e]
            absorbed = ((bare - lum[:, :e]) * plan.dwave_aa[:e]).sum(-1)                  # L_sun
            if lines is not None:
                absorbed = absorbed + (lines - lines_att).sum(-1)
            dust_lum = self._dust_emission(p, plan, absorbed)
            if lum is not intrinsic and _no_grad(lum, dust_lum):
                lum[:, plan.ir_start:] += dust_lum
            else:
                lum = torch.cat([lum[:, :plan.ir_start], lum[:, plan.ir_start:] + dust_lum], -1)
        agn_lum = lbol = None
        if c.agn:
            lbol = self.stellar_bolometric(mass, p["log_z"], plan)
            agn_lum = torus_luminosity(p["f_agn"].to(lum.dtype), lbol, plan.agn)
            if lum is not intrinsic and _no_grad(lum, agn_lum):
                lum += agn_lum
            else:
                lum = lum + agn_lum
        out = lum if lines_att is None else torch.cat([lum, lines_att], -1)
        if parts:
            return out, {"intrinsic": intrinsic, "lines": lines, "absorbed": absorbed,
                         "dust_emission": dust_lum, "agn": agn_lum, "lbol_star": lbol}
        return out

    def stellar_bolometric(self, mass: torch.Tensor, log_z: torch.Tensor, plan: Plan) -> torch.Tensor:
        """Bolometric luminosity (N,) in L_sun of the intrinsic stellar populations, from the mass
        formed per age bin ``mass`` (N, A), with the same metallicity interpolation as the light."""
        wz = self.metallicity_weights(log_z, plan.grid_log_z).to(mass.dtype)            # (N, Z)
        return ((mass @ plan.lbol.T.to(mass.dtype)) * wz).sum(-1)

    def _charlot_fall(self, p, plan: Plan, old, young, lines):
        """Charlot & Fall attenuated L_λ (N, W) and nebular lines (N, L) (or None): the lines,
        from the young stars' H II regions, see both components."""
        tau_ism, tau_bc = p["tau_ism"].unsqueeze(-1), p["tau_bc"].unsqueeze(-1)
        if self.config.ism_curve == "power_law":
            return self._charlot_fall_power_laws(p, plan, old, young, lines)
        if self.config.birth_cloud_curve == "kc":
            lum = charlot_fall(plan.curve_terms, p["n_dust"], p["tau_ism"], p["tau_bc"], old, young)
            if lines is None:
                return lum, None
            tau = (tau_ism + tau_bc) * kriek_conroy_curve(*plan.line_terms, p["n_dust"])
            return lum, lines * torch.exp(-tau)
        index = self.config.birth_cloud_index
        bc_curve = power_law_curve(torch.log(plan.wave_aa / V_BAND_AA), index)
        lum = charlot_fall(plan.curve_terms, p["n_dust"], p["tau_ism"], p["tau_bc"], old, young,
                           bc_curve=bc_curve)
        if lines is None:
            return lum, None
        tau = tau_ism * kriek_conroy_curve(*plan.line_terms, p["n_dust"]) + tau_bc * power_law_curve(
            plan.line_terms[2], index)
        return lum, lines * torch.exp(-tau)

    def _charlot_fall_power_laws(self, p, plan: Plan, old, young, lines):
        """:meth:`_charlot_fall` with the diffuse ISM on the power law (λ/5500 Å)^n_dust; the birth
        clouds on their own power law, or (``birth_cloud_curve="kc"``, "the ISM curve") the same."""
        c = self.config
        same = c.birth_cloud_curve == "kc"
        ln_ratio = torch.log(plan.wave_aa / V_BAND_AA)
        ism = power_law_curve(ln_ratio, p["n_dust"])
        bc = ism if same else power_law_curve(ln_ratio, c.birth_cloud_index)
        lum = charlot_fall_curves(ism, bc, p["tau_ism"], p["tau_bc"], old, young)
        if lines is None:
            return lum, None
        ism_l = power_law_curve(plan.line_terms[2], p["n_dust"])
        bc_l = ism_l if same else power_law_curve(plan.line_terms[2], c.birth_cloud_index)
        tau = p["tau_ism"].unsqueeze(-1) * ism_l + p["tau_bc"].unsqueeze(-1) * bc_l
        return lum, lines * torch.exp(-tau)

    def _nebular(self, p, plan: Plan, young_mass: torch.Tensor) -> torch.Tensor:
        """Cloudy emission of the young stars: (N, W [+ L]) from each galaxy's (Z, log U) cell."""
        iz, fz = self.metallicity_cell(p["log_z"], plan.grid_log_z)
        iu, fu = cell_index(p["log_u"], plan.grid_log_u)
        corners = torch.stack([(1 - fz) * (1 - fu), (1 - fz) * fu, fz * (1 - fu), fz * fu], -1)
        weights = (corners.unsqueeze(-1) * young_mass.unsqueeze(-2)).flatten(1)        # (N, 4*Ay)
        return grouped_matmul(weights, iz * (len(plan.grid_log_u) - 1) + iu, plan.nebular)

    def _dust_emission(self, p, plan: Plan, absorbed: torch.Tensor) -> torch.Tensor:
        """DL07 emission (N, W_ir) normalised to the absorbed luminosity (energy balance)."""
        iq, fq = cell_index(p["qpah"], plan.grid_qpah)
        iu, fu = cell_index(p["umin"], plan.grid_umin)
        corners = torch.stack([(1 - fq) * (1 - fu), (1 - fq) * fu, fq * (1 - fu), fq * fu], -1)
        g = p["gamma"].unsqueeze(-1)
        weights = torch.cat([(1 - g) * corners, g * corners], -1)                      # (N, 8)
        shape = grouped_matmul(weights, iq * (len(plan.grid_umin) - 1) + iu, plan.dust_em)
        return absorbed.unsqueeze(-1) * shape[:, :-1] / shape[:, -1:]

    # -------------------------------------------------------------------------- observables
    def photometry(self, theta, filters, units: str = "mag", vega: bool = False,
                   chunk_size: int = 4096) -> torch.Tensor:
        """Observed-frame fluxes of θ through ``filters`` (a :class:`sedinfer.Filters` or a
        list of filter names), shape (N, B).

        ``units``: ``"mag"`` (AB, or Vega for bands with a known offset when ``vega``),
        ``"maggies"``, ``"nmgy"``, ``"ujy"`` or ``"njy"``. Large batches run in chunks of
        ``chunk_size`` galaxies to bound memory.
        """
        from sedinfer.filters import Filters

        if not isinstance(filters, Filters):
            filters = Filters(filters)
        p = self.parse(theta)
        plan = self.photometry_plan(filters)
        n = p["redshift"].shape[0]
        # chunks of similar redshift share few projection tables; inside a chunk the galaxies are
        # sorted by metallicity interval (one SSP product per interval); the order is undone below
        order = torch.argsort(p["redshift"].detach())
        cell = self.metallicity_cell(p["log_z"].detach(), plan.grid_log_z)[0]
        needs_grad = torch.is_grad_enabled() and any(v.requires_grad for v in p.values())
        rows = []
        for start in range(0, n, chunk_size):
            idx = order[start:start + chunk_size]
            rows.append(idx.index_select(0, torch.sort(cell.index_select(0, idx), stable=True)[1]))

        def chunk_maggies(idx: torch.Tensor) -> torch.Tensor:
            q = {k: v.index_select(0, idx) for k, v in p.items()}
            sub, table, first = self._chunk_plan(plan, q["redshift"])
            f1 = project(self.rest_luminosity(q, sub), q["redshift"], table, first)
            dl = self.cosmo.luminosity_distance_mpc(q["redshift"]).to(self.dtype)
            return f1 / (dl**2).unsqueeze(-1)

        with torch.set_grad_enabled(needs_grad):
            out = map_chunks(chunk_maggies, rows, parallel=self.device.type == "cpu")
        if not out:
            return torch.zeros((0, len(filters)), dtype=self.dtype, device=self.device)
        sorted_maggies = torch.cat(out)
        maggies = torch.empty_like(sorted_maggies).index_copy(0, torch.cat(rows), sorted_maggies)
        return _convert(maggies, units, filters if vega else None)

    def _chunk_plan(self, plan: Plan, z: torch.Tensor):
        """The part of a photometry plan that a chunk of redshifts needs: the pixels the filters
        see for z in [z_min, z_max] (plus the coarse energy pixels and the lines) and the
        projection table of the redshift intervals spanned."""
        z_lo, z_hi = float(z.detach().min()), float(z.detach().max())
        first = max(int(z_lo / DZ_NODE) - 1, 0)
        last = min(int(z_hi / DZ_NODE) + 2, plan.table.shape[0])
        table = plan.table[first:last]
        e = plan.n_energy
        fine = plan.wave_aa[e:]
        lo = max(int(torch.searchsorted(fine, plan.filter_lo_aa / (1 + z_hi + DZ_NODE))) - 1, 0)
        hi = min(int(torch.searchsorted(fine, plan.filter_hi_aa / (1 + max(z_lo - DZ_NODE, 0.0)))) + 1,
                 len(fine))
        w = len(plan.wave_aa)
        table = torch.cat([table[..., :e], table[..., e + lo:e + hi], table[..., w:]], -1)
        return plan.window(lo, hi), table, first

    def spectrum(self, theta, wave_obs_aa=None, veldisp_kms=None, units: str = "flam",
                 chunk_size: int = 256):
        """Observed-frame spectra.

        ``wave_obs_aa`` (M,) observed wavelengths in Å (default: 912 Å–30 µm, Δlnλ = 5e-4);
        fluxes are pixel averages (flux conserving). ``veldisp_kms`` (scalar or (N,)) Gaussian
        line-of-sight velocity dispersion. ``units``: ``"flam"`` (erg/s/cm²/Å), ``"maggies"``,
        ``"ujy"`` or ``"njy"`` (f_ν). Returns ``(wave_obs_aa (M,), flux (N, M))``.
        """
        from sedinfer.sps.spectra import observed_spectrum

        return observed_spectrum(self, theta, wave_obs_aa, veldisp_kms, units, chunk_size)

    def derived(self, theta) -> dict[str, torch.Tensor]:
        """Derived quantities (SFRs, surviving mass, mass-weighted age, sSFR); see
        :func:`sedinfer.sps.derived.derived_quantities`."""
        from sedinfer.sps.derived import derived_quantities

        return derived_quantities(self, theta)


def _no_grad(*tensors: torch.Tensor) -> bool:
    """True when autograd does not track ``tensors`` (they may then be updated in place)."""
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))


def _convert(maggies: torch.Tensor, units: str, filters=None) -> torch.Tensor:
    from sedinfer.units import NJY_PER_MAGGY, NMGY_PER_MAGGY, UJY_PER_MAGGY, maggies_to_mag

    scale = {"maggies": 1.0, "nmgy": NMGY_PER_MAGGY, "ujy": UJY_PER_MAGGY, "njy": NJY_PER_MAGGY}
    if units in scale:
        return maggies * scale[units] if units != "maggies" else maggies
    if units == "mag":
        mag = maggies_to_mag(maggies)
        if filters is not None:
            mag = mag - torch.as_tensor(filters.vega_to_ab(filters.names), dtype=mag.dtype,
                                        device=mag.device)
        return mag
    raise ValueError(f"unknown units {units!r}; expected 'mag', 'maggies', 'nmgy', 'ujy' or 'njy'")


__all__ = ["SPSModel", "SPSConfig", "DZ_NODE", "LEGACY_SETTINGS", "saved_model_kwargs"]
