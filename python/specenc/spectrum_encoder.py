"""specenc.spectrum_encoder: the SpectrumEncoder model in a GNU Radio stream.

Runs the backbone exactly once per spectrum, batched over whatever is queued (up to `batch`), and
hands everything downstream as stream tags and `detections` messages. The model runs in the background
(model_calls) on one batch while the block writes out the batch before: spectra leave one call late.
The model is loaded and the device chosen once, in the constructor, so a bad model path, backend or
device fails before the flowgraph starts.
"""

import contextlib
import copy
import functools
import numbers
import os
from dataclasses import dataclass

import numpy as np
import pmt
from gnuradio import gr

from . import dsp, message_senders
from . import spectrum_tags as tags
from .emission_tracker import EmissionTracker
from .model_calls import ModelCalls
from .spectrum_tags import SpectrumClock

# OpenMP threads (torch's CPU kernels) spin-wait between parallel regions by default. With 2 threads on
# 2 busy cores (the flowgraph's other blocks, other jobs) that spinning slowed the model ~8x in our
# measurements; passive waiting removes it. It is read when torch loads its OpenMP runtime, which
# happens after this module is imported (open_model); a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DEVICES = ("cpu", "cuda", "auto")
RUNTIMES = ("torch", "onnxruntime")
MAX_BATCH = 4096


def open_model(model_path="", backend="", runtime="torch", device="cpu", threads=0, logger=None):
    """Load the model once: '' = the shipped default; a loaded model object is used as is. `logger` (a block's):
    where the choice of runtime and device is logged, with why."""
    if isinstance(model_path, os.PathLike):
        model_path = os.fspath(model_path)
    if not isinstance(model_path, str):
        # an object was loaded with its backend, runtime and device: settings here could only be ignored
        asked = [f"{k}={v!r}" for k, v, default in (("backend", backend, ""), ("runtime", runtime, "torch"),
                                                     ("device", device, "cpu")) if v != default]
        if asked:
            raise ValueError(f"{', '.join(asked)} given with a loaded model, which runs as it was loaded: pass them "
                             "to load_model(), or give the model's path here")
        return model_path
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime={runtime!r} is not one of {', '.join(RUNTIMES)}")
    if threads < 0:
        raise ValueError(f"threads={threads} must be >= 0 (0 = leave the runtime's default)")
    if device not in DEVICES:
        raise ValueError(f"device={device!r} is not one of {', '.join(DEVICES)}")
    from .model import load_model
    from .model.runtime_select import select

    if model_path.endswith(".onnx"):
        runtime = "onnxruntime"  # an exported graph runs nowhere else: choose its device for onnxruntime
    try:
        # One place decides the device from what is installed (device='auto' may find onnxruntime's GPU
        # providers even when torch has no CUDA); it logs its choice and names what is missing.
        selection = select(runtime, device)
        if logger is not None:  # Python logging, where select() logs, is silent unless a script sets it up
            logger.info(f"model runs on {selection.describe()}")
        device = selection.device
        return load_model(model_path, backend=backend, device=device, runtime=runtime, threads=threads)
    except (NotImplementedError, ImportError) as exc:
        raise ValueError(f"runtime={runtime!r} is not available: {exc}") from exc


def _check_number(name, value):
    """A bool (GRC's True) read as 1 Hz, a string failed in numpy without the parameter's name."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}={value!r} must be a number")


def _check_tuning(sample_rate, center_freq):
    _check_number("sample_rate", sample_rate)
    _check_number("center_freq", center_freq)
    if not (np.isfinite(sample_rate) and sample_rate >= 0):
        raise ValueError(f"sample_rate={sample_rate} must be >= 0 Hz and finite (0 = unknown)")
    if not np.isfinite(center_freq):
        raise ValueError(f"center_freq={center_freq} must be a finite frequency in Hz")


def _extents(bins, n):
    """(n, nfft) bool anomaly bins (or None) -> located (n,) bool, and for the located rows: first bin, one
    past the last bin."""
    if bins is None:
        return np.zeros(n, bool), np.zeros(0, np.int64), np.zeros(0, np.int64)
    bins = np.asarray(bins, bool)
    located = bins.any(axis=1)
    some = bins[located]
    return located, some.argmax(axis=1), bins.shape[1] - some[:, ::-1].argmax(axis=1)


def _as_tags(pairs, offset):
    """(key, value) pairs -> gr.tag_t at `offset`, as a source would have tagged them."""
    out = []
    for key, value in pairs:
        tag = gr.tag_t()
        tag.offset, tag.key, tag.value = offset, key, value
        out.append(tag)
    return out


@dataclass
class _Window:
    first: int  # stream offset of its first spectrum
    spectra: np.ndarray  # (n, nfft), a copy
    valid: np.ndarray  # (n,) bool: finite spectra
    rows: np.ndarray  # indices of the valid spectra, the rows given to the model
    runs: list  # (start, stop, clock) runs of one tuning
    pred: list  # ModelCalls handle of the Prediction for `rows`; None when no row is valid
    context: object  # the specenc_context tag value, on the stream's first window only
    retunes: list  # (key, value) rx_* tags from set_center_freq/set_sample_rate, for its first spectrum


class spectrum_encoder(gr.basic_block):
    """Classify each spectrum, locate its emissions and score it for anomalies, in one model pass.

    Inputs:
        0: float[nfft] power spectra in dB (from specenc.psd), with rx_time/rx_freq/rx_rate tags if known.
    Outputs:
        0: float[nfft] the same spectra, tagged specenc_class, specenc_confidence, specenc_anomaly_score
           (specenc_anomaly_kind above the model's threshold, specenc_anomaly_bins when the model locates the
           anomaly, specenc_invalid on NaN/inf spectra, specenc_context on the first spectrum).
        1 (embeddings > 0): float[d_model] pooled embedding per spectrum (zeros for invalid spectra).
        detections (message): one dict per emission (detections whose bins overlap, joined across spectra,
           a flickering label included; sent when it ends, or every 1024 spectra while it lasts; with overlap >= 0.5 and
           average 1, only emissions seen in 2 or more spectra, and at any average only nested ones seen in 2
           or more, and only those that stand clear of the noise the averaging leaves (EmissionTracker,
           MIN_EVIDENCE)): family, confidence (the family's summed confidence / the detections),
           freq_lower_edge, freq_upper_edge (Hz), reach_lower_edge, reach_upper_edge (Hz, every bin it covered), band, time (s, start), spectrum (first), spectra (count),
           sample_start, sample_count, center_freq, sample_rate, bin_start, bin_stop, contrast_db (mean dB over the
           local floor, when the model measures it).

    Args:
        model_path: model file ('' = the shipped default), or an already loaded SpectrumModel, run as it was
            loaded (backend, runtime, device and tokens_kept then stay at their defaults: a ValueError otherwise).
        backend: attention backend name ('' = the model's default).
        runtime: 'torch' or 'onnxruntime'.
        device: 'cpu', 'cuda' or 'auto' (cuda when available).
        threads: inference threads (0 = runtime default); on a torch CPU model, one-thread callers that each
            predict a part of a batch (model_calls).
        batch: most spectra per model call (latency vs throughput; output lags input by one batch).
        tokens_kept: fraction of tokens the model runs on (0 = the model's setting); fewer is faster and
            less accurate; a model trained without dropout keeps its highest-energy tokens.
        nfft: spectrum length; must equal the model's.
        overlap, average: the psd block's settings, to place spectra in time and IQ samples.
        sample_rate, center_freq: used until rx_rate/rx_freq tags arrive (Hz; 0 = unknown).
        embeddings: 0 = no embedding output; else add output 1, float[embeddings], which must equal the
            model's embedding width (d_model), so GRC knows the vector length before the model loads.
    """

    def __init__(self, model_path="", backend="", runtime="torch", device="cpu", threads=0, batch=64,
                 tokens_kept=0.0, nfft=1024, overlap=0.5, average=1, sample_rate=0.0, center_freq=0.0,
                 embeddings=0):
        batch = dsp.whole_number("batch", batch, 1, MAX_BATCH)
        threads = dsp.whole_number("threads", threads, 0, 1024, " (0 = the runtime's default)")
        embeddings = dsp.whole_number("embeddings", embeddings, 0, 1 << 16, " (0 = no embedding output)")
        if not 0.0 <= tokens_kept <= 1.0:
            raise ValueError(f"tokens_kept={tokens_kept} must be in 0..1 (0 = the model's setting)")
        dsp.check_params(nfft, overlap, average)  # the psd block's settings, which place the spectra
        _check_tuning(sample_rate, center_freq)
        # the block's own logger exists only once gr.basic_block is initialised, after the model sets its outputs
        self.model = open_model(model_path, backend, runtime, device, threads, gr.logger("spectrum_encoder"))
        if self.model.nfft != nfft:
            raise ValueError(f"nfft={nfft} but the model expects {self.model.nfft}-bin spectra; "
                             f"set FFT Size to {self.model.nfft} (of the psd block feeding it, or of IQ to Alerts)")
        if tokens_kept:
            if not isinstance(model_path, (str, os.PathLike)):
                raise ValueError("tokens_kept is set with a loaded model, which it would change for every other user "
                                 "of it: call model.set_tokens_kept() yourself, or give the model's path here")
            self.model.set_tokens_kept(tokens_kept)
        self.nfft = nfft
        self._runtime_context = contextlib.nullcontext
        if runtime == "torch":
            import torch

            self._runtime_context = torch.inference_mode
        # One warm-up call: first-batch latency off the stream, the embedding width, the detections' form.
        warm = self._predict(np.full((1, nfft), -100.0, np.float32), None, None)
        if not hasattr(warm.detections, "row"):
            raise ValueError(f"{type(self.model).__name__}.predict gives detections as "
                             f"{type(warm.detections).__name__}; spectrum_encoder needs model.detections.Detections "
                             "(columns) to join them into emissions")
        self._no_detections = warm.detections[0:0]  # for windows the model gave nothing for
        d_model = warm.embedding.shape[1]
        if embeddings not in (0, d_model):
            raise ValueError(f"embeddings={embeddings} but the model's embeddings have {d_model} values; "
                             f"use {d_model} (or 0 for no embedding output)")
        out_sig = [(np.float32, nfft)] + ([(np.float32, d_model)] if embeddings else [])
        gr.basic_block.__init__(self, name="spectrum_encoder", in_sig=[(np.float32, nfft)], out_sig=out_sig)
        self.d_model = d_model
        self.batch = batch
        # Each call writes out the window held from the call before (up to `batch` spectra): offer no less room.
        self.set_min_noutput_items(batch)
        self.set_max_noutput_items(batch)
        # Room for two batches downstream (the default 32 KiB buffer holds 8 spectra of 1024 floats,
        # which would cap every model call at 8). The psd upstream needs the same: see iq_to_alerts.
        self.set_min_output_buffer(2 * batch)
        self.message_port_register_out(tags.DETECTIONS_PORT)
        message_senders.register(self)
        self._clock = SpectrumClock.for_psd(nfft, overlap, average, sample_rate, center_freq)
        self._codes = {}  # label or kind -> index into self._symbols
        self._symbols = []  # interned PMT symbols
        self._in_invalid_burst = False
        self._model_failing = False  # the last window's model call raised: report the next failure only after a success
        self._retunes = []  # (key, PMT value) from set_center_freq/set_sample_rate, for the next window's 1st spectrum
        self._held = None  # the window whose model call runs while the next call reads its input
        self._ran = False  # started once (see start)
        self._again = False  # started again: windows as large as the buffers allow
        self._calls = ModelCalls(self.model, self._predict, threads if runtime == "torch" else 0)
        self._join_emissions(dsp.hop_size(nfft, overlap), average)

    def _join_emissions(self, hop, average):
        """A new emission tracker for spectra of frames `hop` samples apart, `average` frames each."""
        # Overlapping frames without averaging show every emission in >= 2 spectra: drop one-spectrum flicker.
        # Emissions must also stand clear of the noise, whose scatter the averaging sets.
        self._new_tracker = functools.partial(EmissionTracker, self.nfft, noise_db=dsp.noise_scatter_db(average),
                                              min_spectra=2 if average == 1 and 2 * hop <= self.nfft else 1)
        self._tracker = self._new_tracker()

    def _follow_psd(self, tag):
        """Spectrum 0's specenc_psd tag: the psd block's spacing of spectra, which this block's overlap/average must
        match or every time and sample position is off by their ratio (audit 88). A mismatch is logged once and the
        psd block's spacing is used. The tag cannot tell a block between them that keeps one spectrum in N from a
        wrong setting (both reach this block at offset 0), so the psd block's word wins: keeping this block's own
        for a whole multiple let the likeliest mistake (the psd's overlap raised, the encoder's left) place every
        alert 2x late with a warning (audit 91)."""
        psd = pmt.to_python(tag.value)
        hop, average = (psd.get("hop"), psd.get("average")) if isinstance(psd, dict) else (None, None)
        if not all(isinstance(v, int) and v >= 1 for v in (hop, average)):
            self.logger.warn(f"specenc_psd={pmt.write_string(tag.value)} is no psd block's hop and average; ignored")
            return
        step, span = hop * average, (average - 1) * hop + self.nfft
        if (step, span) != (self._clock.step, self._clock.span):
            self.logger.error(f"overlap/average place spectra {self._clock.step} IQ samples apart, each "
                              f"{self._clock.span} long, but the psd block feeding this one makes them {step} apart "
                              f"(hop {hop}, average {average}): placing them as the psd block makes them; set this "
                              "block's overlap and average to the psd block's (a block between them that drops "
                              "spectra is not followed: use the psd block's average instead)")
            self._clock.step, self._clock.span = step, span
            self._join_emissions(hop, average)

    def start(self):
        """Started again (a second run, lock/unlock), GNU Radio 3.10 counts items from 0 again and may give the block
        buffers smaller than the window it writes at once: its thread stopped ("Buffer too small for
        min_noutput_items") and the run hung. From then on it asks for no room and writes what fits, one model call
        at a time (_work_in_steps); emissions are joined anew (the tracker refused spectrum 0 after the last run's),
        and a window taken in before a lock/unlock is dropped, as GNU Radio drops the items in its buffers."""
        if self._ran:
            if not self._again:
                self.logger.info("started again: spectra go one model call at a time, as many as the buffers hold")
            if self._held is not None:
                self.logger.warn(f"started again: {len(self._held.spectra)} spectra taken in before are dropped, as "
                                 "GNU Radio drops the items in its buffers")
            self._again, self._held, self._tracker = True, None, self._new_tracker()
            self.set_min_noutput_items(1)
        self._ran = True
        message_senders.started(self)
        return True

    def stop(self):
        message_senders.stopped(self)
        return True

    # GRC callbacks
    def set_batch(self, batch):
        """Most spectra per model call, up to the batch the block was made with (its buffers hold two)."""
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or not 1 <= batch <= MAX_BATCH:
            raise ValueError(f"batch={batch!r} must be a whole number in 1..{MAX_BATCH}")
        made_with = self.max_noutput_items()
        if batch > made_with:
            self.logger.warn(f"batch={batch} is above the batch this block was made with; using {made_with}")
        self.batch = min(batch, made_with)

    def set_center_freq(self, center_freq):
        """Centre frequency (Hz) from the next spectrum the block takes in, for sources that send no rx_freq tag.
        That spectrum leaves tagged rx_freq, so the blocks downstream (the anomaly detector's alerts) follow."""
        _check_tuning(0.0, center_freq)
        self._retunes.append((tags.RX_FREQ, pmt.from_double(float(center_freq))))

    def set_sample_rate(self, sample_rate):
        """Sample rate (Hz) from the next spectrum on, as set_center_freq (tagged rx_rate; times stay continuous)."""
        _check_number("sample_rate", sample_rate)
        if not 0 < sample_rate < np.inf:  # 0 ("unknown") is for the constructor, before any rate is known
            raise ValueError(f"sample_rate={sample_rate} must be a rate > 0 Hz")
        self._retunes.append((tags.RX_RATE, pmt.from_double(float(sample_rate))))

    @property
    def threshold(self):
        return float(self.model.threshold)

    @property
    def calibrated_integrate(self):
        """How many consecutive scores the model's threshold was calibrated to average (specenc calibrate
        --integrate; 1 unless its file says otherwise)."""
        from .training.calibrate import model_integrate

        return model_integrate(self.model)

    def _predict(self, spectra, rx_freq, sample_rate):
        with self._runtime_context():
            return self.model.predict(spectra, rx_freq=rx_freq, sample_rate=sample_rate)

    def _symbol_codes(self, names):
        """names -> their indices into self._symbols, interning new names as they appear."""
        codes = self._codes
        for name in set(names) - codes.keys():
            codes[name] = len(self._symbols)
            self._symbols.append(pmt.intern(name))
        return [codes[name] for name in names]

    def forecast(self, noutput_items, ninputs):
        # A held window must come out even when no more input comes (end of stream): ask for none then.
        return [0 if self._held is not None else 1]

    def general_work(self, input_items, output_items):
        """One window deep: queue this window's model call, then write out the window held from the previous
        call while the model runs on this one (model_calls). Items leave in order, one call late; a call
        without input (end of stream, or nothing queued) writes out the held window."""
        if self._again:
            return self._work_in_steps(input_items, output_items)
        n = min(len(input_items[0]), self.batch)
        held = self._held
        self._held = self._start(input_items[0][:n]) if n else None
        self.consume(0, n)
        return self._finish(held, output_items) if held is not None else 0

    def _work_in_steps(self, input_items, output_items):
        """After a restart: each call's window of what the output has room for, written when its model call is done
        (no overlap of model and stream)."""
        n = min(len(input_items[0]), self.batch, len(output_items[0]))
        if not n:
            return 0
        window = self._start(input_items[0][:n])
        self.consume(0, n)
        return self._finish(window, output_items)

    def _start(self, spectra):
        """Copy a window, read its tuning tags and queue its model call -> the window, to write out later."""
        first = self.nitems_read(0)
        n = len(spectra)
        spectra = spectra.copy()  # the input buffer is reused once consumed
        own = list(self.get_tags_in_window(0, 0, n))
        for tag in own:
            if tag.offset == 0 and pmt.eq(tag.key, tags.PSD_SETTINGS):
                self._follow_psd(tag)
        # The context goes on the first spectrum, before any rx_* tag.
        context = self._clock.context_pmt(self.threshold, self.calibrated_integrate) if first == 0 else None
        # Per-spectrum tuning, applying rx_* tags in stream order; a clock snapshot per run of spectra. Retunes set
        # through the callbacks come first on the window's first spectrum, so a source's own tags there win.
        retunes, self._retunes = self._retunes, []
        # Re-sent downstream only where the source sets no value of its own on that spectrum: the detector
        # follows the tags in stream order and would take the callback's over the one this block used.
        retunes = [(key, value) for key, value in retunes
                   if not any(t.offset == first and pmt.eq(t.key, key) for t in own)]
        freqs = np.empty(n)
        runs = []  # (start, stop, clock)
        stream_tags = _as_tags(retunes, first) + own
        for start, stop, run_tags in tags.split_by_tags(stream_tags, first, n):
            for tag in run_tags:
                self._clock.apply(tag, first + start, self.logger.warn)
            freqs[start:stop] = self._clock.freq
            runs.append((start, stop, copy.copy(self._clock)))
        if first == 0 and not self._clock.rate > 0:
            self.logger.warn("no sample rate (no rx_rate tag on the first spectrum, sample_rate=0): times in the "
                             "messages count IQ samples, not seconds, and frequency edges are fractions of the rate")
        valid = np.isfinite(spectra).all(axis=1)
        rows = np.flatnonzero(valid)
        pred = None
        if rows.size:
            finite = slice(None) if rows.size == n else rows  # all finite: a view of the copy, not a second copy
            # each spectrum's own tuning: a window retuned to 0 Hz (unknown, band 'other') mid-way keeps its
            # earlier spectra's band
            pred = self._calls.submit(spectra[finite], freqs[finite],
                                      self._clock.rate if self._clock.rate > 0 else None)
        return _Window(first, spectra, valid, rows, runs, pred, context, retunes)

    def _finish(self, win, output_items):
        """Write a window out: spectra, tags, embeddings, emissions -> how many items."""
        first, n, rows = win.first, len(win.spectra), win.rows
        output_items[0][:n] = win.spectra
        if win.context is not None:
            self.add_item_tag(0, 0, tags.CONTEXT, win.context)
        for key, value in win.retunes:
            self.add_item_tag(0, first, key, value)
        self._report_invalid(win.valid, first)
        if len(output_items) > 1:
            output_items[1][:n] = 0.0
        pred = self._result(win)
        if pred is None:  # every spectrum NaN/inf, or the model failed: none scored, emissions still end on time
            self._track(first, rows[:0], self._no_detections, win.runs)
            return n
        if len(output_items) > 1:
            output_items[1][rows] = pred.embedding
        offsets = (first + rows).astype(np.uint64)
        tags.add_symbol_tags(self, 0, offsets, self._symbol_codes(pred.labels), self._symbols, tags.CLASS)
        tags.add_double_tags(self, 0, offsets, pred.confidence, tags.CONFIDENCE)
        tags.add_double_tags(self, 0, offsets, pred.anomaly_score, tags.ANOMALY_SCORE)
        # Kinds only above the threshold; anomaly bins only where the model locates one.
        kinds = np.flatnonzero([bool(kind) for kind in pred.anomaly_kind])
        tags.add_symbol_tags(self, 0, offsets[kinds], self._symbol_codes([pred.anomaly_kind[j] for j in kinds]),
                             self._symbols, tags.ANOMALY_KIND)
        located, bin_lo, bin_hi = _extents(getattr(pred, "anomaly_bins", None), len(rows))
        tags.add_pair_tags(self, 0, offsets[located], bin_lo, bin_hi, tags.ANOMALY_BINS)
        self._track(first, rows, pred.detections, win.runs)
        return n

    def _result(self, win):
        """The window's Prediction, or None when no row was valid or the model raised. A model that fails must not
        stop the stream (nor hang it: the scheduler would wait for this block forever): its spectra pass through
        unscored, tagged specenc_invalid, and the failure is logged once until the model succeeds again."""
        if win.pred is None:
            return None
        try:
            pred = ModelCalls.result(win.pred)
            bins = getattr(pred, "anomaly_bins", None)  # None: a model that does not locate anomalies
            sizes = {len(pred.labels), len(pred.anomaly_kind), len(pred.detections), len(pred.confidence),
                     len(pred.anomaly_score), len(pred.embedding), *([] if bins is None else [len(bins)])}
            if sizes != {len(win.rows)}:  # failing later, in work(), it ended the block's thread and hung the run
                raise ValueError(f"it gave results for {sorted(sizes)} spectra, not the {len(win.rows)} it was given")
        except Exception as exc:  # noqa: BLE001 - any model error: report it and go on
            for i in win.rows:
                self.add_item_tag(0, win.first + int(i), tags.INVALID, pmt.PMT_T)
            if not self._model_failing:
                self.logger.error(f"the model failed on spectra {win.first}..{win.first + len(win.spectra) - 1} "
                                  f"({type(exc).__name__}: {exc}); they pass through unscored, tagged "
                                  f"specenc_invalid, until it succeeds again")
            self._model_failing = True
            return None
        self._model_failing = False
        return pred

    def _track(self, first, rows, detections, runs):
        """Join this window's detections (row j: spectrum rows[j]) into emissions, run by run of one clock;
        publish those that ended. Every spectrum of the window is visited, unscored ones without detections, so
        emissions end on time."""
        if not self._has_subscribers():
            return
        for start, stop, clock in runs:
            a, b = np.searchsorted(rows, [start, stop])
            for emission in self._tracker.update(first + start, stop - start, detections[a:b], first + rows[a:b],
                                                 clock):
                self.message_port_pub(tags.DETECTIONS_PORT, tags.dict_to_pmt(emission.as_dict()))

    def flush_detections(self):
        """Emissions still open when the stream ended (as dicts); for callers that run the flowgraph to the end."""
        return [em.as_dict() for em in self._tracker.flush()]

    def _has_subscribers(self):
        # Building PMT dicts costs; skip it when nothing listens on 'detections'.
        return not pmt.is_null(self.message_subscribers(tags.DETECTIONS_PORT))

    def _report_invalid(self, valid, first):
        """Tag NaN/inf spectra; log the first of each burst of them (also of several bursts in one window)."""
        bad = np.flatnonzero(~valid)
        for i in bad:
            self.add_item_tag(0, first + int(i), tags.INVALID, pmt.PMT_T)
        before = np.concatenate(([not self._in_invalid_burst], valid))[bad]  # was the spectrum before each finite?
        for i in bad[before]:
            self.logger.warn(f"spectrum {first + int(i)} holds NaN/inf; skipping such spectra until a finite one "
                             "arrives")
        if valid.size:
            self._in_invalid_burst = not valid[-1]
