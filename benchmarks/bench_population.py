"""Population-inference costs: time per training step versus N for the Sinkhorn and sliced losses.

Usage:  python benchmarks/bench_population.py [--threads 2] [--sinkhorn-max 5000] [--sliced-max 100000]

1. Loss only: forward + backward of the loss between N simulated and N observed 5-D points
   (magnitude-like, unit scatter, offset means), Sinkhorn (geomloss tensorized, p = 2) at blur
   0.3, 0.05 and 0.002 and sliced W2 with 256 projections.
2. Full step as in training: N draws from the default population flow (11-D box), the SPS
   model's SDSS photometry, noise, asinh magnitudes, the loss against N catalog rows, backward.
Results print as Markdown table rows for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch


def timeit(fn, reps: int) -> float:
    fn()  # warm-up (plans, allocations)
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def loss_only(n: int, kind: str, blur: float, gen: torch.Generator) -> float:
    from sedinfer.population.losses import sinkhorn_loss, sliced_wasserstein_loss

    y = torch.randn(n, 5, generator=gen) * 0.8 + 19.0
    x0 = torch.randn(n, 5, generator=gen) * 0.8 + 19.3

    def step() -> None:
        x = x0.clone().requires_grad_(True)
        loss = (
            sinkhorn_loss(x, y, blur, 0.5)
            if kind == "sinkhorn"
            else sliced_wasserstein_loss(x, y, 256, generator=gen)
        )
        loss.backward()

    return timeit(step, 3 if n <= 20_000 else 1)


def full_step(n: int, kind: str, gen: torch.Generator) -> float:
    import sedinfer as si
    from sedinfer.population.flow import BoxFlow
    from sedinfer.population.forward import ForwardModel, make_simulator
    from sedinfer.population.losses import sinkhorn_loss, sliced_wasserstein_loss

    model, filters = si.SPSModel(), si.Filters("sdss")
    low, high = model.prior.bounds()
    high[0] = 0.8
    forward = ForwardModel(
        make_simulator(model, filters, bounds=(low, high)),
        si.noise.default_noise_model(filters.names),
        torch.full((5,), 1e-9),
    )
    flow = BoxFlow(low, high, param_names=model.param_names)
    with torch.no_grad():
        y, _, _ = forward(flow.sample(n, gen), 1.0, gen)

    def step() -> None:
        x, _, _ = forward(flow.sample(n, gen), 1.0, gen)
        loss = (
            sinkhorn_loss(x, y, 0.05, 0.5)
            if kind == "sinkhorn"
            else sliced_wasserstein_loss(x, y, 256, generator=gen)
        )
        flow.zero_grad()
        loss.backward()

    return timeit(step, 3 if n <= 20_000 else 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--sinkhorn-max", type=int, default=5000)
    ap.add_argument("--sliced-max", type=int, default=100_000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), {time.strftime('%Y-%m-%d')}"
    )
    print(
        "| N | Sinkhorn σ=0.3 | Sinkhorn σ=0.05 | Sinkhorn σ=0.002 | sliced P=256 "
        "| full step Sinkhorn σ=0.05 "
        "| full step sliced |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in (500, 1000, 2000, 5000, 10_000, 100_000):
        cells = []
        for blur in (0.3, 0.05, 0.002):
            cells.append(f"{loss_only(n, 'sinkhorn', blur, gen):.3f} s" if n <= args.sinkhorn_max else "—")
        cells.append(f"{loss_only(n, 'sliced', 0.0, gen):.3f} s" if n <= args.sliced_max else "—")
        cells.append(f"{full_step(n, 'sinkhorn', gen):.3f} s" if n <= args.sinkhorn_max else "—")
        cells.append(f"{full_step(n, 'sliced', gen):.3f} s" if n <= args.sliced_max else "—")
        print(f"| {n} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
