"""Training configs from TOML and model cards (Markdown + JSON) beside trained SED posteriors."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from sedinfer.atomic import write_text
from sedinfer.errors import ParameterError
from sedinfer.sps.grids import SSP_IMF, SSP_MODELS


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
        "training": {k: meta.get(k) for k in ("n_simulations", "n_train", "n_validation", "epochs",
                                              "train_seconds", "best_val_nll_latent", "stopped")},
        "config": sed["config"],
        "validation": validation,
    }
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
        f"- Training noise: {noise_words}; error floor: errors below the 0.1 % quantile of the "
        "training p(sigma | f) are raised to it (`inflated_bands`)",
        f"- Support test: {support_words}",
        f"- Flow: {sed['config']['flow']}",
        f"- Training: {t['n_simulations']:,} simulations ({t['n_train']:,} train / {t['n_validation']:,} "
        f"validation), {t['epochs']} epochs ({t['stopped']}), {t['train_seconds']:.0f} s on "
        f"{meta.get('train_device', 'cpu')}; best validation NLL (latent space) "
        f"{t['best_val_nll_latent']:.4f}",
        f"- Training config: `{json.dumps(sed['config']['train'])}`", "",
    ]
    if validation:
        lines += ["## Validation", "", "```json", json.dumps(validation, indent=2), "```", ""]
    else:
        lines += ["## Validation", "", "Not yet run: `sedinfer validate --model <file>`.", ""]
    write_text(md_path, "\n".join(lines))
    return md_path


def _inference_prior_line(sed: dict) -> str:
    """The prior the posterior is for, in words: the box, or the flux-limited histogram's recipe."""
    if sed.get("inference_prior"):
        from sedinfer.posterior.flux_limited import FluxLimitedPrior

        return FluxLimitedPrior.from_dict(sed["inference_prior"]).describe()
    return "the prior box above (independent parameters)"


__all__ = ["load_config", "read_toml", "write_model_card", "card_paths"]
