"""Train the score priors of issue 18 §3 (s(S), s(D), s(D | S)) on simulated (S, D) pairs.

Resumable: checkpoints ``OUT/<kind>.ckpt.pt`` are written atomically every ``--checkpoint-every``
steps; running the same command again continues (raise ``--steps`` to train longer). The
finished priors are ``OUT/<kind>.pt`` with their cards ``OUT/<kind>.json``.

    python scripts/train_dust_priors.py --pairs train_pairs.npz --simulate 3334 --seed 0 \
        --out runs/priors --steps 20000

``--simulate N`` first writes N galaxies × 3 views of seed ``--seed`` to ``--pairs`` when that file
does not exist (SPS host SEDs; ~0.2 s of CPU per pair), in chunks of ``--chunk`` galaxies.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch


def simulate_pairs_file(path: Path, n: int, seed: int, size: int, chunk: int) -> None:
    from sedinfer.atomic import write_atomic
    from sedinfer.images.instrument import hsc_instrument
    from sedinfer.images.simulate import SimulationConfig, simulate_pairs

    inst = hsc_instrument(image_shape=(size, size))
    config = SimulationConfig(image_size=size)
    parts, t0 = [], time.perf_counter()
    for start in range(0, n, chunk):
        parts.append(simulate_pairs(min(chunk, n - start), seed, inst, config=config, start=start))
        print(f"simulated {start + len(parts[-1]['index']) // config.n_views}/{n} galaxies "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    pairs = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def save(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, seed=np.array(seed), **pairs)

    write_atomic(path, save, suffix=".npz")


def main(argv: list[str] | None = None) -> int:
    from sedinfer.images.train_prior import PriorTrainConfig, load_pairs, train_prior

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=Path, nargs="+", required=True, help="training pairs .npz file(s)")
    p.add_argument("--simulate", type=int, default=0, help="simulate this many galaxies into --pairs first")
    p.add_argument("--seed", type=int, default=0, help="simulation seed (training: 0)")
    p.add_argument("--size", type=int, default=64, help="stamp size of simulated pairs")
    p.add_argument("--chunk", type=int, default=64, help="galaxies per SPS call when simulating")
    p.add_argument("--out", type=Path, required=True, help="folder for checkpoints and priors")
    p.add_argument("--kinds", default="host,dust_given_host,dust",
                   help="comma-separated: host, dust, dust_given_host")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--base-channels", type=int, default=16)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--train-seed", type=int, default=0, help="seed of initial weights and batches")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.simulate:
        if len(args.pairs) != 1:
            raise SystemExit("--simulate writes one --pairs file")
        if not args.pairs[0].exists():
            simulate_pairs_file(args.pairs[0], args.simulate, args.seed, args.size, args.chunk)
    pairs = load_pairs(args.pairs)
    print(f"{len(pairs['host'])} pairs of {pairs['host'].shape[1:]} from {[str(x) for x in args.pairs]}")
    for kind in [k.strip() for k in args.kinds.split(",") if k.strip()]:
        config = PriorTrainConfig(kind=kind, steps=args.steps, batch_size=args.batch, lr=args.lr,
                                  base_channels=args.base_channels, seed=args.train_seed,
                                  checkpoint_every=args.checkpoint_every,
                                  data=",".join(x.name for x in args.pairs))
        t0 = time.perf_counter()
        prior = train_prior(pairs, config, args.out, device=args.device,
                            log_every=max(1, min(50, args.steps)))
        print(f"{kind}: {prior.card['steps']} steps, {time.perf_counter() - t0:.1f} s this run "
              f"-> {args.out / (kind + '.pt')}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
