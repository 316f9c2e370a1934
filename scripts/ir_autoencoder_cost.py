"""CPU cost of one autoencoder training step and of encoding, on spectra of a mock table.

    nice -n 19 env OMP_NUM_THREADS=1 python scripts/ir_autoencoder_cost.py MOCK.parquet [--spender-size]

Rows of the table are tiled to a batch of 64; prints the median wall and CPU seconds of steps
3–8 (both copies, similarity, Adam) and of encoding 512 spectra. ``--spender-size`` builds the
same classes at spender's SDSS size (filters 128/256/512, MLP 128/64/32, decoder 64/256/1024).
"""

import argparse
import time

import numpy as np
import torch

from sedinfer.spectra.autoencoder import AutoencoderConfig, SpectrumAutoencoder
from sedinfer.spectra.train_autoencoder import AETrainConfig, step_losses
from sedinfer.spectra.training_data import SpectraArrays

SPENDER_SIZE = dict(filters=(128, 256, 512), encoder_hidden=(128, 64, 32), decoder_hidden=(64, 256, 1024))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mock")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--spender-size", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = SpectraArrays.from_mock_table(args.mock)
    torch.manual_seed(0)
    model = SpectrumAutoencoder(AutoencoderConfig(**(SPENDER_SIZE if args.spender_size else {})))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(0)
    loss_config = AETrainConfig().loss_config()
    rows = np.arange(64) % len(data)
    f, w, z = (torch.as_tensor(a[rows]) for a in (data.flux, data.ivar, data.z))
    walls, cpus = [], []
    for _ in range(args.steps):
        t, c = time.perf_counter(), time.process_time()
        terms = step_losses(model, f, w, z, loss_config, gen)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    print(
        f"{model.n_parameters} parameters, {args.threads} thread(s): step of 64 median wall "
        f"{np.median(walls[2:]):.3f} s, CPU {np.median(cpus[2:]):.3f} s"
    )
    big = np.arange(512) % len(data)
    t, c = time.perf_counter(), time.process_time()
    model.encode_arrays(data.flux[big], data.ivar[big], data.z[big])
    print(f"encode 512: wall {time.perf_counter() - t:.2f} s, CPU {time.process_time() - c:.2f} s")


if __name__ == "__main__":
    main()
