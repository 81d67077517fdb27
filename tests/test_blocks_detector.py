"""anomaly_detector: thresholds the encoder's tags (no second model pass) into scores, tags and alert events."""

import numpy as np
import pmt
import pytest
from blocks_fake_model import ToneModel, run_or_fail
from gnuradio import blocks, gr
from test_blocks_encoder import FREQ, NFFT, RATE, assert_covers, bin_centre, rx_tags, tag, tags_by_key

from gnuradio.specenc.anomaly_detector import anomaly_detector
from gnuradio.specenc.spectrum_encoder import spectrum_encoder

pytestmark = pytest.mark.usefixtures("specenc_cpp")  # the encoder joins emissions in C++


def run_chain(spectra, threshold=-1.0, holdoff=4, stream_tags=(), model=None):
    model = model or ToneModel(NFFT)
    tb = gr.top_block()
    src = blocks.vector_source_f(spectra.ravel().tolist(), False, NFFT, list(stream_tags))
    enc = spectrum_encoder(model_path=model, nfft=NFFT, batch=7)
    det = anomaly_detector(nfft=NFFT, threshold=threshold, holdoff=holdoff)
    scores = blocks.vector_sink_f()
    alerts = blocks.message_debug()
    tb.connect(src, enc, det, scores)
    tb.msg_connect(det, "alerts", alerts, "store")
    tb.run()
    return np.array(scores.data()), scores, [pmt.to_python(alerts.get_message(i)) for i in range(alerts.num_messages())]


def bursts():
    """Two strong tone bursts (anomalous for ToneModel) in bins 10 and 50, a weak tone in between."""
    spectra = np.full((100, NFFT), -100.0, np.float32)
    spectra[20:30, 10] = -66.0  # 34 dB: score 0.88
    spectra[40:45, 32] = -85.0  # 15 dB: detected, not anomalous
    spectra[60:62, 50] = -30.0  # 70 dB: score ~1
    return spectra


def test_scores_are_the_encoders_and_the_model_runs_once():
    spectra = bursts()
    model = ToneModel(NFFT)
    scores, _, _ = run_chain(spectra, model=model)
    assert model.rows_seen == len(spectra) + 1
    np.testing.assert_allclose(scores, ToneModel(NFFT).predict(spectra).anomaly_score, rtol=1e-6)


def test_alert_events_at_the_right_time_and_frequency():
    t0 = 1_700_000_000.5
    scores, sink, alerts = run_chain(bursts(), holdoff=4, stream_tags=rx_tags(time=t0))
    assert [a["spectrum"] for a in alerts] == [20, 60]  # one alert per event, at its onset
    first, second = alerts
    assert first["kind"] == "jamming" and first["score"] > 0.5 and first["threshold"] == 0.5
    assert first["time"] == pytest.approx(t0 + 20 * 32 / RATE)
    assert first["sample_start"] == 20 * 32 and first["sample_count"] == NFFT
    # The model located each anomaly in its tone's bin.
    assert_covers(first, bin_centre(10))
    assert_covers(second, bin_centre(50))
    assert first["band"] == "ism" and first["center_freq"] == FREQ and first["sample_rate"] == RATE
    tagged = tags_by_key(sink, "specenc_anomaly")
    assert tagged == {20: "jamming", 60: "jamming"}  # one tag per alert, where it was raised
    keys = {pmt.symbol_to_string(t.key) for t in sink.tags()}
    assert keys == {"specenc_anomaly", "rx_freq", "rx_rate", "rx_time"}  # legible on a time sink


def test_rx_tags_of_other_types_are_read_or_ignored_with_a_warning(capfd):
    """A uint64 rate is a rate; a rate <= 0, a frequency that is a string and an rx_time that is a bare number
    (sources' bugs) are logged and ignored. Before, pmt.to_double raised in the encoder's thread: the flowgraph hung."""
    t0 = 1_700_000_000.5
    odd = [tag(40, "rx_rate", pmt.from_uint64(int(RATE))), tag(41, "rx_freq", pmt.intern("abc")),
           tag(42, "rx_rate", pmt.from_double(-1.0)), tag(43, "rx_time", pmt.from_double(5.0))]
    _, _, alerts = run_chain(bursts(), stream_tags=rx_tags(time=t0) + odd)
    assert [a["spectrum"] for a in alerts] == [20, 60]
    late = alerts[1]
    assert (late["center_freq"], late["sample_rate"]) == (FREQ, RATE)
    assert late["time"] == pytest.approx(t0 + 60 * 32 / RATE)
    out = capfd.readouterr().out
    for message in ("rx_freq=abc on spectrum 41 is no frequency; ignored", "rx_rate=-1 on spectrum 42 is no rate > 0",
                    "rx_time=5 on spectrum 43 is no time"):
        assert message in out


def test_holdoff_zero_alerts_every_spectrum_and_threshold_override():
    _, sink, alerts = run_chain(bursts(), holdoff=0)
    assert len(alerts) == 12
    assert sorted(tags_by_key(sink, "specenc_anomaly")) == [a["spectrum"] for a in alerts]
    _, _, alerts = run_chain(bursts(), threshold=0.95, holdoff=0)
    assert [a["spectrum"] for a in alerts] == [60, 61]  # only the 70 dB burst clears 0.95


def test_a_retune_starts_a_new_event():
    spectra = np.full((60, NFFT), -100.0, np.float32)
    spectra[20:40, 10] = -30.0  # one burst, above threshold throughout
    _, _, alerts = run_chain(spectra, holdoff=16, stream_tags=rx_tags())
    assert [a["spectrum"] for a in alerts] == [20]
    retune = [*rx_tags(), tag(30, "rx_freq", pmt.from_double(FREQ + 1e6))]
    _, _, alerts = run_chain(spectra, holdoff=16, stream_tags=retune)
    assert [a["spectrum"] for a in alerts] == [20, 30]  # the new band's alert is not held off by the old one's
    assert [a["center_freq"] for a in alerts] == [FREQ, FREQ + 1e6]
    assert_covers(alerts[1], bin_centre(10, freq=FREQ + 1e6))


def test_negative_threshold_restores_the_calibrated_one():
    spectra = bursts()
    tb = gr.top_block()
    enc = spectrum_encoder(model_path=ToneModel(NFFT), nfft=NFFT)
    det = anomaly_detector(nfft=NFFT, threshold=0.95)
    tb.connect(blocks.vector_source_f(spectra.ravel().tolist(), False, NFFT), enc, det, blocks.null_sink(4))
    tb.run()
    assert det.threshold == 0.95
    det.set_threshold(-1)
    assert det.threshold == ToneModel.threshold


def test_threshold_output_follows_the_threshold_in_use():
    spectra = bursts()
    tb = gr.top_block()
    enc = spectrum_encoder(model_path=ToneModel(NFFT), nfft=NFFT, batch=7)
    det = anomaly_detector(nfft=NFFT, threshold_output=True)
    scores, thresholds = blocks.vector_sink_f(), blocks.vector_sink_f()
    tb.connect(blocks.vector_source_f(spectra.ravel().tolist(), False, NFFT), enc, det, scores)
    tb.connect((det, 1), thresholds)
    tb.run()
    assert len(thresholds.data()) == len(scores.data()) == len(spectra)
    assert set(thresholds.data()) == {ToneModel.threshold}  # the calibrated one, from the first spectrum on
    # Without the encoder's context no threshold is known yet: NaN, as the score.
    tb = gr.top_block()
    det = anomaly_detector(nfft=NFFT, threshold_output=True)
    thresholds = blocks.vector_sink_f()
    tb.connect(blocks.vector_source_f([0.0] * NFFT * 3, False, NFFT), det, blocks.null_sink(4))
    tb.connect((det, 1), thresholds)
    tb.run()
    assert np.isnan(thresholds.data()).all() and len(thresholds.data()) == 3


def weak_tone(n=60, onset=20):
    """Spectra with a 28 dB tone from `onset` on: ToneModel scores it 0.27, under its 0.5 threshold."""
    spectra = np.full((n, NFFT), -100.0, np.float32)
    spectra[onset:, 40] = -72.0
    return spectra


def run_integrating(spectra, integrate, threshold, stream_tags=()):
    tb = gr.top_block()
    enc = spectrum_encoder(model_path=ToneModel(NFFT), nfft=NFFT, batch=7)
    det = anomaly_detector(nfft=NFFT, threshold=threshold, integrate=integrate)
    scores, log = blocks.vector_sink_f(), blocks.message_debug()
    tags = [*rx_tags(), *stream_tags]
    tb.connect(blocks.vector_source_f(spectra.ravel().tolist(), False, NFFT, tags), enc, det, scores)
    tb.msg_connect(det, "alerts", log, "store")
    tb.run()
    return np.array(scores.data()), scores, [pmt.to_python(log.get_message(i)) for i in range(log.num_messages())]


def test_integration_alerts_on_a_persistent_weak_anomaly():
    spectra = weak_tone()
    per_spectrum = ToneModel(NFFT).predict(spectra).anomaly_score
    assert run_chain(spectra)[2] == []  # the calibrated 0.5: never
    means, sink, alerts = run_integrating(spectra, 8, 0.2)
    assert np.isnan(means[:7]).all()  # fewer than 8 scores yet
    np.testing.assert_allclose(means[7:], np.convolve(per_spectrum, np.ones(8) / 8, "valid"), rtol=1e-5)
    # Six of eight scores at 0.27 make a mean over 0.2 at spectrum 25; the alert covers the mean's 8 spectra.
    assert tags_by_key(sink, "specenc_anomaly") == {25: "unknown"}
    (alert,) = alerts
    assert (alert["spectrum"], alert["spectra"], alert["score"]) == (18, 8, pytest.approx(means[25]))
    assert (alert["sample_start"], alert["sample_count"]) == (18 * 32, 7 * 32 + NFFT)
    assert (alert["freq_lower_edge"], alert["freq_upper_edge"]) == pytest.approx((FREQ - RATE / 2, FREQ + RATE / 2))
    # A spectrum the model skipped (NaN) is no score: the mean over it takes the 8 finite ones around it.
    spectra[30, 5] = np.nan
    skipped, _, _ = run_integrating(spectra, 8, 0.2)
    finite = np.delete(per_spectrum, 30)
    assert np.isnan(skipped[30])
    np.testing.assert_allclose(np.delete(skipped, 30)[7:], np.convolve(finite, np.ones(8) / 8, "valid"), rtol=1e-5)
    spectra[30, 5] = -100.0
    # A stronger spectrum in the window (34 dB in bin 10 at spectrum 20, likely in an earlier work() call: kind
    # and bins located) names the alert and places it; the mean first clears 0.2 at spectrum 23.
    spectra[20, 10] = -66.0
    _, _, alerts = run_integrating(spectra, 8, 0.2)
    assert [(a["spectrum"], a["spectra"], a["kind"]) for a in alerts] == [(16, 8, "jamming")]
    assert_covers(alerts[0], bin_centre(10), bins=31)  # its located bins: the tones in bins 10 and 40


def test_integration_starts_again_at_a_retune():
    """A retune shows another band: means do not average its scores with the old band's, and its alert is new."""
    spectra = weak_tone()
    per_spectrum = ToneModel(NFFT).predict(spectra).anomaly_score
    retune = [tag(40, "rx_freq", pmt.from_double(FREQ + 1e6))]
    means, sink, alerts = run_integrating(spectra, 8, 0.2, retune)
    assert np.isnan(means[40:47]).all()  # fewer than 8 scores of the new band yet
    np.testing.assert_allclose(means[47:], np.convolve(per_spectrum[40:], np.ones(8) / 8, "valid"), rtol=1e-5)
    assert [(a["spectrum"], a["spectra"], a["center_freq"]) for a in alerts] == [(18, 8, FREQ), (40, 8, FREQ + 1e6)]
    assert tags_by_key(sink, "specenc_anomaly") == {25: "unknown", 47: "unknown"}


def test_integration_starts_again_where_the_time_jumps():
    """An rx_time that is not the stream's continuing time (samples dropped, a new capture) starts new means: one
    across it was placed by the new clock, its time off by the jump (audit 34). An rx_time that continues does not."""
    spectra = weak_tone()
    t0 = 100.0
    step = 32 / RATE
    jump = [tag(22, "rx_time", pmt.make_tuple(pmt.from_uint64(110), pmt.from_double(0.0)))]
    means, _, alerts = run_integrating(spectra, 8, 0.2, rx_tags(time=t0)[2:] + jump)
    assert np.isnan(means[22:29]).all() and np.isfinite(means[29:]).all()
    (alert,) = alerts
    assert alert["spectrum"] >= 22 and alert["time"] == pytest.approx(110.0 + (alert["spectrum"] - 22) * step)
    same = [tag(22, "rx_time", pmt.make_tuple(pmt.from_uint64(100), pmt.from_double(22 * step)))]
    means, _, alerts = run_integrating(spectra, 8, 0.2, rx_tags(time=t0)[2:] + same)
    assert np.isfinite(means[7:]).all() and [a["spectrum"] for a in alerts] == [18]


def test_integration_follows_the_models_calibration_unless_set():
    class Calibrated(ToneModel):
        metadata = {"calibration": {"integrate": 4}}

    spectra = weak_tone(30, 10)
    want = ToneModel(NFFT).predict(spectra).anomaly_score
    for integrate, n in ((0, 4), (2, 2)):
        tb = gr.top_block()
        enc = spectrum_encoder(model_path=Calibrated(NFFT), nfft=NFFT, batch=7)
        det = anomaly_detector(nfft=NFFT, integrate=integrate)
        scores = blocks.vector_sink_f()
        tb.connect(blocks.vector_source_f(spectra.ravel().tolist(), False, NFFT), enc, det, scores)
        tb.run()
        assert det.integrate == n
        np.testing.assert_allclose(np.array(scores.data())[n - 1:], np.convolve(want, np.ones(n) / n, "valid"),
                                   rtol=1e-5)
    with pytest.raises(ValueError, match="integrate=-1"):
        anomaly_detector(nfft=NFFT, integrate=-1)


def test_alert_without_location_covers_the_whole_band():
    class Unlocated(ToneModel):
        def predict(self, spectra, rx_freq=None, sample_rate=None):
            pred = super().predict(spectra, rx_freq, sample_rate)
            del pred.anomaly_bins
            return pred

    _, _, alerts = run_chain(bursts(), stream_tags=rx_tags(), model=Unlocated(NFFT))
    assert alerts[0]["freq_lower_edge"] == pytest.approx(FREQ - RATE / 2)
    assert alerts[0]["freq_upper_edge"] == pytest.approx(FREQ + RATE / 2)


def test_nan_score_for_skipped_spectra():
    spectra = bursts()
    spectra[5, 3] = np.nan
    scores, _, _ = run_chain(spectra)
    assert np.isnan(scores[5]) and np.isfinite(np.delete(scores, 5)).all()


def test_untagged_input_gives_nan_and_no_alerts_and_says_so(capfd):
    for threshold in (-1.0, 0.5):  # an explicit threshold had silenced the error (audit 34)
        tb = gr.top_block()
        det = anomaly_detector(nfft=NFFT, threshold=threshold)
        out = blocks.vector_sink_f()
        tb.connect(blocks.vector_source_f([0.0] * NFFT * 10, False, NFFT), det, out)
        tb.run()
        assert np.isnan(out.data()).all() and det.threshold == (None if threshold < 0 else threshold)
        assert capfd.readouterr().out.count("no specenc_context/score tags: connect this block") == 1


def test_a_threshold_under_the_models_warns_that_its_extra_alerts_have_no_kind(capfd):
    """The model names a kind only above its own threshold: alerts from a lower one read "unknown" (audit 34)."""
    _, _, alerts = run_chain(bursts(), threshold=0.2)
    assert "threshold 0.2 is under the model's 0.5, above which alone it names a kind" in capfd.readouterr().out
    _, _, alerts = run_chain(bursts(), threshold=0.7)
    assert "under the model's" not in capfd.readouterr().out
    # A slider moves in steps: once per crossing under the model's threshold, not once per step (audit 35).
    tb = gr.top_block()
    det = anomaly_detector(nfft=NFFT)
    src = blocks.vector_source_f(bursts().ravel().tolist(), False, NFFT)
    tb.connect(src, spectrum_encoder(model_path=ToneModel(NFFT), nfft=NFFT), det, blocks.null_sink(4))
    tb.run()
    for value in (0.4, 0.3, 0.2, 0.7, 0.3, -1.0, 0.1):
        det.set_threshold(value)
    assert capfd.readouterr().out.count("is under the model's 0.5") == 3  # 0.4, then 0.3 and 0.1


def test_constructor_and_grc_callbacks():
    det = anomaly_detector(nfft=NFFT, threshold=0.3, holdoff=2)
    det.set_threshold(0.7)
    det.set_holdoff(5)
    assert det.threshold == 0.7 and det.holdoff == 5
    with pytest.raises(ValueError, match="threshold=2"):
        det.set_threshold(2)
    with pytest.raises(ValueError, match="holdoff=-1"):
        anomaly_detector(nfft=NFFT, holdoff=-1)
    # A float passed the range check and then failed inside work(), which hung the flowgraph (audit 34).
    for bad in (lambda: anomaly_detector(nfft=NFFT, integrate=4.0), lambda: anomaly_detector(nfft=NFFT, holdoff=2.5),
                lambda: det.set_holdoff(1.0)):
        with pytest.raises(ValueError, match=r"(integrate=4.0|holdoff=2.5|holdoff=1.0) must be a whole number"):
            bad()
    assert anomaly_detector(nfft=NFFT, integrate=np.int64(4)).integrate == 4 and det.holdoff == 5
    for bad, message in ((lambda: det.set_threshold(True), "threshold=True must be a number"),  # 1.0: no alert ever
                         (lambda: det.set_holdoff(True), "holdoff=True must be a whole number")):
        with pytest.raises(ValueError, match=message):
            bad()
    for bad in (lambda: det.set_threshold(float("nan")), lambda: anomaly_detector(nfft=NFFT, threshold=float("nan"))):
        with pytest.raises(ValueError, match="threshold=nan must be <= 1"):  # not taken as "calibrated"
            bad()
    assert det.threshold == 0.7
    for nfft in (0, 1024.5, True):  # numpy's "invalid shape in fixed-type tuple" for the last two (audit 53)
        with pytest.raises(ValueError, match=f"nfft={nfft!r} must be a whole number in 1..65536"):
            anomaly_detector(nfft=nfft)


def test_message_dicts_convert_to_the_same_pmt_as_pmt_to_pmt():
    from gnuradio.specenc.spectrum_tags import dict_to_pmt
    msg = {"kind": "jamming", "score": 0.97, "spectrum": 12, "sample_start": 1 << 40, "located": True,
           "band": None, "time": np.float64(1.5), "bins": np.int64(7), "edges": (1.0, 2.0)}
    plain = {k: v.item() if isinstance(v, np.generic) else v for k, v in msg.items()}
    got = dict_to_pmt(msg)
    assert pmt.equal(got, pmt.to_pmt(plain))
    assert pmt.to_python(got) == plain


def run_tagged(stream_tags, n=50, det=None):
    """The detector (a new one unless given) alone on spectra carrying hand-made specenc_* tags; ends within 30 s or
    fails."""
    tb = gr.top_block()
    det = det or anomaly_detector(nfft=NFFT)
    scores, alerts = blocks.vector_sink_f(), blocks.message_debug()
    tb.connect(blocks.vector_source_f([-60.0] * NFFT * n, False, NFFT, list(stream_tags)), det, scores)
    tb.msg_connect(det, "alerts", alerts, "store")
    run_or_fail(tb)
    return np.array(scores.data()), [pmt.to_python(alerts.get_message(i)) for i in range(alerts.num_messages())]


@pytest.mark.parametrize("bad", ["context", "bins"])
def test_malformed_specenc_tags_are_reported_and_the_flowgraph_goes_on(bad, capfd):
    """A context tag that is no dict of numbers, or anomaly bins that are no bin range (a replayed or foreign
    stream), raised in the detector's thread, which ended, and the flowgraph hung (audit 53)."""
    stream = scored_stream()
    bins = pmt.cons(pmt.from_long(4), pmt.from_long(8))
    stream += [tag(10, "specenc_anomaly_bins", bins), tag(30, "specenc_anomaly_bins", bins)]
    if bad == "context":
        stream.append(tag(20, "specenc_context", pmt.to_pmt({"threshold": 0.5})))
    else:
        stream[-1] = tag(30, "specenc_anomaly_bins", pmt.from_long(7))
    scores, alerts = run_tagged(stream)
    assert len(scores) == 50 and scores[30] == pytest.approx(0.9)
    assert [a["spectrum"] for a in alerts] == [10, 30]
    assert alerts[0]["freq_upper_edge"] - alerts[0]["freq_lower_edge"] == pytest.approx(4 * RATE / NFFT)
    out = capfd.readouterr().out
    if bad == "context":  # the earlier context still holds
        assert "specenc_context" in out and "on spectrum 20 ignored: needs step" in out
        assert alerts[1]["freq_upper_edge"] - alerts[1]["freq_lower_edge"] == pytest.approx(4 * RATE / NFFT)
    else:  # the alert takes the band's edges, as one the model did not locate
        assert "specenc_anomaly_bins=7 on spectrum 30 is no bin range in 0..64; ignored" in out
        assert alerts[1]["freq_upper_edge"] - alerts[1]["freq_lower_edge"] == pytest.approx(RATE)


def scored_stream(above=(10, 30)):
    context = {"threshold": 0.5, "integrate": 1, "step": 32, "span": NFFT, "sample_rate": RATE, "center_freq": FREQ}
    return [tag(0, "specenc_context", pmt.to_pmt(context))] + [
        tag(i, "specenc_anomaly_score", pmt.from_double(0.9 if i in above else 0.1)) for i in range(50)]


def test_a_detector_run_again_alerts_as_a_new_one():
    """Its last run's last alert (spectrum 30) held off the new run's first (spectrum 10; audit 55)."""
    det = anomaly_detector(nfft=NFFT)
    first = run_tagged(scored_stream(), det=det)[1]
    again = run_tagged(scored_stream(), det=det)[1]
    assert [a["spectrum"] for a in first] == [a["spectrum"] for a in again] == [10, 30]


def score_stream(scores, integrate=1):
    """Context (threshold 0.5, `integrate`) on spectrum 0 and one specenc_anomaly_score tag per spectrum."""
    context = {"threshold": 0.5, "integrate": integrate, "step": 32, "span": NFFT, "sample_rate": RATE,
               "center_freq": FREQ}
    return [tag(0, "specenc_context", pmt.to_pmt(context))] + [
        tag(i, "specenc_anomaly_score", pmt.from_double(float(s))) for i, s in enumerate(scores)]


def test_spectra_exactly_holdoff_apart_are_one_event():
    """audit 61: holdoff read as `< holdoff` apart passed. Documented: a spectrum above the threshold within `holdoff`
    spectra of the last one is the same event. holdoff=4: 14 is 4 after 10 (held off), 19 and 24 are 5 after the last
    one above (new alerts)."""
    _, alerts = run_tagged(scored_stream(above=(10, 14, 19, 24)), det=anomaly_detector(nfft=NFFT, holdoff=4))
    assert [a["spectrum"] for a in alerts] == [10, 19, 24]


def test_a_score_equal_to_the_threshold_raises_no_alert_and_the_metrics_agree():
    """audit 61: the alert rule is `score > threshold`; training.metrics (false_alarm_rate, f1_at) must count the same
    alerts, as eval and calibrate report rates with them. Spectrum 10 scores exactly the threshold: no alert."""
    from gnuradio.specenc.training import metrics
    truth = np.full(50, 0.1)
    truth[[10, 20]], truth[30] = 0.5, 0.9
    scores, alerts = run_tagged(score_stream(truth), det=anomaly_detector(nfft=NFFT, holdoff=0))
    assert [a["spectrum"] for a in alerts] == [30]
    assert metrics.false_alarm_rate(scores, 0.5) * len(scores) == len(alerts) == 1
    labels = np.zeros(50, bool)
    labels[[10, 30]] = True
    c = metrics.f1_at(labels, scores, 0.5)
    assert (c["tp"], c["fp"], c["fn"]) == (1, 0, 1)


def test_integrated_scores_are_the_detectors_means_in_place():
    """audit 61: calibrate.integrated_scores (what eval and calibrate threshold per spectrum) must place each mean on
    the spectrum where the detector outputs it, the last of its window (0 where the detector gives NaN)."""
    from gnuradio.specenc.training.calibrate import integrated_scores
    raw = np.random.default_rng(5).uniform(0.0, 0.7, 50)
    scores, alerts = run_tagged(score_stream(raw, integrate=3), det=anomaly_detector(nfft=NFFT, holdoff=0))
    assert np.isnan(scores[:2]).all()
    np.testing.assert_allclose(np.nan_to_num(scores, nan=0.0), integrated_scores(raw, 3), rtol=1e-6, atol=1e-7)
    assert len(alerts) == int(np.sum(integrated_scores(raw, 3) > 0.5)) > 0


@pytest.mark.parametrize("pair", [(60, 65), (8, 8), (9, 8)])
def test_anomaly_bins_past_the_spectrum_or_empty_are_ignored_by_name(pair, capfd):
    """audit 61: a bin range ending past nfft, or empty, was taken (alert edges outside the band, or of zero width).
    It is no bin range in 0..nfft: logged, and the alert covers the band as one not located."""
    bins = pmt.cons(pmt.from_long(pair[0]), pmt.from_long(pair[1]))
    _, alerts = run_tagged(scored_stream() + [tag(10, "specenc_anomaly_bins", bins)])
    assert [a["spectrum"] for a in alerts] == [10, 30]
    edges = alerts[0]["freq_lower_edge"], alerts[0]["freq_upper_edge"]
    assert edges == pytest.approx((FREQ - RATE / 2, FREQ + RATE / 2))
    assert f"specenc_anomaly_bins=({pair[0]} . {pair[1]}) on spectrum 10 is no bin range in 0..64; ignored" \
        in capfd.readouterr().out


def test_integrating_other_than_the_calibration_warns_that_the_rate_does_not_hold(capfd):
    """audit 61: removing the warning passed. The model's threshold holds its false-alarm rate only for the number of
    scores it was calibrated for (the context's integrate); an explicit threshold is the user's own."""
    run_tagged(score_stream(np.full(20, 0.1), integrate=1), n=20, det=anomaly_detector(nfft=NFFT, integrate=2))
    warning = "the model's threshold was calibrated for integrate=1, this block integrates 2 scores"
    assert warning in capfd.readouterr().out
    for det in (anomaly_detector(nfft=NFFT, integrate=1), anomaly_detector(nfft=NFFT, integrate=2, threshold=0.5)):
        run_tagged(score_stream(np.full(20, 0.1), integrate=1), n=20, det=det)
        assert "calibrated for integrate" not in capfd.readouterr().out
