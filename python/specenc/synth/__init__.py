"""Synthetic RF scenes with ghost anomalies (pure NumPy, no GNU Radio).

- `make_batch(rng, batch_size, nfft, anomaly_fraction, bands) -> Batch`: labelled spectra for training.
- `make_recording(...)` / `write_scenario(...)`: SigMF recordings with truth annotations.
"""

from .batch import Batch, make_batch

__all__ = ["Batch", "make_batch"]
