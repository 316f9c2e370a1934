"""`sedinfer train-posterior` and `sedinfer validate` end to end on a tiny configuration."""

from __future__ import annotations

import json

import pytest

from sedinfer.cli import main

TINY = """
bands = ["sdss_u0", "sdss_g0", "sdss_r0", "sdss_i0", "sdss_z0"]
redshift_mode = "{mode}"
n_simulations = 3000
seed = 4
[flow]
transforms = 2
hidden = [32, 32]
[train]
max_epochs = 2
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["spec", "phot"])
def test_train_then_validate(tmp_path, capsys, mode):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY.format(mode=mode))
    model = tmp_path / "tiny.pt"
    assert main(["train-posterior", str(cfg), "--out", str(model), "--no-progress"]) == 0
    card = json.loads(model.with_suffix(".card.json").read_text())
    assert card["training"]["n_simulations"] == 3000 and card["redshift_mode"] == mode
    assert ("redshift" in card["parameters"]) == (mode == "phot")
    assert main(["train-posterior", str(cfg), "--out", str(model)]) == 2       # exists, no --overwrite
    assert "already exists" in capsys.readouterr().err
    out = tmp_path / "val"
    assert main(["validate", "--model", str(model), "--out", str(out), "--n", "200", "--samples", "50",
                 "--no-progress", "--update-card"]) == 0
    report = json.loads((out / "validation.json").read_text())
    assert report["n_simulations"] == 200 and set(report["passes"]) >= {"sbc_no_rejection"}
    for name in ("pp.png", "sbc.png", "tarp.png", "recovery.png"):
        assert (out / name).stat().st_size > 0
    assert "## Validation" in model.with_suffix(".card.md").read_text()


def test_train_config_errors(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('redshift_mode = "both"\n')
    assert main(["train-posterior", str(cfg), "--out", str(tmp_path / "m.pt")]) == 2
    assert "redshift_mode must be 'spec' or 'phot'" in capsys.readouterr().err
    assert main(["validate", "--model", "no-such-model", "--out", str(tmp_path)]) == 2
    assert "no posterior model file" in capsys.readouterr().err
