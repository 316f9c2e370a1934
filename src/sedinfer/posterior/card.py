"""Training configs from TOML and model cards (Markdown + JSON) beside trained SED posteriors.

A card's "Intended use" and "Limits" (:func:`use_and_limits`) are generated from what the model
is — its bands, redshift mode and range, inference prior, forward model, noise model, support
test and validation record — never written by hand per model. "Calibrated" is used only with
what was measured: simulations from the model's own forward model, prior and noise model, unless
the validation record holds a test on other simulations (``misspecification``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from sedinfer.atomic import write_text
from sedinfer.errors import ParameterError
from sedinfer.noise.base import FLOOR_QUANTILE
from sedinfer.sps.grids import SSP_IMF, SSP_MODELS

SFH_WORDS = {"nmf": "the PopSED NMF basis SFH (weights kappa1-3) plus a burst (f_burst, t_burst)",
             "delayed": "a delayed-tau SFH", "exponential": "an exponentially declining SFH",
             "constant": "a constant SFH", "burst": "a single burst",
             "binned": "a binned (non-parametric) SFH"}


def read_toml(path: str | os.PathLike) -> dict:
    """A TOML file as a dict, with an error naming the file on bad syntax."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"{path}: invalid TOML: {exc}") from None


def load_config(path: str | os.PathLike):
    """A :class:`~sedinfer.posterior.sed_config.SEDConfig` from a TOML file.

    Top-level keys are SEDConfig fields; ``[model]``, ``[flow]`` and ``[train]`` tables hold the
    forward-model keywords, :class:`FlowConfig` and :class:`TrainConfig`; ``noise`` may name a
    noise-model JSON file, ``prior`` a ``Prior.to_dict()`` file and ``inference_prior`` a flux-limited
    histogram file (``scripts/flux_limited_prior.py``), all relative to the config file.
    """
    from sedinfer.noise.base import read_json
    from sedinfer.posterior.sed_config import SEDConfig

    data = read_toml(path)
    if isinstance(data.get("noise"), str):
        data["noise"] = read_json(Path(path).parent / data["noise"])
    for key in ("prior", "inference_prior"):          # JSON files named relative to the config
        if key in data and isinstance(data[key], str):
            data[key] = json.loads((Path(path).parent / data[key]).read_text())
    try:
        return SEDConfig.from_dict(data)
    except TypeError as exc:
        raise ParameterError(f"{path}: {exc}") from None


def card_paths(model_path: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(model_path)
    return p.with_suffix(".card.md"), p.with_suffix(".card.json")


def write_model_card(sed_posterior, model_path: str | os.PathLike, validation: dict | None = None,
                     name: str | None = None) -> Path:
    """Write ``<model>.card.md`` and ``<model>.card.json``: config, training record, validation."""
    meta = sed_posterior.posterior.metadata
    sed = meta["sed"]
    md_path, json_path = card_paths(model_path)
    card = {
        "name": name or Path(model_path).stem,
        "model_file": Path(model_path).name,
        "sedinfer_version": sed.get("sedinfer_version"),
        "bands": sed["config"]["bands"], "redshift_mode": sed["config"]["redshift_mode"],
        "parameters": list(sed_posterior.param_names), "derived": list(sed_posterior.names[
            len(sed_posterior.param_names):]),
        "forward_model": sed_posterior.meta["model_config"],
        "stellar_populations": {"models": SSP_MODELS, "imf": SSP_IMF},
        "prior": sed["prior"], "noise_model": sed["noise"],
        "inference_prior": _inference_prior_line(sed),
        "noise_kept_as_drawn": not sed_posterior.meta["config"].get("redraw_negative", True),
        "support_model": (sed["support"].get("info") if sed.get("support") else None),
        "support_quantile": (sed["support"].get("quantile") if sed.get("support") else None),
        "training": {k: meta.get(k) for k in ("n_simulations", "n_train", "n_validation", "epochs",
                                              "train_seconds", "best_val_nll_latent", "stopped")},
        "config": sed["config"],
        "validation": validation,
    }
    card.update(use_and_limits(sed_posterior, validation))
    write_text(json_path, json.dumps(card, indent=2) + "\n")
    t = card["training"]
    noise_words = ("kept as drawn (negative fluxes kept)" if card["noise_kept_as_drawn"]
                   else "negative fluxes redrawn (PopSED)")
    support_words = ("Gaussian mixture in the context space, " + json.dumps(card["support_model"])
                     if card["support_model"] else "per-feature box only")
    lines = [
        f"# Model card: {card['name']}", "",
        f"Amortized posterior q(θ | x) of sedinfer {card['sedinfer_version']} for bands "
        f"{', '.join(card['bands'])}; redshift mode `{card['redshift_mode']}` "
        f"({'z given' if card['redshift_mode'] == 'spec' else 'z inferred'}).", "",
        f"- Parameters: {', '.join(card['parameters'])}",
        f"- Derived per galaxy: {', '.join(card['derived'])}",
        f"- Forward model: `SPSModel({', '.join(f'{k}={v!r}' for k, v in card['forward_model'].items())})`",
        f"- Stellar populations: {SSP_MODELS}; IMF: {SSP_IMF}",
        f"- Noise model: {card['noise_model'].get('kind')} "
        f"{ {k: v for k, v in card['noise_model'].items() if k not in ('kind', 'version')} }",
        f"- Inference prior: {card['inference_prior']}",
        f"- Training noise: {noise_words}; error floor: errors below the {100 * FLOOR_QUANTILE:g} % quantile "
        "of the training p(sigma | f) are raised to it (`inflated_bands`)",
        f"- Support test: {support_words}",
        f"- Flow: {sed['config']['flow']}",
        f"- Training: {t['n_simulations']:,} simulations ({t['n_train']:,} train / {t['n_validation']:,} "
        f"validation), {t['epochs']} epochs ({t['stopped']}), {t['train_seconds']:.0f} s on "
        f"{meta.get('train_device', 'cpu')}; best validation NLL (latent space) "
        f"{t['best_val_nll_latent']:.4f}",
        f"- Training config: `{json.dumps(sed['config']['train'])}`", "",
        "## Intended use", "", *(f"- {line}" for line in card["intended_use"]), "",
        "## Limits", "", *(f"- {line}" for line in card["limits"]), "",
    ]
    if validation:
        lines += ["## Validation", "", "```json", json.dumps(validation, indent=2), "```", ""]
    else:
        lines += ["## Validation", "", "Not yet run: `sedinfer validate --model <file>`.", ""]
    write_text(md_path, "\n".join(lines))
    return md_path


def _prior_words(prior: dict, skip: tuple[str, ...] = ()) -> str:
    """``name U(low, high)`` for each parameter of a ``Prior.to_dict()`` (other kinds by their keys)."""
    out = []
    for name, spec in prior.items():
        if name in skip or not isinstance(spec, dict):
            continue
        if spec.get("type") == "uniform":
            out.append(f"{name} U({spec['low']:g}, {spec['high']:g})")
        else:
            args = ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                             for k, v in spec.items() if k != "type")
            out.append(f"{name} {spec.get('type')}({args})")
    return ", ".join(out)


def _calibration_words(validation: dict | None) -> tuple[list[str], list[str]]:
    """(intended-use lines, limit lines) on what calibration was measured on."""
    if not validation or not validation.get("tarp"):
        return ([], ["Calibration not measured yet (`sedinfer validate --model <file>`): nothing is known "
                     "about the coverage of its intervals."])
    n = validation.get("n_simulations")
    passes = validation.get("passes", {})
    tarp = validation["tarp"].get("max_abs_deviation")
    tol = validation.get("targets", {}).get("tarp_tolerance")
    what = "SBC/TARP on " + (f"{n:,} " if isinstance(n, int) else "") + "held-out simulations"
    what += (f"; TARP max |ECP - credibility| {tarp:g}" if isinstance(tarp, (int, float)) else "")
    what += ((f" (tolerance {tol:g})" if isinstance(tol, (int, float)) else "")
            + ("; SBC: no parameter rejected" if passes.get("sbc_no_rejection") else ""))
    if passes and all(passes.values()):
        use = [f"Calibrated on simulations from its own forward model ({what}): its intervals hold the "
               "truth as often as they claim for galaxies the forward model, prior and noise model "
               "describe."]
    else:
        failed = ", ".join(k for k, v in passes.items() if not v)
        use = [f"Calibration on simulations from its own forward model was measured ({what}) and did not "
               f"pass ({failed}): intervals are not to be taken at their stated level."]
    limits = []
    mis = validation.get("misspecification")
    if mis:
        limits.append("Tested on simulations from another code (see `validation.misspecification`): "
                      f"{json.dumps(mis)[:300]}")
    else:
        limits.append("Calibration was measured only on simulations from this model's own forward model, "
                      "prior and noise model, not on real galaxies or on another SPS code's: coverage on "
                      "galaxies the forward model does not describe is unknown (the misspecification test "
                      "on bagpipes-simulated catalogs, where it has been run, is in docs/posterior.md of the "
                      "sedinfer repository).")
    mcmc = validation.get("mcmc")
    if mcmc and mcmc.get("galaxies"):
        gal = mcmc["galaxies"]
        conv = sum(bool(g.get("converged_50tau")) for g in gal)
        limits.append(f"Compared with MCMC (emcee, {mcmc.get('walkers')} walkers x {mcmc.get('steps')} "
                      f"steps) on {len(gal)} galaxies, {conv} of whose chains met the 50 "
                      "autocorrelation-time convergence criterion; median C2ST "
                      f"{mcmc.get('median_c2st', float('nan')):.2f} "
                      "(0.5: indistinguishable)." + ("" if conv == len(gal) else
                                                   " Unconverged chains make this a weak check."))
    return use, limits


def use_and_limits(sed_posterior, validation: dict | None = None) -> dict[str, list[str]]:
    """``{"intended_use": [...], "limits": [...]}``: sentences generated from the model itself."""
    meta = sed_posterior.posterior.metadata
    sed = meta["sed"]
    cfg = {**sed["config"], **sed_posterior.meta["config"]}
    fm = dict(sed_posterior.meta["model_config"])
    bands, spec = list(cfg["bands"]), cfg["redshift_mode"] == "spec"
    zp = sed["prior"].get("redshift", {})
    z_lo, z_hi = sed.get("redshift_range") or [zp.get("low", 0.0), zp.get("high", fm.get("z_max"))]
    ip = sed.get("inference_prior") or cfg.get("inference_prior")
    flux_limited = bool(ip) and ip.get("kind") == "flux_limited_histogram"
    use, limits = [], []

    # ---- what it is for
    derived = list(sed_posterior.names[len(sed_posterior.param_names):])
    p_lo, p_hi = ((ip["z_edges"][0], ip["z_edges"][-1]) if flux_limited else (z_lo, z_hi))  # prior's z
    zwords = (f"with a spectroscopic redshift in [{p_lo:g}, {p_hi:g}]" if spec
              else f"redshift inferred in [{p_lo:g}, {p_hi:g}]")
    use.append(f"Posterior draws of {', '.join(sed_posterior.param_names)} and the derived "
               f"{', '.join(derived)} for galaxies observed in {', '.join(bands)} (fluxes and 1-sigma errors "
               f"in nanomaggies, or magnitudes with --input-units), {zwords}; catalogs of many galaxies "
               "where a per-galaxy MCMC or nested-sampling fit is too slow.")
    use.append("Only galaxies inside the training support (`ood` False) and described by the forward model "
               "below; `ood` True rows are extrapolations.")
    if cfg.get("band_dropout"):
        use.append(f"Missing bands (NaN flux or error) are allowed: trained with band dropout "
                   f"{cfg['band_dropout']:g}, the flow marginalises them (`masked_bands`).")
    cal_use, cal_limits = _calibration_words(validation)
    use += cal_use

    # ---- the prior
    if flux_limited:
        from sedinfer.posterior.flux_limited import FluxLimitedPrior

        fl = FluxLimitedPrior.from_dict(ip)
        sel = fl.selection
        limits.append(f"Inference prior: (z, log M) of a flux-limited sample {sel.get('band')} < "
                      f"{sel.get('mag_max')} (z {fl.z_edges[0]:g}-{fl.z_edges[-1]:g}, log M "
                      f"{fl.log_mass_edges[0]:g}-{fl.log_mass_edges[-1]:g}), the other parameters from the "
                      f"box {_prior_words(sed['prior'], ('redshift', 'log_mass'))}. Galaxies fainter than "
                      f"{sel.get('band')} = {sel.get('mag_max')}, or outside those z and log M ranges, are "
                      "outside the prior: their posteriors are pulled into the sample's p(z, log M) and "
                      "should be treated as out of distribution.")
    else:
        limits.append(f"Inference prior: independent uniform box {_prior_words(sed['prior'])} (an "
                      "emulator-training range, not the distribution of any survey's galaxies)"
                      + ("; inferred redshifts and the masses that follow inherit its weight at high "
                         "redshift" if not spec else "") + ".")
    if spec:
        limits.append(f"Redshifts outside [{z_lo:g}, {z_hi:g}] are refused (`reason`); the redshift is "
                      "taken as exact (no redshift error is propagated).")
    else:
        limits.append(f"Galaxies beyond z = {p_hi:g} are not covered: the prior puts no weight there.")

    # ---- the forward model
    sfh = SFH_WORDS.get(fm.get("sfh"), f"SFH {fm.get('sfh')!r}")
    if "+burst" in str(fm.get("sfh")):
        sfh = SFH_WORDS.get(fm["sfh"].split("+")[0], fm["sfh"]) + " plus a burst"
    if fm.get("dust") == "cf":
        bc = (f"birth clouds on a power law (lambda/5500 A)^{fm.get('birth_cloud_index', -1.0):g}"
              if fm.get("birth_cloud_curve") == "power_law"
              else "birth clouds on the diffuse ISM's Kriek & Conroy curve (sedinfer 0.1 behaviour)")
        ism = ("diffuse ISM on the Kriek & Conroy (2013) curve with free slope n_dust"
               if fm.get("ism_curve", "kc") == "kc" else "diffuse ISM on a power law (lambda/5500 A)^n_dust")
        dust = f"Charlot & Fall (2000) two-component dust: {bc}, {ism}"
    elif fm.get("dust") == "calzetti":
        dust = "Calzetti et al. (2000) attenuation"
    else:
        dust = "no dust attenuation"
    limits.append(f"Forward model: {SSP_MODELS} stellar populations, IMF {SSP_IMF}; {sfh}; {dust}; "
                  f"nebular emission {'on' if fm.get('nebular') else 'off'}; dust emission "
                  f"{'on' if fm.get('dust_emission') else 'off'}; AGN {'on' if fm.get('agn') else 'off'}; "
                  f"{fm.get('cosmology')} cosmology; no Milky Way extinction (correct the fluxes for it).")
    limits.append(f"Stellar masses and SFRs are for a {SSP_IMF.split(',')[0]} IMF and {fm.get('cosmology')} "
                  "distances: convert before comparing with catalogs that assume others.")
    if not fm.get("nebular"):
        limits.append("No nebular emission (lines or continuum), which every star-forming galaxy has: "
                      "bands holding strong lines are fitted with stars and dust, biasing masses and SFRs.")
    if not fm.get("agn"):
        limits.append("AGN are not modelled: AGN-dominated galaxies and quasars are outside the model "
                      "(not necessarily flagged `ood`).")
    if not fm.get("dust_emission"):
        limits.append("No dust emission: rest-frame mid-infrared bands (beyond ~3 micron) are not modelled.")
    limits.append("Galaxies whose SED the forward model cannot produce (other SPS codes, SFHs, dust "
                  "laws) are misspecified: their posteriors may be biased while `ood` stays False, since "
                  "the support test sees only the photometry.")

    # ---- the noise model
    noise = sed["noise"].get("base", sed["noise"]) if sed["noise"].get("kind") == "scaled" else sed["noise"]
    details = {k: v for k, v in noise.items() if k not in ("kind", "version", "bands")}
    sfr = cfg.get("sigma_factor_range")
    floor = f"{100 * FLOOR_QUANTILE:g} %"
    if sfr:
        limits.append(f"Training errors: independent Gaussian per band, the {noise.get('kind')} noise "
                      f"model's sigma ({details}) times a log-uniform factor in [{sfr[0]:g}, {sfr[1]:g}]. "
                      f"Galaxies with errors more than {sfr[1]:g}x the model's are outside the support "
                      "(`ood`); "
                      f"errors below the {floor} quantile of the training p(sigma | f) (about "
                      f"{_floor_factor(sfr):.2g}x the model's sigma) are raised to it (`inflated_bands`), "
                      "so their posteriors are wider than the catalog's errors would allow.")
    else:
        limits.append(f"Training errors: independent Gaussian per band from the {noise.get('kind')} noise "
                      f"model ({details}) only: catalogs whose errors differ from it (other depths or "
                      f"surveys) are outside the support (`ood`), except errors below its {floor} floor, "
                      "which are raised to it (`inflated_bands`).")
    if cfg.get("redraw_negative", True):
        limits.append("The training noise redrew negative fluxes (PopSED): negative fluxes of faint "
                      "galaxies are outside the support and such galaxies are flagged `ood`.")
    else:
        limits.append("Negative fluxes are valid input (faint galaxies): the training noise was kept as "
                      "drawn, negative fluxes included.")
    limits.append("Errors are taken as the whole error: no zero-point or model-systematics term is added.")

    # ---- the support test
    if sed.get("support"):
        q = sed["support"].get("quantile", 0.99)
        limits.append(f"Support test (`ood`): a Gaussian mixture over the flow's context (asinh magnitude "
                      f"and log error per band{', redshift' if spec else ''}) flags galaxies whose density "
                      f"is below the {100 * q:g} % threshold of held-out simulations of the same brightness "
                      f"and band pattern (about {100 * (1 - q):g} % of galaxies like the training set's are "
                      "flagged by design), plus any feature outside the central 99.9 % of the training set. "
                      "It sees unusual colours and errors, not misspecification inside the simulated "
                      "colours.")
    else:
        limits.append("Support test (`ood`): a per-feature box only (each band's asinh magnitude and error "
                      "outside the central 99.9 % of the training set); colours are not tested, so a "
                      "galaxy with ordinary magnitudes but impossible colours is not flagged.")
    limits += cal_limits
    return {"intended_use": use, "limits": limits}


def _inference_prior_line(sed: dict) -> str:
    """The prior the posterior is for, in words: the box, or the flux-limited histogram's recipe."""
    if sed.get("inference_prior"):
        from sedinfer.posterior.flux_limited import FluxLimitedPrior

        return FluxLimitedPrior.from_dict(sed["inference_prior"]).describe()
    return "the prior box above (independent parameters)"


def _floor_factor(factor_range) -> float:
    """The error floor over the base model's median σ, ignoring the base model's own scatter."""
    lo, hi = (float(v) for v in factor_range)
    return lo * (hi / lo) ** FLOOR_QUANTILE


__all__ = ["load_config", "read_toml", "write_model_card", "card_paths", "use_and_limits"]

