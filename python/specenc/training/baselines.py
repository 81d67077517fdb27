"""Baselines that `specenc eval` scores on the same data as the model.

- `ZScoreDetector`: the classical energy detector. A running noise-floor estimate (a low percentile
  of each spectrum, smoothed over time) and per-bin statistics of clean spectra relative to that
  floor; the anomaly score is the largest smoothed z-score, detections are runs of bins standing
  `detect_db` above the floor.
- `SpectrumAutoencoder`: a plain MLP autoencoder trained on clean spectra; the anomaly score is the
  reconstruction error. Same input normalisation as the z-score floor so levels do not dominate.
"""

import logging

import numpy as np
import torch
from torch import nn

from . import metrics

log = logging.getLogger(__name__)


def noise_floor(spectra, percentile=20.0):
    """(B,) per-spectrum noise-floor estimate in dB: a low percentile of the bins."""
    return np.percentile(spectra, percentile, axis=-1).astype(np.float32)


def running_floor(spectra, alpha=1.0, percentile=20.0):
    """(B,) floor smoothed over consecutive spectra by an exponential average (alpha=1: no memory)."""
    raw = noise_floor(spectra, percentile)
    if alpha >= 1.0:
        return raw
    out = np.empty_like(raw)
    level = raw[0]
    for i, v in enumerate(raw):
        level = (1 - alpha) * level + alpha * v
        out[i] = level
    return out


def moving_average(x, width):
    """Mean over `width` neighbouring bins along the last axis (zeros beyond the edges), same shape."""
    if width <= 1:
        return x
    kernel = np.ones(width, dtype=np.float32) / width
    return np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), -1, x)


class ZScoreDetector:
    """Energy / z-score detector against a running noise-floor estimate.

    Args:
        alpha: floor smoothing per spectrum (1.0 for independent scenes, ~0.05 for a recording).
        smooth_bins: moving-average width applied to z-scores before taking the maximum.
        detect_db: level above the floor that counts as occupied for detections.
    """

    def __init__(self, alpha=1.0, smooth_bins=5, detect_db=6.0, min_bins=2):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha={alpha} must be in (0, 1]")
        self.alpha, self.smooth_bins, self.detect_db, self.min_bins = alpha, smooth_bins, detect_db, min_bins
        self.mean = self.std = None

    def relative(self, spectra):
        """(B, N) spectra in dB relative to their running floor."""
        spectra = np.asarray(spectra, dtype=np.float32)
        return spectra - running_floor(spectra, self.alpha)[:, None]

    def fit(self, clean_spectra):
        rel = self.relative(clean_spectra)
        self.mean = rel.mean(axis=0)
        self.std = np.maximum(rel.std(axis=0), 0.5)  # dB; keeps flat bins from giving huge z
        return self

    def score(self, spectra):
        """(B,) anomaly score: the largest smoothed per-bin z-score."""
        if self.mean is None:
            raise ValueError("ZScoreDetector must be fit on clean spectra before scoring")
        z = (self.relative(spectra) - self.mean) / self.std
        return moving_average(z, self.smooth_bins).max(axis=-1)

    def detections(self, spectra):
        """Per row, runs of bins `detect_db` above the floor: [(bin_start, bin_stop, -1)] (no family)."""
        occupied = moving_average(self.relative(spectra), 3) > self.detect_db
        return [[(s, e, -1) for s, e, _ in metrics.runs(row) if e - s >= self.min_bins] for row in occupied]


def normalise(spectra):
    """Spectra relative to their noise floor, scaled to ~unit range (dB / 10)."""
    spectra = np.asarray(spectra, dtype=np.float32)
    return (spectra - noise_floor(spectra)[:, None]) / 10.0


class SpectrumAutoencoder(nn.Module):
    """MLP autoencoder nfft -> hidden -> code -> hidden -> nfft."""

    def __init__(self, nfft=1024, hidden=256, code=32):
        super().__init__()
        self.nfft, self.hidden, self.code = nfft, hidden, code
        self.encoder = nn.Sequential(nn.Linear(nfft, hidden), nn.GELU(), nn.Linear(hidden, code))
        self.decoder = nn.Sequential(nn.Linear(code, hidden), nn.GELU(), nn.Linear(hidden, nfft))

    def forward(self, x):  # (B, N) -> (B, N)
        return self.decoder(self.encoder(x))

    @torch.inference_mode()
    def score(self, spectra, batch=512):
        """(B,) mean squared reconstruction error of normalised spectra."""
        self.eval()
        x = torch.from_numpy(normalise(spectra))
        out = [((self(c) - c) ** 2).mean(dim=-1) for c in torch.split(x, batch)]
        return torch.cat(out).numpy()


def train_autoencoder(clean_batches, nfft, steps=300, lr=1e-3, seed=0):
    """Train a `SpectrumAutoencoder` on an iterator of clean (B, nfft) dB spectra; returns it in eval mode."""
    torch.manual_seed(seed)
    ae = SpectrumAutoencoder(nfft)
    opt = torch.optim.AdamW(ae.parameters(), lr=lr, weight_decay=1e-4)
    ae.train()
    loss = None
    for step, spectra in zip(range(steps), clean_batches):
        x = torch.from_numpy(normalise(spectra))
        loss = ((ae(x) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    log.info("autoencoder baseline: %d steps, final loss %.4f", steps, loss.item() if loss is not None else float("nan"))
    return ae.eval()
