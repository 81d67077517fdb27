"""Synthetic RF scenes with ghost anomalies (pure NumPy, no GNU Radio). See docs/synth.md.

- `make_batch(rng, batch_size, nfft, anomaly_fraction, bands, band_weights) -> Batch`: labelled spectra for training.
- `make_recording(scenario, seconds, seed, sample_rate, center_freq) -> (iq, annotations)`.
- `write_scenario(out_meta, scenario="demo", ...) -> meta_path`: the same, written as SigMF.
"""

from .batch import Batch, make_batch
from .recording import SCENARIOS, make_recording, write_scenario

__all__ = ["Batch", "SCENARIOS", "make_batch", "make_recording", "write_scenario"]
