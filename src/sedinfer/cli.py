"""The ``sedinfer`` command line.

Each subcommand is one :class:`Command`: a name, a one-line help, a function that adds its
arguments to an argparse sub-parser and a function ``run(args) -> exit code``. They are listed
in :data:`COMMANDS`; a new subcommand is a new entry there. Heavy modules are imported inside
the run functions so that ``sedinfer --version`` and ``--help`` start instantly.

Errors from user input (:class:`sedinfer.errors.SedinferError`, ``ValueError``, ``OSError``)
print one line ``sedinfer: error: <message>`` on stderr and exit with status 2; unexpected
exceptions exit with status 1 and a hint to rerun with ``--debug`` for the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sedinfer import __version__, cli_population, cli_posterior, cli_train
from sedinfer.cli_args import check_output, filter_list, non_negative_int, positive_int
from sedinfer.errors import SedinferError

PROG = "sedinfer"


@dataclass(frozen=True)
class Command:
    """One subcommand: ``add_arguments(parser)`` configures it, ``run(args)`` executes it."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


# -------------------------------------------------------------------------- simulate
def _add_simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=positive_int, required=True, help="number of galaxies to simulate")
    p.add_argument("--filters", type=filter_list, default="sdss",
                   help="group alias (sdss, wise, 2mass, galex, hsc, lsst, decam) or comma-separated "
                        "sedpy filter names (default: sdss)")
    p.add_argument("--out", required=True,
                   help="output catalog; the format follows the extension (.parquet, .fits, .ecsv, .csv)")
    p.add_argument("--seed", type=non_negative_int, default=None,
                   help="random seed (default: fresh, recorded in the catalog metadata)")
    p.add_argument("--noise", default=None, metavar="JSON",
                   help="noise model saved by NoiseModel.save (default: published depths of the bands)")
    p.add_argument("--chunk-size", type=positive_int, default=10000,
                   help="galaxies per forward-model call (default: 10000)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def cmd_simulate(args: argparse.Namespace) -> int:
    from sedinfer.catalog import write_catalog
    from sedinfer.simulate import simulate_catalog

    check_output(args.out, args.overwrite)
    start = time.perf_counter()
    noise = None
    if args.noise is not None:
        from sedinfer import noise as noise_module

        noise = noise_module.load(args.noise)
    table = simulate_catalog(args.n, filters=args.filters, noise=noise, seed=args.seed,
                             chunk_size=args.chunk_size, progress=not args.no_progress)
    path = write_catalog(table, args.out, overwrite=args.overwrite)
    elapsed = time.perf_counter() - start
    print(f"wrote {len(table)} rows x {len(table.colnames)} columns to {path} in {elapsed:.1f} s "
          f"(seed {table.meta['seed']})")
    return 0


# --------------------------------------------------------------------- filters / info
def _add_nothing(p: argparse.ArgumentParser) -> None:
    del p


def cmd_filters(args: argparse.Namespace) -> int:
    from sedinfer.filters import FILTER_GROUPS, available_filters

    print("group aliases:")
    width = max(len(g) for g in FILTER_GROUPS)
    for group, names in FILTER_GROUPS.items():
        print(f"  {group.ljust(width)}  {', '.join(names)}")
    names = available_filters()
    print(f"\nsedpy filters ({len(names)}):")
    for name in names:
        print(f"  {name}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from sedinfer.sps.derived import DERIVED_NAMES, DERIVED_UNITS
    from sedinfer.sps.model import SPSModel

    model = SPSModel()
    config = ", ".join(f"{k}={v!r}" for k, v in model.config.to_dict().items())
    print(f"sedinfer {__version__}")
    print(f"default model: {config}")
    print(f"\nparameters ({model.ndim}) and prior:")
    print(model.prior.describe())
    print("\nderived quantities: " + ", ".join(f"{n} [{DERIVED_UNITS[n]}]" for n in DERIVED_NAMES))
    print("fluxes in catalogs: nanomaggies (1 nmgy = 3.631 uJy; AB mag = 22.5 - 2.5 log10 f)")
    return 0


COMMANDS: list[Command] = [
    Command("simulate", "simulate a mock catalog from the prior of the default model", _add_simulate,
            cmd_simulate),
    Command("filters", "list the filter group aliases and the sedpy filter names", _add_nothing,
            cmd_filters),
    Command("info", "show the default model's parameters and prior", _add_nothing, cmd_info),
    Command("train-posterior", "train an amortized SED posterior from a TOML config, with its model card",
            cli_train.add_train, cli_train.cmd_train),
    Command("validate", "check a trained SED posterior: p-p, SBC, TARP, recovery and MCMC comparison",
            cli_train.add_validate, cli_train.cmd_validate),
    Command("posterior", "posterior summaries (and samples) of every galaxy in a catalog",
            cli_posterior.add_posterior, cli_posterior.cmd_posterior),
    Command("population", "the joint distribution of galaxy properties behind a photometric catalog (PopSED)",
            cli_population.add_population, cli_population.cmd_population),
    Command("ir", "optical spectra -> infrared: mock spectra with WISE ('ir simulate'), the spectrum "
                  "autoencoder and WISE predictor ('ir train', 'ir predict'), multiscale occlusion "
                  "('ir occlusion')",
            lambda p: _add_steps(p, "ir", {
                "simulate": ("SDSS-like spectra and WISE W1-W4 (Vega) of mock galaxies, one Parquet row each",
                             "sedinfer.spectra.cli"),
                "train": ("train the spectrum autoencoder and the WISE predictor on a mock table or on "
                          "SDSS spectra with a WISE catalog (resumable; exit status 3 until finished)",
                          "sedinfer.spectra.cli"),
                "predict": ("latents and W1-W4 predictions (Vega mag) of SDSS spectra, one row each with "
                            "ok and reason", "sedinfer.spectra.cli"),
                "occlusion": ("which spectral pixels the WISE predictions depend on: multiscale occlusion "
                              "maps per spectrum and a star-forming / quiescent figure",
                              "sedinfer.spectra.cli_occlusion")}), None),
    Command("dustmap", "dust maps from multi-band images: simulated dusty galaxies ('dustmap simulate') "
                       "and MAP fits of FITS cutouts ('dustmap fit')",
            lambda p: _add_steps(p, "dustmap", {
                "simulate": ("simulated hosts and dust maps as FITS cubes (SCI, VAR, HOST, DUST)",
                             "sedinfer.images.cli"),
                "fit": ("MAP host SEDs and dust maps of FITS cutouts: <name>.dustmap.fits (HOST, DUST, "
                        "ATTEN, MODEL, RESID), JSON summaries and a figure; resumable chunks, --scheduler",
                        "sedinfer.images.cli")}),
            None),
]
"""The subcommands, in help order. Later subcommands are appended here."""


#: groups whose step may be left out: ``sedinfer dustmap CUBE.fits`` means ``sedinfer dustmap fit CUBE.fits``
DEFAULT_STEPS = {"dustmap": ("fit", ("simulate", "fit"))}


def _with_default_step(argv: list[str]) -> list[str]:
    """``argv`` with the default step inserted after a group name followed by something that is
    not a step or help (an input file, ``--demo``)."""
    for i, token in enumerate(argv):
        if token.startswith("-"):
            continue
        if token in DEFAULT_STEPS and i + 1 < len(argv):
            step, steps = DEFAULT_STEPS[token]
            nxt = argv[i + 1]
            if nxt not in steps and nxt not in ("-h", "--help", "--debug"):
                return [*argv[:i + 1], step, *argv[i + 1:]]
        return argv
    return argv


def _add_steps(p: argparse.ArgumentParser, group: str, steps: dict[str, tuple[str, str]]) -> None:
    """Subcommands of a command group (``sedinfer GROUP STEP ...``): each step's module provides
    ``add_simulate_arguments`` / ``run_simulate`` style hooks named after the step."""
    import importlib

    sub = p.add_subparsers(dest=f"{group}_step", metavar="STEP", required=True)
    for step, (text, module_name) in steps.items():
        module = importlib.import_module(module_name)
        q = sub.add_parser(step, help=text, description=text)
        getattr(module, f"add_{step}_arguments")(q)
        q.set_defaults(run=_status(getattr(module, f"run_{step}")))


def _status(run: Callable[[argparse.Namespace], object]) -> Callable[[argparse.Namespace], int]:
    """A step runner as a CLI command: a returned path is printed, the exit status is 0 unless an int."""
    def call(args: argparse.Namespace) -> int:
        result = run(args)
        if isinstance(result, Path):
            print(f"wrote {result}")
        return result if isinstance(result, int) else 0

    return call


# ------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Neural inference of galaxy properties with a differentiable SPS model.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help, parents=[common])
        command.add_arguments(p)
        p.set_defaults(run=command.run)
    return parser


def _one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 unexpected error, 2 bad input)."""
    parser = build_parser()
    argv = _with_default_step(list(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, usage errors
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    debug = getattr(args, "debug", False)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `sedinfer filters | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (SedinferError, ValueError, OSError) as err:
        if debug:
            traceback.print_exc()
        print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:
        if debug:
            traceback.print_exc()
        print(f"{PROG}: error: unexpected {type(err).__name__}: {_one_line(err)} "
              f"(rerun with --debug for the traceback)", file=sys.stderr)
        return 1


__all__ = ["COMMANDS", "Command", "build_parser", "main"]
