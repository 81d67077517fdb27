"""dsp.power_spectrum (NumPy): framing, normalisation, averaging, bin edges and errors, without GNU Radio."""

import numpy as np
import pytest

from gnuradio.specenc import dsp


def test_counts_and_hop():
    assert dsp.hop_size(1024, 0.5) == 512 and dsp.hop_size(1024, 0.0) == 1024 and dsp.hop_size(1024, 0.9) == 102
    assert dsp.num_spectra(1023) == 0 and dsp.num_spectra(1024) == 1 and dsp.num_spectra(1024 + 511) == 1
    assert dsp.num_spectra(10 * 512 + 512, 1024, 0.5, 2) == 5  # 10 frames -> 5 spectra
    x = np.zeros(10_000, np.complex64)
    assert dsp.power_spectrum(x, 256, 0.25, average=3).shape == (dsp.num_spectra(10_000, 256, 0.25, 3), 256)
    assert dsp.power_spectrum(x[:100], 256).shape == (0, 256)


def test_matches_direct_welch_loop():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(5000) + 1j * rng.standard_normal(5000)).astype(np.complex64)
    nfft, hop, k = 128, 96, 3  # overlap 0.25
    w = np.hanning(nfft + 1)[:-1]  # periodic Hann
    frames = [x[i:i + nfft] for i in range(0, len(x) - nfft + 1, hop)]
    power = [np.abs(np.fft.fft(f * w)) ** 2 / w.sum() ** 2 for f in frames]
    ref = [np.fft.fftshift(np.mean(power[j * k:(j + 1) * k], axis=0)) for j in range(len(power) // k)]
    out = dsp.power_spectrum(x, nfft, 0.25, "hann", k)
    np.testing.assert_allclose(out, 10 * np.log10(ref), atol=1e-4)
    np.testing.assert_allclose(dsp.power_spectrum(x, nfft, 0.25, "hann", k, db=False), ref, rtol=1e-5)


@pytest.mark.parametrize("window", dsp.WINDOWS)
def test_full_scale_tone_reads_zero_db_in_its_bin(window):
    nfft = 512
    x = np.exp(2j * np.pi * (-100 / nfft) * np.arange(8 * nfft))  # -100 bins from the centre
    out = dsp.power_spectrum(x, nfft, 0.5, window)
    assert np.all(np.argmax(out, axis=1) == nfft // 2 - 100)
    np.testing.assert_allclose(out[:, nfft // 2 - 100], 0.0, atol=1e-4)


def test_windows_are_periodic_with_known_sums():
    for name, mean in [("hann", 0.5), ("hamming", 0.54), ("blackmanharris", 0.35875), ("rectangular", 1.0)]:
        w = dsp.window(name, 1024)
        assert w.mean() == pytest.approx(mean, abs=1e-12)
        assert w[1] == pytest.approx(w[-1])  # periodic: symmetric about n = nfft/2, w[nfft] not stored


def test_nan_makes_only_its_spectra_non_finite():
    x = np.ones(4096, np.complex64)
    x[100] = np.nan
    out = dsp.power_spectrum(x, 256, 0.5)
    assert np.isnan(out[0]).all() and np.isfinite(out[1:]).all()


def test_bin_edges_follow_fftshift_layout():
    lo, hi = dsp.bin_edges_hz(512, 513, 1024, 1.024e6, 100e6)
    assert (lo, hi) == (100e6 - 500.0, 100e6 + 500.0)  # bin nfft/2 is centred on the centre frequency
    # Bin 0 lies on the band's lower end: its edge stops there, where an alert the model does not place starts
    # (its half bin below made edges at 2.44 GHz / 20 MS/s 9.8 kHz outside the band: audit 70).
    assert dsp.bin_edges_hz(0, 1024, 1024, 1.024e6, 0.0) == (-512e3, 511.5e3)
    assert dsp.bin_edges_hz(0, 10, 1024, 20e6, 2.44e9)[0] == 2.44e9 - 10e6
    assert dsp.bin_edges_hz(1, 10, 1024, 1.024e6, 0.0)[0] == -511.5e3


def test_tone_lies_inside_the_edges_of_its_bin():
    rate, nfft, f = 1.024e6, 1024, 123_400.0
    x = np.exp(2j * np.pi * f / rate * np.arange(8 * nfft))
    peak = int(dsp.power_spectrum(x, nfft)[0].argmax())
    lo, hi = dsp.bin_edges_hz(peak, peak + 1, nfft, rate, 0.0)
    assert lo <= f < hi


@pytest.mark.parametrize("kwargs,match", [
    (dict(nfft=100), "nfft=100 must be a power of two in 64..65536"),
    (dict(nfft=131072), "nfft=131072"),
    (dict(overlap=0.95), "overlap=0.95 must be in 0..0.9"),
    (dict(average=0), "average=0 must be a whole number in 1.."),
    (dict(nfft=1024.0), "nfft=1024.0 must be a whole number$"),  # not "a power of two" (audit 55)
    (dict(average=2.5), "average=2.5 must be a whole number in 1.."),
    (dict(window="kaiser"), "unknown window 'kaiser'"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dsp.power_spectrum(np.zeros(4096, np.complex64), **kwargs)
    with pytest.raises(ValueError, match="one-dimensional"):
        dsp.power_spectrum(np.zeros((2, 4096), np.complex64))


def test_spectra_computed_in_steps_equal_those_computed_at_once(monkeypatch):
    """Long inputs are windowed and transformed a few frames at a time (all at once took ~86 bytes per sample)."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(20_000) + 1j * rng.standard_normal(20_000)).astype(np.complex64)
    whole = dsp.power_spectrum(x, 256, 0.5, average=3)
    monkeypatch.setattr(dsp, "CHUNK_FRAMES", 256 * 3 * 2)  # two spectra per step, and a shorter last step
    stepped = dsp.power_spectrum(x, 256, 0.5, average=3)
    assert len(whole) == dsp.num_spectra(20_000, 256, 0.5, 3) == 51
    np.testing.assert_array_equal(stepped, whole)
