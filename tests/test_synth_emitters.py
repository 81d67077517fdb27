"""Emitters: occupied bandwidth and centre in the PSD match the parameters; SNR as labelled is measured."""

import numpy as np
import pytest

from gnuradio.specenc import dsp
from gnuradio.specenc.synth.emitters import EMITTER_FAMILIES, generate, make_emitter, random_params
from gnuradio.specenc.synth.impairments import ENBW_HANN, Receiver
from gnuradio.specenc.synth.scene import Scene, render
from gnuradio.specenc.synth.band_plans import Plan

NFFT = 1024
N = NFFT * 48


def mean_psd(x, nfft=NFFT):
    """Linear power spectrum averaged over the whole signal, fftshifted, bin centres (i - nfft/2)/nfft."""
    return dsp.power_spectrum(x, nfft, 0.5, "hann", 1, db=False).mean(axis=0)


def power_band(p, fraction):
    """(lo, hi, centroid) in cycles/sample of the interval holding `fraction` of the power (equal tails)."""
    f = (np.arange(len(p)) - len(p) / 2) / len(p)
    c = np.cumsum(p) / np.sum(p)
    tail = (1 - fraction) / 2
    lo = f[np.searchsorted(c, tail)]
    hi = f[np.searchsorted(c, 1 - tail)]
    return lo - 0.5 / len(p), hi + 0.5 / len(p), float(np.sum(f * p) / np.sum(p))


# (family, forced variant key/value or None, nominal bandwidth) over a spread of widths.
CASES = [
    ("tone", None, 0.0),
    ("am", ("mode", "dsb"), 0.02),
    ("am", ("mode", "dsb_sc"), 0.05),
    ("am", ("mode", "ssb"), 0.03),
    ("fm", None, 0.1),
    ("fsk", None, 0.05),
    ("ask", ("mode", "ook"), 0.04),
    ("ask", ("mode", "ask"), 0.2),
    ("ask", ("mode", "ook_rect"), 0.05),
    ("ask", ("mode", "pulsed"), 0.3),
    ("single_carrier", None, 0.01),
    ("single_carrier", None, 0.25),
    ("single_carrier", None, 0.7),
    ("ofdm", None, 0.02),
    ("ofdm", None, 0.4),
    ("chirp", ("mode", "up"), 0.3),
    ("chirp", ("mode", "lora"), 0.1),
]


def forced_emitter(family, force, bw, fc, seed):
    """A random emitter of the family, redrawn until its variant matches `force`."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        em = make_emitter(family, fc, bw, 30.0, rng, n_hint=N // 8)
        if force is None or em.params.get(force[0]) == force[1]:
            return em, rng
    raise AssertionError(f"could not draw {family} with {force}")


@pytest.mark.parametrize("family,force,bw", CASES)
def test_occupied_band_and_centre_match_parameters(family, force, bw):
    fc = 0.11 if bw < 0.5 else 0.02
    em, rng = forced_emitter(family, force, bw, fc, seed=int(bw * 1000) + len(family))
    x = generate(em, N, rng)
    if em.variant == "dsb" or family == "ask":  # carrier line: the band is that of the modulation around it
        lo_osc = np.exp(2j * np.pi * em.fc * np.arange(N))
        x = x - np.mean(x / lo_osc) * lo_osc
    p = mean_psd(x)
    # Hard-keyed OOK is specified by its main lobe, which holds 90 % of the power (sinc^2 skirts).
    fraction = 0.90 if em.params.get("mode") == "ook_rect" else 0.99
    lo, hi, centroid = power_band(p, fraction)
    measured = hi - lo
    nominal = em.bandwidth
    tol_bins = 4 / NFFT  # Hann main lobe and bin quantisation
    if em.variant == "ssb":  # fc is the sideband's centre; its power crowds toward the suppressed carrier
        carrier = em.fc - em.params["sideband"] * nominal / 2
        assert 0 < (centroid - em.fc) / (carrier - em.fc) < 0.9, (em.params, centroid, em.fc)
    else:
        assert abs(centroid - em.fc) < max(0.06 * nominal, 1.5 / NFFT), (em.variant, centroid, em.fc)
    if family == "tone":
        assert measured <= tol_bins + 1 / NFFT, measured
        return
    assert abs(measured - nominal) < 0.2 * nominal + tol_bins, (em.variant, em.params, measured, nominal)
    # The nominal band is where the power is: at least `fraction` - 2 % of it falls inside.
    f = (np.arange(NFFT) - NFFT / 2) / NFFT
    inside = (f >= em.band[0] - 2 / NFFT) & (f <= em.band[1] + 2 / NFFT)
    assert p[inside].sum() / p.sum() > fraction - 0.03


@pytest.mark.parametrize("mode", ["dsb_sc", "ssb"])
def test_am_messages_fall_away_from_the_carrier_like_speech(mode):
    """A white message made AM a flat band, the same in one spectrum as a noise jammer or OFDM."""
    em, rng = forced_emitter("am", ("mode", mode), 0.06, 0.0, seed=5)
    p = mean_psd(generate(em, N, rng))
    f = (np.arange(NFFT) - NFFT / 2) / NFFT
    carrier = em.fc - em.params.get("sideband", 0) * em.bandwidth / 2
    offset = np.abs(f - carrier) / (em.params["fm"])  # audio frequency over the message bandwidth
    near, far = p[(offset > 0.05) & (offset < 0.25)].mean(), p[(offset > 0.75) & (offset < 0.95)].mean()
    corner = em.params["corner"]
    expected = 10 * np.log10((1 + (0.85 / corner) ** 2) / (1 + (0.15 / corner) ** 2))
    assert 10 * np.log10(near / far) == pytest.approx(expected, abs=1.5), em.params


def test_every_family_is_covered():
    assert {c[0] for c in CASES} == set(EMITTER_FAMILIES)


def test_unknown_family_is_rejected():
    with pytest.raises(ValueError, match="unknown family 'qpsk'"):
        random_params("qpsk", 0.1, np.random.default_rng(0))


def clean_scene(emitters):
    """A scene through an ideal receiver (no impairments), floor at -70 dBFS/bin."""
    rx = Receiver(floor_db=-70.0)
    return Scene("other", Plan("other", "free"), emitters, rx, min_bw=1 / NFFT)


@pytest.mark.parametrize("family,bw,snr", [("single_carrier", 0.2, 10.0), ("fsk", 0.05, 0.0),
                                           ("ofdm", 0.3, 20.0), ("tone", 0.0, 15.0), ("am", 0.02, 5.0)])
def test_labelled_snr_is_measured_snr(family, bw, snr):
    """SNR = emitter power / noise power in its nominal band (one bin for a tone), within 1 dB."""
    rng = np.random.default_rng(7)
    em = make_emitter(family, -0.1, bw, snr, rng, n_hint=N // 8)
    iq = render(clean_scene([em]), N, rng, NFFT)
    p = mean_psd(iq)
    f = (np.arange(NFFT) - NFFT / 2) / NFFT
    far = np.abs(f - em.fc) > max(em.bandwidth, 0.02) + 0.02
    floor = np.median(p[far])  # noise per bin = N0 * ENBW / nfft
    assert 10 * np.log10(floor) == pytest.approx(-70.0, abs=0.3)
    near = np.abs(f - em.fc) <= em.bandwidth / 2 + 6 / NFFT
    signal = np.sum(p[near] - floor)  # = P * ENBW
    n0 = floor * NFFT / ENBW_HANN
    measured = 10 * np.log10(signal / ENBW_HANN / (n0 * max(em.bandwidth, 1 / NFFT)))
    assert measured == pytest.approx(snr, abs=1.0)


def test_bursts_are_silent_outside_their_time():
    rng = np.random.default_rng(3)
    em = make_emitter("fsk", 0.1, 0.05, 20, rng, start=1000, stop=3000)
    x = generate(em, 5000, rng)
    assert np.all(x[:1000] == 0) and np.all(x[3000:] == 0)
    assert np.mean(np.abs(x[1000:3000]) ** 2) == pytest.approx(1.0, rel=1e-6)  # unit power while on


def test_a_hoppers_snr_is_that_of_one_hop():
    """docs/synth.md: a frequency hopper's SNR uses one hop's bandwidth, not the span of all its hops (its
    `bandwidth`); rendering it over the span made a 16 dB-per-hop hopper 23 dB louder than labelled (audit 66)."""
    from gnuradio.specenc.synth.anomalies import inject
    from gnuradio.specenc.synth.scene import amplitude, snr_bandwidth

    emitters, _, _ = inject("hopping", Plan("ism", "free"), [], np.random.default_rng(0), 4096, 1 / NFFT)
    (hopper,) = [e for e in emitters if e.role == "hopping"]
    hop_bw = hopper.params["hop_bw"]
    assert hopper.bandwidth > 100 * hop_bw  # the span of its hops
    assert snr_bandwidth(hopper, 1 / NFFT) == hop_bw
    assert amplitude(hopper, 1 / NFFT) ** 2 == pytest.approx(10 ** (hopper.snr_db / 10) * hop_bw, rel=1e-12)
