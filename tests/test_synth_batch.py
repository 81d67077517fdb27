"""make_batch: the training contract (shapes, dtypes, label rules), determinism, labels that match the spectra."""

import subprocess
import sys
import time

import numpy as np
import pytest

from gnuradio.specenc import bands, labels
from gnuradio.specenc.synth import Batch, band_plans, make_batch, scene
from gnuradio.specenc.synth import batch as synth_batch
from gnuradio.specenc.synth.anomalies import KINDS_BY_BAND, Anomaly
from gnuradio.specenc.synth.emitters import make_emitter


@pytest.fixture(scope="module")
def batch():
    return make_batch(np.random.default_rng(11), batch_size=96)


def test_contract_shapes_and_dtypes(batch):
    b, nfft = 96, 1024
    expect = {
        "spectra": ((b, nfft), np.float32), "family": ((b,), np.int64), "bin_family": ((b, nfft), np.int64),
        "bin_snr": ((b, nfft), np.float32), "anomaly": ((b,), np.float32), "anomaly_kind": ((b,), np.int64), "anomaly_bins": ((b, nfft), np.bool_),
        "band": ((b,), np.int64), "center_freq": ((b,), np.float64), "sample_rate": ((b,), np.float64),
        "snr_db": ((b,), np.float32), "dominant_bins": ((b,), np.float32),
    }
    for name, (shape, dtype) in expect.items():
        arr = getattr(batch, name)
        assert arr.shape == shape and arr.dtype == dtype, (name, arr.shape, arr.dtype)
    assert isinstance(batch, Batch) and len(batch) == b
    assert np.all(np.isfinite(batch.spectra))


def test_label_ranges_and_consistency(batch):
    assert batch.family.min() >= 0 and batch.family.max() < len(labels.FAMILIES)
    assert batch.bin_family.min() >= 0 and batch.bin_family.max() < len(labels.FAMILIES)
    assert set(np.unique(batch.anomaly)) <= {0.0, 1.0}
    anomalous = batch.anomaly == 1
    assert np.all(batch.anomaly_kind[~anomalous] == -1)
    assert np.all((batch.anomaly_kind[anomalous] >= 0) & (batch.anomaly_kind[anomalous] < len(labels.ANOMALY_KINDS)))
    assert not batch.anomaly_bins[~anomalous].any()
    assert batch.anomaly_bins[anomalous].any(axis=1).all()  # every anomaly says where it is
    assert set(batch.band) <= set(bands.BAND_INDEX.values())
    for i in range(len(batch)):
        band = bands.BANDS[batch.band[i]]
        assert bands.band_for_frequency(batch.center_freq[i]) == band
    assert np.all(batch.sample_rate > 0)
    # The spectrum's family is one of the families present in its bins (or noise).
    for i in np.flatnonzero(batch.family > 0):
        assert batch.family[i] in batch.bin_family[i]
    # Noise-only rows without any emitter have no SNR; rows with a visible emitter have one.
    assert np.all(np.isfinite(batch.snr_db[batch.family > 0]))
    # The labelling emitter's width: at least one bin (a tone); 0 only without a visible emitter (noise;
    # a noise jammer is a visible emitter of family noise), and never wider than the band.
    labelled = batch.family > 0
    assert np.all(batch.dominant_bins[labelled] >= 1.0) and np.all(batch.family[batch.dominant_bins == 0] == 0)
    assert (batch.dominant_bins == 0).any()
    for i in np.flatnonzero(labelled):
        assert batch.dominant_bins[i] <= 1024 and (batch.bin_family[i] == batch.family[i]).sum() >= 1
    assert np.all(batch.dominant_bins[batch.family == labels.FAMILY_INDEX["tone"]] == 1.0)
    # Every bin a visible emitter labels carries that emitter's SNR (>= the visibility limit); others none.
    # (A noise jammer labels its bins as noise, 0, and still has an SNR.)
    occupied = batch.bin_family > 0
    assert np.all(np.isfinite(batch.bin_snr[occupied])) and np.all(batch.bin_snr[occupied] >= -3.0)
    assert np.all(batch.bin_family[np.isnan(batch.bin_snr)] == 0) and np.isnan(batch.bin_snr).any()
    # The dominant emitter's bins carry the spectrum's SNR.
    for i in np.flatnonzero(labelled):
        assert np.isclose(batch.bin_snr[i][batch.bin_family[i] == batch.family[i]], batch.snr_db[i]).any()


def test_mix_of_families_bands_and_kinds():
    b = make_batch(np.random.default_rng(5), batch_size=256)
    assert len(set(b.family)) == len(labels.FAMILIES)
    assert len(set(b.band)) == len(bands.BANDS)
    assert len(set(b.anomaly_kind[b.anomaly == 1])) == len(labels.ANOMALY_KINDS)
    assert 0.35 < b.anomaly.mean() < 0.65  # anomaly_fraction=0.5


def test_anomaly_fraction_and_band_selection():
    b = make_batch(np.random.default_rng(1), batch_size=32, anomaly_fraction=0.0, bands=["gnss"])
    assert not b.anomaly.any() and np.all(b.band == bands.BAND_INDEX["gnss"])
    b = make_batch(np.random.default_rng(1), batch_size=16, anomaly_fraction=1.0, bands=["cellular"], nfft=256)
    assert b.anomaly.all() and b.spectra.shape == (16, 256)


def test_band_weights_shift_the_band_mix():
    only_gnss = {"ism": 0, "cellular": 0, "aero": 0, "other": 0}
    b = make_batch(np.random.default_rng(2), batch_size=16, anomaly_fraction=0.0, nfft=256, band_weights=only_gnss)
    assert np.all(b.band == bands.BAND_INDEX["gnss"])
    # ism at weight 4 against four bands at 1: half the rows on average, a fifth without weights
    b = make_batch(np.random.default_rng(3), batch_size=96, anomaly_fraction=0.0, nfft=256, band_weights={"ism": 4})
    assert 0.35 < np.mean(b.band == bands.BAND_INDEX["ism"]) < 0.65
    # A band weighted 0 gives no rows, anomalous ones neither: its kinds were drawn there, so every row of such a
    # band was an anomaly, and a model could learn "this band means anomaly" (audit 40).
    b = make_batch(np.random.default_rng(4), batch_size=8, anomaly_fraction=1.0, nfft=256, band_weights=only_gnss)
    assert np.all(b.band == bands.BAND_INDEX["gnss"]) and b.anomaly.sum() >= 4
    gnss_kinds = {labels.ANOMALY_INDEX[k] for k in KINDS_BY_BAND["gnss"]}
    assert set(b.anomaly_kind[b.anomaly > 0.5].tolist()) <= gnss_kinds


def test_deterministic_with_seed():
    a = make_batch(np.random.default_rng(42), batch_size=8)
    b = make_batch(np.random.default_rng(42), batch_size=8)
    c = make_batch(np.random.default_rng(43), batch_size=8)
    for name in ("spectra", "family", "bin_family", "anomaly_bins", "center_freq"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.spectra, c.spectra)


def test_labelled_bins_stand_above_the_floor(batch):
    """Where a strong emitter is labelled, the spectrum is well above the unlabelled floor."""
    hits = total = 0
    for i in range(len(batch)):
        if batch.family[i] == 0 or batch.snr_db[i] < 20:
            continue
        occupied = batch.bin_family[i] == batch.family[i]
        free = batch.bin_family[i] == 0
        if occupied.sum() < 3 or free.sum() < 50:
            continue
        total += 1
        hits += np.max(batch.spectra[i][occupied]) > np.median(batch.spectra[i][free]) + 10
    assert total >= 10 and hits / total > 0.9, (hits, total)


def test_bad_arguments_are_rejected():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="batch_size=0"):
        make_batch(rng, batch_size=0)
    with pytest.raises(ValueError, match="anomaly_fraction=1.5"):
        make_batch(rng, anomaly_fraction=1.5)
    with pytest.raises(ValueError, match="unknown band 'vhf'"):
        make_batch(rng, bands=["vhf"])
    with pytest.raises(ValueError, match="unknown band 'vhf'"):
        make_batch(rng, band_weights={"vhf": 2})
    with pytest.raises(ValueError, match="must be >= 0"):
        make_batch(rng, band_weights={"ism": -1})
    with pytest.raises(ValueError, match="must be >= 0"):
        make_batch(rng, bands=["ism"], band_weights={"ism": 0})
    with pytest.raises(ValueError, match="nfft=1000"):
        make_batch(rng, nfft=1000)


def test_batch_generation_time_is_reported():
    """Prints the figure (never asserts timings): one batch of 64 x 1024 on this machine."""
    rng = np.random.default_rng(0)
    make_batch(rng, 8)
    t = time.perf_counter()
    for _ in range(3):
        make_batch(rng, 64)
    print(f"\nmake_batch(64, nfft=1024): {(time.perf_counter() - t) / 3 * 1e3:.0f} ms per batch")


def test_generator_imports_no_gnuradio_runtime():
    code = ("import sys, gnuradio.specenc.synth, gnuradio.specenc.synth.cli, gnuradio.specenc.synth.plot; "
            "bad = [m for m in sys.modules if m.startswith(('gnuradio.gr', 'pmt'))]; print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def one_spectrum_labels(emitters, anomaly=None, nfft=1024):
    """label_spectrum of one K=1 spectrum of `emitters` in band "other" -> its 7-tuple (the receiver plays no part)."""
    sc = scene.Scene("other", band_plans.Plan("other", "free"), emitters,
                     scene.random_receiver(np.random.default_rng(0)), min_bw=1 / nfft, anomaly=anomaly)
    return synth_batch.label_spectrum(sc, nfft, 1)


def test_family_is_the_visible_emitter_of_highest_snr_times_bandwidth():
    """A 10 dB OFDM over 0.3 of the band outweighs a 30 dB tone (10 dB + 24.9 dB of bandwidth against 30 dB + one
    bin); taking the highest SNR alone made it a tone row (audit 66). The tone still labels its 3 bins."""
    rng = np.random.default_rng(1)
    wide, tone = make_emitter("ofdm", -0.2, 0.3, 10.0, rng), make_emitter("tone", 0.2, 0.0, 30.0, rng)
    family, snr, _, bin_family, _, _, _ = one_spectrum_labels([wide, tone])
    assert (labels.FAMILIES[family], snr) == ("ofdm", pytest.approx(10.0, abs=0.01))
    assert np.flatnonzero(bin_family == labels.FAMILY_INDEX["tone"]).tolist() == [716, 717, 718]


def test_a_tone_labels_the_bin_of_its_centre_and_its_neighbours():
    """A tone (B = 0) labels 3 bins (docs/synth.md: "labelled as 3 bins"); min_bins=1 labelled one (audit 66)."""
    tone = make_emitter("tone", 0.2, 0.0, 30.0, np.random.default_rng(1))  # 0.2 * 1024 + 512 = bin 716.8
    family, snr, width, bin_family, bin_snr, _, _ = one_spectrum_labels([tone])
    assert (labels.FAMILIES[family], width) == ("tone", 1.0)
    assert np.flatnonzero(bin_family).tolist() == [716, 717, 718]
    assert np.flatnonzero(np.isfinite(bin_snr)).tolist() == [716, 717, 718]


def test_bin_range_takes_the_bins_whose_centre_half_bin_holds_each_edge():
    """Bin i covers (i - nfft/2 - 0.5 .. i - nfft/2 + 0.5) / nfft: an edge 0.49 bin below a centre is in that bin,
    0.51 below in the one under it. Without the lower edge's +0.5 every band gained a bin on its low side
    (audit 66)."""
    nfft = 1024
    assert synth_batch.bin_range(-0.0004, 0.0004, nfft) == (512, 513)  # a tone within half a bin of the centre
    assert synth_batch.bin_range(-0.49 / nfft, 0.49 / nfft, nfft) == (512, 513)
    assert synth_batch.bin_range(-0.51 / nfft, 0.51 / nfft, nfft) == (511, 514)
    assert synth_batch.bin_range(10.49 / nfft, 12.51 / nfft, nfft) == (522, 526)
    assert synth_batch.bin_range(0.0, 0.0, nfft, min_bins=3) == (511, 514)
    assert synth_batch.bin_range(-0.6, 0.6, nfft) == (0, nfft)


def hopper(snr_db, dwell, seed=3):
    """An FSK hopper of 4-bin hops over five frequencies, `dwell` samples per hop, from sample 0."""
    h = make_emitter("fsk", 0.0, 4 / 1024, snr_db, np.random.default_rng(seed), role="hopping")
    h.params.update(hop_freqs=[-0.3, -0.1, 0.1, 0.3, 0.35], dwell=dwell, hop_bw=h.bandwidth)
    return h, Anomaly("hopping", -0.3, 0.35, 0, 1024, snr_db)


def test_a_hopping_anomaly_shows_only_with_three_visible_hops():
    """MIN_VISIBLE_HOPS = 3: a spectrum that catches one or two hops of a hopper does not show the hopping (one
    hop is an ordinary narrow burst); with 1 such rows were labelled hopping anomalies (audit 66)."""
    for dwell, shown in ((900, 1), (512, 2), (340, 3)):  # hops of >= 0 dB in a 1024-sample K=1 spectrum
        h, an = hopper(25.0, dwell)
        *_, anomaly_bins, visible = one_spectrum_labels([h], an)
        assert anomaly_bins.sum() == 5 * shown, dwell  # 4-bin hops label 5 bins each here
        assert visible == (shown >= 3), dwell


def test_hops_below_0_db_in_the_spectrum_are_labelled_but_are_no_anomaly_bins():
    """Each hop shows at 1.5 dB + 10 log10(~0.5) = -1.5 dB: visible (>= -3 dB, so its bins take its family) but
    under ANOMALY_SNR_DB, so not part of the anomaly's extent; anomaly bins were given to them (audit 66)."""
    h, an = hopper(1.5, 512)
    _, _, _, bin_family, _, anomaly_bins, visible = one_spectrum_labels([h], an)
    assert (bin_family == labels.FAMILY_INDEX["fsk"]).sum() == 10
    assert anomaly_bins.sum() == 0 and not visible
