"""Train the shipped infrared models (issue 17 §2–4) on a mock table from `sedinfer ir simulate`.

    nice -n 19 env OMP_NUM_THREADS=2 python scripts/train_ir_models.py MOCK.parquet --out-dir DIR \
        --epochs 10 --threads 2 --max-hours 2

Stops when --max-hours runs out (exit status 3); the same command resumes from DIR/autoencoder.ckpt.
When the autoencoder is done it trains the WISE predictor and writes DIR/metrics.json and figures.
"""

import sys

from sedinfer.spectra.train_ir import main

if __name__ == "__main__":
    sys.exit(main())
