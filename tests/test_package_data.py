"""Every data file the package ships is in git and in the wheel, and the demos run from them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "sedinfer" / "data"


def _git(*args: str, check: bool = True) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=check).stdout


@pytest.fixture(scope="module")
def tracked() -> set[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    return {p for p in _git("ls-files", "src/sedinfer/data").splitlines()}


def test_no_data_file_is_ignored_or_untracked(tracked):
    on_disk = {str(p.relative_to(ROOT)) for p in DATA.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert on_disk - tracked == set(), "data files on disk that git does not track (ignored or never added)"
    # exit status 1: none of them is ignored
    ignored = _git("check-ignore", "--no-index", *sorted(tracked), check=False).split()
    assert ignored == [], f"tracked data files matched by .gitignore: {ignored}"


def test_files_the_code_opens_are_tracked(tracked):
    from sedinfer import cli_population, cli_posterior
    from sedinfer.posterior.galaxies import SHIPPED, shipped_path

    opened = [cli_population.demo_catalog(), cli_posterior.demo_catalog(), DATA / "nmf_sfh_bases.csv"]
    for name in SHIPPED:
        model = shipped_path(name)
        opened += [model, model.with_suffix(".card.json"), model.with_suffix(".card.md")]
    for path in opened:
        assert path.is_file(), path
        assert str(path.resolve().relative_to(ROOT)) in tracked, path


@pytest.mark.slow
def test_wheel_holds_every_tracked_data_file(tracked, tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("sedinfer-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [p for p in tracked if p.removeprefix("src/") not in names]
    assert missing == []


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sedinfer.population.PopulationWarning")
def test_population_demo_runs_end_to_end(tmp_path, capsys):
    from sedinfer.cli import main

    out = tmp_path / "demo"
    assert main(["population", "--demo", "--out", str(out), "--n-flows", "1", "--epochs", "1",
                 "--samples", "500", "--no-progress"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["n_galaxies"] == 10_000 and run["catalog"].endswith("popsed_mock.parquet")
    assert "recovery" in run                                    # the demo catalog carries its truth
    assert (out / "corner.png").stat().st_size > 0
    assert "fitted 10000 galaxies" in capsys.readouterr().out
