"""Known answers for units and positions (audits 87 and 88): times that stay put under repeated rx_rate tags, annotation
times that move with their sample_start, the waterfall's columns on the bins' centres, the encoder placing spectra as
the psd block feeding it spaces them."""

import numpy as np
import pmt
import pytest
from blocks_fake_model import ToneModel, run_or_fail
from gnuradio import blocks, gr

from gnuradio.specenc import dsp
from gnuradio.specenc.spectrum_tags import SpectrumClock

EPOCH = 1.7e9  # a recent Unix time: its seconds hold ~0.24 us of float64 resolution


def tag(key, value, offset=0):
    return gr.tag_utils.python_to_tag((offset, pmt.intern(key), value))


def rx_time(seconds):
    return tag("rx_time", pmt.make_tuple(pmt.from_uint64(int(seconds)), pmt.from_double(seconds % 1)))


# --- SpectrumClock: an rx_rate sent again unchanged -------------------------------------------------------------


def test_an_rx_rate_repeated_unchanged_does_not_move_the_clock():
    """Audit 87: a source that tags rx_rate again on every buffer (same value) re-anchored the clock each time, and
    each re-anchor rounded the epoch seconds (~1.7e9 s): 100 000 repeats moved the spectra's times by ~5 ms (an hour of
    a 1 MS/s stream drifted by about a second). Spectrum N stays at rx_time + N * step / rate."""
    step, rate = 512, 1e6
    clock = SpectrumClock(step=step, span=1024, sample_rate=rate)
    clock.apply(rx_time(EPOCH), 0, pytest.fail)
    rate_tag = tag("rx_rate", pmt.from_double(rate))
    for index in range(1, 100_001):
        clock.apply(rate_tag, index, pytest.fail)
    for n in (1, 1000, 100_000, 200_000):
        assert clock.time(n) == pytest.approx(EPOCH + n * step / rate, abs=1e-6)


def test_an_rx_rate_repeated_unchanged_before_the_first_rx_time_leaves_time_from_it():
    """Audit 87, the same with the rate tag arriving before any rx_time (a source that tags rx_rate first): the later
    rx_time is the reference, and repeats of the unchanged rate after it do not move it."""
    clock = SpectrumClock(step=256, span=1024, sample_rate=0.0)
    clock.apply(tag("rx_rate", pmt.from_double(2e6)), 0, pytest.fail)
    clock.apply(rx_time(EPOCH + 0.25), 0, pytest.fail)
    for index in range(1, 20_001):
        clock.apply(tag("rx_rate", pmt.from_double(2e6)), index, pytest.fail)
    assert clock.time(40_000) == pytest.approx(EPOCH + 0.25 + 40_000 * 256 / 2e6, abs=1e-6)


def test_a_changed_rate_still_re_anchors_and_keeps_time_continuous():
    """Audit 87's fix must not stop a real rate change from re-anchoring: time is continuous at the change and runs at
    the new rate after it (also after the changed rate is then repeated unchanged many times)."""
    step = 512
    clock = SpectrumClock(step=step, span=1024, sample_rate=1e6)
    clock.apply(rx_time(EPOCH), 0, pytest.fail)
    for index in range(1, 1000):
        clock.apply(tag("rx_rate", pmt.from_double(1e6)), index, pytest.fail)
    clock.apply(tag("rx_rate", pmt.from_double(4e6)), 1000, pytest.fail)
    at_change = EPOCH + 1000 * step / 1e6
    for index in range(1001, 50_000):
        clock.apply(tag("rx_rate", pmt.from_double(4e6)), index, pytest.fail)
    assert clock.rate == 4e6
    assert clock.time(1000) == pytest.approx(at_change, abs=1e-6)
    assert clock.time(999) == pytest.approx(at_change - step / 4e6, abs=1e-6)  # the reference moved to spectrum 1000
    assert clock.time(60_000) == pytest.approx(at_change + 59_000 * step / 4e6, abs=1e-6)


# --- start_at_retunes: the annotation's time moves with its start, found by bisection ---------------------------


def reference_start_at_retunes(annotations, retunes, step, sample_rate):
    """What start_at_retunes must do, the slow way: each retune n (in sample order) moves an annotation that starts
    in the spectrum holding n but before n to n, its count shortened and its time moved by as many samples."""
    for n in sorted(n for n, _ in retunes):
        for ann in annotations:
            start = ann["core:sample_start"]
            if n // step * step <= start < n:
                ann["core:sample_start"], ann["core:sample_count"] = n, ann["core:sample_count"] - (n - start)
                if "specenc:time" in ann:
                    ann["specenc:time"] += (n - start) / sample_rate
    return annotations


def test_an_annotation_moved_to_a_retune_moves_its_time_with_it():
    """Audit 87: `specenc run` moved an annotation that started just before a retune (in the spectrum the psd block
    tags with the new tuning) to the retune's sample, but left its specenc:time at the old start: 100 samples (at
    1 MS/s 100 us) earlier than its core:sample_start says."""
    from gnuradio.specenc.app.run import start_at_retunes

    rate, step, t0 = 1e6, 512, 1000.0
    ann = {"core:sample_start": 10 * step + 3, "core:sample_count": 4096, "specenc:time": t0 + (10 * step + 3) / rate}
    untouched = {"core:sample_start": 4 * step, "core:sample_count": 4096, "specenc:time": t0 + 4 * step / rate}
    out = start_at_retunes([ann, untouched], [(10 * step + 103, 2.44e9)], step, rate)
    assert out[0]["core:sample_start"] == 10 * step + 103 and out[0]["core:sample_count"] == 4096 - 100
    assert out[0]["specenc:time"] == pytest.approx(t0 + (10 * step + 103) / rate, abs=1e-12)
    assert out[1] == {"core:sample_start": 4 * step, "core:sample_count": 4096, "specenc:time": t0 + 4 * step / rate}


@pytest.mark.parametrize("seed", range(6))
def test_start_at_retunes_by_bisection_matches_the_brute_force_reference(seed):
    """Audit 86 made start_at_retunes find each annotation's retune by bisection (thousands of retunes and annotations
    took seconds). Against the brute-force rule on random retunes, several within one spectrum (the last one before
    the spectrum's end applies), retunes on spectrum boundaries and annotations outside every retune's spectrum: the
    same starts, counts and times, and each annotation's time still says its core:sample_start."""
    from gnuradio.specenc.app.run import start_at_retunes

    rng = np.random.default_rng(seed)
    step, rate, t0 = int(rng.choice([256, 512, 2048])), float(rng.choice([1e6, 2.4e6])), 1.7e9
    samples = set(rng.integers(0, 400 * step, 150).tolist())
    busy = int(rng.integers(10, 390))  # three retunes inside one spectrum
    samples |= {busy * step + 5, busy * step + 40, busy * step + step - 1, 77 * step}  # and one on a boundary
    retunes = [(int(n), 1e8 + i) for i, n in enumerate(sorted(samples))]
    starts = rng.integers(0, 400 * step, 300).tolist() + [busy * step, busy * step + 4, busy * step + 39, 77 * step - 1]
    annotations = [{"core:sample_start": int(s), "core:sample_count": 2 * step + int(rng.integers(0, 5000)),
                    "core:label": "tone", "specenc:time": t0 + int(s) / rate} for s in starts]
    annotations.append({"core:sample_start": busy * step + 1, "core:sample_count": 4 * step})  # no time: none added
    want = reference_start_at_retunes([dict(a) for a in annotations], retunes, step, rate)
    got = start_at_retunes([dict(a) for a in annotations], retunes, step, rate)
    assert [a["core:sample_start"] for a in got] == [a["core:sample_start"] for a in want]
    assert [a["core:sample_count"] for a in got] == [a["core:sample_count"] for a in want]
    # (epoch seconds hold ~0.24 us: the reference, moving a time once per retune, rounds more often)
    assert [a.get("specenc:time") for a in got] == pytest.approx([a.get("specenc:time") for a in want], abs=1e-6)
    assert "specenc:time" not in got[-1]
    moved = [(a, b) for a, b in zip(annotations, got) if a["core:sample_start"] != b["core:sample_start"]]
    assert moved and len(moved) < len(annotations)
    points = sorted(samples)
    for before, after in zip(annotations, got):
        start = before["core:sample_start"]
        in_spectrum = [n for n in points if start // step * step <= n < (start // step + 1) * step and n > start]
        if in_spectrum:  # moved to the last retune of its spectrum, its time with it
            assert after["core:sample_start"] == in_spectrum[-1]
            assert after["core:sample_count"] == before["core:sample_count"] - (in_spectrum[-1] - start)
        else:  # unchanged
            assert after == before
        if "specenc:time" in after:
            assert after["specenc:time"] == pytest.approx(t0 + after["core:sample_start"] / rate, abs=1e-6)
    busy_ann = got[starts.index(busy * step)]
    assert busy_ann["core:sample_start"] == busy * step + step - 1
    assert got[starts.index(77 * step - 1)]["core:sample_start"] == 77 * step - 1  # a boundary's retune: next spectrum


# --- waterfall: column k centred on bin k ---------------------------------------------------------------------------


@pytest.fixture
def captured_extent(monkeypatch):
    """The `extent` the waterfall gives Axes.imshow."""
    from matplotlib.axes import Axes

    seen = []
    real = Axes.imshow

    def imshow(self, *args, **kwargs):
        seen.append(kwargs.get("extent"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "imshow", imshow)
    return seen


@pytest.mark.parametrize("nfft,rate,centre,retunes", [(1024, 1e6, 1e8, ()), (64, 2.4e6, 433.92e6, ()),
                                                      (1024, 1e6, 1e8, ((5000, 1.2e8),))])
def test_waterfall_columns_are_centred_on_the_bins(tmp_path, captured_extent, nfft, rate, centre, retunes):
    """Audit 88: the waterfall's image spanned centre +- rate/2 exactly, so column k was drawn half a bin above bin k's
    centre (dsp.bin_edges_hz, which places the detection boxes drawn on it): a tone's box sat half a bin beside its
    trace. The extent now starts half a bin lower and is one sample rate wide."""
    from gnuradio.specenc.app import waterfall

    rows = np.full((8, nfft), -100.0, np.float32)
    rows[:, nfft // 2 + 10] = -20.0
    waterfall.render(str(tmp_path / "w.png"), rows, 1e-3, centre, rate, retunes=list(retunes))
    (extent,) = captured_extent
    zero = 0.0 if retunes else centre
    half_bin = rate / (2 * nfft)
    assert extent[0] == pytest.approx((zero - rate / 2 - half_bin) * 1e-6, abs=1e-12)
    assert extent[1] == pytest.approx(extent[0] + rate * 1e-6, abs=1e-12)
    width = (extent[1] - extent[0]) / nfft
    for k in (0, 1, nfft // 2, nfft // 2 + 10, nfft - 1):
        lo, hi = dsp.bin_edges_hz(k, k + 1, nfft, rate, zero)
        column_centre = extent[0] + (k + 0.5) * width
        assert column_centre == pytest.approx((zero + (k - nfft / 2) * rate / nfft) * 1e-6, abs=1e-12)
        if k:  # bin 0's lower edge is clipped to the band
            assert column_centre == pytest.approx((lo + hi) / 2 * 1e-6, abs=1e-12)
    if not retunes and nfft == 1024:  # the brief's known answer
        assert extent[0] == pytest.approx((1e8 - 0.5e6 - 1e6 / 2048) * 1e-6, abs=1e-12)
    assert (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"


# --- the encoder follows the psd block's spacing ---------------------------------------------------------------------

PSD_NFFT, PSD_RATE = 1024, 1e6
BURST = (40_000, 60_000)  # samples of a strong tone


def _psd_scene(samples=131_072, seed=5):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=samples) + 1j * rng.normal(size=samples)) * 1e-3
    n = np.arange(*BURST)
    x[BURST[0]:BURST[1]] += np.exp(2j * np.pi * (100 / PSD_NFFT) * n)  # on bin nfft/2 + 100
    return x.astype(np.complex64)


def _run_psd_encoder(encoder_average, encoder_overlap=0.5):
    from gnuradio.specenc import psd as psd_block
    from gnuradio.specenc.spectrum_encoder import spectrum_encoder

    tb = gr.top_block()
    src = blocks.vector_source_c(_psd_scene().tolist(), False)
    psd = psd_block(nfft=PSD_NFFT, overlap=0.5, average=4, sample_rate=PSD_RATE)
    enc = spectrum_encoder(model_path=ToneModel(PSD_NFFT), nfft=PSD_NFFT, overlap=encoder_overlap,
                           average=encoder_average, sample_rate=PSD_RATE, center_freq=915e6, batch=8)
    sink = blocks.vector_sink_f(PSD_NFFT)
    dets = blocks.message_debug()
    tb.connect(src, psd, enc, sink)
    tb.msg_connect(enc, "detections", dets, "store")
    run_or_fail(tb, "psd -> spectrum_encoder", seconds=60)
    context = [pmt.to_python(t.value) for t in sink.tags() if pmt.symbol_to_string(t.key) == "specenc_context"]
    messages = [pmt.to_python(dets.get_message(i)) for i in range(dets.num_messages())]
    return context, messages + enc.flush_detections(), len(sink.data()) // PSD_NFFT


@pytest.mark.parametrize("encoder_average", [1, 4])
def test_the_encoder_places_spectra_as_the_psd_block_feeding_it_spaces_them(specenc_cpp, encoder_average):
    """Audit 88: a psd block of average 4 feeding an encoder left at its default average 1 placed every spectrum and
    every detection 4x too early (spectrum m at sample 512 m instead of 2048 m), without a word. The psd block now tags
    its spacing (specenc_psd) on its first spectrum and the encoder adopts it: the context says step 512 * 4 and span
    3 * 512 + 1024, and the tone burst at samples 40 000..60 000 is detected there, in samples and seconds. A matched
    encoder (average 4) gives the same."""
    context, detections, spectra = _run_psd_encoder(encoder_average)
    step, span = 512 * 4, 3 * 512 + PSD_NFFT
    assert spectra == dsp.num_spectra(131_072, PSD_NFFT, 0.5, 4)
    assert len(context) == 1
    assert context[0]["step"] == step and context[0]["span"] == span and context[0]["sample_rate"] == PSD_RATE
    tone = [d for d in detections if d["freq_lower_edge"] < 915e6 + 100 * PSD_RATE / PSD_NFFT < d["freq_upper_edge"]]
    assert len(tone) == 1, detections
    (d,) = tone
    # spectra 19..29 hold burst samples: 19 * 2048 <= 40 000 < 19 * 2048 + span, 29 * 2048 < 60 000
    assert (d["spectrum"], d["spectra"]) == (19, 11)
    assert d["sample_start"] == 19 * step == 38_912 and d["sample_count"] == 10 * step + span == 23_040
    assert d["sample_start"] <= BURST[0] and d["sample_start"] + d["sample_count"] >= BURST[1]
    assert d["time"] == pytest.approx(19 * step / PSD_RATE, abs=1e-9)


@pytest.mark.parametrize("nfft,overlap,average", [(1024, 0.5, 4), (256, 0.75, 3), (64, 0.0, 1)])
def test_the_psd_block_tags_its_spacing_once_on_its_first_spectrum(specenc_cpp, nfft, overlap, average):
    """Audit 88: the encoder could not know the psd block's spacing. The C++ psd block now tags its first spectrum (and
    only it) with specenc_psd = {nfft, hop, average}. (Compiled into the library: not checkable against the old Python
    alone.)"""
    from gnuradio.specenc import psd as psd_block

    x = (np.random.default_rng(1).normal(size=(40 * nfft, 2)) * 0.01).astype(np.float32).view(np.complex64).ravel()
    tb = gr.top_block()
    src = blocks.vector_source_c(x.tolist(), False)
    psd = psd_block(nfft=nfft, overlap=overlap, average=average, sample_rate=1e6)
    sink = blocks.vector_sink_f(nfft)
    tb.connect(src, psd, sink)
    tb.run()
    found = [(t.offset, pmt.to_python(t.value)) for t in sink.tags() if pmt.symbol_to_string(t.key) == "specenc_psd"]
    assert len(sink.data()) // nfft > 5
    assert found == [(0, {"nfft": nfft, "hop": dsp.hop_size(nfft, overlap), "average": average})]


def _encoder_context(psd_value, offset=0, overlap=0.5, average=1, nfft=64):
    """specenc_context of an encoder fed 40 spectra with one specenc_psd tag (no psd block: the tag alone)."""
    from gnuradio.specenc.spectrum_encoder import spectrum_encoder

    spectra = np.full((40, nfft), -100.0, np.float32)
    spectra[10:20, 40] = -40.0
    tb = gr.top_block()
    src = blocks.vector_source_f(spectra.ravel().tolist(), False, nfft, [tag("specenc_psd", psd_value, offset)])
    enc = spectrum_encoder(model_path=ToneModel(nfft), nfft=nfft, overlap=overlap, average=average, sample_rate=1e6,
                           batch=8)
    sink = blocks.vector_sink_f(nfft)
    dets = blocks.message_debug()
    tb.connect(src, enc, sink)
    tb.msg_connect(enc, "detections", dets, "store")
    run_or_fail(tb, "spectrum_encoder", seconds=60)
    (context,) = [pmt.to_python(t.value) for t in sink.tags() if pmt.symbol_to_string(t.key) == "specenc_context"]
    messages = [pmt.to_python(dets.get_message(i)) for i in range(dets.num_messages())] + enc.flush_detections()
    return context, messages


def test_the_encoder_adopts_the_spacing_a_specenc_psd_tag_gives(specenc_cpp):
    """The encoder's side of audit 88 on its own: spectra whose first carries specenc_psd (hop 16, average 3) are
    placed 48 samples apart, each 2 * 16 + 64 long, though the encoder was left at overlap 0.5, average 1; its
    detection starts at spectrum 10's sample 480 and 0.48 ms."""
    context, messages = _encoder_context(pmt.to_pmt({"nfft": 64, "hop": 16, "average": 3}))
    assert (context["step"], context["span"]) == (48, 96)
    (d,) = messages
    assert (d["spectrum"], d["spectra"], d["sample_start"]) == (10, 10, 480)
    assert d["sample_count"] == 9 * 48 + 96 and d["time"] == pytest.approx(480 / 1e6, abs=1e-12)


def test_an_encoder_spacing_a_whole_multiple_of_the_psds_follows_the_psd(specenc_cpp):
    """Audit 91: keeping the encoder's own spacing when it was a whole multiple of the psd's (for a block between
    keeping one spectrum in N, audit 90) let the likeliest mistake through with a warning: a psd of average 1 (or
    overlap 0.75) straight into an encoder left at average 4 (or 0.5) placed every alert 4x (2x) late. The tag cannot
    tell the two apart, so the psd block's spacing wins here too."""
    context, messages = _encoder_context(pmt.to_pmt({"nfft": 64, "hop": 32, "average": 1}), average=4)
    assert (context["step"], context["span"]) == (32, 64)
    (d,) = messages
    assert d["sample_start"] == 10 * 32


@pytest.mark.parametrize("value,offset", [(pmt.intern("hop 16"), 0), (pmt.to_pmt({"hop": 0, "average": 3}), 0),
                                          (pmt.to_pmt({"hop": 16.5, "average": 3}), 0),
                                          (pmt.to_pmt({"nfft": 64, "hop": 16, "average": 3}), 5)])
def test_a_specenc_psd_tag_that_is_no_spacing_or_not_on_the_first_spectrum_changes_nothing(specenc_cpp, value, offset):
    """Audit 88: what the encoder takes from specenc_psd is bounded: a value that is no psd block's (hop 0, a fraction,
    a symbol) is ignored with a warning, and only spectrum 0's tag counts (a replayed or merged stream's later one is
    not the spacing of the spectra before it): the encoder's own step 32, span 64 stay."""
    context, messages = _encoder_context(value, offset)
    assert (context["step"], context["span"]) == (32, 64)
    (d,) = messages
    assert d["sample_start"] == 10 * 32
