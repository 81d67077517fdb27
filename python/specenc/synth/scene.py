"""A scene: a band's normal emitters, maybe one ghost anomaly, and a receiver; rendered to IQ.

SNR definition (used everywhere in the generator, its labels and its tests): the emitter's mean
power while active, divided by the noise power in its nominal occupied bandwidth,
    snr = P / (N0 * max(B, 1 bin)),
with N0 the noise power per unit normalised bandwidth (= the noise variance per sample) and B the
99 % bandwidth from its parameters. Tones (B = 0) use one analysis bin (sample_rate / nfft); a
frequency hopper uses one hop's bandwidth (its SNR is what a receiver sees while it dwells there).
Both signal and noise pass the same front-end response, so the SNR holds after it.
"""

from dataclasses import dataclass, field

import numpy as np

from .anomalies import KINDS_BY_BAND, Anomaly, inject
from .band_plans import Plan, normal_scene
from .emitters import generate
from .impairments import Receiver, apply_receiver, multipath, random_receiver


@dataclass
class Scene:
    band: str
    plan: Plan
    emitters: list
    receiver: Receiver
    anomaly: Anomaly = None
    notches: list = field(default_factory=list)  # band_erasure notches (Notch) the receiver applies
    min_bw: float = 1 / 1024  # one analysis bin, cycles/sample (the SNR bandwidth of a tone)
    fading: dict = field(default_factory=dict)  # emitter index -> rician K (None = Rayleigh)


def random_scene(band, rng, n, nfft=1024, anomaly=None):
    """A random scene of `band` over n samples; anomaly = a kind name, "any", or None."""
    min_bw = 1.0 / nfft
    plan, emitters = normal_scene(band, rng, n, min_bw)
    sc = Scene(band, plan, emitters, random_receiver(rng), min_bw=min_bw)
    if anomaly is not None:
        kinds = KINDS_BY_BAND[band] if anomaly == "any" else [anomaly]
        for kind in rng.permutation(kinds):
            try:
                sc.emitters, sc.anomaly, notch = inject(str(kind), plan, sc.emitters, rng, n, min_bw)
                if notch is not None:
                    sc.notches.append(notch)
                break
            except ValueError:
                continue
    add_fading(sc, rng)
    return sc


def add_fading(sc, rng):
    """Multipath on 30 % of the wide emitters: Rician (K 1..10) or Rayleigh taps."""
    for i, e in enumerate(sc.emitters):
        if e.family != "noise" and e.bandwidth > 20 * sc.min_bw and rng.random() < 0.3:
            sc.fading[i] = float(rng.uniform(1, 10)) if rng.random() < 0.5 else None


def snr_bandwidth(em, min_bw):
    """The B of the SNR definition (module docstring), cycles/sample."""
    return max(em.params.get("hop_bw", em.bandwidth), min_bw)


def amplitude(em, min_bw):
    """Amplitude giving em.snr_db for unit noise variance (see the module docstring)."""
    return np.sqrt(10 ** (em.snr_db / 10) * snr_bandwidth(em, min_bw))


def active_fraction(em, t0, n):
    """Fraction of samples [t0, t0+n) in which the emitter is on."""
    stop = t0 + n if em.stop is None else min(em.stop, t0 + n)
    return max(0, stop - max(em.start, t0)) / n


def render(sc, n, rng, nfft=1024, t0=0):
    """IQ of the scene over samples [t0, t0+n): emitters + unit-variance noise through the receiver."""
    x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) * np.sqrt(0.5)
    for i, e in enumerate(sc.emitters):
        if active_fraction(e, t0, n) == 0:
            continue
        s = generate(e, n, rng, t0) * amplitude(e, sc.min_bw)
        if i in sc.fading:
            s = multipath(s, rng, sc.fading[i])
        x = x + s
    return apply_receiver(x, sc.receiver, rng, nfft, sc.notches, t0)
