"""Ghost anomalies injected into a normal scene, each visible in ONE power spectrum given the plan.

- frequency_shift: a raster channel's emitter moved 30-50 % of the raster spacing off its slot.
- band_erasure: an expected channel missing (all-on rasters) or a notch 10-40 dB deep in the band.
- spoofing: a raster emitter 12-25 dB above its strongest neighbour (raster bands), or a GNSS-like BPSK
  signal standing 3-25 dB above the floor (GNSS signals are normally below it).
- stealth: a weak (5-15 dB SNR), narrow (1.5-8 bins) modulated emission in a gap where nothing belongs.
- hopping: 5-12 short narrow bursts of one emitter at different frequencies within the interval.
- jamming: wideband noise or a fast sweep over 35-95 % of the band, 3-30 dB above the floor.

Which kinds each band admits is in KINDS_BY_BAND (a free-for-all band has no raster to leave).
"""

from dataclasses import dataclass, field

from .. import labels
from .band_plans import EDGE
from .emitters import log_uniform, make_emitter, occupied_bandwidth, pick

NOTCH_EDGE = 0.38  # notches stay clear of the front-end roll-off, where the floor falls anyway
KINDS_BY_BAND = {
    "ism": ("band_erasure", "hopping", "jamming"),
    "other": ("band_erasure", "hopping", "jamming"),
    "cellular": labels.ANOMALY_KINDS,
    "gnss": ("band_erasure", "spoofing", "stealth", "hopping", "jamming"),
    "aero": labels.ANOMALY_KINDS,
}


@dataclass
class Anomaly:
    """Truth of one injected anomaly: kind, frequency extent (cycles/sample), time extent (samples)."""

    kind: str
    f_lo: float
    f_hi: float
    start: int
    stop: int  # one past the last sample
    strength_db: float  # kind-specific: SNR of the added emission, boost, notch depth
    params: dict = field(default_factory=dict)


@dataclass
class Notch:
    """A notch the receiver applies to everything (band_erasure): depth in dB over [f_lo, f_hi]."""

    f_lo: float
    f_hi: float
    depth_db: float
    start: int = 0  # first sample it applies to
    stop: int = None  # one past the last; None = to the end


def _free_gap(rng, emitters, width, tries=40):
    """Centre of a width-wide interval inside |f| < EDGE overlapping no emitter and not DC; None if none."""
    taken = [(e.fc - e.bandwidth / 2, e.fc + e.bandwidth / 2) for e in emitters]
    for _ in range(tries):
        c = rng.uniform(-EDGE + width, EDGE - width)
        lo, hi = c - width, c + width  # keep a margin of half a width either side
        if abs(c) > width + 0.004 and all(hi < a or lo > b for a, b in taken):
            return float(c)
    return None


def inject(kind, plan, emitters, rng, n, min_bw, interval=None):
    """Add `kind` to the scene -> (emitters, Anomaly, Notch or None). Raises ValueError if impossible.

    interval: samples of one spectrum (default n): a hopper visits all its hops and a sweep jammer
    sweeps at least once within it, so that one spectrum shows the pattern.
    """
    if kind not in labels.ANOMALY_INDEX:
        raise ValueError(f"unknown anomaly kind {kind!r}; choose one of {', '.join(labels.ANOMALY_KINDS)}")
    emitters = list(emitters)
    notch = None
    if kind == "frequency_shift":
        cands = [e for e in emitters if "channel" in e.params or plan.variant == "pulse"]
        if not cands:
            raise ValueError("frequency_shift needs a raster emitter")
        # (emitter, direction, room): how far each emitter can move each way and stay in the band.
        def step_of(e):
            return plan.spacing if plan.spacing > 0 else max(e.bandwidth, 0.1)

        moves = [(e, d, EDGE - e.bandwidth / 2 - d * e.fc) for e in cands for d in (-1, 1)]
        moves = [m for m in moves if m[2] >= 0.3 * step_of(m[0])]
        if not moves:
            raise ValueError("frequency_shift: no emitter can leave its slot and stay in the band")
        e, direction, room = moves[rng.integers(len(moves))]
        step = step_of(e)
        shift = direction * rng.uniform(0.3, min(0.5, room / step)) * step
        e.fc = float(e.fc + shift)
        e.role = kind
        an = Anomaly(kind, *e.band, e.start, e.stop if e.stop is not None else n, float(e.snr_db),
                     {"shift": float(shift), "family": e.family})
    elif kind == "band_erasure":
        chans = [e for e in emitters if "channel" in e.params]
        if plan.variant == "wide" and len(chans) >= 2 and rng.random() < 0.6:
            e = chans[rng.integers(len(chans))]
            emitters.remove(e)
            an = Anomaly(kind, *e.band, 0, n, -float(e.snr_db), {"missing_channel": e.params["channel"]})
        else:
            width = log_uniform(rng, 0.04, 0.3)
            c = rng.uniform(-NOTCH_EDGE + width / 2, NOTCH_EDGE - width / 2)
            # Deep enough to show over whatever it covers: 10-40 dB, or 5-15 dB below the floor
            # under the strongest emitter inside.
            inside = [e.snr_db for e in emitters if e.band[1] > c - width / 2 and e.band[0] < c + width / 2]
            depth = min(max(rng.uniform(10, 40), max(inside, default=0) + rng.uniform(5, 15)), 70)
            notch = Notch(c - width / 2, c + width / 2, depth)
            an = Anomaly(kind, notch.f_lo, notch.f_hi, 0, n, -depth, {"notch": True})
    elif kind == "spoofing":
        if plan.band == "gnss":
            e = make_emitter("single_carrier", rng.normal(0, 0.003), rng.uniform(0.15, 0.6),
                             rng.uniform(3, 25), rng, role=kind, n_hint=n)
            e.params["constellation"] = "psk2"
            emitters.append(e)
            an = Anomaly(kind, *e.band, 0, n, e.snr_db, {"family": e.family})
        else:
            # Overpowered relative to its raster neighbours: a lone emitter has no reference level.
            cands = [e for e in emitters if "channel" in e.params]
            if len(cands) < 2:
                raise ValueError("spoofing needs two raster emitters: one to overpower, one for reference")
            e = cands[rng.integers(len(cands))]
            boost = rng.uniform(12, 25)
            e.snr_db = float(max(s.snr_db for s in cands if s is not e) + boost)
            e.role = kind
            an = Anomaly(kind, *e.band, e.start, e.stop if e.stop is not None else n, e.snr_db,
                         {"boost_db": float(boost), "family": e.family})
    elif kind == "stealth":
        bw = rng.uniform(1.5, 8) * min_bw
        c = _free_gap(rng, emitters, bw)
        if c is None:
            raise ValueError("stealth needs a free gap")
        fam = str(pick(rng, ["fsk", "single_carrier", "am", "ask"]))
        e = make_emitter(fam, c, bw, rng.uniform(5, 15), rng, role=kind, n_hint=n)
        if e.family == "ask" and e.params["mode"] == "pulsed":
            e = make_emitter("fsk", c, bw, e.snr_db, rng, role=kind, n_hint=n)
        emitters.append(e)
        an = Anomaly(kind, *e.band, 0, n, e.snr_db, {"family": e.family})
    elif kind == "hopping":
        # One hopper visiting 5-12 frequencies within one spectrum interval.
        hops = int(rng.integers(5, 13))
        bw = rng.uniform(2, 10) * min_bw
        fam = str(pick(rng, ["fsk", "single_carrier"]))
        snr = rng.uniform(15, 40)  # while on a hop; a spectrum shows each about snr - 10 log10(hops)
        centres = [float(c) for c in rng.uniform(-EDGE + bw, EDGE - bw, hops)]
        e = make_emitter(fam, 0.0, bw, snr, rng, role=kind, n_hint=n)
        e.params.update(hop_freqs=centres, dwell=max((interval or n) // hops, 1), hop_bw=e.bandwidth)
        e.fc = (min(centres) + max(centres)) / 2
        e.bandwidth = max(centres) - min(centres) + e.params["hop_bw"]
        emitters.append(e)
        an = Anomaly(kind, *e.band, 0, n, snr, {"hops": hops, "dwell": e.params["dwell"], "family": fam,
                                                "centres": centres})
    else:  # jamming
        bw = rng.uniform(0.35, 0.95)
        c = rng.uniform(-EDGE + bw / 2, EDGE - bw / 2) if bw < 2 * EDGE else 0.0
        jnr = rng.uniform(3, 30)
        if rng.random() < 0.6:
            e = make_emitter("noise", c, bw, jnr, rng, role=kind, n_hint=n)
        else:
            e = make_emitter("chirp", c, bw, jnr, rng, role=kind, n_hint=n)
            e.params.update(mode="up", period=float(rng.uniform((interval or n) / 8, interval or n)))
            e.params.pop("sf", None)  # a LoRa draw's spreading factor
            e.variant, e.bandwidth = "sweep", occupied_bandwidth("chirp", e.params)  # the sweep's, not the draw's
        emitters.append(e)
        an = Anomaly(kind, *e.band, 0, n, jnr, {"family": e.family, "variant": e.variant})
    return emitters, an, notch
