"""Training fast path: batches of labelled power spectra generated in memory, no disk.

Each row is its own short scene: only the nfft + (K-1)*hop samples one spectrum needs are
synthesised (K random in {1, 2, 4}, Hann, 50 % overlap, via dsp.power_spectrum).

Labels, per row:
- A "visible" emitter has SNR >= VISIBLE_SNR_DB in this spectrum (its SNR scaled by the fraction of
  the interval it is on). Invisible emitters are not labelled anywhere.
- family: the family of the visible emitter of highest total power (SNR x bandwidth); noise (0)
  when none is visible. snr_db: that emitter's SNR in this spectrum; without a visible emitter, the
  strongest emitter's SNR; nan when there is no emitter at all.
- bin_family: each bin overlapping a visible emitter's nominal band [fc - B/2, fc + B/2] (at least
  the bin of its centre and its neighbours) takes its family; where bands overlap, the emitter of
  highest power density wins. Noise jammers label as noise (0). Receiver artefacts (DC, spurs) are
  not emitters and stay 0.
- anomaly_bins: bins of the anomaly's frequency extent (jammer band, hop bands, notch, the missing,
  shifted or overpowered channel, the stealth emission).
"""

from dataclasses import dataclass

import numpy as np

from .. import bands as bands_mod
from .. import dsp, labels
from .band_plans import SAMPLE_RATES, random_center_freq
from .emitters import hop_bands
from .scene import active_fraction, random_scene, render, snr_bandwidth

VISIBLE_SNR_DB = -3.0
AVERAGES = (1, 2, 4)


@dataclass
class Batch:
    spectra: np.ndarray  # (B, nfft) float32 dBFS/bin
    family: np.ndarray  # (B,) int64 index into labels.FAMILIES
    bin_family: np.ndarray  # (B, nfft) int64, 0 = unoccupied
    anomaly: np.ndarray  # (B,) float32 0/1
    anomaly_kind: np.ndarray  # (B,) int64 index into labels.ANOMALY_KINDS, -1 = none
    anomaly_bins: np.ndarray  # (B, nfft) bool
    band: np.ndarray  # (B,) int64 bands.BAND_INDEX
    center_freq: np.ndarray  # (B,) float64 Hz
    sample_rate: np.ndarray  # (B,) float64 Hz
    snr_db: np.ndarray  # (B,) float32

    def __len__(self):
        return len(self.family)


def bin_range(f_lo, f_hi, nfft, min_bins=1):
    """Half-open range of fftshifted bins (centres (i - nfft/2)/nfft) overlapping [f_lo, f_hi]."""
    lo = int(np.floor(f_lo * nfft + nfft / 2 + 0.5))
    hi = int(np.floor(f_hi * nfft + nfft / 2 + 0.5)) + 1
    if hi - lo < min_bins:
        mid = (lo + hi) // 2
        lo, hi = mid - min_bins // 2, mid - min_bins // 2 + min_bins
    return max(lo, 0), min(hi, nfft)


def label_spectrum(sc, nfft, t0, n):
    """(family, snr_db, bin_family (nfft,), anomaly_bins (nfft,)) of the scene over [t0, t0+n)."""
    bin_family = np.zeros(nfft, np.int64)
    density = np.full(nfft, -np.inf)
    best, best_power, strongest = None, -np.inf, np.nan
    for e in sc.emitters:
        frac = active_fraction(e, t0, n)
        if frac == 0:
            continue
        snr = e.snr_db + 10 * np.log10(frac)
        strongest = snr if not np.isfinite(strongest) else max(strongest, snr)
        if snr < VISIBLE_SNR_DB:
            continue
        bw = snr_bandwidth(e, sc.min_bw)
        power = snr + 10 * np.log10(bw)
        if power > best_power:
            best, best_power = (e, snr), power
        fam = labels.FAMILY_INDEX[e.family] if e.family in labels.FAMILY_INDEX else 0
        dens = power - 10 * np.log10(bw * nfft)
        for band in hop_bands(e, t0, n):
            lo, hi = bin_range(*band, nfft, min_bins=3)
            win = dens > density[lo:hi]
            bin_family[lo:hi][win] = fam
            density[lo:hi][win] = dens
    anomaly_bins = np.zeros(nfft, bool)
    if sc.anomaly is not None:
        if sc.anomaly.kind == "hopping":
            for e in sc.emitters:
                if e.role == "hopping" and active_fraction(e, t0, n) > 0:
                    for band in hop_bands(e, t0, n):
                        anomaly_bins[slice(*bin_range(*band, nfft, 3))] = True
        else:
            anomaly_bins[slice(*bin_range(sc.anomaly.f_lo, sc.anomaly.f_hi, nfft, 3))] = True
    if best is None:
        return 0, strongest, bin_family, anomaly_bins
    return labels.FAMILY_INDEX[best[0].family], best[1], bin_family, anomaly_bins


def make_batch(rng, batch_size=64, nfft=1024, anomaly_fraction=0.5, bands=None):
    """A Batch of `batch_size` labelled spectra (see the module docstring for the label rules).

    rng: numpy Generator (or seed); bands: names to draw from (default all of bands.BANDS).
    """
    rng = np.random.default_rng(rng)
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    if not 0.0 <= anomaly_fraction <= 1.0:
        raise ValueError(f"anomaly_fraction={anomaly_fraction} must be in 0..1")
    dsp.check_params(nfft, 0.5, 1)
    bands = tuple(bands_mod.BANDS if bands is None else bands)
    for b in bands:
        if b not in bands_mod.BAND_INDEX:
            raise ValueError(f"unknown band {b!r}; choose from {', '.join(bands_mod.BANDS)}")
    hop = dsp.hop_size(nfft, 0.5)
    out = {
        "spectra": np.zeros((batch_size, nfft), np.float32),
        "family": np.zeros(batch_size, np.int64),
        "bin_family": np.zeros((batch_size, nfft), np.int64),
        "anomaly": np.zeros(batch_size, np.float32),
        "anomaly_kind": np.full(batch_size, -1, np.int64),
        "anomaly_bins": np.zeros((batch_size, nfft), bool),
        "band": np.zeros(batch_size, np.int64),
        "center_freq": np.zeros(batch_size),
        "sample_rate": np.zeros(batch_size),
        "snr_db": np.full(batch_size, np.nan, np.float32),
    }
    for i in range(batch_size):
        band = bands[rng.integers(len(bands))]
        k = AVERAGES[rng.integers(len(AVERAGES))]
        n = nfft + (k - 1) * hop
        sc = random_scene(band, rng, n, nfft, "any" if rng.random() < anomaly_fraction else None)
        iq = render(sc, n, rng, nfft)
        out["spectra"][i] = dsp.power_spectrum(iq, nfft, 0.5, "hann", k)[0]
        fam, snr, out["bin_family"][i], bins = label_spectrum(sc, nfft, 0, n)
        out["family"][i], out["snr_db"][i] = fam, snr
        if sc.anomaly is not None:
            out["anomaly"][i] = 1.0
            out["anomaly_kind"][i] = labels.ANOMALY_INDEX[sc.anomaly.kind]
            out["anomaly_bins"][i] = bins
        out["band"][i] = bands_mod.BAND_INDEX[band]
        out["center_freq"][i] = random_center_freq(band, rng)
        out["sample_rate"][i] = SAMPLE_RATES[band][rng.integers(len(SAMPLE_RATES[band]))]
    return Batch(**out)
