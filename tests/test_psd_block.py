"""specenc.psd (C++) against dsp.power_spectrum and a scipy.signal STFT (Welch) reference; physics; errors."""

import numpy as np
import pytest
import scipy.signal
from gnuradio import blocks, gr

from gnuradio.specenc import dsp

# (nfft, overlap, window, average)
SETTINGS = [
    (64, 0.0, "rectangular", 1),
    (256, 0.75, "hamming", 3),
    (1024, 0.5, "hann", 1),
    (1024, 0.5, "hann", 4),
    (2048, 0.9, "blackmanharris", 2),
    (128, 0.3, "hann", 5),  # hop = 128 - round(38.4) = 90
    (16384, 0.75, "hann", 1),  # FFTW_ESTIMATE plan above 8192
]


def run_psd(x, nfft=1024, overlap=0.5, window="hann", average=1, db=True, sample_rate=0.0, tags=()):
    from gnuradio import specenc

    tb = gr.top_block()
    src = blocks.vector_source_c(np.asarray(x, np.complex64), False, 1, list(tags))
    block = specenc.psd(nfft=nfft, overlap=overlap, window=window, average=average, db=db,
                        sample_rate=sample_rate)
    sink = blocks.vector_sink_f(nfft)
    tb.connect(src, block, sink)
    tb.run()
    return np.array(sink.data(), np.float32).reshape(-1, nfft), sink.tags(), block


def welch_reference(x, nfft, overlap, window, average):
    """scipy.signal STFT, scaled |X|^2/(sum w)^2, grouped K frames, fftshifted, dB."""
    hop = nfft - int(round(overlap * nfft))
    win = scipy.signal.get_window("boxcar" if window == "rectangular" else window, nfft, fftbins=True)
    _, _, z = scipy.signal.stft(x.astype(np.complex128), window=win, nperseg=nfft, noverlap=nfft - hop,
                                boundary=None, padded=False, return_onesided=False, detrend=False,
                                scaling="spectrum")  # scaling="spectrum": X / sum(w)
    power = (np.abs(z) ** 2).T  # (frames, nfft)
    count = power.shape[0] // average
    power = power[: count * average].reshape(count, average, nfft).mean(axis=1)
    return 10 * np.log10(np.maximum(np.fft.fftshift(power, axes=-1), 1e-20))


@pytest.fixture(scope="module")
def noise():
    rng = np.random.default_rng(7)
    return ((rng.standard_normal(60000) + 1j * rng.standard_normal(60000)) * 0.3).astype(np.complex64)


@pytest.mark.parametrize("nfft,overlap,window,average", SETTINGS)
def test_block_equals_numpy_and_scipy_welch(specenc_cpp, noise, nfft, overlap, window, average):
    out, _, block = run_psd(noise, nfft, overlap, window, average)
    ref = dsp.power_spectrum(noise, nfft, overlap, window, average)
    assert out.shape == ref.shape == (dsp.num_spectra(len(noise), nfft, overlap, average), nfft)
    assert out.shape[0] >= 5
    assert block.hop() == dsp.hop_size(nfft, overlap) and block.decimation() == block.hop() * average
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)
    np.testing.assert_allclose(out, welch_reference(noise, nfft, overlap, window, average), atol=1e-4, rtol=0)


def test_linear_output_equals_numpy(specenc_cpp, noise):
    out, _, _ = run_psd(noise, 512, 0.5, "hann", 2, db=False)
    ref = dsp.power_spectrum(noise, 512, 0.5, "hann", 2, db=False)
    np.testing.assert_allclose(out, ref, rtol=1e-5)


@pytest.mark.parametrize("window", dsp.WINDOWS)
@pytest.mark.parametrize("offset_bins,amplitude", [(100, 1.0), (-37, 0.1), (0, 0.5)])
def test_tone_lands_in_its_bin_with_its_power(specenc_cpp, window, offset_bins, amplitude):
    nfft, rate = 1024, 2.048e6
    f = offset_bins * rate / nfft  # on a bin centre
    n = np.arange(20 * nfft)
    x = amplitude * np.exp(2j * np.pi * f / rate * n)
    out, _, _ = run_psd(x, nfft, 0.5, window, 2)
    peak = np.argmax(out, axis=1)
    assert np.all(peak == nfft // 2 + offset_bins)
    np.testing.assert_allclose(out[:, nfft // 2 + offset_bins], 20 * np.log10(amplitude), atol=1e-3)


def test_white_noise_level_matches_enbw(specenc_cpp):
    """E[P] per bin = sigma^2 ENBW / nfft; as a density that is sigma^2 / rate (dB/Hz)."""
    nfft, rate, sigma2 = 256, 1e6, 0.01
    rng = np.random.default_rng(3)
    x = np.sqrt(sigma2 / 2) * (rng.standard_normal(400_000) + 1j * rng.standard_normal(400_000))
    out, _, _ = run_psd(x, nfft, 0.5, "hann", 8, db=False)
    w = dsp.window("hann", nfft)
    enbw = nfft * np.sum(w**2) / np.sum(w) ** 2
    assert enbw == pytest.approx(1.5, rel=1e-9)  # Hann
    level = out.mean()
    assert level == pytest.approx(sigma2 * enbw / nfft, rel=0.01)
    density_db_hz = 10 * np.log10(level) - 10 * np.log10(rate * enbw / nfft)
    assert density_db_hz == pytest.approx(10 * np.log10(sigma2 / rate), abs=0.05)


def test_short_input_gives_no_spectrum_and_exact_counts(specenc_cpp):
    for n in (0, 1023, 1024, 1024 + 511, 1024 + 512, 10_000):
        out, _, _ = run_psd(np.ones(n, np.complex64), 1024, 0.5, "hann", 1)
        assert len(out) == dsp.num_spectra(n, 1024, 0.5, 1)
    assert dsp.num_spectra(1024 + 512) == 2


def test_zero_input_reads_the_power_floor(specenc_cpp):
    out, _, _ = run_psd(np.zeros(4096, np.complex64), 256, 0.5)
    assert np.all(out == np.float32(-200.0))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, complex(np.nan, 1)])
def test_nan_and_inf_do_not_crash_and_stay_local(specenc_cpp, noise, bad):
    x = noise[:20000].copy()
    x[5000] = bad
    out, _, _ = run_psd(x, 1024, 0.5, "hann", 1)
    ref = dsp.power_spectrum(x, 1024, 0.5, "hann", 1)
    hit = [m for m in range(len(out)) if m * 512 <= 5000 < m * 512 + 1024]  # frames containing sample 5000
    assert hit == [8, 9]
    assert all(not np.isfinite(out[m]).any() for m in hit)  # the whole spectrum is non-finite
    others = [m for m in range(len(out)) if m not in hit]
    assert np.isfinite(out[others]).all()
    np.testing.assert_allclose(out[others], ref[others], atol=1e-4)


@pytest.mark.parametrize("kwargs,message", [
    (dict(nfft=1000), "nfft=1000 must be a power of two in 64..65536"),
    (dict(nfft=32), "nfft=32 must be a power of two"),
    (dict(nfft=131072), "nfft=131072 must be a power of two"),
    (dict(nfft=0), "nfft=0 must be a power of two"),  # GNU Radio's "gr::io_signature(3)" came first for these two
    (dict(nfft=2 ** 30), "nfft=1073741824 must be a power of two"),
    (dict(overlap=1.0), "overlap=1(\\.0)? must be in 0..0.9"),
    (dict(overlap=0.95), "overlap=0.95 must be in 0..0.9"),
    (dict(overlap=-0.1), "overlap=-0.1 must be in 0..0.9"),
    (dict(average=0), "average=0 must be >= 1"),
    (dict(window="kaiser"), "unknown window 'kaiser'; choose one of hann, rectangular, hamming, blackmanharris"),
    (dict(sample_rate=-1.0), "sample_rate=-1(\\.0)? must be a finite rate >= 0"),
    (dict(sample_rate=float("inf")), "sample_rate=inf must be a finite rate >= 0"),
    (dict(overlap=0.9000001), "overlap=0.9000001 must be in 0..0.9"),  # six digits read "0.9 must be in 0..0.9"
    # (average-1) hop in int wrapped at this size and crashed the flowgraph
    (dict(nfft=65536, overlap=0.0, average=32768), "average=32768 with nfft=65536 and overlap=0(\\.0)? reads "
                                                   "2147483648 samples per spectrum; at most 16777216"),
    (dict(nfft=1024, overlap=0.5, average=32768), "reads 16777728 samples per spectrum"),
])
def test_bad_parameters_raise_clear_value_errors(specenc_cpp, kwargs, message):
    from gnuradio import specenc

    with pytest.raises(ValueError, match=message):
        specenc.psd(**kwargs)
    # the NumPy path names the same problems
    if "window" not in kwargs and "sample_rate" not in kwargs:
        with pytest.raises(ValueError, match=message.split(" must")[0].split("=")[0]):
            dsp.power_spectrum(np.zeros(4096, np.complex64), **kwargs)


@pytest.mark.parametrize("nfft,overlap,average", [(65536, 0.9, 1), (1024, 0.9, 64), (16384, 0.0, 3)])
def test_spans_longer_than_default_buffers_do_not_stall(specenc_cpp, nfft, overlap, average):
    """One spectrum reads (K-1) hop + nfft samples, more than GNU Radio's default buffer (8192)."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(200_000) + 1j * rng.standard_normal(200_000)).astype(np.complex64)
    out, _, _ = run_psd(x, nfft, overlap, "hann", average)
    ref = dsp.power_spectrum(x, nfft, overlap, "hann", average)
    assert len(out) == len(ref) >= 3
    np.testing.assert_allclose(out, ref, atol=1e-4)


def test_binding_defaults_are_the_readmes(specenc_cpp):
    """audit 67: README documents specenc.psd(nfft=1024, overlap=0.5, ...); a binding default of overlap 0.75 (hop 256)
    or nfft 512 (512-bin vectors) went unnoticed, doubling the spectrum rate of every `specenc.psd()`."""
    from gnuradio import specenc

    p = specenc.psd()
    assert (p.hop(), p.decimation(), p.output_signature().sizeof_stream_item(0)) == (512, 512, 1024 * 4)


def test_hops_are_rounded_as_the_python_clock_rounds_them(specenc_cpp):
    """audit 67: rounding overlap * nfft half away from zero in C++ (lround) gave hop 37 where dsp.hop_size, which the
    encoder's clock uses, gives 38 (nfft 64, overlap 26.5/64): the spectrum times then drift a sample per spectrum.
    Both round half to even, at every half-sample overlap of a 64-bin frame."""
    from gnuradio import specenc

    from gnuradio.specenc import dsp

    overlaps = [k / 128 for k in range(116)]  # overlap * 64 = 0, 0.5, 1, ..., 57.5 samples (overlap <= 0.9)
    assert [specenc.psd(nfft=64, overlap=o).hop() for o in overlaps] == [dsp.hop_size(64, o) for o in overlaps]
    assert dsp.hop_size(64, 26.5 / 64) == 38 and dsp.hop_size(64, 27.5 / 64) == 36  # half to even, both ways
