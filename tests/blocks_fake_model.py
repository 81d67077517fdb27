"""A stand-in with the SpectrumModel predict contract whose decisions follow simple physics.

Block tests use it to assert where alerts land (a strong tone is an "anomaly" in its own bins) and
that the backbone runs once per spectrum (it counts rows); the real model is used in the end-to-end
test against model.predict.
"""

from types import SimpleNamespace

import numpy as np

from gnuradio.specenc.labels import FAMILIES
from gnuradio.specenc.model.detections import Detections


class ToneModel:
    threshold = 0.5

    def __init__(self, nfft=64, d_model=8, contrast=False):
        self.nfft, self.d_model = nfft, d_model
        self.contrast = contrast  # give each detection its contrast_db (mean dB above the median), as predict does
        self.config = {"nfft": nfft}
        self.rows_seen = 0  # spectra passed to predict, warm-up included
        self.calls = []  # (batch size, rx_freq) per call

    def predict(self, spectra, rx_freq=None, sample_rate=None):
        spectra = np.atleast_2d(np.asarray(spectra, np.float32))  # (B, nfft)
        bad = np.flatnonzero(~np.isfinite(spectra).all(axis=1))
        if bad.size:
            raise ValueError(f"row {bad[0]} holds NaN/inf")
        self.rows_seen += len(spectra)
        self.calls.append((len(spectra), rx_freq))
        floor = np.median(spectra, axis=1, keepdims=True)
        excess = spectra - floor  # (B, nfft) dB above the floor
        occupied = excess > 10.0
        snr = excess.max(axis=1)
        score = 1.0 / (1.0 + np.exp(-(snr - 30.0) / 2.0))
        labels = ["tone" if occ.any() else "noise" for occ in occupied]
        rows, edges = np.nonzero(np.diff(occupied.astype(np.int8), prepend=0, append=0, axis=1))
        k = len(rows) // 2  # per row: rising edge, falling edge, rising edge, ...
        contrast_db = ([excess[r, a:b].mean() for r, a, b in zip(rows[::2], edges[::2], edges[1::2])]
                       if self.contrast else None)
        detections = Detections(len(spectra), rows[::2], edges[::2], edges[1::2], [FAMILIES.index("tone")] * k,
                                [0.9] * k, FAMILIES, contrast_db)
        embedding = np.repeat(snr[:, None], self.d_model, axis=1).astype(np.float32)
        return SimpleNamespace(
            labels=labels,
            label_index=np.array([FAMILIES.index(x) for x in labels], np.int64),
            confidence=np.clip(snr / 40.0, 0, 1).astype(np.float32),
            anomaly_score=score.astype(np.float32),
            anomaly_kind=["jamming" if s > 0.5 else "" for s in score],
            detections=detections,
            embedding=embedding,
            anomaly_bins=occupied & (score[:, None] > 0.5),
        )


def small_model_file(folder, threshold=0.5, seed=0):
    """A real (untrained, seeded) small SpectrumModel saved to `folder`; returns the weights path."""
    from gnuradio.specenc.model import ModelConfig, SpectrumModel

    cfg = ModelConfig(d_model=32, n_layers=1, n_heads=2, n_kv_heads=2, anomaly_hidden=16)
    weights, _ = SpectrumModel.from_config(cfg, seed=seed, threshold=threshold).save(
        str(folder / "small.safetensors"))
    return str(weights)


def scene_file(folder, seconds=0.25, seed=3):
    """A short generated demo scene (emitters + ghost anomalies, truth in annotations)."""
    from gnuradio.specenc.synth import write_scenario

    return write_scenario(str(folder / "scene.sigmf-meta"), scenario="demo", seconds=seconds, seed=seed)


def run_or_fail(tb, what="the flowgraph", seconds=30):
    """tb.run(), failing the test instead of hanging it when the run does not end within `seconds`."""
    import threading

    import pytest

    running = threading.Thread(target=tb.run, daemon=True)
    running.start()
    running.join(seconds)
    if running.is_alive():
        tb.stop()
        pytest.fail(f"{what} hung")
