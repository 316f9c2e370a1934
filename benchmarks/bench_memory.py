"""Peak memory of SPSModel.photometry as a function of N (one process per N).

Usage:  python benchmarks/bench_memory.py [--n 1000 100000 1000000] [--full]

Each N runs in a fresh subprocess that builds the model, draws N parameters from the prior and
computes 9-band (ugriz + WISE) photometry; the peak resident set size (ru_maxrss) of that
process, which includes Python, torch and the template grids, is reported. Photometry is chunked
internally, so the peak should not grow with N beyond the O(N) inputs and outputs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = """
import resource, time, torch, sedinfer as si
n, full = {n}, {full}
model = si.SPSModel(nebular=full, dust_emission=full)
filters = si.Filters(["sdss", "wise"])
theta = model.prior.sample((n,), generator=torch.Generator().manual_seed(0))
t0 = time.perf_counter()
with torch.inference_mode():
    mags = model.photometry(theta, filters)
dt = time.perf_counter() - t0
print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, dt)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 100_000, 1_000_000])
    ap.add_argument("--full", action="store_true", help="nebular + dust emission on")
    args = ap.parse_args()
    print("| N | peak RSS (MB) | wall time incl. plan build (s) |")
    print("|---:|---:|---:|")
    for n in args.n:
        out = subprocess.run([sys.executable, "-c", CHILD.format(n=n, full=args.full)], check=True,
                             capture_output=True, text=True).stdout.split()
        print(f"| {int(out[0]):,} | {float(out[1]):,.0f} | {float(out[2]):.1f} |")


if __name__ == "__main__":
    main()
