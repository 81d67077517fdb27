"""sigmf_source -> specenc.psd -> vector sink on files: real captures and generated SigMF/raw files."""

import json
import os

import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr

from gnuradio.specenc import dsp, sigmf_io


def run_chain(source, nfft, overlap, average, limit=None):
    from gnuradio import specenc

    tb = gr.top_block()
    psd = specenc.psd(nfft=nfft, overlap=overlap, average=average)
    sink = blocks.vector_sink_f(nfft)
    if limit:
        head = blocks.head(gr.sizeof_gr_complex, limit)
        tb.connect(source, head, psd, sink)
    else:
        tb.connect(source, psd, sink)
    tb.run()
    tags = {pmt.symbol_to_string(t.key): (t.offset, t.value) for t in sink.tags()}
    return np.array(sink.data(), np.float32).reshape(-1, nfft), tags


@pytest.mark.parametrize("name,nfft,overlap,average", [
    ("ism433_sensible_living_g001", 1024, 0.5, 2),  # cu8, 250 kS/s
    ("urh_homematic_868M", 512, 0.75, 1),  # ci16_le
    ("urh_elektromaten_433M", 2048, 0.5, 1),  # ci8
])
def test_real_recording_spectra_count_values_and_tags(specenc_cpp, shared_iq, name, nfft, overlap, average):
    from gnuradio import specenc

    meta = shared_iq / f"{name}.sigmf-meta"
    rec = sigmf_io.read_meta(meta)
    out, tags = run_chain(specenc.sigmf_source(str(meta)), nfft, overlap, average)
    assert len(out) == dsp.num_spectra(rec.num_samples, nfft, overlap, average) > 10
    ref = dsp.power_spectrum(sigmf_io.read_samples(rec), nfft, overlap, "hann", average)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    assert set(tags) == {"rx_freq", "rx_rate", "rx_time", "specenc_psd"}
    assert tags["rx_freq"][0] == tags["rx_rate"][0] == tags["rx_time"][0] == tags["specenc_psd"][0] == 0
    # the spacing the encoder checks its own overlap/average against (audit 88)
    assert pmt.to_python(tags["specenc_psd"][1]) == {"nfft": nfft, "hop": dsp.hop_size(nfft, overlap), "average": average}
    assert pmt.to_double(tags["rx_freq"][1]) == rec.center_freq
    assert pmt.to_double(tags["rx_rate"][1]) == rec.sample_rate


def test_generated_sigmf_tone_time_and_repeat(specenc_cpp, tmp_path):
    from gnuradio import specenc

    rate, nfft = 1e6, 256
    n = np.arange(50_000)
    iq = 0.5 * np.exp(2j * np.pi * (64 * rate / nfft) / rate * n)  # +64 bins
    meta = sigmf_io.write_recording(tmp_path / "tone", iq, rate, 915e6, datatype="ci16_le",
                                    datetime="2026-11-23T10:00:00.5Z")
    out, tags = run_chain(specenc.sigmf_source(meta), nfft, 0.5, 1)
    assert len(out) == dsp.num_spectra(50_000, nfft, 0.5, 1)
    assert np.all(np.argmax(out, axis=1) == nfft // 2 + 64)
    np.testing.assert_allclose(out[:, nfft // 2 + 64], 20 * np.log10(0.5), atol=1e-3)
    secs, frac = pmt.to_uint64(pmt.tuple_ref(tags["rx_time"][1], 0)), pmt.to_double(pmt.tuple_ref(tags["rx_time"][1], 1))
    assert (secs, frac) == sigmf_io.datetime_to_rx_time("2026-11-23T10:00:00.5Z") == (1795428000, 0.5)
    # repeat: the file plays again, tags only once
    out, _ = run_chain(specenc.sigmf_source(meta, repeat=True), nfft, 0.0, 1, limit=120_000)
    assert len(out) == 120_000 // nfft


def test_raw_file_needs_rate_and_format(specenc_cpp, tmp_path):
    from gnuradio import specenc

    raw = tmp_path / "capture.cu8"
    np.full(2 * 4096, 200, np.uint8).tofile(raw)  # constant (200-127.5)/127.5 on I and Q
    src = specenc.sigmf_source(str(raw), rate=2.4e6, freq=100e6, fmt="cu8")
    out, tags = run_chain(src, 64, 0.0, 1)
    assert len(out) == 64
    dc = (200 - 127.5) / 127.5 * np.sqrt(2)
    np.testing.assert_allclose(out[:, 32], 20 * np.log10(dc), atol=1e-3)
    assert pmt.to_double(tags["rx_rate"][1]) == 2.4e6 and pmt.to_double(tags["rx_freq"][1]) == 100e6
    assert pmt.to_uint64(pmt.tuple_ref(tags["rx_time"][1], 0)) == 0
    with pytest.raises(ValueError, match="needs a sample rate and a format"):
        specenc.sigmf_source(str(raw))
    with pytest.raises(FileNotFoundError, match="input file not found"):
        specenc.sigmf_source(str(tmp_path / "absent.cu8"), rate=1e6, fmt="cu8")
    with pytest.raises(ValueError, match="no input file given"):  # "input file not found: " named nothing
        specenc.sigmf_source("", rate=1e6, fmt="cu8")
    with pytest.raises(ValueError, match="unsupported datatype 'cs4'"):
        specenc.sigmf_source(str(raw), rate=1e6, fmt="cs4")


def retuned_recording(path, n=60_000, rate=1e6, offset=0):
    """Noise at 915 MHz, retuned to 2.44 GHz at sample 20 000; a third capture at 40 000 restarts the clock. With an
    offset, the file is part of a longer recording that numbers its first sample `offset` (core:offset)."""
    iq = (np.random.default_rng(2).normal(size=(n, 2)) * 0.01).astype(np.float32).view(np.complex64).ravel()
    meta = sigmf_io.write_recording(path, iq, rate, 915e6, datetime="2026-11-23T10:00:00Z")
    doc = json.load(open(meta))
    doc["captures"] += [{"core:sample_start": 20_000, "core:frequency": 2.44e9},
                        {"core:sample_start": 40_000, "core:frequency": 2.44e9,
                         "core:datetime": "2026-11-23T10:00:05Z"}]
    if offset:
        doc["global"]["core:offset"] = offset
        for capture in doc["captures"]:
            capture["core:sample_start"] += offset
    with open(meta, "w") as f:
        json.dump(doc, f)
    return meta


@pytest.mark.parametrize("offset", [0, 7000])
def test_a_capture_that_retunes_is_tagged_where_it_starts(specenc_cpp, tmp_path, offset):
    """Each later capture's frequency (and datetime) reaches the stream at its first sample, so the spectrum that holds
    it and those after are placed at the new tuning; spectrum_freqs gives the same frequencies offline. A file that
    starts at core:offset of its recording is tagged at the same samples of the file."""
    from gnuradio import specenc

    meta = retuned_recording(tmp_path / "retuned", offset=offset)
    nfft, average = 256, 2  # a spectrum every 256 samples

    def tags_of(source, limit=None):
        tb = gr.top_block()
        psd, sink = specenc.psd(nfft=nfft, overlap=0.5, average=average, sample_rate=1e6), blocks.vector_sink_f(nfft)
        tb.connect(*([source, blocks.head(gr.sizeof_gr_complex, limit)] if limit else [source]), psd, sink)
        tb.run()
        return len(sink.data()) // nfft, [(t.offset, pmt.symbol_to_string(t.key), pmt.to_python(t.value))
                                           for t in sorted(sink.tags(), key=lambda t: t.offset)]

    count, tags = tags_of(specenc.sigmf_source(meta))
    assert [(o, v) for o, k, v in tags if k == "rx_freq"] == [(0, 915e6), (20_000 // 256, 2.44e9)]
    times = [(o, v) for o, k, v in tags if k == "rx_time"]
    assert [o for o, _ in times] == [0, 40_000 // 256]
    # the psd block dates each spectrum from its first sample: 40 000 - 156 * 256 = 64 samples before 10:00:05
    assert times[1][1][0] + times[1][1][1] == pytest.approx(1795428005 - 64e-6, abs=1e-9)
    tagged = np.zeros(count)
    for o, _, v in (t for t in tags if t[1] == "rx_freq"):
        tagged[o:] = v
    np.testing.assert_array_equal(sigmf_io.spectrum_freqs(sigmf_io.read_meta(meta), count, 256), tagged)
    # --freq overrides every capture: one frequency, no retune
    _, tags = tags_of(specenc.sigmf_source(meta, freq=100e6))
    assert [(o, v) for o, k, v in tags if k == "rx_freq"] == [(0, 100e6)]
    assert set(sigmf_io.spectrum_freqs(sigmf_io.open_recording(meta, freq=100e6), count, 256)) == {100e6}
    # repeat: each pass goes back to the first capture's frequency and retunes again; the clock is set once
    _, tags = tags_of(specenc.sigmf_source(meta, repeat=True), limit=150_000)
    assert [(o, v) for o, k, v in tags if k == "rx_freq"] == [
        (0, 915e6), (20_000 // 256, 2.44e9), (60_000 // 256, 915e6), (80_000 // 256, 2.44e9), (120_000 // 256, 915e6),
        (140_000 // 256, 2.44e9)]
    assert len([t for t in tags if t[1] == "rx_time"]) == 2


@pytest.mark.parametrize("datatype", ["cf32_le", "ci16_le"])
def test_a_file_cut_short_while_it_plays_ends_the_stream_with_an_error(tmp_path, capfd, datatype):
    """Read through a memory map, a file cut short under the source (a recorder still writing, a full disk) killed
    the whole process with SIGBUS. Now what the file holds plays, then the stream ends with an error."""
    from gnuradio import specenc

    iq = np.exp(2j * np.pi * 0.01 * np.arange(20_000)).astype(np.complex64) * 0.5
    meta = sigmf_io.write_recording(tmp_path / "cut", iq, 1e6, 100e6, datatype=datatype)
    source = specenc.sigmf_source(meta)
    rec = source.recording
    item = 8 if datatype == "cf32_le" else 4
    os.truncate(rec.data_path, 12_000 * item + 3)  # and a partial sample
    sink = blocks.vector_sink_c()
    tb = gr.top_block()
    tb.connect(source, sink)
    tb.run()
    np.testing.assert_allclose(np.array(sink.data()), iq[:12_000], atol=1e-4)
    assert "the data ends at sample 12000, not 20000" in capfd.readouterr().out
    with pytest.raises(ValueError, match="the data ends at sample 12000, not 20000"):
        sigmf_io.read_samples(rec)


def test_samples_the_receiver_dropped_move_the_clock_on(tmp_path):
    """A capture whose core:global_index runs ahead of its sample_start follows samples the receiver dropped (an
    overflow): rx_time on its first sample is the time of the samples since the last known time, dropped included."""
    from gnuradio import specenc

    iq = np.zeros(30_000, np.complex64)
    meta = sigmf_io.write_recording(tmp_path / "gap", iq, 1e6, 915e6, datetime="2026-11-23T10:00:00Z")
    doc = json.load(open(meta))
    doc["captures"][0]["core:global_index"] = 500
    doc["captures"] += [{"core:sample_start": 10_000, "core:global_index": 10_500},  # contiguous: no new time
                        {"core:sample_start": 20_000, "core:global_index": 140_500}]  # 120 000 samples dropped
    json.dump(doc, open(meta, "w"))
    assert sigmf_io.capture_changes(sigmf_io.read_meta(meta)) == [(20_000, None, "2026-11-23T10:00:00.140000000Z")]
    source, sink = specenc.sigmf_source(meta), blocks.vector_sink_c()  # a Python block: kept referenced
    tb = gr.top_block()
    tb.connect(source, sink)
    tb.run()
    times = [(t.offset, pmt.to_python(t.value)) for t in sink.tags() if pmt.symbol_to_string(t.key) == "rx_time"]
    assert times == [(0, (1795428000, 0.0)), (20_000, (1795428000, pytest.approx(0.14)))]
    # Counted from the first capture that gives an index; a count that goes back (a receiver restarted) is no gap.
    del doc["captures"][0]["core:global_index"]
    doc["captures"][1]["core:global_index"] = 0
    doc["captures"].append({"core:sample_start": 25_000, "core:global_index": 3})
    json.dump(doc, open(meta, "w"))
    assert sigmf_io.capture_changes(sigmf_io.read_meta(meta)) == [(20_000, None, "2026-11-23T10:00:00.150500000Z")]
    # SigMF dates a capture at its own first sample: a first capture at sample 500 dates sample 500, not 0.
    doc["captures"] = [{"core:sample_start": 500, "core:global_index": 500, "core:frequency": 915e6,
                        "core:datetime": "2026-11-23T10:00:00Z"},
                       {"core:sample_start": 10_000, "core:global_index": 20_000}]
    json.dump(doc, open(meta, "w"))
    rec = sigmf_io.read_meta(meta)
    assert sigmf_io.start_datetime(rec) == "2026-11-23T09:59:59.999500000Z"
    assert sigmf_io.capture_changes(rec) == [(10_000, None, "2026-11-23T10:00:00.019500000Z")]


def test_a_short_file_repeats_as_often_as_the_buffer_holds_with_its_retunes(tmp_path):
    """Each work() call fills its buffer with as many passes of a short file as fit (one pass per call was slow):
    the samples stay in order and every pass's tags land at their place."""
    from gnuradio import specenc

    iq = (np.arange(37) * (1 + 1j)).astype(np.complex64)
    meta = sigmf_io.write_recording(tmp_path / "short", iq, 1e6, 100e6)
    doc = json.load(open(meta))
    doc["captures"].append({"core:sample_start": 10, "core:frequency": 101e6})
    with open(meta, "w") as f:
        json.dump(doc, f)
    source, sink = specenc.sigmf_source(meta, repeat=True), blocks.vector_sink_c()
    tb = gr.top_block()
    tb.connect(source, blocks.head(gr.sizeof_gr_complex, 37 * 50), sink)
    tb.run()
    np.testing.assert_array_equal(np.array(sink.data()), np.tile(iq, 50))
    freq_tags = sorted((t.offset, pmt.to_double(t.value)) for t in sink.tags() if pmt.symbol_to_string(t.key) == "rx_freq")
    assert freq_tags == sorted([(37 * k, 100e6) for k in range(50)] + [(37 * k + 10, 101e6) for k in range(50)])
