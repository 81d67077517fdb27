"""iq_to_alerts hier block: IQ with a tone burst in -> an alert at the burst's time and frequency."""

import json

import numpy as np
import pmt
import pytest
from blocks_fake_model import ToneModel, run_or_fail
from gnuradio import blocks, gr
from test_blocks_encoder import tag

NFFT = 64
RATE = 1e6
FREQ = 868.3e6
T0 = 1_767_225_600.5  # rx_time of sample 0


def burst_iq(n=64 * 200, start=3200, stop=6400, bin_offset=10, seed=0):
    """Noise at -60 dBFS/sample and a full-scale complex tone `bin_offset` bins above centre in [start, stop)."""
    rng = np.random.default_rng(seed)
    iq = (rng.normal(size=n) + 1j * rng.normal(size=n)) * 1e-3 / np.sqrt(2)
    t = np.arange(start, stop)
    iq[start:stop] += np.exp(2j * np.pi * bin_offset / NFFT * t)
    return iq.astype(np.complex64)


def run(iq, **kw):
    from gnuradio.specenc import iq_to_alerts

    tb = gr.top_block()
    src = blocks.vector_source_c(iq.tolist(), False, 1, [
        tag(0, "rx_freq", pmt.from_double(FREQ)), tag(0, "rx_rate", pmt.from_double(RATE)),
        tag(0, "rx_time", pmt.make_tuple(pmt.from_uint64(int(T0)), pmt.from_double(T0 % 1)))])
    chain = iq_to_alerts(model_path=ToneModel(NFFT), nfft=NFFT, **kw)
    spectra, scores = blocks.vector_sink_f(NFFT), blocks.vector_sink_f()
    alerts, detections = blocks.message_debug(), blocks.message_debug()
    tb.connect(src, chain)
    tb.connect((chain, 0), spectra)
    tb.connect((chain, 1), scores)
    tb.msg_connect(chain, "alerts", alerts, "store")
    tb.msg_connect(chain, "detections", detections, "store")
    tb.run()
    as_list = [pmt.to_python(alerts.get_message(i)) for i in range(alerts.num_messages())]
    return chain, np.array(spectra.data()).reshape(-1, NFFT), np.array(scores.data()), as_list, detections


def test_tone_burst_raises_one_alert_at_its_time_and_frequency(specenc_cpp):
    iq = burst_iq()
    _, spectra, scores, alerts, detections = run(iq)
    assert len(spectra) == len(scores) == (len(iq) - NFFT) // 32 + 1
    (alert,) = alerts
    # The burst starts at sample 3200 = spectrum 100 (hop 32); spectrum 99 overlaps it by half a frame.
    assert alert["spectrum"] in (99, 100)
    assert alert["time"] == pytest.approx(T0 + alert["spectrum"] * 32 / RATE, abs=1e-6)
    tone_hz = FREQ + 10 * RATE / NFFT
    assert alert["freq_lower_edge"] <= tone_hz <= alert["freq_upper_edge"]
    assert alert["freq_upper_edge"] - alert["freq_lower_edge"] <= 3 * RATE / NFFT  # within a bin either side
    assert alert["band"] == "ism" and alert["kind"] == "jamming"
    assert scores[110] > 0.5 and scores[10] < 0.5 and scores[300] < 0.5
    assert detections.num_messages() >= 1


def test_alerts_alone_need_no_stream_output_connected(specenc_cpp):
    """The one-drag use: IQ in, only the alerts message taken (GRC marks both stream outputs optional)."""
    from gnuradio.specenc import iq_to_alerts

    tb = gr.top_block()
    src = blocks.vector_source_c(burst_iq().tolist(), False, 1, [tag(0, "rx_freq", pmt.from_double(FREQ)),
                                                                 tag(0, "rx_rate", pmt.from_double(RATE))])
    chain = iq_to_alerts(model_path=ToneModel(NFFT), nfft=NFFT)
    alerts = blocks.message_debug()
    tb.connect(src, chain)
    tb.msg_connect(chain, "alerts", alerts, "store")
    tb.run()
    (alert,) = [pmt.to_python(alerts.get_message(i)) for i in range(alerts.num_messages())]
    assert alert["spectrum"] in (99, 100) and alert["kind"] == "jamming"


def test_callbacks_and_average(specenc_cpp):
    chain, spectra, _, alerts, _ = run(burst_iq(), average=4, threshold=0.99)
    assert len(spectra) == ((len(burst_iq()) - NFFT) // 32 + 1) // 4
    assert alerts and alerts[0]["sample_count"] == 3 * 32 + NFFT
    chain.set_threshold(0.3)
    chain.set_holdoff(3)
    chain.set_batch(8)
    assert chain.detector.holdoff == 3 and chain.encoder.batch == 8
    chain.set_center_freq(433.92e6)
    chain.set_sample_rate(2e6)
    assert chain.detector.threshold == 0.3
    # The encoder takes the tuning from its next spectrum on (test_blocks_encoder runs that through the detector).
    assert [(pmt.symbol_to_string(k), pmt.to_double(v)) for k, v in chain.encoder._retunes] == [
        ("rx_freq", 433.92e6), ("rx_rate", 2e6)]


@pytest.mark.parametrize("kw,detector,spectra", [
    ({}, (16, 1), [100, 136]),
    ({"holdoff": 40}, (40, 1), [100]),  # the second burst is within 40 spectra of the first: the same event
    ({"integrate": 8}, (16, 8), [96, 132]),  # the first mean of 8 scores over the threshold
])
def test_holdoff_and_integrate_reach_the_detector(specenc_cpp, kw, detector, spectra):
    """Two 8-spectrum bursts 36 spectra apart. The GRC block's Holdoff and Integrate fields were dropped on the way
    to the detector without a sign: a site calibrated with --integrate 16 alerted on single scores (audit 66)."""
    iq = burst_iq(start=3200, stop=3200 + 8 * 32)  # spectra 100..107 (hop 32)
    t = np.arange(3200 + 36 * 32, 3200 + 44 * 32)  # spectra 136..143
    iq[t] += np.exp(2j * np.pi * 10 / NFFT * t).astype(np.complex64)
    chain, _, _, alerts, _ = run(iq, **kw)
    assert (chain.detector.holdoff, chain.detector.integrate) == detector
    assert [a["spectrum"] for a in alerts] == spectra


def test_nfft_must_match_the_model(specenc_cpp):
    from gnuradio.specenc import iq_to_alerts

    with pytest.raises(ValueError, match="expects 64-bin spectra; set FFT Size to 64 .* IQ to Alerts"):
        iq_to_alerts(model_path=ToneModel(NFFT), nfft=128)


def test_psd_with_another_nfft_is_refused_at_connect(specenc_cpp):
    from gnuradio.specenc import psd, spectrum_encoder

    tb = gr.top_block()
    with pytest.raises(ValueError, match="itemsize mismatch"):
        tb.connect(psd(nfft=128), spectrum_encoder(model_path=ToneModel(NFFT), nfft=NFFT))


def test_one_top_block_per_recording_in_one_script_ends_every_time(specenc_cpp, tmp_path):
    """Blocks of an earlier run that are not yet garbage-collected still subscribe to the sink's alias, which a new
    sink is given again: the sink counted their connections, waited for "done"s that never came, and the third run
    of a loop over recordings hung (audit 53)."""
    import gc

    from gnuradio.specenc import alert_sink, iq_to_alerts

    earlier = []  # an earlier run's chain, not yet collected (its reference cycles) when the next one starts
    for i in range(3):
        tb = gr.top_block()
        chain = iq_to_alerts(model_path=ToneModel(NFFT), nfft=NFFT, sample_rate=RATE, center_freq=FREQ)
        sink = alert_sink(jsonl_path=str(tmp_path / f"{i}.jsonl"), stdout=False)
        tb.connect(blocks.vector_source_c(burst_iq(seed=i).tolist()), chain)
        tb.connect((chain, 0), blocks.null_sink(4 * NFFT))
        tb.connect((chain, 1), blocks.null_sink(4))
        tb.msg_connect(chain, "alerts", sink, "alerts")
        tb.msg_connect(chain, "detections", sink, "alerts")
        run_or_fail(tb, f"run {i} (sink {sink.alias()})")
        kinds = [json.loads(line).get("kind") for line in (tmp_path / f"{i}.jsonl").read_text().splitlines()]
        assert "jamming" in kinds and None in kinds  # the alert and the burst's detection, every run
        earlier.append(chain)
        del tb, chain, sink
        gc.collect()  # the sink goes, and the next one is given its alias
