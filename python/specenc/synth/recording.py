"""Recordings: long scenes with bursty emitters and ghost anomalies at known times, with truth.

`make_recording(scenario, seconds, seed, sample_rate, center_freq) -> (iq, annotations)` and
`write_scenario(out_meta, scenario, ...) -> meta_path` (SigMF via sigmf_io). Annotations carry
core:sample_start/sample_count, core:freq_lower_edge/upper_edge (Hz), core:label (family, or
"anomaly"), specenc:snr_db (emitters), specenc:kind and specenc:strength_db (anomalies),
specenc:params (parameters in normalised units: cycles/sample and samples) and specenc:role.
"""

import copy

import numpy as np

from .. import bands as bands_mod
from .. import labels
from .anomalies import KINDS_BY_BAND, inject
from .band_plans import normal_scene, raster_scene
from .emitters import log_uniform
from .impairments import ENBW_HANN, random_receiver
from .scene import Scene, add_fading, render, snr_bandwidth


# scenario -> (band, default sample rate Hz, default centre frequency Hz)
SCENARIOS = {
    "ism": ("ism", 1e6, 433.92e6),
    "cellular": ("cellular", 10e6, 806e6),
    "gnss": ("gnss", 4e6, 1575.42e6),
    "aero": ("aero", 2e6, 127e6),
    "other": ("other", 2e6, 50e6),
    "demo": ("aero", 1e6, 127e6),
}
# The demo's ghost anomalies, in order, each in its own seventh of the recording.
DEMO_KINDS = ("frequency_shift", "jamming", "hopping", "stealth", "spoofing", "band_erasure")
NFFT = 1024  # analysis FFT the tone SNR and the hop interval refer to
DEMO_MAX_RATE = 25e3 * NFFT / 10  # the demo's 25 kHz channels keep 10 bins of raster; above, its ghosts fade out
CHUNK = 1 << 22  # samples rendered at a time (emitters restart at chunk borders; the demo fits in one)
MAX_SAMPLES = 1 << 28


def _burst_train(em, n, rate, rng):
    """Copies of a bursty emitter, one per burst: on 2-300 ms, off 10 ms-1 s, over n samples."""
    out, t = [], int(rng.uniform(0, log_uniform(rng, 0.01, 1.0) * rate))
    while t < n:
        on = max(int(log_uniform(rng, 0.002, 0.3) * rate), 64)
        b = copy.deepcopy(em)
        b.start, b.stop = t, min(t + on, n)
        out.append(b)
        t += on + int(log_uniform(rng, 0.01, 1.0) * rate)
    return out


def _piece_of(piece, em):
    """Whether `piece` is a copy of `em` over part of its activity (what _outside leaves of an altered emitter)."""
    same = (piece.family, piece.variant, piece.fc, piece.bandwidth, piece.snr_db, piece.role) == \
        (em.family, em.variant, em.fc, em.bandwidth, em.snr_db, em.role)
    end = np.inf if em.stop is None else em.stop
    return same and em.start <= piece.start and (np.inf if piece.stop is None else piece.stop) <= end


def _outside(em, a, b):
    """The parts of em's activity before a and after b."""
    stop = np.inf if em.stop is None else em.stop
    parts = []
    if em.start < a:
        p = copy.deepcopy(em)
        p.stop = int(min(stop, a))
        parts.append(p)
    if stop > b:
        p = copy.deepcopy(em)
        p.start = int(max(em.start, b))
        parts.append(p)
    return parts


def _restrict(em, a, b):
    """em limited to [a, b), or None when it is not active there."""
    start, stop = max(em.start, a), min(b, np.inf if em.stop is None else em.stop)
    if stop <= start:
        return None
    em.start, em.stop = int(start), int(stop)
    return em


def inject_timed(sc, kind, a, b, rng):
    """Inject `kind` into the scene during samples [a, b) only; returns the Anomaly."""
    for _ in range(20):
        work = copy.deepcopy(sc.emitters)
        known = {id(e) for e in work}
        try:
            new, an, notch = inject(kind, sc.plan, work, rng, b - a, sc.min_bw, interval=NFFT * 5 // 2)
        except ValueError:
            continue
        kept = {id(e) for e in new}
        out, target, touched = [], None, False
        for orig, w in zip(sc.emitters, work):
            if id(w) in kept and w.role == orig.role:
                out.append(orig)
                continue
            # Removed (band_erasure) or altered (frequency_shift, spoofing) during [a, b) only.
            touched = True
            out.extend(_outside(orig, a, b))
            target = _restrict(w, a, b)
            if target is not None and id(w) in kept:
                out.append(target)
        if touched and target is None:
            continue  # the chosen emitter is silent during [a, b): pick another
        for w in new:
            if id(w) not in known:  # added by the anomaly
                w.start, w.stop = a + w.start, a + (b - a if w.stop is None else w.stop)
                out.append(w)
        an.start, an.stop = a, b
        if target is not None:
            an.start, an.stop = target.start, target.stop
        if notch is not None:
            notch.start, notch.stop = a, b
            sc.notches.append(notch)
        sc.emitters = out
        return an
    raise ValueError(f"could not place a {kind} anomaly in samples {a}..{b} of this scene")


def _demo_scene(rng, n, rate):
    """VHF air band at 25 kHz raster (normalised to `rate`): AM channels that stay on."""
    spacing = 25e3 / rate if rate >= 400e3 else 1 / 16
    plan, ems = raster_scene("aero", rng, n, 1 / NFFT, spacing, 0.4, ("am",), 0.35, 22.0, 6.0, 1.0)
    plan.variant = "vhf"
    return plan, ems


def _normal_scene(scenario, band, n, rate, rng):
    plan, ems = _demo_scene(rng, n, rate) if scenario == "demo" else normal_scene(band, rng, n, 1 / NFFT)
    emitters = []
    for e in ems:
        emitters.extend([e] if e.stop is None else _burst_train(e, n, rate, rng))
    return Scene(band, plan, emitters, random_receiver(rng), min_bw=1 / NFFT)


def anomaly_kinds(scenario, anomalies):
    """The kinds a recording of `scenario` gets, in slot order: `anomalies` (kind names, "all" the band admits, None
    the scenario's default: the demo's six, none otherwise), checked."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    band = SCENARIOS[scenario][0]
    if anomalies is None:
        anomalies = DEMO_KINDS if scenario == "demo" else ()
    elif anomalies == "all":
        anomalies = KINDS_BY_BAND[band]
    for k in anomalies:
        if k not in labels.ANOMALY_INDEX:
            raise ValueError(f"unknown anomaly kind {k!r}; choose from {', '.join(labels.ANOMALY_KINDS)}")
        if k not in KINDS_BY_BAND[band]:  # some would still fit (stealth in a free band), but mean nothing there
            raise ValueError(f"anomaly kind {k!r} is not one the {scenario!r} scenario's band admits; "
                             f"it admits {', '.join(KINDS_BY_BAND[band])}")
    return tuple(anomalies)


def build_scene(scenario, n, rate, rng, anomalies=None, ghost_free=False):
    """(Scene, [Anomaly]) for a recording of n samples; anomalies: kind names (None = scenario default).

    Each anomaly gets its own slot of the recording (slots of n/(count+1), 40-80 % filled; the demo's
    80 %). When a kind does not fit the drawn scene (a raster kind in a one-channel band), the
    normal scene is drawn again. ghost_free: the scene is drawn with its anomalies, so with the same channels,
    receiver, fading and level, and returned without them: the same site, as a clean recording of it to
    calibrate on (drawn without them, the site's draws shifted: another floor level, other channels).
    """
    anomalies = anomaly_kinds(scenario, anomalies)
    band = SCENARIOS[scenario][0]
    slot = n // (len(anomalies) + 1)
    for _ in range(30):
        sc = _normal_scene(scenario, band, n, rate, rng)
        normal = sc.emitters  # inject_timed replaces the list and copies what it changes
        try:
            truth = []
            for i, kind in enumerate(anomalies):
                dur = int(slot * (0.8 if scenario == "demo" else rng.uniform(0.4, 0.8)))
                a = int(slot * (i + 0.6))
                truth.append(inject_timed(sc, kind, a, a + dur, rng))
            break
        except ValueError:
            continue
    else:
        raise ValueError(f"could not fit anomalies {', '.join(anomalies)} into a {scenario!r} scene; "
                         f"this band admits {', '.join(KINDS_BY_BAND[band])}")
    add_fading(sc, rng)  # taps drawn again for every rendered chunk: slow fading
    # A level that leaves 15 dB of headroom below full scale for integer formats; a pulsed emitter's power is
    # its mean over the pulses' duty (its pulses stood up to 4 dB over full scale in ci16 files).
    total = 1 + sum(10 ** (e.snr_db / 10) * snr_bandwidth(e, sc.min_bw) / e.params.get("duty", 1.0)
                    for e in sc.emitters)
    headroom = -15 - 10 * np.log10(total) + 10 * np.log10(ENBW_HANN / NFFT)
    sc.receiver.floor_db = float(min(rng.uniform(-95, -65), headroom))
    if ghost_free:
        _leave_out_anomalies(sc, normal, n, rng)
        truth = []
    return sc, truth


def _leave_out_anomalies(sc, normal, n, rng):
    """The scene with its `normal` emitters only, keeping what was drawn with the anomalies in: fading, and an 8-bit
    receiver's gain, which comes from the first samples rendered (the recording's, with the ghosts)."""
    if sc.receiver.adc_bits:
        render(sc, min(CHUNK, n), copy.deepcopy(rng), NFFT)
    index = {id(e): i for i, e in enumerate(sc.emitters)}
    fading = {}
    for j, e in enumerate(normal):
        # An emitter an anomaly changed is in the scene as its pieces: copies within its activity.
        found = [index[id(e)]] if id(e) in index else [i for i, p in enumerate(sc.emitters) if _piece_of(p, e)]
        faded = [sc.fading[i] for i in found if i in sc.fading]
        if faded:
            fading[j] = faded[0]
    sc.emitters, sc.notches, sc.fading = normal, [], fading


def _hz(f, rate, center):
    return float(center + f * rate)


def annotations_for(sc, truth, n, rate, center):
    """SigMF annotation dicts for the scene's emitters and anomalies."""
    out = []
    half_bin = rate / NFFT / 2
    for e in sc.emitters:
        stop = n if e.stop is None else min(e.stop, n)
        if stop <= e.start:
            continue
        lo, hi = _hz(max(e.band[0], -0.5), rate, center), _hz(min(e.band[1], 0.5), rate, center)  # the capture's
        if hi - lo < 2 * half_bin:  # tones: one analysis bin
            lo, hi = (lo + hi) / 2 - half_bin, (lo + hi) / 2 + half_bin
        out.append({
            "core:sample_start": int(e.start), "core:sample_count": int(stop - e.start),
            "core:freq_lower_edge": lo, "core:freq_upper_edge": hi,
            "core:label": e.family, "specenc:snr_db": round(float(e.snr_db), 2),
            "specenc:role": e.role, "specenc:params": {"variant": e.variant, **e.params},
        })
    for an in truth:
        out.append({
            "core:sample_start": int(an.start), "core:sample_count": int(an.stop - an.start),
            # A wide sweep's extent may reach past the band edges: the capture holds only what lies inside.
            "core:freq_lower_edge": _hz(max(an.f_lo, -0.5), rate, center),
            "core:freq_upper_edge": _hz(min(an.f_hi, 0.5), rate, center),
            "core:label": "anomaly", "specenc:kind": an.kind,
            "specenc:strength_db": round(float(an.strength_db), 2), "specenc:params": an.params,
        })
    return sorted(out, key=lambda a: a["core:sample_start"])


def _defaults(scenario, sample_rate, center_freq, seconds):
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    band, rate0, freq0 = SCENARIOS[scenario]
    rate = float(rate0 if sample_rate is None else sample_rate)
    center = float(freq0 if center_freq is None else center_freq)
    if not 0 < rate < np.inf:
        raise ValueError(f"sample_rate={sample_rate} must be > 0 Hz")
    if not 0 < seconds < np.inf:
        raise ValueError(f"seconds={seconds} must be a finite duration > 0")
    if not (np.isfinite(center) and center >= 0):  # 0: baseband, band "other"
        raise ValueError(f"center_freq={center_freq} must be a frequency >= 0 Hz")
    if bands_mod.band_for_frequency(center) != band:
        raise ValueError(f"center_freq={center:g} Hz is in band {bands_mod.band_for_frequency(center)!r} "
                         f"but scenario {scenario!r} needs band {band!r}")
    n = int(round(seconds * rate))
    if not NFFT <= n <= MAX_SAMPLES:
        raise ValueError(f"seconds*sample_rate = {n} samples must be in {NFFT}..{MAX_SAMPLES}")
    return band, rate, center, n


def make_recording(scenario="demo", seconds=4.0, seed=0, sample_rate=None, center_freq=None,
                   anomalies=None, progress=False, ghost_free=False, take=0, samples=None):
    """Generate a scenario -> (iq complex64 (n,), annotations list of SigMF dicts). Deterministic in seed.

    anomalies: kind names to inject, "all" (every kind the band admits), or None (the scenario's
    default: the demo has all six, the others none). ghost_free: the same site without them (build_scene).
    A ghost-free recording renders from a noise stream of its own, `take` (0, 1, ...) of them, so that it shares no
    noise with the recording it is the twin of and its takes are more of the site's traffic, the same scene (a
    longer scene is another site: burst trains and parameters drawn for its length move the later draws).
    samples: render only the scene's first `samples` (a twin of the stretch of a recording that is scored).
    """
    _, rate, center, n = _defaults(scenario, sample_rate, center_freq, seconds)
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):  # numpy's own message names no seed
        raise ValueError(f"seed={seed!r} must be a whole number >= 0")
    rng = np.random.default_rng(seed)
    sc, truth = build_scene(scenario, n, rate, rng, anomalies, ghost_free)
    if ghost_free:
        rng = np.random.default_rng([seed, 1, take])
    m = n if samples is None else min(n, int(samples))
    iq = np.empty(m, np.complex64)
    starts = range(0, m, CHUNK)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc=f"synth {scenario}", unit="chunk", disable=None)  # none in a log file
    for t0 in starts:
        iq[t0: t0 + CHUNK] = render(sc, min(CHUNK, m - t0), rng, NFFT, t0)
    return iq, annotations_for(sc, truth, m, rate, center)


def write_scenario(out_meta, scenario="demo", seconds=4.0, seed=0, sample_rate=None, center_freq=None,
                   anomalies=None, datatype="cf32_le", plot=None, progress=False, ghost_free=False, take=0,
                   samples=None):
    """Generate a scenario and write it as SigMF with truth annotations; returns the meta path."""
    from .. import sigmf_io

    if datatype not in ("cf32_le", "ci16_le"):
        raise ValueError(f"datatype={datatype!r} must be cf32_le or ci16_le")
    _, rate, center, n = _defaults(scenario, sample_rate, center_freq, seconds)
    iq, anns = make_recording(scenario, seconds, seed, rate, center, anomalies, progress, ghost_free, take, samples)
    desc = f"gr-specenc synthetic scenario {scenario!r}, seed {seed}, {seconds:g} s (truth in annotations)"
    meta = sigmf_io.write_recording(out_meta, iq, rate, center, datatype, anns,
                                    extra_global={"specenc:scenario": scenario, "specenc:seed": int(seed),
                                                  # the kinds drawn and left out: whose twin it is
                                                  **({"specenc:ghost_free": list(anomaly_kinds(scenario, anomalies)),
                                                      "specenc:take": int(take), "specenc:scene_samples": n}
                                                     if ghost_free else {})},
                                    description=desc, datetime="2026-01-01T00:00:00.000000Z")
    if plot:
        from .plot import plot_waterfall
        plot_waterfall(iq, rate, center, anns, plot, title=f"{scenario} seed {seed}")
    return meta

