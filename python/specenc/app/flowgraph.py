"""The headless chain used by `specenc run`, `specenc demo` and `specenc bench flowgraph`.

recording source -> psd -> spectrum_encoder -> anomaly_detector -> alert_sink (+ collectors)

The collectors only read what the blocks produced (tags and messages); they add no model call.
"""

import time
from dataclasses import dataclass, field

import numpy as np
import pmt
from gnuradio import blocks, gr

from .. import dsp
from .. import spectrum_tags as tags
from ..alert_sink import alert_sink
from ..anomaly_detector import anomaly_detector
from ..queue_block import queue_block
from ..spectrum_encoder import spectrum_encoder
from .interrupts import run_to_end
from .waterfall import MaxHold

WATERFALL_ROWS = 1500  # the PNG keeps at most this many rows (max-hold over groups of spectra)


class run_collector(queue_block):
    """Keeps per-spectrum class/score (read from tags) and a max-hold decimated waterfall.

    Inputs: 0 float[nfft] spectra (encoder output 0), 1 float score (anomaly_detector output).
    """

    def __init__(self, nfft, decimation=1):
        queue_block.__init__(self, name="run_collector", in_sig=[(np.float32, nfft), np.float32], out_sig=[])
        self._waterfall = MaxHold(decimation)
        self.labels, self.confidence, self._scores = [], [], []
        self.invalid = 0

    def work(self, input_items, output_items):
        spectra, scores = input_items
        n = len(scores)
        self.labels.extend(tags.symbol_tag_values(self, 0, n, tags.CLASS))
        self.confidence.append(tags.double_tag_values(self, 0, n, tags.CONFIDENCE).astype(np.float32))
        self.invalid += len(self.get_tags_in_window(0, 0, n, tags.INVALID))
        self._scores.append(scores.copy())
        self._waterfall.add(spectra)
        return n

    @property
    def count(self):
        return len(self.labels)

    def scores(self):
        return np.concatenate(self._scores) if self._scores else np.zeros(0, np.float32)

    @property
    def decimation(self):
        return self._waterfall.decimation

    def rows(self):
        return self._waterfall.rows()


@dataclass
class RunResult:
    input_name: str
    sample_rate: float
    center_freq: float
    num_samples: int
    expected_spectra: int  # what num_samples make; fewer where the input ended early (a file cut short)
    step: int  # IQ samples between spectra
    span: int  # IQ samples per spectrum
    threshold: float
    integrate: int  # scores averaged per alert decision
    wall_s: float
    cpu_s: float  # process CPU time (all threads) while the flowgraph ran
    labels: list
    confidence: np.ndarray
    scores: np.ndarray
    num_invalid: int
    rows: np.ndarray  # waterfall rows
    decimation: int  # spectra per waterfall row
    alerts: list = field(default_factory=list)
    detections: list = field(default_factory=list)  # emissions, as published on `detections`
    # CPU seconds in each stream block's work(), from GNU Radio's performance counters (all 0 unless they
    # are on: GR_CONF_PERFCOUNTERS_ON=True with clock = thread, as `specenc bench flowgraph` sets for a run).
    block_cpu_s: dict = field(default_factory=dict)
    interrupted: int = 0  # the signal (SIGINT, SIGTERM) that stopped the run early, or 0

    @property
    def num_spectra(self):
        return len(self.labels)

    @property
    def ended_early(self):
        return self.num_spectra < self.expected_spectra

    @property
    def duration_s(self):
        """Seconds of IQ read: the whole recording, or up to its last spectrum where the input ended early."""
        if not self.ended_early:
            return self.num_samples / self.sample_rate
        return ((self.num_spectra - 1) * self.step + self.span if self.num_spectra else 0) / self.sample_rate


def messages(debug):
    """All messages a blocks.message_debug stored, as plain dicts."""
    return [pmt.to_python(debug.get_message(i)) for i in range(debug.num_messages())]


def count_spectra(rec, nfft, overlap, average):
    """The spectra the chain makes of `rec`; ValueError when it is too short for one."""
    dsp.check_params(nfft, overlap, average)  # the psd block's limits, named before the length they set
    total = dsp.num_spectra(rec.num_samples, nfft, overlap, average)
    if total == 0:
        raise ValueError(f"{rec.meta_path or rec.data_path}: {rec.num_samples} samples give no spectrum (need at "
                         f"least {dsp.samples_read(1, nfft, overlap, average)} for nfft={nfft}, average={average})")
    return total


def run_chain(rec, model, average=1, threshold=-1.0, holdoff=16, batch=64, threads=0, alerts_jsonl="", stdout=False,
              progress=None, integrate=0):
    """Run the chain over a recording (spectra at the model's 50 % overlap); returns a RunResult.

    model: a loaded SpectrumModel (loaded once by the caller). progress: a tqdm-like object or None.
    """
    from .. import psd
    from ..sigmf_source import sigmf_source

    # GNU Radio logs every buffer resize at info level; the command line shows warnings and errors only.
    gr.logging().set_default_level(gr.log_levels.warn)
    nfft, overlap = model.nfft, 0.5
    total = count_spectra(rec, nfft, overlap, average)
    tb = gr.top_block("specenc_run")
    src = sigmf_source(rec)
    spectra = psd(nfft=nfft, overlap=overlap, window="hann", average=average, db=True, sample_rate=rec.sample_rate)
    encoder = spectrum_encoder(model_path=model, nfft=nfft, batch=batch, threads=threads, overlap=overlap,
                               average=average, sample_rate=rec.sample_rate, center_freq=rec.center_freq)
    detector = anomaly_detector(nfft=nfft, threshold=threshold, holdoff=holdoff, integrate=integrate)
    sink = alert_sink(jsonl_path=alerts_jsonl, stdout=stdout)
    collector = run_collector(nfft, decimation=-(-total // WATERFALL_ROWS))
    alert_log = blocks.message_debug()
    # Buffers that hold two batches, so the encoder's work() sees up to `batch` queued spectra (the
    # default 32 KiB buffer holds only 8 spectra of 1024 floats: small batches, slow model).
    src.set_min_output_buffer(2 * batch * spectra.decimation())
    spectra.set_min_output_buffer(2 * batch)
    tb.connect(src, spectra, encoder, detector)
    tb.connect(encoder, (collector, 0))
    tb.connect(detector, (collector, 1))
    tb.msg_connect(detector, "alerts", sink, "alerts")
    tb.msg_connect(detector, "alerts", alert_log, "store")
    detection_log = blocks.message_debug()
    tb.msg_connect(encoder, "detections", detection_log, "store")

    started, started_cpu = time.perf_counter(), time.process_time()
    interrupted = run_to_end(tb, lambda: collector.count, total, progress)
    wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    clock = tags.SpectrumClock.for_psd(nfft, overlap, average)
    ticks = gr.high_res_timer_tps()
    block_cpu_s = {name: blk.pc_work_time_total() / ticks for name, blk in
                   (("source", src), ("psd", spectra), ("spectrum_encoder", encoder),
                    ("anomaly_detector", detector), ("run_collector", collector))}
    return RunResult(
        input_name=rec.meta_path or rec.data_path, sample_rate=rec.sample_rate, center_freq=rec.center_freq,
        num_samples=rec.num_samples, expected_spectra=total, step=clock.step, span=clock.span,
        threshold=detector.threshold if detector.threshold is not None else float(model.threshold),
        integrate=detector.integrate or 1,
        wall_s=wall, cpu_s=cpu, labels=collector.labels,
        confidence=np.concatenate(collector.confidence) if collector.confidence else np.zeros(0, np.float32),
        scores=collector.scores(), num_invalid=collector.invalid, rows=collector.rows(),
        decimation=collector.decimation, alerts=messages(alert_log),
        detections=messages(detection_log) + encoder.flush_detections(),
        block_cpu_s=block_cpu_s, interrupted=interrupted,
    )
