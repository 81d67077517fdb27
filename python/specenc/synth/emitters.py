"""Emitters of every family in `labels.FAMILIES`, as complex baseband IQ.

Frequencies are normalised to the sample rate (cycles/sample, -0.5..0.5), so the same emitter
works for any capture rate. Every emitter knows its nominal occupied band (99 % power bandwidth
computed from its parameters, see `occupied_bandwidth`) and its active time [start, stop).

`generate(emitter, n, rng)` returns n samples of UNIT POWER while active (zero while inactive),
already shifted to `emitter.fc`; the scene scales it to the wanted SNR.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.fft import next_fast_len
from scipy.signal import oaconvolve
from scipy.special import erf

from .. import labels

# The families the generator draws emissions from ("noise" is the empty spectrum; noise emitters
# only appear as jammers).
EMITTER_FAMILIES = tuple(f for f in labels.FAMILIES if f != "noise")


@dataclass
class Emitter:
    """One emission: family, where it sits, how strong, and its modulation parameters."""

    family: str  # a name in labels.FAMILIES
    variant: str  # e.g. "qam16", "gfsk4", "lora"
    fc: float  # centre frequency, cycles/sample
    bandwidth: float  # nominal 99 % occupied bandwidth, cycles/sample
    snr_db: float = 20.0  # see scene.py for the definition
    params: dict = field(default_factory=dict)
    start: int = 0  # first active sample
    stop: int = None  # one past the last active sample; None = to the end
    role: str = "normal"  # "normal", or the anomaly kind this emitter embodies

    @property
    def band(self):
        """(f_lo, f_hi) of the occupied band, cycles/sample."""
        return self.fc - self.bandwidth / 2, self.fc + self.bandwidth / 2


# ---------------------------------------------------------------------------------------------
# Building blocks


def log_uniform(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def pick(rng, options, p=None):
    """One of `options` (optionally with probabilities p); much cheaper than Generator.choice."""
    options = list(options)
    if p is None:
        return options[int(rng.integers(len(options)))]
    return options[min(int(np.searchsorted(np.cumsum(p), rng.random() * sum(p))), len(options) - 1)]


def _pulse_sum(symbols, sps, pulse, span, n, offset):
    """x[t] = sum_k symbols[k] pulse(t/sps + offset - k) for t = 0..n-1 (pulse support |tau| <= span).

    The pulse is tabulated at 1/256 symbol and looked up (cheaper than evaluating it n*taps times);
    symbols must cover indices 0..n/sps + offset + span + 1 (offset >= span).
    """
    res = 256
    table = pulse(np.arange(-(span + 1) * res, (span + 2) * res + 1) / res)  # tau = -(span+1)..span+2
    tau_all = np.arange(n) / sps + offset  # (n,) position in symbols
    k0 = tau_all.astype(np.int64)
    base = np.round((tau_all - k0) * res).astype(np.int64) + (span + 1) * res
    out = np.zeros(n, symbols.dtype)
    for j in range(-span, span + 2):  # one tap at a time: no (n, taps) temporaries
        out += symbols[k0 + j] * table[base - j * res]
    return out


def _symbol_count(n, sps, offset, span):
    return int(np.ceil(n / sps + offset)) + span + 3


def rrc(tau, beta):
    """Root-raised-cosine pulse at time tau (symbols), roll-off beta (unnormalised)."""
    tau = np.where(np.abs(tau) < 1e-8, 1e-8, tau)
    sing = np.abs(np.abs(4 * beta * tau) - 1) < 1e-6
    tau = np.where(sing, tau + 1e-5, tau)
    num = np.sin(np.pi * tau * (1 - beta)) + 4 * beta * tau * np.cos(np.pi * tau * (1 + beta))
    den = np.pi * tau * (1 - (4 * beta * tau) ** 2)
    return num / den


def raised_cosine(tau, beta):
    """Raised-cosine (Nyquist) pulse: its spectrum occupies exactly (1+beta)/T."""
    tau = np.where(np.abs(tau) < 1e-8, 1e-8, tau)
    sing = np.abs(np.abs(2 * beta * tau) - 1) < 1e-6
    tau = np.where(sing, tau + 1e-5, tau)
    return np.sinc(tau) * np.cos(np.pi * beta * tau) / (1 - (2 * beta * tau) ** 2)


def gaussian_freq_pulse(tau, bt):
    """GFSK frequency pulse: a one-symbol rectangle smoothed by a Gaussian of bandwidth-time bt."""
    c = np.pi * bt * np.sqrt(2 / np.log(2))
    return 0.5 * (erf(c * (tau + 0.5)) - erf(c * (tau - 0.5)))


def rect_pulse(tau):
    return ((tau >= -0.5) & (tau < 0.5)).astype(np.float64)


def lowpass_noise(rng, n, bw, real=False):
    """Unit-power noise band-limited to |f| < bw/2 (cycles/sample): random bins in the band, one IFFT."""
    f = np.fft.fftfreq(n)
    inside = np.flatnonzero(np.abs(f) < max(bw / 2, 1.0 / n))
    spec = np.zeros(n, np.complex128)
    spec[inside] = rng.standard_normal(len(inside)) + 1j * rng.standard_normal(len(inside))
    x = np.fft.ifft(spec)
    if real:
        x = x.real
    return x / np.sqrt(np.mean(np.abs(x) ** 2) + 1e-30)


def constellation(name, rng, count):
    """Unit-average-power symbols of a named constellation."""
    if name.startswith("psk"):
        m = int(name[3:])
        pts = np.exp(2j * np.pi * np.arange(m) / m)
    elif name.startswith("qam"):
        m = int(np.sqrt(int(name[3:])))
        re = np.arange(m) * 2 - (m - 1)
        pts = (re[:, None] + 1j * re[None, :]).ravel()
    elif name == "apsk16":
        pts = np.concatenate([np.exp(2j * np.pi * (np.arange(4) + 0.5) / 4),
                              2.7 * np.exp(2j * np.pi * np.arange(12) / 12)])
    elif name.startswith("pam"):
        m = int(name[3:])
        pts = (np.arange(m) * 2 - (m - 1)).astype(np.complex128)
    else:
        raise ValueError(f"unknown constellation {name!r}")
    pts = pts / np.sqrt(np.mean(np.abs(pts) ** 2))
    return pts[rng.integers(0, len(pts), count)]


# Fitted bandwidth constants (see occupied_bandwidth and tests/test_synth_emitters.py).
FM_K_DEV, FM_K_FM = 0.9, 0.35
PULSE_BW = 2.85
RECT_BW = 1.7

CONSTELLATIONS = ("psk2", "psk4", "psk8", "qam16", "qam64", "apsk16", "pam4")

# ---------------------------------------------------------------------------------------------
# Families. Each takes (params, n, rng) and returns a baseband (centred at 0) complex signal.


def _tone(p, n, rng):
    return np.exp(1j * (rng.uniform(0, 2 * np.pi) + 2 * np.pi * p.get("drift", 0.0) * np.arange(n) ** 2 / 2))


def audio_noise(rng, n, fm, corner, sideband=0):
    """Unit-power message noise of audio bandwidth fm (cycles/sample) shaped as speech or music: flat to `corner`,
    then falling 6 dB/octave (power ~ 1/(1 + (a/corner)^2) at audio frequency a), so an AM channel peaks at its
    carrier and is not the flat band of a noise jammer. sideband 0: a real message on |f| < fm (DSB); +1/-1: the
    upper/lower sideband alone, centred at 0 (suppressed carrier at -/+ fm/2)."""
    f = np.fft.fftfreq(n)
    a = np.abs(f) if sideband == 0 else fm / 2 + sideband * f
    inside = np.flatnonzero((a >= 0) & (a < max(fm, 1.0 / n)))
    spec = np.zeros(n, np.complex128)
    spec[inside] = (rng.standard_normal(len(inside)) + 1j * rng.standard_normal(len(inside))) / np.sqrt(
        1 + (a[inside] / corner) ** 2)
    x = np.fft.ifft(spec)
    if sideband == 0:
        x = x.real
    return x / np.sqrt(np.mean(np.abs(x) ** 2) + 1e-30)


def _am(p, n, rng):
    fm, corner = p["fm"], p["corner"] * p["fm"]
    if p["mode"] == "ssb":
        # One sideband of width fm; fc is the centre of that sideband, not the suppressed carrier.
        return audio_noise(rng, n, fm, corner, p["sideband"]).astype(np.complex128)
    m = audio_noise(rng, n, fm, corner)
    if p["mode"] == "dsb_sc":
        return m.astype(np.complex128)
    return (1 + p["depth"] * m / 3).astype(np.complex128)  # DSB with carrier; depth/3 keeps 1+m > 0


def _fm(p, n, rng):
    m = np.clip(lowpass_noise(rng, n, 2 * p["fm"], real=True) / 2.5, -1, 1)  # peak ~ 1
    return np.exp(1j * (2 * np.pi * p["dev"] * np.cumsum(m) + rng.uniform(0, 2 * np.pi)))


def _fsk(p, n, rng):
    sps, levels, span = p["sps"], p["levels"], 3
    off = rng.uniform(0, 1) + span
    sym = (rng.integers(0, levels, _symbol_count(n, sps, off, span)) * 2 - (levels - 1)).astype(np.float64)
    if p["bt"] > 0:
        freq = _pulse_sum(sym, sps, lambda t: gaussian_freq_pulse(t, p["bt"]), span, n, off)
    else:
        freq = _pulse_sum(sym, sps, rect_pulse, 1, n, off)
    # Deviation per level step h*Rs/2: levels +-1 (+-3) give +-h Rs/2 (+-3 h Rs/2).
    return np.exp(1j * (2 * np.pi * p["h"] / (2 * sps) * np.cumsum(freq) + rng.uniform(0, 2 * np.pi)))


def _ask(p, n, rng):
    if p["mode"] == "pulsed":
        # Low-duty pulses (radar, DME, ADS-B-like): Hann-shaped pulses of width w at random times.
        w = int(p["width"])
        count = max(1, int(round(n * p["duty"] / p["width"])))
        impulses = np.bincount(rng.integers(0, n + w, count), minlength=n + w).astype(np.float64)
        env = oaconvolve(impulses, np.hanning(w + 2)[1:-1])[w: w + n]
        return np.minimum(env, 1.0).astype(np.complex128)  # overlapping pulses saturate
    sps, beta, span = p["sps"], p["beta"], 4
    off = rng.uniform(0, 1) + span
    count = _symbol_count(n, sps, off, span)
    if p.get("repeat"):
        # A remote repeating one short code word: the spectrum turns into a comb of lines Rs/repeat apart.
        word = rng.integers(0, 2, p["repeat"])
        word[0] = 1
        bits = np.resize(word, count).astype(np.float64)
    else:
        bits = rng.integers(0, 2, count).astype(np.float64)
    lo = p["low"]  # level of a "0": 0 for OOK, >0 for ASK with residual carrier
    if p["mode"] == "ook_rect":  # hard keying, as cheap remotes do: sinc^2 skirts across the band
        return _pulse_sum(bits, sps, rect_pulse, 1, n, off).astype(np.complex128)
    amp = _pulse_sum(lo + (1 - lo) * bits, sps, lambda t: raised_cosine(t, beta), span, n, off)
    if p["mode"] == "ask_sc":
        # Bipolar ASK: no carrier line (levels symmetric about zero).
        amp = amp - np.mean(lo + (1 - lo) * bits)
    return amp.astype(np.complex128)


def _single_carrier(p, n, rng):
    sps, span = p["sps"], 6
    off = rng.uniform(0, 1) + span
    sym = constellation(p["constellation"], rng, _symbol_count(n, sps, off, span))
    return _pulse_sum(sym, sps, lambda t: rrc(t, p["beta"]), span, n, off)


def _ofdm(p, n, rng):
    m, used, cp = p["fft"], p["subcarriers"], p["cp"]
    nsym = int(np.ceil(n / (m + cp))) + 1
    k = np.arange(used) - used // 2  # occupied subcarrier indices around DC
    sym = constellation(p["constellation"], rng, nsym * used).reshape(nsym, used)
    if p["pilot_every"]:
        sym[:, :: p["pilot_every"]] = 1.4  # boosted pilots
    if p["dc_null"]:
        sym[:, k == 0] = 0
    grid = np.zeros((nsym, m), np.complex128)
    grid[:, k % m] = sym
    t = np.fft.ifft(grid, axis=1)
    frames = np.concatenate([t[:, m - cp:], t], axis=1).ravel()  # (nsym*(m+cp),) with cyclic prefix
    start = rng.integers(0, m + cp)
    # Transmit filter: real OFDM masks cut the sinc skirts of the symbol edges a subcarrier or so out.
    x = np.fft.fft(frames[start: start + n])
    x[np.abs(np.fft.fftfreq(n)) > (used / 2 + 1) / m] = 0
    return np.fft.ifft(x)


def _chirp(p, n, rng):
    b, period = p["sweep"], p["period"]
    t = np.arange(n) + rng.uniform(0, period)
    if p["mode"] == "lora":
        sf_len = period
        shifts = rng.integers(0, 2 ** p["sf"], int(np.ceil(n / sf_len)) + 2) / 2 ** p["sf"]
        frac = np.mod(t / sf_len, 1.0) + shifts[(t // sf_len).astype(np.int64) - int(t[0] // sf_len)]
        f = b * (np.mod(frac, 1.0) - 0.5)
    else:
        frac = np.mod(t / period, 1.0)
        if p["mode"] == "triangle":
            frac = 1 - np.abs(2 * frac - 1)
        f = b * (frac - 0.5) * (1 if p["mode"] != "down" else -1)
    return np.exp(1j * (2 * np.pi * np.cumsum(f) + rng.uniform(0, 2 * np.pi)))


def _noise(p, n, rng):
    return lowpass_noise(rng, n, p["bw"])


_GENERATORS = {
    "tone": _tone, "am": _am, "fm": _fm, "fsk": _fsk, "ask": _ask,
    "single_carrier": _single_carrier, "ofdm": _ofdm, "chirp": _chirp, "noise": _noise,
}

# ---------------------------------------------------------------------------------------------
# Random parameters and the occupied bandwidth they give


def occupied_bandwidth(family, p):
    """Nominal 99 % power bandwidth (cycles/sample) implied by the parameters."""
    if family == "tone":
        return 0.0
    if family == "am":
        return p["fm"] if p["mode"] == "ssb" else 2 * p["fm"]
    if family == "fm":
        # 99 % bandwidth of FM by a noise-like message (peak deviation dev); Carson's 2(dev+fm)
        # overestimates it by 20-40 %. Constants fitted on this generator.
        return 2 * (FM_K_DEV * p["dev"] + FM_K_FM * p["fm"])
    if family == "fsk":
        rs = 1 / p["sps"]
        peak = (p["levels"] - 1) * p["h"] * rs / 2
        # Peak-to-peak deviation plus the spread of each tone (fitted; wider for hard keying).
        return 2 * peak + (0.7 if p["bt"] > 0 else 0.2 + 0.9 * np.sqrt(p["h"])) * rs
    if family == "ask":
        if p["mode"] == "pulsed":
            return PULSE_BW / p["width"]  # Hann-shaped pulse, 99 % of its energy
        if p["mode"] == "ook_rect":
            return RECT_BW / p["sps"]  # 90 % of the keyed power (sinc^2 skirts: 99 % would be ~20 Rs)
        # Raised-cosine amplitude pulses: |RC(f)|^2 puts 99 % inside (1 + 0.35 beta) Rs, not (1+beta) Rs.
        return (1 + 0.35 * p["beta"]) / p["sps"]
    if family == "single_carrier":
        return (1 + p["beta"]) / p["sps"]
    if family == "ofdm":
        return p["subcarriers"] / p["fft"]
    if family == "chirp":
        # The sweep plus the spread of a finite chirp rate (sqrt(rate) either side of a sawtooth).
        return p["sweep"] + (2 if p["mode"] in ("up", "down") else 1) * np.sqrt(p["sweep"] / p["period"])
    if family == "noise":
        return p["bw"]
    raise ValueError(f"unknown family {family!r}; choose one of {', '.join(_GENERATORS)}")


def random_params(family, bw, rng, n_hint=4096):
    """Parameters of a random `family` emitter occupying about `bw` cycles/sample -> (variant, params)."""
    if family == "tone":
        return "cw", {"drift": rng.normal(0, 1e-10)}
    if family == "am":
        mode = pick(rng, ["dsb", "dsb_sc", "ssb"], p=[0.5, 0.25, 0.25])
        corner = log_uniform(rng, 0.1, 0.5)  # of the audio bandwidth: the edge is 5..20 dB under the peak
        if mode == "ssb":
            return "ssb", {"mode": "ssb", "fm": bw, "corner": corner, "sideband": int(pick(rng, [1, -1]))}
        return str(mode), {"mode": str(mode), "fm": bw / 2, "corner": corner, "depth": rng.uniform(0.3, 1.0)}
    if family == "fm":
        beta = np.exp(rng.uniform(np.log(0.5), np.log(6)))  # narrowband .. broadcast
        fm = bw / (2 * (FM_K_DEV * beta + FM_K_FM))
        return ("nbfm" if beta < 2 else "wbfm"), {"fm": fm, "dev": beta * fm}
    if family == "fsk":
        levels = int(pick(rng, [2, 4], p=[0.75, 0.25]))
        kind = pick(rng, ["fsk", "gfsk", "msk", "gmsk"])
        # Cheap ISM FSK often deviates far more than its bit rate (h up to ~20): two sharp tones.
        h = 0.5 if kind in ("msk", "gmsk") else log_uniform(rng, 0.5, 20.0)
        bt = rng.uniform(0.3, 0.7) if kind in ("gfsk", "gmsk") else 0.0
        p = {"levels": levels, "h": h, "bt": bt, "sps": 1.0}
        p["sps"] = occupied_bandwidth("fsk", p) / bw  # scale the symbol rate to the wanted width
        return f"{kind}{levels}", p
    if family == "ask":
        mode = pick(rng, ["ook", "ook_rect", "ask", "ask_sc", "pulsed"], p=[0.25, 0.2, 0.15, 0.1, 0.3])
        if mode == "pulsed":
            width = max(PULSE_BW / bw, 2.0)
            duty = rng.uniform(0.02, 0.3)
            return "pulsed", {"mode": "pulsed", "width": width, "duty": duty}
        beta = rng.uniform(0.2, 1.0)
        low = {"ook": 0.0, "ook_rect": 0.0, "ask": rng.uniform(0.1, 0.5), "ask_sc": 0.0}[str(mode)]
        sps = RECT_BW / bw if mode == "ook_rect" else (1 + 0.35 * beta) / bw
        repeat = int(rng.integers(3, 17)) if mode in ("ook", "ook_rect") and rng.random() < 0.4 else 0
        return str(mode), {"mode": str(mode), "beta": beta, "low": low, "sps": sps, "repeat": repeat}
    if family == "single_carrier":
        beta = rng.uniform(0.1, 0.6)
        name = str(pick(rng, CONSTELLATIONS))
        return name, {"constellation": name, "beta": beta, "sps": (1 + beta) / bw}
    if family == "ofdm":
        # Subcarrier counts that keep the IFFT at most 8192 points (fast for narrow emitters).
        counts = [c for c in (12, 24, 48, 64, 128, 256, 512) if c / bw <= 8192] or [12]
        used = int(pick(rng, counts))
        fft = next_fast_len(max(int(round(used / bw)), used + 2))
        cp = int(fft * pick(rng, [1 / 32, 1 / 16, 1 / 8, 1 / 4]))
        pilot = int(pick(rng, [0, 4, 8, 12]))
        return f"ofdm{used}", {"fft": fft, "subcarriers": used, "cp": cp, "pilot_every": pilot,
                               "dc_null": bool(rng.random() < 0.5),
                               "constellation": str(pick(rng, ["psk4", "qam16", "qam64"]))}
    if family == "chirp":
        mode = str(pick(rng, ["up", "down", "triangle", "lora"], p=[0.3, 0.2, 0.15, 0.35]))
        if mode == "lora":
            sf = int(rng.integers(5, 10))
            return "lora", {"mode": "lora", "sweep": bw, "sf": sf, "period": 2 ** sf / bw}
        period = float(np.exp(rng.uniform(np.log(n_hint / 16), np.log(n_hint))))  # >= 1 sweep per spectrum
        return f"lfm_{mode}", {"mode": mode, "sweep": bw, "period": period}
    if family == "noise":
        return "noise", {"bw": bw}
    raise ValueError(f"unknown family {family!r}; choose one of {', '.join(_GENERATORS)}")


def make_emitter(family, fc, bw, snr_db, rng, start=0, stop=None, role="normal", n_hint=4096):
    """An Emitter of `family` at fc with about `bw` occupied bandwidth (cycles/sample)."""
    variant, params = random_params(family, bw, rng, n_hint)
    return Emitter(family, variant, float(fc), float(occupied_bandwidth(family, params)), float(snr_db),
                   params, int(start), None if stop is None else int(stop), role)


def generate(em, n, rng, t0=0):
    """n samples (from absolute sample t0) of unit power while active, shifted to em.fc.

    Only the active part of [t0, t0+n) is synthesised; the rest is zero.
    """
    lo = max(em.start - t0, 0)
    hi = n if em.stop is None else min(em.stop - t0, n)
    out = np.zeros(n, np.complex128)
    if hi <= lo:
        return out
    x = _GENERATORS[em.family](em.params, hi - lo, rng)
    x = x / np.sqrt(np.mean(np.abs(x) ** 2) + 1e-30)
    if em.params.get("tx_phase_noise"):
        # Cheap transmitter oscillator: random-walk phase, Lorentzian line with 1/f^2 skirts.
        x = x * np.exp(1j * np.cumsum(rng.normal(0, em.params["tx_phase_noise"], hi - lo)))
    t = np.arange(lo, hi) + t0
    hops = em.params.get("hop_freqs")
    if hops:
        # Frequency hopper: hop i of each cycle sits at hop_freqs[i] for `dwell` samples.
        dwell = em.params["dwell"]
        f = np.asarray(hops)[(t - em.start) // dwell % len(hops)]
        # Power ramps (raised cosine over 15 % of a dwell at each end), as real hoppers do: hard
        # switching would splatter sinc skirts over the whole band.
        pos = (t - em.start) % dwell
        edge = np.minimum(pos, dwell - 1 - pos) / max(0.15 * dwell, 1)
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.clip(edge, 0, 1))
        out[lo:hi] = x * ramp * np.exp(2j * np.pi * np.cumsum(f)) / np.sqrt(np.mean(ramp ** 2))
    else:
        out[lo:hi] = x * np.exp(2j * np.pi * em.fc * t)
    return out

