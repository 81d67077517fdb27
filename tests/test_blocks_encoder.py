"""spectrum_encoder: one model pass per spectrum, order kept, tags and detections placed in time and Hz."""

import pathlib
import threading
import time

import numpy as np
import pmt
import pytest
from blocks_fake_model import ToneModel, run_or_fail
from gnuradio import blocks, gr

from gnuradio.specenc import spectrum_tags as T
from gnuradio.specenc.anomaly_detector import anomaly_detector
from gnuradio.specenc.spectrum_encoder import _extents, open_model, spectrum_encoder

pytestmark = pytest.mark.usefixtures("specenc_cpp")  # the encoder joins emissions in C++
NFFT = 64
RATE = 1e6
FREQ = 433.92e6


def tag(offset, key, value):
    return gr.tag_utils.python_to_tag((offset, pmt.intern(key), value))


def rx_tags(freq=FREQ, rate=RATE, time=None):
    out = [tag(0, "rx_freq", pmt.from_double(freq)), tag(0, "rx_rate", pmt.from_double(rate))]
    if time is not None:
        out.append(tag(0, "rx_time", pmt.make_tuple(pmt.from_uint64(int(time)), pmt.from_double(time % 1))))
    return out


def assert_covers(msg, centre_hz, bins=1, rate=RATE):
    """The message's frequency edges hold `centre_hz` and span `bins` bins."""
    assert msg["freq_lower_edge"] < centre_hz < msg["freq_upper_edge"]
    assert msg["freq_upper_edge"] - msg["freq_lower_edge"] == pytest.approx(bins * rate / NFFT)


def bin_centre(k, freq=FREQ, rate=RATE):
    """Frequency of bin k's centre in an fftshifted spectrum (bin NFFT/2 is the centre frequency)."""
    return freq + (k - NFFT // 2) * rate / NFFT


def scene(n=120, seed=0):
    """Noise floor at -100 dB with a tone whose level ramps up, so every spectrum scores differently."""
    rng = np.random.default_rng(seed)
    spectra = (-100 + rng.normal(0, 1, (n, NFFT))).astype(np.float32)
    spectra[:, 20] = np.linspace(-95, -40, n)
    return spectra


def run_encoder(spectra, model, stream_tags=(), batch=16, embeddings=0, **kw):
    tb = gr.top_block()
    src = blocks.vector_source_f(spectra.ravel().tolist(), False, NFFT, list(stream_tags))
    enc = spectrum_encoder(model_path=model, nfft=NFFT, batch=batch, embeddings=embeddings, **kw)
    out = blocks.vector_sink_f(NFFT)
    dets = blocks.message_debug()
    tb.connect(src, enc, out)
    tb.msg_connect(enc, "detections", dets, "store")
    emb = None
    if embeddings:
        emb = blocks.vector_sink_f(embeddings)
        tb.connect((enc, 1), emb)
    tb.run()
    return out, [pmt.to_python(dets.get_message(i)) for i in range(dets.num_messages())], emb


def tags_by_key(sink, key):
    return {t.offset: pmt.to_python(t.value) for t in sink.tags() if pmt.symbol_to_string(t.key) == key}


def test_one_model_pass_per_spectrum_in_order_with_tags():
    spectra = scene()
    model = ToneModel(NFFT)
    out, _, _ = run_encoder(spectra, model, batch=16)
    np.testing.assert_array_equal(np.array(out.data()).reshape(-1, NFFT), spectra)  # pass-through, same count
    assert model.rows_seen == len(spectra) + 1  # + the constructor's warm-up row
    assert all(b <= 16 for b, _ in model.calls)
    ref = ToneModel(NFFT).predict(spectra)
    scores = tags_by_key(out, "specenc_anomaly_score")
    assert sorted(scores) == list(range(len(spectra)))
    np.testing.assert_allclose([scores[i] for i in range(len(spectra))], ref.anomaly_score, rtol=1e-6)
    classes = tags_by_key(out, "specenc_class")
    assert [classes[i] for i in range(len(spectra))] == ref.labels
    conf = tags_by_key(out, "specenc_confidence")
    np.testing.assert_allclose([conf[i] for i in range(len(spectra))], ref.confidence, rtol=1e-6)
    ctx = tags_by_key(out, "specenc_context")[0]
    assert ctx["threshold"] == ToneModel.threshold and ctx["step"] == 32 and ctx["span"] == NFFT


def test_anomaly_kind_is_tagged_only_on_spectra_scored_above_the_threshold():
    """The docstring: specenc_anomaly_kind above the model's threshold. Tagged on every spectrum (an empty kind on
    the others), a block keyed on the tag's presence alerted on all of them (audit 66)."""
    spectra = scene()
    out, _, _ = run_encoder(spectra, ToneModel(NFFT), batch=16)
    ref = ToneModel(NFFT).predict(spectra)
    above = np.flatnonzero(ref.anomaly_score > ToneModel.threshold)
    assert 0 < above.size < len(spectra)
    assert tags_by_key(out, "specenc_anomaly_kind") == {int(i): "jamming" for i in above}


def test_detections_in_hz_and_seconds_from_rx_tags():
    spectra = np.full((40, NFFT), -100.0, np.float32)
    spectra[5:25, 48] = -50.0  # one bin, 16 bins above centre, spectra 5..24
    spectra[10:30, 8] = -50.0  # another, 24 bins below centre, spectra 10..29
    t0 = 1_700_000_000.25
    _, dets, _ = run_encoder(spectra, ToneModel(NFFT), rx_tags(time=t0), overlap=0.5, average=2)
    assert len(dets) == 2  # one message per emission, not per spectrum
    step, span = 32 * 2, 32 + NFFT  # hop * average, (average - 1) * hop + nfft
    high, low = sorted(dets, key=lambda d: -d["freq_lower_edge"])
    assert (high["spectrum"], high["spectra"], low["spectrum"], low["spectra"]) == (5, 20, 10, 20)
    assert high["sample_start"] == 5 * step and high["sample_count"] == 19 * step + span
    assert high["time"] == pytest.approx(t0 + 5 * step / RATE, abs=1e-6)
    assert low["time"] == pytest.approx(t0 + 10 * step / RATE, abs=1e-6)
    assert_covers(high, bin_centre(48))
    assert_covers(low, bin_centre(8))
    assert high["band"] == "ism" and high["family"] == "tone" and high["confidence"] == pytest.approx(0.9)


def test_an_emission_must_stand_clear_of_the_noise_its_averaging_leaves():
    # 12 dB over the floor in one bin for 10 spectra: z = 12 / scatter per detection, sqrt(10) z in all. One frame
    # per spectrum scatters noise by 5.57 dB (6.8 in all, short of 8: dropped), four by 2.31 dB (16.4: kept).
    spectra = np.full((40, NFFT), -100.0, np.float32)
    spectra[5:15, 48] = -88.0
    spectra[20:30, 8] = -50.0  # 50 dB: clear either way
    for average, want in ((1, [8]), (4, [8, 48])):
        _, dets, _ = run_encoder(spectra, ToneModel(NFFT, contrast=True), overlap=0.5, average=average)
        assert sorted(d["bin_start"] for d in dets) == want
    _, dets, _ = run_encoder(spectra, ToneModel(NFFT), overlap=0.5, average=1)
    assert len(dets) == 2  # detections without a contrast_db are not weighed


def test_emissions_open_at_end_of_stream_are_flushed():
    spectra = np.full((10, NFFT), -100.0, np.float32)
    spectra[:, 40] = -50.0
    model = ToneModel(NFFT)
    tb = gr.top_block()
    enc = spectrum_encoder(model_path=model, nfft=NFFT)
    dbg = blocks.message_debug()
    tb.connect(blocks.vector_source_f(spectra.ravel().tolist(), False, NFFT, rx_tags()), enc,
               blocks.null_sink(NFFT * 4))
    tb.msg_connect(enc, "detections", dbg, "store")
    tb.run()
    assert dbg.num_messages() == 0
    (rest,) = enc.flush_detections()
    assert rest["spectra"] == 10 and rest["spectrum"] == 0 and enc.flush_detections() == []


def test_short_dropouts_continue_an_emission_long_ones_split_it():
    spectra = np.full((60, NFFT), -100.0, np.float32)
    spectra[0:10, 20] = spectra[15:25, 20] = -50.0  # a 5-spectrum dropout: one emission
    spectra[40:45, 20] = -50.0  # 15 spectra later: a second one
    _, dets, _ = run_encoder(spectra, ToneModel(NFFT))
    assert [(d["spectrum"], d["spectra"]) for d in dets] == [(0, 20), (40, 5)]
    assert dets[0]["sample_count"] == 24 * 32 + NFFT


def test_one_spectrum_flicker_is_dropped_only_when_frames_overlap():
    spectra = np.full((30, NFFT), -100.0, np.float32)
    spectra[5, 20] = spectra[15:17, 40] = -50.0  # one spectrum, then two
    _, dets, _ = run_encoder(spectra, ToneModel(NFFT))  # overlap 0.5, average 1: a sample is in 2 spectra
    assert [d["spectrum"] for d in dets] == [15]
    _, dets, _ = run_encoder(spectra, ToneModel(NFFT), average=2)  # averaged groups do not overlap
    assert [d["spectrum"] for d in dets] == [5, 15]


def test_retune_mid_stream_moves_detections_and_model_band():
    spectra = np.full((40, NFFT), -100.0, np.float32)
    spectra[:, 32] = -50.0  # the centre bin
    spectra[26:, 32] = -100.0  # ends the emission (gap > 8 spectra) before the stream does
    retune = tag(10, "rx_freq", pmt.from_double(1575.42e6))
    model = ToneModel(NFFT)
    _, dets, _ = run_encoder(spectra, model, rx_tags() + [retune], batch=64)
    assert [(d["spectrum"], d["spectra"], d["band"]) for d in dets] == [(0, 10, "ism"), (10, 16, "gnss")]
    assert_covers(dets[0], FREQ)
    assert_covers(dets[1], 1575.42e6)
    seen = np.concatenate([f for _, f in model.calls[1:]])  # rx_freq given to predict, per row
    np.testing.assert_array_equal(seen, [FREQ] * 10 + [1575.42e6] * 30)


def test_a_retune_to_0_hz_leaves_the_earlier_spectra_of_its_window_their_band():
    """0 Hz (unknown tuning, band 'other') from spectrum 10 on: the window's first 10 spectra were tuned to 433.92
    MHz and keep that band (the whole window went to the model without a frequency when it ended at 0 Hz; audit 52)."""
    model = ToneModel(NFFT)
    run_encoder(scene(40), model, rx_tags() + [tag(10, "rx_freq", pmt.from_double(0.0))], batch=64)
    seen = np.concatenate([np.broadcast_to(f, (n,)) for n, f in model.calls[1:]])
    np.testing.assert_array_equal(seen, [FREQ] * 10 + [0.0] * 30)


def test_fallback_tuning_without_rx_tags():
    spectra = np.full((14, NFFT), -100.0, np.float32)
    spectra[:3, 0] = -50.0
    _, dets, _ = run_encoder(spectra, ToneModel(NFFT), sample_rate=2e6, center_freq=100e6)
    # Bin 0 is centred on the band's lower edge, 99 MHz: its detection stops there, half a bin wide
    assert (dets[0]["freq_lower_edge"], dets[0]["freq_upper_edge"]) == pytest.approx((99e6, 99e6 + 1e6 / NFFT))
    assert dets[0]["time"] == 0.0
    assert dets[0]["sample_count"] == 2 * 32 + NFFT


@pytest.mark.parametrize("slow", ["producer", "consumer"])
def test_every_spectrum_comes_out_in_order_behind_a_slow_producer_or_consumer(slow):
    """The encoder holds one window while the model runs: with the input trickling in, or the output
    draining slowly, every spectrum still comes out once, in order, with its score tag."""
    spectra = scene(n=600, seed=3)
    spectra[:, 0] = np.arange(len(spectra))  # row id in bin 0
    tb = gr.top_block()
    src = blocks.vector_source_f(spectra.ravel().tolist(), False, NFFT)
    enc = spectrum_encoder(model_path=ToneModel(NFFT), nfft=NFFT, batch=16)
    throttle = blocks.throttle(4 * NFFT, 6000)
    throttle.set_max_noutput_items(3)  # 3 spectra a call: downstream, the encoder often finds less room than it holds
    out = blocks.vector_sink_f(NFFT)
    tb.connect(*((src, throttle, enc, out) if slow == "producer" else (src, enc, throttle, out)))
    tb.start()
    waiter = threading.Thread(target=tb.wait, daemon=True)
    waiter.start()
    waiter.join(30)  # a window written into too little room raises in work() and leaves the flowgraph hanging
    if waiter.is_alive():
        tb.stop()
        pytest.fail("the flowgraph did not finish within 30 s")
    got = np.array(out.data()).reshape(-1, NFFT)
    np.testing.assert_array_equal(got[:, 0], np.arange(len(spectra)))
    assert sorted(tags_by_key(out, "specenc_anomaly_score")) == list(range(len(spectra)))


def test_nan_and_inf_spectra_are_tagged_skipped_and_do_not_stall():
    spectra = scene(100)
    spectra[30, 5] = np.nan
    spectra[31:34, 7] = np.inf
    spectra[99, 0] = -np.inf
    model = ToneModel(NFFT)  # raises on non-finite rows, like the real model
    out, _, emb = run_encoder(spectra, model, embeddings=ToneModel(NFFT).d_model)
    assert len(out.data()) == spectra.size
    assert sorted(tags_by_key(out, "specenc_invalid")) == [30, 31, 32, 33, 99]
    assert model.rows_seen == 1 + 95
    scored = tags_by_key(out, "specenc_anomaly_score")
    assert 30 not in scored and 29 in scored and 34 in scored
    embeddings = np.array(emb.data()).reshape(100, -1)
    assert np.all(embeddings[30] == 0) and np.all(embeddings[34] != 0)


def test_embedding_output_matches_the_model():
    spectra = scene(20)
    model = ToneModel(NFFT)
    _, _, emb = run_encoder(spectra, model, embeddings=model.d_model)
    np.testing.assert_allclose(np.array(emb.data()).reshape(20, -1), ToneModel(NFFT).predict(spectra).embedding)


def test_constructor_refuses_bad_arguments():
    model = ToneModel(NFFT)
    with pytest.raises(ValueError, match="expects 64-bin"):
        spectrum_encoder(model_path=model, nfft=128)
    with pytest.raises(ValueError, match="batch=0"):
        spectrum_encoder(model_path=model, nfft=NFFT, batch=0)
    with pytest.raises(ValueError, match="embeddings=5 .* 8 values"):
        spectrum_encoder(model_path=model, nfft=NFFT, embeddings=5)
    with pytest.raises(ValueError, match="tokens_kept=1.5"):
        spectrum_encoder(model_path=model, nfft=NFFT, tokens_kept=1.5)
    for kw in ({"batch": 64.0}, {"threads": 1.5}, {"nfft": 64.0}, {"embeddings": True}):  # pybind11/numpy errors,
        with pytest.raises(ValueError, match=f"{next(iter(kw))}={next(iter(kw.values()))!r} must be a"):  # or taken
            spectrum_encoder(model_path=model, **{"nfft": NFFT, **kw})
    with pytest.raises(ValueError, match="device='gpu'"):
        open_model("x.safetensors", device="gpu")
    with pytest.raises(ValueError, match="runtime='tensorrt'"):
        open_model("x.safetensors", runtime="tensorrt")


def test_a_model_giving_detections_as_plain_lists_is_refused_by_name():
    class ListModel(ToneModel):
        def predict(self, spectra, rx_freq=None, sample_rate=None):
            p = super().predict(spectra, rx_freq, sample_rate)
            p.detections = list(p.detections)  # rows of dicts: the form before Detections
            return p

    with pytest.raises(ValueError, match="ListModel.predict gives detections as list; .* needs model.detections"):
        spectrum_encoder(model_path=ListModel(NFFT), nfft=NFFT)


def test_cuda_requested_without_gpu_fails_before_start(capfd):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("SKIPPED: a CUDA device is present, so the cuda-absent error cannot be shown")
    with pytest.raises(ValueError, match="torch sees no CUDA device"):
        spectrum_encoder(model_path="", device="cuda")
    assert open_model("", device="auto").device == "cpu"
    # the block says where the model runs and why on GNU Radio's logger (Python logging is silent by default);
    # at GNU Radio's default level, which specenc run (test_app_run) lowers to warn for the whole process
    level = gr.logging().default_level()
    gr.logging().set_default_level(gr.log_levels.info)
    try:
        spectrum_encoder(model_path="", device="auto")
    finally:
        gr.logging().set_default_level(level)
    assert "spectrum_encoder :info: model runs on runtime torch on cpu: device auto: torch sees no CUDA device" in (
        capfd.readouterr().out)


def test_wrong_vlen_between_blocks_is_refused_at_connect():
    enc = spectrum_encoder(model_path=ToneModel(NFFT), nfft=NFFT)
    tb = gr.top_block()
    with pytest.raises(ValueError, match="itemsize mismatch"):
        tb.connect(blocks.vector_source_f([0.0] * 128, False, 128), enc)
    with pytest.raises(ValueError, match="itemsize mismatch"):
        tb.connect(enc, anomaly_detector(nfft=128))


def test_grc_callbacks_exist_and_apply():
    enc = spectrum_encoder(model_path=ToneModel(NFFT), nfft=NFFT, batch=32)
    enc.set_batch(8)
    assert enc.batch == 8
    enc.set_batch(64)  # the buffers were sized for 2 x 32 when the block was made
    assert enc.batch == 32
    with pytest.raises(ValueError, match="batch=0"):
        enc.set_batch(0)
    with pytest.raises(ValueError, match="batch=32.5"):  # accepted, it broke the block's next work() call
        enc.set_batch(32.5)
    for rate in (-1.0, 0.0):  # 0, "unknown", only before any rate is known: set later, times became sample counts
        with pytest.raises(ValueError, match=f"sample_rate={rate} must be a rate > 0 Hz"):
            enc.set_sample_rate(rate)
    with pytest.raises(ValueError, match="center_freq=nan"):
        enc.set_center_freq(float("nan"))
    # A bool read as 1 Hz and a string failed in numpy without the parameter's name (audit 35).
    for bad, message in ((lambda: enc.set_center_freq("8"), "center_freq='8' must be a number"),
                         (lambda: enc.set_sample_rate(True), "sample_rate=True must be a number"),
                         (lambda: enc.set_batch(8.0), "batch=8.0 must be a whole number")):
        with pytest.raises(ValueError, match=message):
            bad()


def test_tuning_set_while_running_reaches_the_next_spectrum_and_the_alerts():
    """set_center_freq/set_sample_rate (GRC callbacks, for sources without rx_* tags) apply from the next spectrum
    the encoder takes in, which leaves tagged rx_freq/rx_rate: the detector's alerts follow and times stay
    continuous. Here the encoder takes its first window after the calls."""
    spectra = np.full((40, NFFT), -100.0, np.float32)
    spectra[20:30, 20] = -20.0  # an alert at spectrum 20
    tb = gr.top_block()
    src = blocks.vector_source_f(spectra.ravel().tolist(), False, NFFT)
    enc = spectrum_encoder(model_path=ToneModel(NFFT), nfft=NFFT, sample_rate=RATE, center_freq=100e6)
    det = anomaly_detector(nfft=NFFT)
    sink, alerts, dets = blocks.vector_sink_f(), blocks.message_debug(), blocks.message_debug()
    tb.connect(src, enc, det, sink)
    tb.msg_connect(det, "alerts", alerts, "store")
    tb.msg_connect(enc, "detections", dets, "store")
    enc.set_center_freq(FREQ)
    enc.set_sample_rate(2 * RATE)
    tb.run()
    (alert,) = [pmt.to_python(alerts.get_message(i)) for i in range(alerts.num_messages())]
    (emission,) = [pmt.to_python(dets.get_message(i)) for i in range(dets.num_messages())] + enc.flush_detections()
    for msg in (alert, emission):
        assert msg["center_freq"] == FREQ and msg["sample_rate"] == 2 * RATE
        assert msg["time"] == pytest.approx(20 * 32 / (2 * RATE))
        assert_covers(msg, bin_centre(20, rate=2 * RATE), rate=2 * RATE)


def test_a_sources_own_tuning_wins_over_a_callbacks_on_the_same_spectrum_downstream_too():
    """The encoder used the source's rx_freq but passed the callback's on after it, so the detector took the
    callback's: alerts and emissions disagreed on the tuning (audit 34)."""
    spectra = np.full((40, NFFT), -100.0, np.float32)
    spectra[20:30, 20] = -20.0
    tb = gr.top_block()
    src = blocks.vector_source_f(spectra.ravel().tolist(), False, NFFT, rx_tags())
    enc = spectrum_encoder(model_path=ToneModel(NFFT), nfft=NFFT, sample_rate=RATE, center_freq=100e6)
    det = anomaly_detector(nfft=NFFT)
    alerts, dets = blocks.message_debug(), blocks.message_debug()
    tb.connect(src, enc, det, blocks.null_sink(4))
    tb.msg_connect(det, "alerts", alerts, "store")
    tb.msg_connect(enc, "detections", dets, "store")
    enc.set_center_freq(300e6)  # lands on spectrum 0, where the source tags FREQ
    tb.run()
    (alert,) = [pmt.to_python(alerts.get_message(i)) for i in range(alerts.num_messages())]
    (emission,) = [pmt.to_python(dets.get_message(i)) for i in range(dets.num_messages())] + enc.flush_detections()
    assert alert["center_freq"] == emission["center_freq"] == FREQ


def test_emissions_end_across_a_stretch_of_nan_spectra():
    """Spectra the model does not score still count as spectra without detections: a tone, 20 NaN spectra, the
    tone again are two emissions (the gap is longer than 8 spectra), the first published before the second."""
    spectra = np.full((80, NFFT), -100.0, np.float32)
    spectra[:, 20] = -50.0
    spectra[30:50] = np.nan
    for batch in (1, 7, 64):
        _, dets, _ = run_encoder(spectra, ToneModel(NFFT), batch=batch)
        assert [(d["spectrum"], d["spectra"]) for d in dets] == [(0, 30)], batch  # the second is still open


def test_a_model_that_raises_is_reported_and_the_stream_goes_on(capfd):
    class Failing(ToneModel):
        def predict(self, spectra, rx_freq=None, sample_rate=None):
            if len(self.calls) in (2, 3):  # the warm-up, one window, then two windows fail
                self.calls.append((len(spectra), rx_freq))
                raise RuntimeError("out of memory")
            return super().predict(spectra, rx_freq, sample_rate)

    spectra = scene(64)
    done = threading.Event()
    result = {}

    def run():
        result["out"], _, _ = run_encoder(spectra, model, batch=16)
        done.set()

    model = Failing(NFFT)
    threading.Thread(target=run, daemon=True).start()
    assert done.wait(60), "the flowgraph hung after the model raised"
    out = result["out"]
    np.testing.assert_array_equal(np.array(out.data()).reshape(-1, NFFT), spectra)  # every spectrum, in order
    ends = np.cumsum([n for n, _ in model.calls[1:]])  # the windows' ends, in stream order
    failed = list(range(ends[0], ends[2]))  # the second and third windows
    assert failed and sorted(tags_by_key(out, "specenc_invalid")) == failed
    assert sorted(tags_by_key(out, "specenc_anomaly_score")) == sorted(set(range(64)) - set(failed))
    captured = capfd.readouterr()
    logged = captured.out + captured.err  # GNU Radio's logger (console sink)
    assert logged.count("the model failed on spectra") == 1  # once for the two failures in a row
    assert f"the model failed on spectra {ends[0]}..{ends[1] - 1} (RuntimeError: out of memory)" in logged


def test_tag_keys_are_the_documented_names():
    assert [pmt.symbol_to_string(k) for k in (T.CLASS, T.CONFIDENCE, T.ANOMALY, T.DETECTIONS_PORT, T.ALERTS_PORT)] \
        == ["specenc_class", "specenc_confidence", "specenc_anomaly", "detections", "alerts"]


def test_anomaly_bin_extents_are_first_and_one_past_last_bin():
    bins = np.zeros((4, 16), bool)
    bins[0, 3:6] = True
    bins[1, [0, 15]] = True  # split extent: first to last
    bins[3, :] = True
    located, lo, hi = _extents(bins, 4)
    assert located.tolist() == [True, True, False, True]
    assert list(zip(lo.tolist(), hi.tolist())) == [(3, 6), (0, 16), (0, 16)]  # the located rows'
    located, lo, hi = _extents(None, 2)
    assert located.tolist() == [False, False] and lo.size == hi.size == 0


def test_tokens_kept_runs_the_model_on_fewer_tokens_in_the_flowgraph(tmp_path):
    from gnuradio.specenc.model import ModelConfig, SpectrumModel, load_model
    model = SpectrumModel.from_config(ModelConfig(nfft=NFFT, pool_stride=4, d_model=16, n_layers=1, n_heads=2,
                                                  n_kv_heads=2, dropout_mode="none", drop_ratio=0.0), seed=0)
    path = pathlib.Path(model.save(str(tmp_path / "m.safetensors"))[0])
    spectra = scene(n=20)
    out, _, _ = run_encoder(spectra, path, tokens_kept=0.5)  # a pathlib.Path: taken for a loaded model (audit 55)
    model.set_tokens_kept(0.5)
    assert model.net.dropout.n_keep == NFFT // 4 // 2
    labels = tags_by_key(out, "specenc_class")
    assert sorted(labels) == list(range(20))  # every spectrum classified, none dropped
    assert [labels[i] for i in range(20)] == model.predict(spectra).labels
    assert [labels[i] for i in range(20)] != load_model(str(path)).predict(spectra).labels  # all tokens: other labels


def test_a_loaded_model_runs_as_loaded_or_is_refused():
    """Settings the encoder cannot apply to a model object were ignored (backend, runtime, device) or changed the
    caller's object under it (tokens_kept; audit 52)."""
    from gnuradio.specenc.model import ModelConfig, SpectrumModel
    model = SpectrumModel.from_config(ModelConfig(nfft=NFFT, pool_stride=4, d_model=16, n_layers=1, n_heads=2,
                                                  n_kv_heads=2, dropout_mode="none", drop_ratio=0.0), seed=0)
    for kw, said in (({"backend": "mha"}, "backend='mha'"), ({"device": "cuda"}, "device='cuda'"),
                     ({"runtime": "onnxruntime"}, "runtime='onnxruntime'"), ({"tokens_kept": 0.5}, "tokens_kept")):
        with pytest.raises(ValueError, match=f"{said} .*loaded model"):
            spectrum_encoder(model_path=model, nfft=NFFT, **kw)
    assert model.net.dropout.n_keep == NFFT // 4


def test_a_flowgraph_run_again_or_reconfigured_classifies_every_spectrum_again():
    """Started again, GNU Radio gave the encoder buffers smaller than its window: its thread died on "Buffer too
    small for min_noutput_items" and tb.run() hung (audit 57); ending the second run instead stopped lock/unlock
    reconfigurations too (audit 58). Now both run through, one model call at a time."""
    spectra = scene(600)
    model = ToneModel(NFFT)
    want = model.predict(spectra).labels
    tb = gr.top_block()
    src = blocks.vector_source_f(spectra.ravel().tolist(), False, NFFT)
    throttle = blocks.throttle(gr.sizeof_float * NFFT, 500)  # 1.2 s a run
    sink = blocks.vector_sink_f(NFFT)
    tb.connect(src, throttle, spectrum_encoder(model_path=model, nfft=NFFT, batch=256), sink)  # a batch over
    tb.start()  # the second run's buffers
    time.sleep(0.25)
    tb.lock()  # as GRC's runtime reconfiguration does, mid-stream (GNU Radio drops the items in flight)
    before = len(sink.data()) // NFFT
    tb.unlock()
    tb.wait()
    first = len(sink.data()) // NFFT

    def classes():  # in the order written (item counters start again at 0 on each start)
        return [pmt.to_python(t.value) for t in sink.tags() if pmt.symbol_to_string(t.key) == "specenc_class"]

    assert before < first < 600 and len(classes()) == first
    src.rewind()
    run_or_fail(tb, "the second run")
    assert len(sink.data()) == (first + 600) * NFFT and classes()[first:] == want


def test_a_second_run_publishes_its_emissions_as_the_first_did():
    """Item counters start at 0 again: the emission tracker refused "spectrum 0 comes after spectrum 299" and the
    encoder's thread died (audit 60)."""
    spectra = scene(300)
    spectra[:150, 40] = -40.0  # a tone that ends: one emission a run
    tb = gr.top_block()
    src = blocks.vector_source_f(spectra.ravel().tolist(), False, NFFT)
    enc = spectrum_encoder(model_path=ToneModel(NFFT), nfft=NFFT, batch=16)
    dets = blocks.message_debug()
    tb.connect(src, enc, blocks.null_sink(gr.sizeof_float * NFFT))
    tb.msg_connect(enc, "detections", dets, "store")
    run_or_fail(tb, "the first run")
    src.rewind()
    run_or_fail(tb, "the second run")
    got = [pmt.to_python(dets.get_message(i)) for i in range(dets.num_messages())]
    assert len(got) == 2 and got[0] == got[1] and (got[0]["spectrum"], got[0]["spectra"]) == (0, 150)
