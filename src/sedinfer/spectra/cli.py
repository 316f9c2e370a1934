"""``sedinfer ir simulate|train|predict``: arguments and runners of the ``ir`` command group.

``ir train`` is :mod:`sedinfer.spectra.train_ir` (a mock table, or SDSS spec files with ``--wise``);
``ir predict`` streams spectra through :func:`sedinfer.spectra.predict_ir.run_predict_survey`
(``--chunk``, ``--scheduler``, ``--workers``, ``--threads``, resumable, ``--restart``).

``add_simulate_arguments(parser)`` adds ``--n``, ``--seed``, ``--prior coupled|separable``,
``--out``, ``--overwrite``, ``--z-max``, ``--r-limit``, ``--agn`` and ``--chunk`` to an argparse
parser; ``run_simulate(args)`` simulates and writes the mock table chunk by chunk
(:mod:`sedinfer.spectra.io`, one Parquet row group per chunk) and returns its path.
Parsing imports nothing heavy; torch and the SPS model load in ``run_simulate``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_simulate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``ir simulate`` options to ``parser`` and return it."""
    parser.add_argument("--n", type=int, required=True, help="number of galaxies (after the r < 17.77 cut)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--prior", choices=("coupled", "separable"), default="coupled",
                        help="population prior: infrared parameters coupled to the optical ones, or "
                             "independent with the same marginals (default coupled)")
    parser.add_argument("--out", required=True, help="output table (.parquet)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--z-max", type=float, default=0.5, help="largest redshift drawn (default 0.5)")
    parser.add_argument("--r-limit", type=float, default=17.77, help="r-band selection limit, AB (17.77)")
    parser.add_argument("--agn", action="store_true", help="add the SPS model's AGN torus (f_agn)")
    parser.add_argument("--chunk", type=int, default=2000,
                        help="galaxies simulated and written at a time (memory; default 2000)")
    return parser


def build_model(agn: bool = False):
    """The mock SPS model: NMF SFH, Charlot & Fall dust, nebular and dust emission (+ AGN)."""
    from sedinfer.errors import ParameterError
    from sedinfer.sps.model import SPSModel

    kwargs = {"nebular": True, "dust_emission": True}
    if agn:
        try:
            return SPSModel(**kwargs, agn=True)
        except TypeError as err:
            raise ParameterError("--agn: this sedinfer's SPSModel has no AGN component (agn=True is not "
                                 f"accepted: {err})") from err
    return SPSModel(**kwargs)


def run_simulate(args: argparse.Namespace, model=None) -> Path:
    """Simulate ``args.n`` galaxies and write them to ``args.out``; returns the path. ``model``
    (an SPS model with nebular and dust emission) replaces :func:`build_model` if given."""
    import json

    from sedinfer import __version__
    from sedinfer.errors import ParameterError
    from sedinfer.noise import default_noise_model
    from sedinfer.spectra.instrument import sdss_instrument
    from sedinfer.spectra.io import write_mock_table
    from sedinfer.spectra.noise import SpectralNoise
    from sedinfer.spectra.priors import MockPrior
    from sedinfer.spectra.simulate import MockConfig, iter_mocks
    from sedinfer.spectra.wise import WISE_BANDS

    if args.n < 1:
        raise ParameterError(f"--n must be >= 1, got {args.n}")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise ParameterError(f"{str(out)!r} already exists; pass --overwrite to replace it")
    model = model if model is not None else build_model(args.agn)
    inst, noise, wise_noise = sdss_instrument(), SpectralNoise(), default_noise_model(list(WISE_BANDS))
    config = MockConfig(r_limit_ab=args.r_limit)
    chunks = iter_mocks(args.n, model, args.prior, args.seed, inst, noise, wise_noise, config,
                        z_max=args.z_max, chunk_galaxies=args.chunk)
    meta = {"sedinfer_version": __version__, "seed": args.seed, "n": args.n,
            "sps_config": model.config.to_dict(),
            "prior": MockPrior(model, args.prior, z_max=args.z_max).describe(),
            "spectral_noise": json.loads(json.dumps(noise.__dict__)),
            "wise_noise": wise_noise.to_dict(), "mock_config": config.__dict__,
            "chunk_galaxies": args.chunk}
    return write_mock_table(chunks, out, inst, meta, overwrite=args.overwrite)


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``ir train``: :func:`sedinfer.spectra.train_ir.add_train_arguments`."""
    from sedinfer.spectra.train_ir import add_train_arguments as add

    return add(parser)


def run_train(args: argparse.Namespace) -> int:
    """Train the autoencoder and the WISE predictor; exit status 3 while not finished (rerun)."""
    from sedinfer.spectra.train_ir import run_train as train

    return 0 if train(args).get("done") else 3


#: where shipped infrared models will live (autoencoder.pt, predictor.pt)
SHIPPED_IR_DIR = ("data", "ir")


def add_spectra_and_models(parser: argparse.ArgumentParser) -> None:
    """The INPUT spectra and ``--models`` options that ``ir predict`` and ``ir occlusion`` share."""
    parser.add_argument("input", nargs="+",
                        help="SDSS spec-*.fits files, a directory or glob of them, or a table (.parquet) "
                             "written by `sedinfer ir simulate`")
    parser.add_argument("--models", default=None, metavar="DIR",
                        help="directory with autoencoder.pt and predictor.pt (from `sedinfer ir train`; "
                             "default: the shipped models)")


def add_predict_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``ir predict``: INPUT spectra -> one row of latents and W1-W4 predictions per spectrum."""
    from sedinfer.cli_args import add_cluster_arguments, positive_int
    from sedinfer.threads import DEFAULT_THREADS

    add_spectra_and_models(parser)
    parser.add_argument("--out", required=True, help="output table (.parquet or .fits)")
    r = parser.add_argument_group("execution (streamed in chunks; an interrupted run resumes)")
    r.add_argument("--chunk", type=positive_int, default=2000,
                   help="spectra read, encoded and written at a time (memory; default 2000)")
    add_cluster_arguments(r, "encode the chunks")
    r.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS,
                   help=f"torch threads per process (default {DEFAULT_THREADS})")
    r.add_argument("--restart", action="store_true",
                   help="discard the finished chunks of an interrupted run (OUT.parts/) and start over")
    r.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    r.add_argument("--no-progress", action="store_true", help="no progress bar or lines on stderr")
    return parser


def _model_dir(arg: str | None) -> Path:
    from importlib import resources

    from sedinfer.errors import ParameterError

    folder = Path(arg) if arg else Path(str(resources.files("sedinfer").joinpath(*SHIPPED_IR_DIR)))
    missing = [f for f in ("autoencoder.pt", "predictor.pt") if not (folder / f).is_file()]
    if missing:
        where = f"--models {folder}" if arg else f"this installation ({folder})"
        raise ParameterError(f"{where} has no {' or '.join(missing)}: the infrared models are not "
                             "shipped yet; train them with `sedinfer ir train MOCK --out-dir DIR` and "
                             "pass --models DIR")
    return folder


def run_predict(args: argparse.Namespace) -> Path:
    """Encode each input spectrum and predict its WISE magnitudes, chunk by chunk; every input gets
    a row (:func:`sedinfer.spectra.predict_ir.run_predict_survey`)."""
    import sys

    from sedinfer.spectra.predict_ir import run_predict_survey

    summary = run_predict_survey(args.input, args.out, _model_dir(args.models), chunk=args.chunk,
                                 scheduler=args.scheduler, workers=args.workers, threads=args.threads,
                                 restart=args.restart, overwrite=args.overwrite,
                                 progress=not args.no_progress)
    print(summary.line())
    for ident, reason in summary.failures:
        print(f"  {ident}: {reason}", file=sys.stderr)
    return summary.out


__all__ = ["add_simulate_arguments", "build_model", "run_simulate", "add_train_arguments", "run_train",
           "add_predict_arguments", "run_predict", "add_spectra_and_models", "SHIPPED_IR_DIR"]
