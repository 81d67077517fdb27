"""Band plans: which emitters a normal scene holds in each band, relative to the capture.

Plans are expressed in frequencies normalised to the sample rate (cycles/sample, centre = 0), so
they hold for any capture rate; docs/synth.md explains them. A plan is what makes an anomaly an
anomaly: an emitter off the raster, a raster channel missing, a channel far louder than its
neighbours, an emission in a guard gap.

- ism, other: free for all. 0-6 emitters of any family, any width, anywhere, often bursty.
- cellular: a centred raster of channels that are all on (wide: 1-6 OFDM/single-carrier carriers
  of similar power, continuous), or a narrow GSM-like raster (GMSK/single-carrier, partly occupied).
- gnss: signals sit below the noise floor, so a normal spectrum shows only the receiver (noise
  floor shape, DC spike, spurs).
- aero: VHF-like AM voice channels on a raster (bursty), or pulsed emitters (DME/SSR/ADS-B-like)
  at the centre.
"""

from dataclasses import dataclass, field

import numpy as np

from .. import bands as bands_mod
from .emitters import log_uniform, make_emitter, pick

EDGE = 0.46  # emitters stay inside |f| < EDGE (the front-end rolls off beyond)

# Typical capture rates per band (Hz), used for the metadata and the absolute frequency axis.
SAMPLE_RATES = {
    "ism": (250e3, 1e6, 2e6, 2.4e6, 5e6, 10e6, 20e6),
    "cellular": (1.92e6, 5e6, 7.68e6, 10e6, 15.36e6, 20e6, 30.72e6),
    "gnss": (2e6, 2.5e6, 4e6, 5e6, 8e6, 10e6),
    "aero": (250e3, 1e6, 2e6, 2.4e6, 3.2e6),
    "other": (250e3, 1e6, 2e6, 2.4e6, 5e6, 10e6, 20e6),
}

FREE_FAMILIES = {
    "ism": ("fsk", "ask", "chirp", "ofdm", "single_carrier", "tone", "fm", "am"),
    "other": ("fsk", "ask", "chirp", "ofdm", "single_carrier", "tone", "fm", "am"),
}
CHEAP_FAMILIES = ("fsk", "ask", "tone", "fm")  # emitters that get cheap-oscillator phase noise
FREE_WEIGHTS = {
    "ism": (0.22, 0.22, 0.12, 0.1, 0.1, 0.1, 0.08, 0.06),
    "other": (0.1, 0.1, 0.1, 0.12, 0.14, 0.16, 0.14, 0.14),
}


@dataclass
class Plan:
    """What the band expects: raster channels (fc, bw) and the spacing between them."""

    band: str
    variant: str
    spacing: float = 0.0  # raster spacing, cycles/sample (0 = no raster)
    channels: list = field(default_factory=list)  # [(fc, bw)] expected channel slots
    occupied: list = field(default_factory=list)  # indices into channels that are on


def random_center_freq(band, rng):
    """A centre frequency (Hz) inside `band` (bands.BAND_PLAN)."""
    ranges = [(lo, hi) for name, lo, hi in bands_mod.BAND_PLAN if name == band] or [(1e6, 6e9)]
    while True:  # allocations overlap (first match wins), so draw until the table agrees
        lo, hi = ranges[rng.integers(len(ranges))]
        f = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        if bands_mod.band_for_frequency(f) == band:
            return f


def random_burst(rng, n, p_continuous):
    """(start, stop) of an emitter's activity within n samples; (0, None) = always on."""
    if rng.random() < p_continuous:
        return 0, None
    length = int(log_uniform(rng, n / 8, 2 * n))
    start = int(rng.integers(-length + n // 16, n - n // 16))
    return max(start, 0), max(start + length, 1)


def _free_scene(band, rng, n, min_bw):
    fams, weights = FREE_FAMILIES[band], FREE_WEIGHTS[band]
    count = int(pick(rng, range(7), p=[0.12, 0.32, 0.18, 0.13, 0.1, 0.08, 0.07]))  # real captures: often one emitter
    out = []
    for _ in range(count):
        fam = str(pick(rng, fams, p=weights))
        bw = log_uniform(rng, 2 * min_bw, 0.7)
        fc = rng.uniform(-EDGE + bw / 2, EDGE - bw / 2) if bw < 2 * EDGE else 0.0
        start, stop = random_burst(rng, n, 0.5)
        # SNR -5..40 dB, and 40..55 dB for 15 %: real remotes near the antenna stand 50-60 dB out.
        snr = rng.uniform(-5, 40) if rng.random() < 0.85 else rng.uniform(40, 55)
        em = make_emitter(fam, fc, bw, snr, rng, start, stop, n_hint=n)
        if fam in CHEAP_FAMILIES and rng.random() < 0.35:
            # Real ISM remotes show "tent" skirts 40-60 dB down hundreds of bins out (see docs/synth.md).
            em.params["tx_phase_noise"] = log_uniform(rng, 0.01, 0.15)
        out.append(em)
    return Plan(band, "free"), out


def raster_scene(band, rng, n, min_bw, spacing, fill, families, occupancy, snr, spread, p_continuous):
    count = max(1, int(2 * EDGE / spacing))
    centres = (np.arange(count) - (count - 1) / 2) * spacing
    bw = max(spacing * fill, 2 * min_bw)
    fam = str(pick(rng, families))
    plan = Plan(band, "", spacing, [(float(c), bw) for c in centres])
    out = []
    for i, c in enumerate(centres):
        if rng.random() >= occupancy:
            continue
        start, stop = random_burst(rng, n, p_continuous)
        em = make_emitter(fam, c, bw, snr + rng.uniform(-spread, spread), rng, start, stop, n_hint=n)
        em.params["channel"] = i
        out.append(em)
        plan.occupied.append(i)
    return plan, out


def normal_scene(band, rng, n, min_bw):
    """(plan, emitters) of a normal scene in `band` over n samples; min_bw = one analysis bin."""
    if band in ("ism", "other"):
        return _free_scene(band, rng, n, min_bw)
    if band == "cellular":
        if rng.random() < 0.65:
            spacing = rng.uniform(0.15, 0.95)
            plan, ems = raster_scene(band, rng, n, min_bw, spacing, rng.uniform(0.75, 0.92),
                                      ("ofdm", "ofdm", "single_carrier"), 1.0, rng.uniform(5, 40), 2.0, 1.0)
            plan.variant = "wide"
        else:
            spacing = 1 / rng.integers(8, 33)
            plan, ems = raster_scene(band, rng, n, min_bw, spacing, rng.uniform(0.5, 0.8),
                                      ("fsk", "single_carrier"), rng.uniform(0.4, 1.0), rng.uniform(5, 35), 6.0,
                                      0.8)
            plan.variant = "narrow"
        return plan, ems
    if band == "gnss":
        plan = Plan(band, "gnss", 0.0, [(0.0, 0.0)])
        ems = []
        if rng.random() < 0.4:  # the real GNSS signal: spread spectrum well below the floor
            ems.append(make_emitter("single_carrier", rng.normal(0, 0.002), rng.uniform(0.2, 0.8),
                                    rng.uniform(-30, -18), rng, n_hint=n))
        return plan, ems
    if band == "aero":
        if rng.random() < 0.55:
            spacing = 1 / rng.integers(8, 41)
            plan, ems = raster_scene(band, rng, n, min_bw, spacing, rng.uniform(0.2, 0.6), ("am",),
                                      rng.uniform(0.2, 0.8), rng.uniform(5, 35), 8.0, 0.3)
            plan.variant = "vhf"
        else:
            plan = Plan(band, "pulse", 0.0, [(0.0, 0.0)], [0])
            bw = rng.uniform(0.1, 0.9)
            start, stop = random_burst(rng, n, 0.7)
            em = make_emitter("ask", rng.normal(0, 0.003), bw, rng.uniform(0, 40), rng, start, stop, n_hint=n)
            while em.params["mode"] != "pulsed":
                em = make_emitter("ask", em.fc, bw, em.snr_db, rng, start, stop, n_hint=n)
            plan.channels = [(0.0, em.bandwidth)]
            ems = [em]
        return plan, ems
    raise ValueError(f"unknown band {band!r}; choose one of {', '.join(bands_mod.BANDS)}")
