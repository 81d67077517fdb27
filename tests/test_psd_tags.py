"""specenc.psd tag placement: a tag on input sample n lands on spectrum floor(n / (hop * K));
rx_time is rewritten to the time of that spectrum's first sample."""

import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr

from gnuradio.specenc import dsp


def tag(offset, key, value):
    t = gr.tag_t()
    t.offset, t.key, t.value, t.srcid = offset, pmt.intern(key), value, pmt.intern("test")
    return t


def time_pmt(secs, frac):
    return pmt.make_tuple(pmt.from_uint64(secs), pmt.from_double(frac))


def run(x, tags, **kwargs):
    from gnuradio import specenc

    tb = gr.top_block()
    src = blocks.vector_source_c(x, False, 1, tags)
    psd = specenc.psd(**kwargs)
    sink = blocks.vector_sink_f(kwargs.get("nfft", 1024))
    tb.connect(src, psd, sink)
    tb.run()
    return len(sink.data()) // kwargs.get("nfft", 1024), sorted(moved(sink), key=lambda t: t.offset)


def moved(sink):
    """The sink's tags but the psd's own specenc_psd (tested in test_psd_flowgraph)."""
    return [t for t in sink.tags() if pmt.symbol_to_string(t.key) != "specenc_psd"]


@pytest.mark.parametrize("nfft,overlap,average", [(256, 0.0, 1), (256, 0.5, 1), (256, 0.75, 3), (1024, 0.9, 2)])
def test_tags_land_on_the_documented_spectrum(specenc_cpp, nfft, overlap, average):
    x = np.zeros(40 * nfft, np.complex64)
    count = dsp.num_spectra(len(x), nfft, overlap, average)
    dec = dsp.hop_size(nfft, overlap) * average
    positions = [0, 1, dec - 1, dec, 3 * dec + 7, (count - 1) * dec + dec - 1]
    tags = [tag(n, "rx_freq", pmt.from_double(float(n))) for n in positions]
    produced, out = run(x, tags, nfft=nfft, overlap=overlap, average=average)
    assert produced == count
    assert [(t.offset, pmt.to_double(t.value)) for t in out] == [(n // dec, float(n)) for n in positions]
    # spectrum floor(n / D) starts at or before n and still contains it
    span = (average - 1) * dsp.hop_size(nfft, overlap) + nfft
    assert all((n // dec) * dec <= n < (n // dec) * dec + span for n in positions)


def test_tags_on_samples_no_spectrum_consumes_are_dropped(specenc_cpp):
    x = np.zeros(1024 + 512 + 100, np.complex64)  # 2 spectra consume 1024 samples
    produced, out = run(x, [tag(1023, "rx_freq", pmt.from_double(1.0)), tag(1030, "rx_freq", pmt.from_double(2.0))],
                        nfft=1024, overlap=0.5)
    assert produced == 2 and [(t.offset, pmt.to_double(t.value)) for t in out] == [(1, 1.0)]


@pytest.mark.parametrize("overlap,average", [(0.5, 1), (0.75, 2), (0.0, 4)])
def test_rx_time_is_advanced_to_the_spectrum_start(specenc_cpp, overlap, average):
    nfft, rate = 512, 1e6
    dec = dsp.hop_size(nfft, overlap) * average
    back = dec // 3
    n = 5 * dec + back  # rx_time at sample n: its spectrum (5) starts `back` samples earlier
    tags = [tag(0, "rx_rate", pmt.from_double(rate)), tag(0, "rx_freq", pmt.from_double(433.92e6)),
            tag(0, "rx_time", time_pmt(1000, 0.25)),
            tag(n, "rx_time", time_pmt(2000, 0.00001))]  # borrows from the whole seconds
    _, out = run(np.zeros(30 * nfft, np.complex64), tags, nfft=nfft, overlap=overlap, average=average)
    times = [(t.offset, pmt.to_uint64(pmt.tuple_ref(t.value, 0)), pmt.to_double(pmt.tuple_ref(t.value, 1)))
             for t in out if pmt.symbol_to_string(t.key) == "rx_time"]
    assert [(o, s) for o, s, _ in times] == [(0, 1000), (5, 1999)]
    assert times[0][2] == pytest.approx(0.25, abs=1e-12)
    assert times[1][2] == pytest.approx(1.00001 - back / rate, abs=1e-9)
    rates = [t for t in out if pmt.symbol_to_string(t.key) == "rx_rate"]
    assert [(t.offset, pmt.to_double(t.value)) for t in rates] == [(0, rate)]


def test_rx_time_uses_constructor_rate_then_rx_rate_tags(specenc_cpp):
    nfft = 256  # hop 128
    tags = [tag(1000, "rx_time", time_pmt(10, 0.5)),  # spectrum 7 starts at 896: 104 samples earlier
            tag(2000, "rx_rate", pmt.from_double(1000.0)),
            tag(2000, "rx_time", time_pmt(20, 0.5))]  # spectrum 15 starts at 1920: 80 samples earlier
    _, out = run(np.zeros(4096, np.complex64), tags, nfft=nfft, overlap=0.5, sample_rate=100.0)
    times = [(t.offset, pmt.to_uint64(pmt.tuple_ref(t.value, 0)) + pmt.to_double(pmt.tuple_ref(t.value, 1)))
             for t in out if pmt.symbol_to_string(t.key) == "rx_time"]
    assert times[0] == (7, pytest.approx(10.5 - 104 / 100.0))
    assert times[1] == (15, pytest.approx(20.5 - 80 / 1000.0))


def test_rx_time_unchanged_when_no_rate_is_known(specenc_cpp):
    _, out = run(np.zeros(4096, np.complex64), [tag(700, "rx_time", time_pmt(5, 0.5))], nfft=256, overlap=0.5)
    assert [(t.offset, pmt.to_double(pmt.tuple_ref(t.value, 1))) for t in out] == [(5, 0.5)]


def test_set_sample_rate_replaces_the_constructors_rate(specenc_cpp):
    """GRC's callback when the flowgraph's rate changes, for sources that send no rx_rate tag."""
    from gnuradio import specenc

    tb = gr.top_block()
    src = blocks.vector_source_c(np.zeros(4096, np.complex64), False, 1, [tag(1000, "rx_time", time_pmt(10, 0.5))])
    psd = specenc.psd(nfft=256, overlap=0.5, sample_rate=100.0)
    psd.set_sample_rate(400.0)
    sink = blocks.vector_sink_f(256)
    tb.connect(src, psd, sink)
    tb.run()
    (t,) = moved(sink)
    assert t.offset == 7 and pmt.to_double(pmt.tuple_ref(t.value, 1)) == pytest.approx(0.5 - 104 / 400.0)
    with pytest.raises(ValueError, match="sample_rate=-1 must be a finite rate >= 0 Hz"):
        psd.set_sample_rate(-1.0)
    # GRC calls psd's then the encoder's setter for one variable: the psd took the 0 the encoder refused (audit 35)
    with pytest.raises(ValueError, match="sample_rate=0 must be a rate > 0 Hz while running"):
        psd.set_sample_rate(0.0)


def test_rx_time_near_the_clocks_zero_is_not_wrapped_round(specenc_cpp):
    """A device clock that starts at 0: a spectrum that begins before t = 0 is tagged 0 s (uint64 seconds cannot
    go below), not ~1.8e19 s."""
    nfft = 64  # hop 32: the tag on sample 1001 goes to spectrum 31, which starts at sample 992, 9 us earlier
    _, out = run(np.zeros(2048, np.complex64), [tag(0, "rx_rate", pmt.from_double(1e6)),
                                                tag(1001, "rx_time", time_pmt(0, 1e-6))], nfft=nfft, overlap=0.5)
    (t,) = [t for t in out if pmt.symbol_to_string(t.key) == "rx_time"]
    assert (t.offset, pmt.to_uint64(pmt.tuple_ref(t.value, 0)), pmt.to_double(pmt.tuple_ref(t.value, 1))) == (31, 0, 0.0)


def seconds(value):
    return pmt.to_uint64(pmt.tuple_ref(value, 0)), pmt.to_double(pmt.tuple_ref(value, 1))


def test_rx_time_fraction_stays_below_one_and_carries_into_seconds(specenc_cpp):
    """A fraction a hair below the 3 us the spectrum starts earlier came out as (99, 1.0), not (100, 0.0); an
    unnormalised fraction 2.5 moves the seconds up (a negative double cast to uint64 lost them on ARM)."""
    hair = np.nextafter(3e-6, 0)  # the tag on sample 643 goes to spectrum 5, which starts 3 samples earlier
    _, out = run(np.zeros(4096, np.complex64), [tag(0, "rx_rate", pmt.from_double(1e6)),
                                                tag(643, "rx_time", time_pmt(100, hair)),
                                                tag(1283, "rx_time", time_pmt(10, 2.5))], nfft=256, overlap=0.5)
    (first, second) = [seconds(t.value) for t in out if pmt.symbol_to_string(t.key) == "rx_time"]
    assert first[0] == 100 and 0.0 <= first[1] < 1e-15
    assert second[0] == 12 and second[1] == pytest.approx(0.5 - 3e-6, abs=1e-12)


def test_rx_time_and_rx_rate_of_other_number_types_are_read_and_others_passed_on(specenc_cpp, capfd):
    """pmt.to_double threw on a uint64 rate or a (double, double) time: the block's thread died and the flowgraph
    hung with no spectra. Numbers of any real type are read; a value that is no number is logged and passed on."""
    x = np.zeros(8192, np.complex64)
    as_pair = pmt.make_tuple(pmt.from_double(100.0), pmt.from_double(0.5))
    negative = pmt.make_tuple(pmt.from_long(-1), pmt.from_double(0.5))
    count, out = run(x, [tag(0, "rx_rate", pmt.from_uint64(1_000_000)), tag(643, "rx_time", as_pair),
                         tag(1283, "rx_rate", pmt.from_complex(2e6 + 0j)), tag(1411, "rx_time", negative),
                         tag(2563, "rx_time", pmt.make_tuple(pmt.from_long(7), pmt.from_long(0)))],
                     nfft=256, overlap=0.5)
    assert count == dsp.num_spectra(len(x), 256, 0.5)
    times = [(t.offset, t.value) for t in out if pmt.symbol_to_string(t.key) == "rx_time"]
    assert [o for o, _ in times] == [5, 11, 20]
    assert seconds(times[0][1]) == (100, pytest.approx(0.5 - 3e-6))
    assert pmt.equal(times[1][1], negative)  # passed on unchanged
    # the complex rate was refused, so the time advances at 1 MHz: sample 2563 is 3 samples into spectrum 20
    assert seconds(times[2][1]) == (6, pytest.approx(1 - 3e-6))
    logged = capfd.readouterr().out
    assert "rx_rate 2e+06+0i on sample 1283 is not a rate in Hz > 0; the rate stays 1000000 Hz" in logged
    assert "rx_time {-1 0.5} on sample 1411 is not (uint64 seconds, double fraction); passed on unchanged" in logged


def test_an_rx_rate_of_zero_is_refused_and_the_rate_kept(specenc_cpp, capfd):
    """audit 67: `rate >= 0` passed unnoticed; a rate of 0 taken would leave every later rx_time unconverted."""
    count, out = run(np.zeros(8192, np.complex64), [
        tag(0, "rx_rate", pmt.from_double(1e6)), tag(1283, "rx_rate", pmt.from_double(0.0)),
        tag(2563, "rx_time", pmt.make_tuple(pmt.from_uint64(7), pmt.from_double(0.0)))], nfft=256, overlap=0.5)
    times = [(t.offset, t.value) for t in out if pmt.symbol_to_string(t.key) == "rx_time"]
    assert [o for o, _ in times] == [20] and seconds(times[0][1]) == (6, pytest.approx(1 - 3e-6))
    assert "rx_rate 0 on sample 1283 is not a rate in Hz > 0; the rate stays 1000000 Hz" in capfd.readouterr().out


def test_rx_rate_on_the_rx_time_sample_applies_in_uhd_tag_order(specenc_cpp):
    """audit 67: gr-uhd, gr-soapy and xtrx tag rx_time, then rx_rate, then rx_freq on one sample. Keeping that
    insertion order advanced the time at the old rate (100 Hz): 720 ms wrong on every later spectrum."""
    nfft = 256  # hop 128
    tags = [tag(1000, "rx_time", time_pmt(10, 0.5)),  # spectrum 7 starts at 896: 104 samples earlier, at 100 Hz
            tag(2000, "rx_time", time_pmt(20, 0.5)),  # spectrum 15 starts at 1920: 80 samples earlier, at 1 kHz
            tag(2000, "rx_rate", pmt.from_double(1000.0)),
            tag(2000, "rx_freq", pmt.from_double(915e6))]
    _, out = run(np.zeros(4096, np.complex64), tags, nfft=nfft, overlap=0.5, sample_rate=100.0)
    times = [(t.offset, sum(seconds(t.value))) for t in out if pmt.symbol_to_string(t.key) == "rx_time"]
    assert times == [(7, pytest.approx(10.5 - 104 / 100.0)), (15, pytest.approx(20.5 - 80 / 1000.0))]
    assert [(t.offset, pmt.to_double(t.value)) for t in out if pmt.symbol_to_string(t.key) == "rx_freq"] == [
        (15, 915e6)]


def test_rx_time_with_fractional_double_seconds_keeps_that_fraction(specenc_cpp):
    """audit 67: an rx_time of (double 1000.5, 0.25) lost the seconds' .5 and came out as 1000.25 s, not 1000.75 s."""
    _, out = run(np.zeros(4096, np.complex64), [tag(0, "rx_rate", pmt.from_double(1e6)),
                                                tag(0, "rx_time", pmt.make_tuple(pmt.from_double(1000.5),
                                                                                 pmt.from_double(0.25)))],
                 nfft=256, overlap=0.5)
    (value,) = [seconds(t.value) for t in out if pmt.symbol_to_string(t.key) == "rx_time"]
    assert value == (1000, 0.75)  # sample 0 starts spectrum 0: nothing to move back


def test_rx_time_with_a_nan_fraction_is_logged_and_passed_on_unchanged(specenc_cpp, capfd):
    """audit 67: a NaN fraction is no (uint64 seconds, double fraction) time; it was accepted silently and the seconds
    came out as garbage (9223372036854776008) instead of the value passed on unchanged with a warning."""
    bad = time_pmt(200, float("nan"))
    _, out = run(np.zeros(4096, np.complex64), [tag(643, "rx_time", time_pmt(100, 0.5)), tag(1283, "rx_time", bad)],
                 nfft=256, overlap=0.5, sample_rate=1e6)
    times = [(t.offset, t.value) for t in out if pmt.symbol_to_string(t.key) == "rx_time"]
    assert [o for o, _ in times] == [5, 10]
    assert seconds(times[0][1]) == (100, pytest.approx(0.5 - 3e-6))
    assert pmt.to_uint64(pmt.tuple_ref(times[1][1], 0)) == 200 and np.isnan(seconds(times[1][1])[1])
    logged = capfd.readouterr().out
    assert "rx_time {200 nan} on sample 1283 is not (uint64 seconds, double fraction); passed on unchanged" in logged
