"""sigmf_source -> specenc.psd -> vector sink on files: real captures and generated SigMF/raw files."""

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
    assert set(tags) == {"rx_freq", "rx_rate", "rx_time"}
    assert tags["rx_freq"][0] == tags["rx_rate"][0] == tags["rx_time"][0] == 0
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
    with pytest.raises(ValueError, match="unsupported datatype 'cs4'"):
        specenc.sigmf_source(str(raw), rate=1e6, fmt="cs4")
