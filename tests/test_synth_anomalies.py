"""Each ghost anomaly changes the scene the way its definition (docs/synth.md) says, visibly in the PSD."""

import copy

import numpy as np
import pytest

from gnuradio.specenc import dsp, labels
from gnuradio.specenc.synth.anomalies import KINDS_BY_BAND, inject
from gnuradio.specenc.synth.band_plans import Plan, normal_scene
from gnuradio.specenc.synth.batch import bin_range
from gnuradio.specenc.synth.impairments import Receiver
from gnuradio.specenc.synth.scene import Scene, render

NFFT = 1024
N = NFFT * 24


def scene_pair(band, kind, seed, n=N):
    """(normal Scene, anomalous Scene, Anomaly) sharing the same normal emitters, ideal receiver."""
    rng = np.random.default_rng(seed)
    for _ in range(50):
        plan, ems = normal_scene(band, rng, n, 1 / NFFT)
        try:
            new, an, notch = inject(kind, plan, copy.deepcopy(ems), rng, n, 1 / NFFT)
        except ValueError:
            continue
        rx = Receiver(floor_db=-70.0)
        normal = Scene(band, plan, ems, rx, min_bw=1 / NFFT)
        odd = Scene(band, plan, new, copy.deepcopy(rx), anomaly=an, notches=[notch] if notch else [],
                    min_bw=1 / NFFT)
        return normal, odd, an
    raise AssertionError(f"no {kind} scene in {band}")


def psd_db(sc, seed, n=N, average=None):
    iq = render(sc, n, np.random.default_rng(seed), NFFT)
    frames = dsp.num_spectra(n, NFFT, 0.5, 1)
    return dsp.power_spectrum(iq, NFFT, 0.5, "hann", average or frames)[0]


def band_bins(an):
    return slice(*bin_range(an.f_lo, an.f_hi, NFFT, 3))


def test_every_band_admits_its_kinds():
    for band, kinds in KINDS_BY_BAND.items():
        assert set(kinds) <= set(labels.ANOMALY_KINDS), band
    assert set().union(*KINDS_BY_BAND.values()) == set(labels.ANOMALY_KINDS)


@pytest.mark.parametrize("band,seed", [("ism", 1), ("cellular", 2), ("gnss", 3)])
def test_jamming_raises_the_floor_over_a_wide_band(band, seed):
    normal, odd, an = scene_pair(band, "jamming", seed)
    assert an.f_hi - an.f_lo >= 0.35
    rise = np.median(psd_db(odd, 9)[band_bins(an)]) - np.median(psd_db(normal, 9)[band_bins(an)])
    assert rise > 3.0, rise


@pytest.mark.parametrize("band,seed", [("cellular", 4), ("gnss", 5), ("ism", 6), ("aero", 7)])
def test_band_erasure_removes_power_from_its_band(band, seed):
    normal, odd, an = scene_pair(band, "band_erasure", seed)
    drop = np.median(psd_db(normal, 9)[band_bins(an)]) - np.median(psd_db(odd, 9)[band_bins(an)])
    assert drop > 3.0, (drop, an)


def test_band_erasure_can_remove_an_expected_channel():
    for seed in range(40):
        normal, odd, an = scene_pair("cellular", "band_erasure", seed)
        if "missing_channel" in an.params:
            break
    else:
        raise AssertionError("no missing-channel erasure drawn")
    assert len(odd.emitters) == len(normal.emitters) - 1
    assert an.params["missing_channel"] not in [e.params.get("channel") for e in odd.emitters]


@pytest.mark.parametrize("band,seed", [("cellular", 8), ("aero", 9), ("cellular", 10)])
def test_frequency_shift_moves_an_emitter_off_its_raster(band, seed):
    normal, odd, an = scene_pair(band, "frequency_shift", seed)
    moved = [e for e in odd.emitters if e.role == "frequency_shift"]
    assert len(moved) == 1
    plan = normal.plan
    centre = (an.f_lo + an.f_hi) / 2
    step = plan.spacing if plan.spacing > 0 else 0.1
    off_raster = min(abs(centre - c) for c, _ in plan.channels)
    assert off_raster >= 0.29 * step, (off_raster, step)
    # The PSD's new power sits in the anomaly band: the increase peaks there.
    gain = psd_db(odd, 9) - psd_db(normal, 9)
    lo, hi = bin_range(an.f_lo, an.f_hi, NFFT, 3)
    assert lo - 2 <= int(np.argmax(np.convolve(gain, np.ones(5) / 5, "same"))) <= hi + 2


@pytest.mark.parametrize("band,seed", [("cellular", 11), ("aero", 12)])
def test_spoofing_overpowers_a_legitimate_emitter(band, seed):
    normal, odd, an = scene_pair(band, "spoofing", seed)
    assert an.params["boost_db"] >= 12
    rise = np.mean(psd_db(odd, 9)[band_bins(an)]) - np.mean(psd_db(normal, 9)[band_bins(an)])
    assert rise > 8.0, rise


def test_gnss_spoofing_stands_above_a_floor_that_normally_hides_gnss():
    normal, odd, an = scene_pair("gnss", "spoofing", 13)
    base, spoofed = psd_db(normal, 9), psd_db(odd, 9)
    floor = np.median(base)
    assert np.max(base[band_bins(an)]) - floor < 2.0  # real GNSS is below the floor
    assert np.median(spoofed[band_bins(an)]) - floor > 3.0


@pytest.mark.parametrize("band,seed", [("cellular", 14), ("gnss", 15), ("aero", 16)])
def test_stealth_is_weak_narrow_and_where_nothing_belongs(band, seed):
    normal, odd, an = scene_pair(band, "stealth", seed)
    assert (an.f_hi - an.f_lo) * NFFT <= 8.5
    for e in normal.emitters:
        lo, hi = e.band
        assert hi < an.f_lo or lo > an.f_hi, "stealth emission overlaps a normal emitter"
    base, odd_psd = psd_db(normal, 9), psd_db(odd, 9)
    lift = np.max(odd_psd[band_bins(an)]) - np.median(base[band_bins(an)])
    assert 2.0 < lift < 25.0, lift


@pytest.mark.parametrize("band,seed", [("ism", 17), ("cellular", 18), ("other", 19)])
def test_hopping_shows_several_narrow_bursts_in_one_spectrum(band, seed):
    n = NFFT + 3 * NFFT // 2  # one spectrum with K=4
    normal, odd, an = scene_pair(band, "hopping", seed, n=n)
    hopper = [e for e in odd.emitters if e.role == "hopping"][0]
    centres, bw = hopper.params["hop_freqs"], hopper.params["hop_bw"]
    assert len(centres) >= 5 and bw * NFFT <= 12
    assert max(centres) - min(centres) > 0.2
    spec = psd_db(odd, 9, n=n, average=4)
    base = psd_db(normal, 9, n=n, average=4)
    visible = sum(np.max(spec[slice(*bin_range(c - bw / 2, c + bw / 2, NFFT, 3))])
                  > np.median(base) + 6 for c in centres)
    assert visible >= 4, visible


def test_a_sweep_jammer_has_the_bandwidth_of_its_sweep():
    """It kept the bandwidth of the chirp drawn before it became a sweep (a LoRa draw: up to 130 bins too wide,
    and its spreading factor) (audit 37)."""
    from gnuradio.specenc.synth.emitters import occupied_bandwidth

    seen = 0
    for seed in range(200):
        emitters, an, _ = inject("jamming", Plan("ism", "free"), [], np.random.default_rng(seed), 4096, 1 / 1024)
        (jammer,) = [e for e in emitters if e.role == "jamming"]
        if jammer.variant == "sweep":
            seen += 1
            assert "sf" not in jammer.params
            assert jammer.bandwidth == pytest.approx(occupied_bandwidth("chirp", jammer.params))
            assert (an.f_lo, an.f_hi) == pytest.approx(jammer.band)
    assert seen > 20


def test_spoofing_sets_the_channel_12_to_25_db_over_its_strongest_neighbour():
    """docs/synth.md: a spoofed raster emitter is 12-25 dB above its STRONGEST neighbour's SNR; boosted over the
    weakest one, some "spoofing" channels stood below a neighbour (audit 66)."""
    gaps = []
    for band in ("cellular", "aero"):
        for seed in range(30):
            rng = np.random.default_rng(seed)
            plan, ems = normal_scene(band, rng, N, 1 / NFFT)
            try:
                new, an, _ = inject("spoofing", plan, ems, rng, N, 1 / NFFT)
            except ValueError:  # fewer than two channels on the raster
                continue
            (spoofed,) = [e for e in new if e.role == "spoofing"]
            neighbours = [e.snr_db for e in new if e is not spoofed and "channel" in e.params]
            gaps.append(spoofed.snr_db - max(neighbours))
            assert gaps[-1] == pytest.approx(an.params["boost_db"]) and an.strength_db == spoofed.snr_db
    assert len(gaps) >= 20 and 12.0 <= min(gaps) and max(gaps) <= 25.0


def test_a_stealth_gap_is_away_from_dc():
    """_free_gap's centre keeps its width + 0.004 of the band clear of DC (where the receiver's LO leaks and the
    docs say no stealth emission goes); without the guard 2 % of draws sat on DC (audit 66)."""
    from gnuradio.specenc.synth.anomalies import _free_gap

    for seed in range(1000):
        rng = np.random.default_rng(seed)
        width = rng.uniform(1.5, 8) / NFFT
        c = _free_gap(rng, [], width)
        assert abs(c) > width + 0.004, (seed, c)
