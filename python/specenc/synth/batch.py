"""Training fast path: batches of labelled power spectra generated in memory, no disk.

Each row is its own short scene: only the nfft + (K-1)*hop samples one spectrum needs are
synthesised (K random in {1, 2, 4}, Hann, 50 % overlap, via dsp.power_spectrum).

Labels, per row:
- A "visible" emitter has SNR >= VISIBLE_SNR_DB in this spectrum: its SNR scaled by its share of
  the window energy (sum over the K frames of the Hann window squared over the samples it is on),
  per hop for a frequency hopper. Invisible emitters are not labelled anywhere.
- family: the family of the visible emitter of highest total power (SNR x bandwidth); noise (0)
  when none is visible. snr_db: that emitter's SNR in this spectrum; without a visible emitter, the
  strongest emitter's SNR; nan when there is no emitter at all. dominant_bins: that emitter's
  nominal bandwidth in analysis bins (a tone: 1; 0 without a visible emitter), to tell how many
  bins of shape the family had to be read from.
- bin_family: each bin overlapping a visible emitter's nominal band [fc - B/2, fc + B/2] (at least
  the bin of its centre and its neighbours) takes its family; where bands overlap, the emitter of
  highest power density wins. Noise jammers label as noise (0). Receiver artefacts (DC, spurs) are
  not emitters and stay 0. bin_snr: the SNR in this spectrum of the emitter that labels each bin
  (nan where no visible emitter does), so detection can be scored per emission SNR.
- anomaly_bins: bins of the anomaly's frequency extent (jammer band, visible hop bands, notch, the
  missing, shifted or overpowered channel, the stealth emission). A row is drawn again until its
  anomaly shows (its emission at >= ANOMALY_SNR_DB, >= MIN_VISIBLE_HOPS hops); after 20 misses the
  row is labelled normal.
"""

import math
from dataclasses import dataclass

import numpy as np

from .. import bands as bands_mod
from .. import dsp, labels
from .anomalies import KINDS_BY_BAND
from .band_plans import SAMPLE_RATES, random_center_freq
from .scene import random_scene, render, snr_bandwidth

VISIBLE_SNR_DB = -3.0
ANOMALY_SNR_DB = 0.0  # an anomalous emission (or hop) must show at least this SNR in the spectrum
MIN_VISIBLE_HOPS = 3
AVERAGES = (1, 2, 4)


@dataclass
class Batch:
    spectra: np.ndarray  # (B, nfft) float32 dBFS/bin
    family: np.ndarray  # (B,) int64 index into labels.FAMILIES
    bin_family: np.ndarray  # (B, nfft) int64, 0 = unoccupied
    bin_snr: np.ndarray  # (B, nfft) float32 dB, SNR of the emitter labelling the bin, nan = unoccupied
    anomaly: np.ndarray  # (B,) float32 0/1
    anomaly_kind: np.ndarray  # (B,) int64 index into labels.ANOMALY_KINDS, -1 = none
    anomaly_bins: np.ndarray  # (B, nfft) bool
    band: np.ndarray  # (B,) int64 bands.BAND_INDEX
    center_freq: np.ndarray  # (B,) float64 Hz
    sample_rate: np.ndarray  # (B,) float64 Hz
    snr_db: np.ndarray  # (B,) float32
    dominant_bins: np.ndarray  # (B,) float32, bandwidth of the emitter that sets `family`, in bins

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


def spectrum_weights(n, nfft, k):
    """(n,) share of each sample in a K-frame averaged spectrum (sum of the frames' w^2, total 1)."""
    hop, w2 = dsp.hop_size(nfft, 0.5), dsp.window("hann", nfft) ** 2
    out = np.zeros(n)
    for j in range(k):
        out[j * hop: j * hop + nfft] += w2
    return out / out.sum()


def segments(e, weights):
    """[(band, share)]: where the emitter shows in the spectrum and its share of the window energy.

    A frequency hopper gives one segment per hop; others one segment.
    """
    n = len(weights)
    lo, hi = max(e.start, 0), n if e.stop is None else min(e.stop, n)
    if hi <= lo:
        return []
    hops = e.params.get("hop_freqs")
    if not hops:
        return [(e.band, float(weights[lo:hi].sum()))]
    idx = (np.arange(lo, hi) - e.start) // e.params["dwell"] % len(hops)
    share = np.bincount(idx, weights[lo:hi], minlength=len(hops))
    half = e.params["hop_bw"] / 2
    return [((c - half, c + half), float(s)) for c, s in zip(hops, share) if s > 0]


def label_spectrum(sc, nfft, k):
    """(family, snr_db, dominant_bins, bin_family (nfft,), bin_snr (nfft,), anomaly_bins (nfft,), anomaly_visible)
    of one spectrum.

    An emitter (or a hop) shows with SNR = its SNR + 10 log10(share of the window energy it is on).
    """
    weights = spectrum_weights(nfft + (k - 1) * dsp.hop_size(nfft, 0.5), nfft, k)
    bin_family = np.zeros(nfft, np.int64)
    bin_snr = np.full(nfft, np.nan, np.float32)
    anomaly_bins = np.zeros(nfft, bool)
    density = np.full(nfft, -np.inf)
    best, best_power, strongest = None, -np.inf, np.nan
    visible_hops, anomaly_snr = 0, -np.inf
    for e in sc.emitters:
        bw = snr_bandwidth(e, sc.min_bw)
        fam = labels.FAMILY_INDEX[e.family]
        for band, share in segments(e, weights):
            snr = e.snr_db + 10 * np.log10(max(share, 1e-12))
            strongest = snr if not np.isfinite(strongest) else max(strongest, snr)
            if e.role != "normal":
                anomaly_snr = max(anomaly_snr, snr)
            if snr < VISIBLE_SNR_DB:
                continue
            power = snr + 10 * np.log10(bw)
            if power > best_power:
                best, best_power = (fam, snr, bw * nfft), power
            dens = power - 10 * np.log10(bw * nfft)
            lo, hi = bin_range(*band, nfft, min_bins=3)
            win = dens > density[lo:hi]
            bin_family[lo:hi][win] = fam
            bin_snr[lo:hi][win] = snr
            density[lo:hi][win] = dens
            if e.role == "hopping" and snr >= ANOMALY_SNR_DB:
                visible_hops += 1
                anomaly_bins[lo:hi] = True
    visible = True
    if sc.anomaly is not None:
        kind = sc.anomaly.kind
        if kind == "hopping":
            visible = visible_hops >= MIN_VISIBLE_HOPS
        else:
            anomaly_bins[slice(*bin_range(sc.anomaly.f_lo, sc.anomaly.f_hi, nfft, 3))] = True
            if kind != "band_erasure":  # the other kinds are an emission that must show
                visible = anomaly_snr >= ANOMALY_SNR_DB
    family, snr, width = best if best is not None else (0, strongest, 0.0)
    return family, snr, width, bin_family, bin_snr, anomaly_bins, visible


def _draw(rng, names, weights):
    """One of `names`, evenly or by `weights` (the even draw keeps every seed's scenes as they were)."""
    if weights is None:
        return names[rng.integers(len(names))]
    p = np.array([weights.get(b, 1.0) for b in names], dtype=float)
    return names[rng.choice(len(names), p=p / p.sum())]


def check_bands(bands=None, band_weights=None):
    """The band names to draw from (default all of bands.BANDS), as a tuple; ValueError naming an unknown
    band or a bad weight."""
    bands = tuple(bands_mod.BANDS if bands is None else bands)
    if not bands:
        raise ValueError("bands=[] names no band to draw from")
    for b in bands + tuple(band_weights or ()):
        if b not in bands_mod.BAND_INDEX:
            raise ValueError(f"unknown band {b!r}; choose from {', '.join(bands_mod.BANDS)}")
    weights = list((band_weights or {}).values())
    try:  # finite, and so is their sum (each 1e308 passed; their sum made no probabilities)
        numbers = not any(isinstance(w, bool) for w in weights) and math.isfinite(math.fsum(weights)) \
            and all(math.isfinite(w) for w in weights)
    except (TypeError, OverflowError):  # not numbers, or an integer too large for a float
        numbers = False
    if not numbers:
        raise ValueError(f"band_weights={band_weights} must map band names to numbers")
    if band_weights is not None and (min(band_weights.values(), default=1) < 0
                                     or not any(band_weights.get(b, 1) > 0 for b in bands)):
        raise ValueError(f"band_weights={band_weights} must be >= 0 and leave a drawn band a weight > 0")
    return bands


def make_batch(rng, batch_size=64, nfft=1024, anomaly_fraction=0.5, bands=None, band_weights=None):
    """A Batch of `batch_size` labelled spectra (see the module docstring for the label rules).

    rng: numpy Generator (or seed); bands: names to draw from (default all of bands.BANDS);
    band_weights: {band: relative weight} for drawing a row's band (unnamed bands weigh 1; None = even).
    """
    rng = np.random.default_rng(rng)
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    if not 0.0 <= anomaly_fraction <= 1.0:
        raise ValueError(f"anomaly_fraction={anomaly_fraction} must be in 0..1")
    dsp.check_params(nfft, 0.5, 1)
    bands = check_bands(bands, band_weights)
    hop = dsp.hop_size(nfft, 0.5)
    out = {
        "spectra": np.zeros((batch_size, nfft), np.float32),
        "family": np.zeros(batch_size, np.int64),
        "bin_family": np.zeros((batch_size, nfft), np.int64),
        "bin_snr": np.full((batch_size, nfft), np.nan, np.float32),
        "anomaly": np.zeros(batch_size, np.float32),
        "anomaly_kind": np.full(batch_size, -1, np.int64),
        "anomaly_bins": np.zeros((batch_size, nfft), bool),
        "band": np.zeros(batch_size, np.int64),
        "center_freq": np.zeros(batch_size),
        "sample_rate": np.zeros(batch_size),
        "snr_db": np.full(batch_size, np.nan, np.float32),
        "dominant_bins": np.zeros(batch_size, np.float32),
    }
    # Anomaly kinds are drawn evenly, then a band that admits the kind (ism has no raster to leave); a band weighted
    # 0 is left out (its kinds were drawn there, so every row of it was an anomaly).
    drawn = [b for b in bands if band_weights is None or band_weights.get(b, 1.0) > 0]
    kinds = [kd for kd in labels.ANOMALY_KINDS if any(kd in KINDS_BY_BAND[b] for b in drawn)]
    for i in range(batch_size):
        want = None
        if kinds and rng.random() < anomaly_fraction:
            want = kinds[rng.integers(len(kinds))]
            band = _draw(rng, [b for b in bands if want in KINDS_BY_BAND[b]], band_weights)
        else:
            band = _draw(rng, bands, band_weights)
        k = AVERAGES[rng.integers(len(AVERAGES))]
        n = nfft + (k - 1) * hop
        for _ in range(20):  # redraw until the anomaly fits the scene and shows in this spectrum
            sc = random_scene(band, rng, n, nfft, want)
            fam, snr, width, bin_family, bin_snr, bins, visible = label_spectrum(sc, nfft, k)
            if visible and (want is None or sc.anomaly is not None):
                break
        else:
            sc.anomaly = None
        iq = render(sc, n, rng, nfft)
        out["spectra"][i] = dsp.power_spectrum(iq, nfft, 0.5, "hann", k)[0]
        out["bin_family"][i] = bin_family
        out["bin_snr"][i] = bin_snr
        out["family"][i], out["snr_db"][i], out["dominant_bins"][i] = fam, snr, width
        if sc.anomaly is not None:
            out["anomaly"][i] = 1.0
            out["anomaly_kind"][i] = labels.ANOMALY_INDEX[sc.anomaly.kind]
            out["anomaly_bins"][i] = bins
        out["band"][i] = bands_mod.BAND_INDEX[band]
        out["center_freq"][i] = random_center_freq(band, rng)
        out["sample_rate"][i] = SAMPLE_RATES[band][rng.integers(len(SAMPLE_RATES[band]))]
    return Batch(**out)
