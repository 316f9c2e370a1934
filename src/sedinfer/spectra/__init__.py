"""Optical spectra and WISE photometry: the instrument and data layer of issue 17.

- :mod:`~sedinfer.spectra.instrument`: :class:`Instrument` (observed grid, LSF, sky mask) and the
  SDSS one, :func:`sdss_instrument`;
- :mod:`~sedinfer.spectra.skylines`: the masked night-sky lines;
- :mod:`~sedinfer.spectra.batch`: :class:`SpectrumBatch` and the 5300–5850 Å normalisation;
- :mod:`~sedinfer.spectra.sdss`: :func:`read_sdss` for ``spec-PLATE-MJD-FIBER.fits`` files;
- :mod:`~sedinfer.spectra.noise`: :class:`SpectralNoise`, the per-pixel S/N model of SDSS fibres;
- :mod:`~sedinfer.spectra.wise`: AllWISE-like W1–W4 in Vega magnitudes with non-detections;
- :mod:`~sedinfer.spectra.priors`: :class:`MockPrior`, the coupled and separable populations;
- :mod:`~sedinfer.spectra.simulate`: :func:`simulate_mocks`;
- :mod:`~sedinfer.spectra.io`: mock tables in Parquet;
- :mod:`~sedinfer.spectra.autoencoder`: :class:`SpectrumAutoencoder` (spender-like, written from the
  papers; encoder, rest-frame decoder, explicit redshift and LSF), trained by
  :func:`~sedinfer.spectra.train_autoencoder.train_autoencoder`;
- :mod:`~sedinfer.spectra.predictor`: :class:`WisePredictor`, W1–W4 (Vega) from latents, norm and z;
- :mod:`~sedinfer.spectra.metrics`: χ²_N, p̂, PP and χ distributions; :func:`predict_wise`;
- :mod:`~sedinfer.spectra.cli`: the ``ir simulate|train|predict`` arguments and runners.

Nothing is read at import; the SPS grids load on first use.
"""

from sedinfer.spectra.autoencoder import AutoencoderConfig, SpectrumAutoencoder
from sedinfer.spectra.batch import NORM_WINDOW_REST_AA, SpectrumBatch, normalise
from sedinfer.spectra.instrument import Instrument, lsf_sigma_kms, sdss_instrument, sdss_wave_aa
from sedinfer.spectra.noise import SpectralNoise
from sedinfer.spectra.predict_ir import predict_wise
from sedinfer.spectra.predictor import PredictorConfig, WisePredictor
from sedinfer.spectra.priors import Couplings, MockPrior
from sedinfer.spectra.sdss import SpectrumFileError, read_sdss
from sedinfer.spectra.simulate import MockCatalog, MockConfig, iter_mocks, simulate_mocks
from sedinfer.spectra.skylines import SKY_LINES, SkyLine, sky_mask
from sedinfer.spectra.train_autoencoder import train_autoencoder
from sedinfer.spectra.wise import WISE_BANDS, WisePhotometry, observe_wise

__all__ = ["AutoencoderConfig", "Couplings", "Instrument", "MockCatalog", "MockConfig", "MockPrior",
           "NORM_WINDOW_REST_AA", "PredictorConfig", "SKY_LINES", "SkyLine", "SpectralNoise",
           "SpectrumAutoencoder", "SpectrumBatch", "SpectrumFileError", "WISE_BANDS", "WisePhotometry",
           "WisePredictor", "iter_mocks", "lsf_sigma_kms", "normalise", "observe_wise", "predict_wise",
           "read_sdss", "sdss_instrument", "sdss_wave_aa", "simulate_mocks", "sky_mask", "train_autoencoder"]
