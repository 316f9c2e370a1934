"""``sedinfer population``: the population distribution behind a catalog (PopSED), and ``--demo``.

Heavy imports happen inside the run function so ``sedinfer --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from importlib import resources
from pathlib import Path

from sedinfer.cli_posterior import INPUT_UNITS

DEMO_CATALOG = "popsed_mock.parquet"
DEMO_OUT = "population_demo"


def demo_catalog() -> Path:
    """The shipped mock: PopSED Table 2 galaxies with r < 19.8 (``scripts/population_validation.py``)."""
    return Path(str(resources.files("sedinfer") / "data" / "demo" / DEMO_CATALOG))


def _bound(text: str) -> tuple[str, float, float]:
    try:
        name, rng = text.split("=")
        lo, hi = (float(v) for v in rng.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected NAME=LOW,HIGH (e.g. redshift=0,0.8), got {text!r}"
        ) from None
    return name.strip(), lo, hi


def _selection(text: str) -> tuple[str, float]:
    try:
        band, limit = text.split("<")
        return band.strip(), float(limit)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected BAND<LIMIT (e.g. sdss_r0<19.8), got {text!r}") from None


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line on stderr, without the source line Python's default format adds."""
    print(f"warning: {message}", file=sys.stderr)


def add_population(p: argparse.ArgumentParser) -> None:
    from sedinfer.cli_args import add_cluster_arguments, filter_list, non_negative_int, positive_int

    p.add_argument(
        "catalog",
        nargs="?",
        help="input catalog (.parquet, .fits, .csv, .ecsv); fluxes in "
        "nanomaggies (columns with a flux unit are converted)",
    )
    p.add_argument("--out", help=f"output folder (--demo default: {DEMO_OUT})")
    p.add_argument(
        "--filters",
        type=filter_list,
        default="sdss",
        help="filter set or comma-separated sedpy names, in catalog column order (default: sdss)",
    )
    g = p.add_argument_group("column mapping (defaults: flux_<band>, flux_err_<band>)")
    g.add_argument("--flux-cols", help="flux columns: a pattern with {band} or a comma-separated list")
    g.add_argument("--err-cols", help="flux-error columns: a pattern with {band} or a comma-separated list")
    g.add_argument(
        "--input-units",
        choices=INPUT_UNITS,
        default=None,
        help="what photometry columns without a unit hold: fluxes in nmgy (default), maggies, ujy or njy, "
        "or magnitudes: ab (AB) or asinh (SDSS asinh); as for 'sedinfer posterior'",
    )
    g.add_argument(
        "--columns",
        metavar="FILE.toml",
        help="column map file (flux_pattern, err_pattern, [flux], [flux_err])",
    )
    g.add_argument(
        "--drop-bad-rows",
        action="store_true",
        help="drop (and count) rows with a missing or non-positive flux instead of stopping",
    )
    f = p.add_argument_group("fit")
    f.add_argument("--n-flows", type=positive_int, default=5, help="ensemble size (default: 5)")
    f.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="epochs per flow (default: about 2250 steps, i.e. 250 epochs for 10^4 galaxies)",
    )
    f.add_argument(
        "--loss",
        choices=("sinkhorn", "sliced"),
        default="sliced",
        help="sliced W2, O(N log N) (default), or Sinkhorn W2 (geomloss, PopSED)",
    )
    f.add_argument(
        "--batch-size",
        type=positive_int,
        default=1024,
        help="observed (and simulated) galaxies per step (default: 1024)",
    )
    f.add_argument("--lr", type=float, default=3e-4, help="peak one-cycle learning rate (default: 3e-4)")
    f.add_argument(
        "--entropy-weight",
        type=float,
        default=None,
        help="initial weight of KL(q || uniform box) in the loss; 0 for PopSED's recipe (default: 0.1)",
    )
    f.add_argument(
        "--marginal-weight",
        type=float,
        default=None,
        help="share of the loss on the 1-D distribution of every band and colour, in [0, 1] "
        "(default: 0.5; 0 for PopSED's loss)",
    )
    f.add_argument(
        "--bound",
        type=_bound,
        action="append",
        default=[],
        metavar="NAME=LOW,HIGH",
        help="narrow the prior box of one parameter (repeatable; default: redshift=0,0.8 as PopSED)",
    )
    f.add_argument(
        "--selection",
        type=_selection,
        metavar="BAND<LIMIT",
        help="model a flux limit, e.g. sdss_r0<19.8 (soft, --selection-width mag wide)",
    )
    f.add_argument("--selection-width", type=float, default=0.05, help="width of the soft limit (mag)")
    f.add_argument(
        "--noise",
        choices=("catalog", "depth", "none"),
        default="catalog",
        help="noise model: fitted on the catalog (PopSED), survey depths, or none",
    )
    f.add_argument("--seed", type=non_negative_int, default=0, help="flow k uses seed + k (default: 0)")
    f.add_argument(
        "--samples", type=positive_int, default=10_000, help="ensemble draws written (default: 10000)"
    )
    f.add_argument("--device", help="torch device (default: cuda when available)")
    f.add_argument("--no-progress", action="store_true", help="hide progress bars")
    r = p.add_argument_group("execution")
    add_cluster_arguments(r, "train the flows side by side (each resumes from its checkpoint)")
    p.add_argument(
        "--demo",
        action="store_true",
        help="fit the shipped 10^4-galaxy PopSED mock (2 flows x 60 epochs, a few minutes; --n-flows and "
        "--epochs change that) and compare with its truth",
    )


def cmd_population(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from sedinfer import Filters, SPSModel
    from sedinfer.errors import SedinferError
    from sedinfer.population.config import DEFAULT_STEPS, FitConfig
    from sedinfer.population.fit import PopulationWarning
    from sedinfer.population.forward import SoftMagnitudeLimit
    from sedinfer.population.runner import run_population
    from sedinfer.posterior.columns import column_map

    if args.demo:
        if args.catalog is not None:
            raise SedinferError("--demo runs on the shipped mock catalog; do not also give CATALOG")
        catalog, out = demo_catalog(), Path(args.out or DEMO_OUT)
        n_flows = 2 if args.n_flows == 5 else args.n_flows
        epochs = args.epochs or 60
    else:
        if args.catalog is None or args.out is None:
            raise SedinferError("give a CATALOG and --out DIR (or --demo)")
        catalog, out, n_flows, epochs = Path(args.catalog), Path(args.out), args.n_flows, args.epochs
    model, filters = SPSModel(), Filters(args.filters)
    low, high = model.prior.bounds()
    names = list(model.param_names)
    bounds = {"redshift": (0.0, 0.8), **{n: (lo, hi) for n, lo, hi in args.bound}}
    for name, (lo, hi) in bounds.items():
        if name not in names:
            raise SedinferError(f"--bound names unknown parameter {name!r}; expected one of {names}")
        j = names.index(name)
        if not (low[j] <= lo < hi <= high[j]):
            raise SedinferError(
                f"--bound {name}={lo},{hi} must lie inside the model prior "
                f"[{low[j]:.4g}, {high[j]:.4g}] with LOW < HIGH"
            )
        low[j], high[j] = lo, hi
    selection = None
    if args.selection is not None:
        selection = SoftMagnitudeLimit(args.selection[0], args.selection[1], args.selection_width)
    columns = replace(
        column_map(filters.names, False, flux_cols=args.flux_cols, err_cols=args.err_cols, toml=args.columns,
                   input_units=args.input_units),
        id=None,
    )
    if epochs is None:  # about 2250 steps whatever the catalog size
        from sedinfer.catalog import catalog_columns, read_catalog

        columns.check(catalog_columns(catalog), catalog)
        n_rows = len(read_catalog(catalog, columns=[columns.flux[0]]))
        epochs = max(1, round(DEFAULT_STEPS / max(1, n_rows // args.batch_size)))
    overrides = {"entropy_weight": args.entropy_weight, "marginal_weight": args.marginal_weight}
    config = FitConfig(
        epochs=epochs,
        batch_size=args.batch_size,
        n_simulated=args.batch_size,
        learning_rate=args.lr,
        loss=args.loss,
        seed=args.seed,
        **{k: v for k, v in overrides.items() if v is not None},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("always", PopulationWarning)
        warnings.showwarning = _print_warning
        run = run_population(
            catalog,
            out,
            columns,
            model=model,
            filters=filters,
            n_flows=n_flows,
            config=config,
            bounds=(low, high),
            selection=selection,
            noise=None if args.noise == "none" else args.noise,
            n_samples=args.samples,
            drop_bad_rows=args.drop_bad_rows,
            progress=not args.no_progress,
            device=args.device,
            scheduler=args.scheduler,
            workers=args.workers,
        )
    for path in run.files:
        print(f"wrote {path}")
    print(run.line())
    return 0


__all__ = ["add_population", "cmd_population", "demo_catalog"]
