"""Build the density support model of a trained SED posterior and save it into the model file.

:func:`sedinfer.posterior.sed.build_support` on ``--n`` fresh simulations of the model's own
config (half fit the mixture, half set the thresholds; seed: config seed +
:data:`sedinfer.posterior.support.SUPPORT_SEED_OFFSET`), attached with
:func:`~sedinfer.posterior.sed.attach_support`; the model file is rewritten (atomically) and its card
rewritten with the validation it already holds. No retraining: the flow's weights are unchanged.

    OMP_NUM_THREADS=1 python scripts/posterior_attach_support.py checkpoints/posterior/sdss_specz.pt
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path, help="model file (.pt) with its card beside it")
    p.add_argument("--n", type=int, default=None, help="fresh simulations (default: build_support's)")
    p.add_argument("--components", type=int, default=None,
                   help="mixture components (default: build_support's)")
    args = p.parse_args(argv)

    import torch

    from sedinfer.posterior.card import card_paths, write_model_card
    from sedinfer.posterior.galaxies import SEDPosterior
    from sedinfer.posterior.sed import attach_support, build_support

    torch.set_num_threads(1)
    sed = SEDPosterior.load(args.model)
    kwargs = {k: v for k, v in (("n", args.n), ("n_components", args.components)) if v is not None}
    t0 = time.perf_counter()
    support = build_support(sed, **kwargs)
    attach_support(sed, support)
    sed.save(args.model)                                 # atomic
    card_json = card_paths(args.model)[1]
    validation = json.loads(card_json.read_text()).get("validation") if card_json.exists() else None
    write_model_card(sed, args.model, validation=validation)
    print(f"{args.model}: support model {support.info} in {time.perf_counter() - t0:.0f} s; card rewritten")


if __name__ == "__main__":
    main()
