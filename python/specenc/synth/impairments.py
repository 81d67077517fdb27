"""Channel and receiver impairments.

Channel (per emitter): multipath (a short FIR with Rayleigh or Rician taps, unit mean energy).
Receiver (on the sum): phase noise, IQ imbalance, DC offset, spurs, front-end response (edge
roll-off, tilt, ripple and the band_erasure notch), gain to a random level, 8-bit ADC clipping and
quantisation like an RTL-SDR. Noise is added before the front-end so its floor takes the shape.
"""

from dataclasses import dataclass, field

import numpy as np

ENBW_HANN = 1.5  # equivalent noise bandwidth of the Hann window, in bins


@dataclass
class Receiver:
    """Random receiver state for one scene. Levels are relative to the noise floor."""

    phase_noise: float = 0.0  # rad rms per sample of the LO random walk
    iq_gain: float = 0.0  # amplitude imbalance (fraction)
    iq_phase: float = 0.0  # phase imbalance (rad)
    dc_db: float = -np.inf  # DC spike power over the noise power in one bin
    dc_phase: float = 0.0
    spurs: list = field(default_factory=list)  # [(f cycles/sample, dB over the noise in one bin)]
    edge_f: float = 0.5  # front-end passband edge (cycles/sample); roll-off beyond
    edge_db: float = 0.0  # attenuation at |f| = 0.5
    tilt_db: float = 0.0  # linear tilt across the band
    ripple_db: float = 0.0
    ripple_period: float = 0.2
    ripple_phase: float = 0.0
    floor_db: float = -70.0  # noise floor, dBFS per bin (at the reference nfft)
    adc_bits: int = 0  # 0 = no ADC model
    adc_rms_db: float = -15.0  # total rms before the ADC, dBFS
    adc_scale: float = None  # gain into the ADC, fixed from the first block rendered (a recording keeps it)


def random_receiver(rng):
    """A receiver drawn from RTL-SDR-like to lab-grade."""
    r = Receiver()
    if rng.random() < 0.5:
        r.phase_noise = float(np.exp(rng.uniform(np.log(1e-4), np.log(1e-2))))
    if rng.random() < 0.4:
        r.iq_gain, r.iq_phase = float(rng.uniform(-0.05, 0.05)), float(np.radians(rng.uniform(-3, 3)))
    if rng.random() < 0.6:
        r.dc_db, r.dc_phase = float(rng.uniform(0, 45)), float(rng.uniform(0, 2 * np.pi))
    if rng.random() < 0.3:
        r.spurs = [(float(rng.uniform(-0.48, 0.48)), float(rng.uniform(5, 25))) for _ in range(rng.integers(1, 7))]
    if rng.random() < 0.8:
        r.edge_f, r.edge_db = float(rng.uniform(0.1, 0.49)), float(rng.uniform(1, 25))  # edge roll-off .. broad dome
    r.tilt_db = float(rng.uniform(-3, 3)) if rng.random() < 0.5 else 0.0
    if rng.random() < 0.4:
        r.ripple_db = float(rng.uniform(0.1, 3.0))
        r.ripple_period, r.ripple_phase = float(rng.uniform(0.05, 0.5)), float(rng.uniform(0, 2 * np.pi))
    r.floor_db = float(rng.uniform(-120, 30))  # real files range from -100 to +20 dBFS/bin
    if rng.random() < 0.4:
        r.adc_bits, r.adc_rms_db = 8, float(rng.uniform(-25, -8))
    return r


def multipath(x, rng, rician_k=None):
    """Convolve x with a 1-4 tap channel (delays up to 8 samples): frequency-selective fading."""
    taps = int(rng.integers(1, 5))
    delays = np.concatenate([[0], np.sort(rng.integers(1, 9, taps - 1))])
    pdp = np.exp(-np.arange(taps) * rng.uniform(0.3, 1.5))
    h = np.sqrt(pdp / 2) * (rng.standard_normal(taps) + 1j * rng.standard_normal(taps))
    if rician_k is not None:  # line of sight on the first tap
        h[0] = np.sqrt(pdp[0]) * (np.sqrt(rician_k / (rician_k + 1)) + h[0] / np.sqrt(rician_k + 1))
    h = h / np.sqrt(np.sum(pdp))
    fir = np.zeros(delays[-1] + 1, np.complex128)
    np.add.at(fir, delays, h)
    return np.convolve(x, fir)[: len(x)]


def frontend_gain_db(r, f, notch=None):
    """Front-end power response in dB at normalised frequencies f (array)."""
    g = r.tilt_db * f * 2
    if r.ripple_db:
        g = g + r.ripple_db * np.sin(2 * np.pi * f / r.ripple_period + r.ripple_phase)
    over = np.clip((np.abs(f) - r.edge_f) / max(0.5 - r.edge_f, 1e-6), 0, 1)
    g = g - r.edge_db * (0.5 - 0.5 * np.cos(np.pi * over))
    if notch is not None:
        inside = (f >= notch.f_lo) & (f <= notch.f_hi)
        g = np.where(inside, g - notch.depth_db, g)
    return g


def apply_receiver(x, r, rng, nfft, notches=(), t0=0):
    """Receiver chain on signal+noise x (noise variance 1 per sample) -> complex64 dBFS-scaled IQ.

    notches: band_erasure notches, each applied to the samples of its [start, stop).
    """
    n = len(x)
    t = np.arange(n) + t0
    noise_bin = ENBW_HANN / nfft  # noise power in one bin for unit noise variance
    if r.phase_noise:
        x = x * np.exp(1j * np.cumsum(rng.normal(0, r.phase_noise, n)))
    for f, db in r.spurs:
        x = x + np.sqrt(noise_bin * 10 ** (db / 10)) * np.exp(2j * np.pi * f * t)
    if np.isfinite(r.dc_db):
        x = x + np.sqrt(noise_bin * 10 ** (r.dc_db / 10)) * np.exp(1j * r.dc_phase)
    if r.iq_gain or r.iq_phase:
        # Image: y = mu x + nu conj(x)
        mu = 0.5 * (1 + (1 + r.iq_gain) * np.exp(-1j * r.iq_phase))
        nu = 0.5 * (1 - (1 + r.iq_gain) * np.exp(1j * r.iq_phase))
        x = mu * x + nu * np.conj(x)
    # Front-end response applied in the frequency domain (circular; the response is smooth).
    spec = np.fft.fft(x)
    f = np.fft.fftfreq(n)
    x = np.fft.ifft(spec * 10 ** (frontend_gain_db(r, f) / 20))
    for notch in notches:  # notches never overlap in time
        on = (t >= notch.start) & (t < (np.inf if notch.stop is None else notch.stop))
        if on.any():
            notched = np.fft.ifft(spec * 10 ** (frontend_gain_db(r, f, notch) / 20))
            x = np.where(on, notched, x)
    if r.adc_bits:
        if r.adc_scale is None:
            r.adc_scale = float(10 ** (r.adc_rms_db / 20) / np.sqrt(np.mean(np.abs(x) ** 2) + 1e-30))
        x = x * r.adc_scale
        q = 2 ** (r.adc_bits - 1) - 0.5  # cu8: codes 0..255 around 127.5
        re = np.clip(np.round(x.real * q + q), 0, 2 * q) - q
        im = np.clip(np.round(x.imag * q + q), 0, 2 * q) - q
        x = (re + 1j * im) / q
    else:
        x = x * np.sqrt(10 ** (r.floor_db / 10) / noise_bin)
    return x.astype(np.complex64)
