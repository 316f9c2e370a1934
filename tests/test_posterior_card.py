"""Model cards: "Intended use" and "Limits" generated from the model, "calibrated" only as measured."""

from __future__ import annotations

import copy
import json
import re
from types import SimpleNamespace

import pytest

from sedinfer.posterior.card import card_paths, use_and_limits, write_model_card
from sedinfer.posterior.galaxies import SEDPosterior, shipped_path

SCOPED = "calibrated on simulations from its own forward model (sbc/tarp on"


@pytest.fixture(scope="module")
def shipped():
    sp = SEDPosterior.load("sdss-specz")
    validation = json.loads(card_paths(shipped_path("sdss-specz"))[1].read_text())["validation"]
    return sp, validation


def stub(sp, sed_changes=None, config=None, model_config=None, mode=None):
    """A stand-in for an SEDPosterior with the shipped model's metadata, changed as asked."""
    sed = copy.deepcopy(sp.posterior.metadata["sed"])
    sed.update(sed_changes or {})
    sed["config"].update(config or {})
    meta = copy.deepcopy(sp.meta)
    meta["config"].update(config or {})
    meta["model_config"].update(model_config or {})
    if mode:
        sed["config"]["redshift_mode"] = meta["config"]["redshift_mode"] = mode
    return SimpleNamespace(posterior=SimpleNamespace(metadata={"sed": sed}), meta=meta,
                           param_names=sp.param_names, names=sp.names)


def words(card: dict) -> str:
    return "\n".join(card["intended_use"] + card["limits"])


def assert_calibrated_is_scoped(text: str) -> None:
    for m in re.finditer(r"calibrated", text, flags=re.IGNORECASE):
        assert text[m.start():].lower().startswith(SCOPED), text[m.start() - 40:m.start() + 120]


def test_card_files_have_intended_use_and_limits(shipped, tmp_path):
    sp, validation = shipped
    md = write_model_card(sp, tmp_path / "m.pt", validation=validation).read_text()
    card = json.loads(card_paths(tmp_path / "m.pt")[1].read_text())
    assert "## Intended use" in md and "## Limits" in md
    assert md.index("## Intended use") < md.index("## Limits") < md.index("## Validation")
    for line in card["intended_use"] + card["limits"]:
        assert f"- {line}" in md
    text = words(card)
    # the facts of this model, not boilerplate
    assert "sdss_u0, sdss_g0, sdss_r0, sdss_i0, sdss_z0" in text
    assert "spectroscopic redshift in [0, 1.55]" in text
    assert "Kroupa (2001)" in text and "Planck18" in text and "nebular emission on" in text
    assert "birth clouds on a power law (lambda/5500 A)^-1" in text
    assert "AGN are not modelled" in text and "uniform box redshift U(0, 1.55)" in text
    assert "log-uniform factor in [0.333333, 3]" in text and "10 % quantile" in text
    assert "Negative fluxes are valid input" in text and "redrew" not in text
    assert "Gaussian mixture" in text and "per-feature box only" not in text
    assert "SBC/TARP on 2,000 held-out simulations" in text
    assert "only on simulations from this model's own forward model" in text
    assert_calibrated_is_scoped(md)
    assert_calibrated_is_scoped(json.dumps(card))


def test_unvalidated_model_never_says_calibrated(shipped):
    text = words(use_and_limits(shipped[0], None))
    assert "calibrated" not in text.lower() and "Calibration not measured yet" in text


def test_failed_validation_is_not_called_calibrated(shipped):
    sp, validation = shipped
    bad = copy.deepcopy(validation)
    bad["passes"]["tarp_ecp_within_0.03"] = False
    text = words(use_and_limits(sp, bad))
    assert "calibrated" not in text.lower() and "did not pass (tarp_ecp_within_0.03)" in text


def test_limits_follow_the_model(shipped):
    sp, validation = shipped
    prior = {"kind": "flux_limited_histogram", "z_edges": [0.0, 0.1, 0.3],
             "log_mass_edges": [8.0, 10.0, 12.0], "counts": [[3, 5], [1, 7]],
             "selection": {"band": "sdss_r0", "mag_max": 17.77, "n_galaxies": 16}}
    support = {"quantile": 0.99, "info": {"n_fit": 10}}
    noise = {"kind": "scaled", "base": sp.posterior.metadata["sed"]["noise"], "factor_range": [1 / 3, 3]}
    new = stub(sp, sed_changes={"inference_prior": prior, "support": support, "noise": noise},
               config={"sigma_factor_range": [1 / 3, 3.0], "redraw_negative": False},
               model_config={"nebular": True, "agn": True, "birth_cloud_curve": "power_law",
                             "birth_cloud_index": -1.0}, mode="phot")
    text = words(use_and_limits(new, validation))
    assert "flux-limited sample sdss_r0 < 17.77 (z 0-0.3, log M 8-12)" in text
    assert "fainter than sdss_r0 = 17.77" in text and "uniform box" not in text
    assert "log-uniform factor in [0.333333, 3]" in text and "more than 3x the model's" in text
    assert "'mag_lim_5sigma'" in text                      # the base depth model, not the wrapper
    assert "Negative fluxes are valid input" in text and "redrew" not in text
    assert "Gaussian mixture" in text and "99 % threshold" in text and "per-feature box" not in text
    assert "birth clouds on a power law (lambda/5500 A)^-1" in text
    assert "nebular emission on" in text and "No nebular emission" not in text
    assert "AGN on" in text and "AGN are not modelled" not in text
    assert "redshift inferred in [0, 0.3]" in text and "Galaxies beyond z = 0.3" in text   # the prior's z
    mis = copy.deepcopy(validation)
    mis["misspecification"] = {"source": "bagpipes", "n_galaxies": 1000}
    text = words(use_and_limits(new, mis))
    assert "Tested on simulations from another code" in text and "bagpipes" in text
    assert_calibrated_is_scoped(text)
