"""Threads and progress of long jobs: sedinfer.threads, sedinfer.progress and ``sedinfer posterior``."""

from __future__ import annotations

import io
import re

import pytest
import torch

from sedinfer import cli, progress, threads
from sedinfer.catalog import read_catalog, write_catalog
from sedinfer.cli_posterior import demo_catalog
from sedinfer.errors import ParameterError
from sedinfer.posterior import runner
from sedinfer.posterior.columns import column_map
from sedinfer.posterior.galaxies import SEDPosterior
from sedinfer.posterior.sed_config import SDSS_BANDS

LINE = re.compile(r"^posterior: (\d+)/12 galaxies, \d+\.\d s(, \d+\.\d ms/galaxy)?(, eta \d+ s)?$")


def test_torch_threads_scope_restores_the_count():
    before = torch.get_num_threads()
    with threads.torch_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), threads.torch_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    assert threads.check_threads(None) == threads.DEFAULT_THREADS == 1
    for bad in (0, -2, 1.5, True, "2"):
        with pytest.raises(ParameterError, match="threads must be a positive integer"):
            threads.check_threads(bad)
    assert threads.available_cpus() >= 1


def test_progress_lines_when_not_a_terminal():
    out = io.StringIO()
    with progress.ProgressLines(10, "posterior", stream=out, interval=0.0) as bar:
        bar.skip(4)            # resumed rows: in the count, not in the rate
        bar.update(3)
        bar.update(3)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"posterior: 7/10 galaxies, \d+\.\d s, \d+\.\d ms/galaxy, eta \d+ s", lines[0])
    assert re.fullmatch(r"posterior: 10/10 galaxies, \d+\.\d s, \d+\.\d ms/galaxy", lines[1])
    quiet = io.StringIO()
    with progress.ProgressLines(10, "posterior", stream=quiet, interval=3600.0) as bar:
        bar.update(5)
    assert quiet.getvalue().count("\n") == 1 and "5/10" in quiet.getvalue()   # only the closing line
    assert isinstance(progress.progress(3, "x", stream=io.StringIO()), progress.ProgressLines)
    silent = io.StringIO()
    with progress.progress(3, "x", enabled=False, stream=silent) as bar:
        bar.update(3)
    assert silent.getvalue() == ""


def test_posterior_run_reports_progress_and_uses_the_thread_count(tmp_path, monkeypatch, capsys):
    cat = read_catalog(demo_catalog())[:12]
    write_catalog(cat, tmp_path / "cat.parquet")
    seen = []
    original = SEDPosterior.infer

    def infer(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SEDPosterior, "infer", infer)
    monkeypatch.setattr(progress, "INTERVAL_S", 0.0)
    before = torch.get_num_threads()
    runner.run_posterior(tmp_path / "cat.parquet", tmp_path / "o.parquet", column_map(SDSS_BANDS, True),
                         n_samples=8, chunk_rows=5, threads=1, workers=1)
    assert seen == [1, 1, 1] and torch.get_num_threads() == before
    lines = capsys.readouterr().err.splitlines()
    assert [int(LINE.match(x).group(1)) for x in lines] == [5, 10, 12]
    assert all("ms/galaxy" in x for x in lines)
    with pytest.raises(ParameterError, match="threads must be a positive integer"):
        runner.run_posterior(tmp_path / "cat.parquet", tmp_path / "p.parquet", column_map(SDSS_BANDS, True),
                             threads=0)


def test_cli_threads_option(tmp_path, capsys):
    cat = read_catalog(demo_catalog())[:3]
    write_catalog(cat, tmp_path / "cat.parquet")
    base = ["posterior", str(tmp_path / "cat.parquet"), "--samples", "4", "--no-progress"]
    assert cli.main([*base, "--out", str(tmp_path / "a.parquet"), "--threads", "0"]) == 2
    assert "--threads: must be a positive integer" in capsys.readouterr().err
    assert cli.main([*base, "--out", str(tmp_path / "a.parquet"), "--threads", "2"]) == 0
    assert capsys.readouterr().err == ""                     # --no-progress: no lines either
