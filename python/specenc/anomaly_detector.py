"""specenc.anomaly_detector: threshold the encoder's anomaly scores into a score stream and alerts.

It runs no model: `spectrum_encoder` upstream has already scored every spectrum (the backbone runs
once per spectrum) and tagged the score, kind and, when the model locates it, the anomaly's bins.
"""

import numbers

import numpy as np
import pmt
from gnuradio import gr

from . import dsp, message_senders
from . import spectrum_tags as tags
from .queue_block import queue_block
from .spectrum_tags import SpectrumClock
from .training.calibrate import MAX_INTEGRATE, score_means

MAX_HOLDOFF = 100000
EMPTY_HISTORY = (np.zeros(0, np.int64), np.zeros(0), [], [])  # (stream index, score, kind, bins) of past spectra


def _check_threshold(threshold):
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, numbers.Real):  # True read as 1.0
        raise ValueError(f"threshold={threshold!r} must be a number <= 1")
    if not threshold <= 1.0:  # NaN too: it would silently mean "the calibrated threshold"
        raise ValueError(f"threshold={threshold} must be <= 1 (scores are in 0..1; negative = calibrated)")


def _spectra_count(name, value, most, note=""):
    """`value` as a whole number of spectra in 0..most; a float (4.0) failed later inside work(), hanging the run."""
    return dsp.whole_number(name, value, 0, most, f" spectra{note}")


class anomaly_detector(queue_block):
    """Anomaly score per spectrum, `specenc_anomaly` tags and `alerts` messages above the threshold.

    Inputs:
        0: float[nfft] spectra from spectrum_encoder output 0 (its tags carry the scores).
    Outputs:
        0: float anomaly score in [0, 1] per spectrum (NaN for spectra the model skipped as NaN/inf), with
           integrate > 1 the mean of the last `integrate` scores (NaN until that many have arrived),
           tagged specenc_anomaly (value: kind) on each spectrum that raises an alert. Only rx_time,
           rx_freq, rx_rate and specenc_anomaly tags come out here, so a time sink shows the alerts legibly
           (the encoder's specenc_anomaly_kind tags mark every spectrum above the threshold).
        1 (threshold_output): float, the threshold in use for each spectrum (NaN until the encoder's
           context has set it), to plot beside the score.
        alerts (message): dict per anomaly event: kind, score, threshold, time (s), freq_lower_edge,
           freq_upper_edge (Hz; the anomaly's bins when the model gives them, else the whole band),
           center_freq, sample_rate, band, spectrum (the first), spectra (how many), sample_start, sample_count.

    Args:
        nfft: spectrum length (the encoder's).
        threshold: alert threshold on the score; negative = the model's calibrated threshold.
        holdoff: spectra above the threshold within this many spectra of the last one belong to the same event
            and raise no new alert (0 = alert on every spectrum), whatever kind the model names: at a site's
            threshold the kind flickers between spectra, and the demo's site-calibrated run raised 79 alerts with
            events per kind, each named from its own spectrum, against 12 now. A retune (rx_freq or rx_rate
            changed) starts a new event.
        threshold_output: add output 1, the threshold per spectrum.
        integrate: threshold the mean of this many consecutive scores (a persistent weak anomaly, such as a
            frequency hopper, lifts a site's steady scores a little for hundreds of spectra); 0 = what the
            model's threshold was calibrated for (`specenc calibrate --integrate N`; 1 for the shipped model).
    """

    def __init__(self, nfft=1024, threshold=-1.0, holdoff=16, threshold_output=False, integrate=0):
        _check_threshold(threshold)
        nfft = dsp.whole_number("nfft", nfft, 1, dsp.MAX_NFFT, " (the encoder's spectrum length)")
        holdoff = _spectra_count("holdoff", holdoff, MAX_HOLDOFF)
        integrate = _spectra_count("integrate", integrate, MAX_INTEGRATE, " (0 = the model's calibration)")
        queue_block.__init__(self, name="anomaly_detector", in_sig=[(np.float32, nfft)],
                             out_sig=[np.float32] * (2 if threshold_output else 1))
        self.nfft = nfft
        self._threshold_override = threshold if threshold >= 0 else None
        self._threshold = self._threshold_override
        self._calibrated = None  # from the encoder's specenc_context tag
        self._integrate_asked = integrate
        self.integrate = integrate or None  # spectra per mean; with 0, from the context tag
        # The last integrate - 1 finite spectra before this call: stream index, score, kind, anomaly bins.
        self._history = EMPTY_HISTORY
        self.holdoff = holdoff
        self.message_port_register_out(tags.ALERTS_PORT)
        message_senders.register(self)
        self.set_tag_propagation_policy(gr.TPP_DONT)
        self._clock = SpectrumClock(step=1, span=nfft)
        self._last_above = None  # index of the last spectrum above the threshold
        self._kinds_warned = False  # the threshold in use lies under the model's, which was logged
        self._warned_untagged = False

    def start(self):
        """A run (again) from the first spectrum: no event held off, no scores averaged from the run before (a
        reused detector's first alert was held off by the last run's)."""
        self._last_above = None
        self._history = EMPTY_HISTORY
        message_senders.started(self)
        return True

    def stop(self):
        message_senders.stopped(self)
        return True

    # GRC callbacks
    def set_threshold(self, threshold):
        _check_threshold(threshold)
        self._threshold_override = threshold if threshold >= 0 else None
        self._threshold = self._threshold_override if threshold >= 0 else self._calibrated
        self._check_kinds()

    def _check_kinds(self):
        below = self._threshold_override is not None and self._calibrated is not None \
            and self._threshold_override < self._calibrated
        warn, self._kinds_warned = below and not self._kinds_warned, below  # once per crossing: sliders move in steps
        if warn:
            self.logger.warn(f"threshold {self._threshold_override:g} is under the model's {self._calibrated:g}, "
                             "above which alone it names a kind: alerts raised between the two read kind 'unknown' "
                             "(specenc calibrate moves the model's own threshold)")

    def set_holdoff(self, holdoff):
        self.holdoff = _spectra_count("holdoff", holdoff, MAX_HOLDOFF)

    @property
    def threshold(self):
        """The threshold in use (None until the encoder's context tag has arrived, unless set)."""
        return self._threshold

    def work(self, input_items, output_items):
        n = len(output_items[0])
        out = output_items[0]
        first = self.nitems_written(0)

        def window(key):  # tags of one key, filtered in C++ (the encoder's per-spectrum tags never reach Python)
            return self.get_tags_in_window(0, 0, n, key)

        raw = tags.double_tag_values(self, 0, n, tags.ANOMALY_SCORE)
        out[:] = raw
        # Context and rx_* tags are rare: they cut the window into runs applied in stream order.
        control = [t for key in (tags.CONTEXT, tags.RX_TIME, tags.RX_FREQ, tags.RX_RATE) for t in window(key)]
        where = None  # per spectrum (kind, bins), read only when a spectrum of this window crosses the threshold
        seq = None  # with integration: the history and this run's finite spectra
        for start, stop, run_tags in tags.split_by_tags(control, first, n):
            # The context (first spectrum) sets defaults that rx_* tags on the same spectrum override.
            for tag in sorted(run_tags, key=lambda t: not pmt.eq(t.key, tags.CONTEXT)):
                self._take(tag, first + start)
            if (self.integrate or 1) > 1:  # integrate is set by the context, on spectrum 0
                if where is None:  # all of them: an alert takes its window's strongest
                    where = self._kinds_and_bins(window, first, n)
                rows = start + np.flatnonzero(np.isfinite(raw[start:stop]))
                seq = self._with_history(raw, rows, where, first)
                out[start:stop] = self._means(seq, rows, n)[start:stop]
            threshold = self._threshold  # read once: set_threshold may run in the GUI's thread meanwhile
            if where is None and threshold is not None and (out[start:stop] > threshold).any():
                where = self._kinds_and_bins(window, first, n)
            if len(output_items) > 1:
                output_items[1][start:stop] = np.nan if threshold is None else threshold
            self._alert_run(out, where, seq, first, start, stop, threshold)
        return n

    def _with_history(self, raw, rows, where, first):
        """(stream index, score, kind, bins) of the finite spectra of the history and of `rows` (this call's, of one
        run between rx_* tags); keeps the last integrate - 1 of them as the next run's history."""
        kinds, bins = where
        idx, score, kind, located = self._history
        seq = (np.concatenate([idx, first + rows]), np.concatenate([score, raw[rows]]),
               kind + [kinds[j] for j in rows], located + [bins[j] for j in rows])
        keep = len(seq[0]) - min(len(seq[0]), self.integrate - 1)
        self._history = tuple(x[keep:] for x in seq)
        return seq

    def _means(self, seq, rows, n):
        """The mean of each finite score of `rows` (of this call's n) and the integrate - 1 finite ones before it (NaN
        for the others, and until that many have arrived since the start or a retune)."""
        means = score_means(seq[1], self.integrate)  # each ends at a finite score
        have = min(len(rows), len(means))
        out = np.full(n, np.nan)
        out[rows[len(rows) - have:]] = means[len(means) - have:]
        return out

    def _source(self, where, seq, first, i):
        """(first spectrum, kind, bins) of an alert raised at row i: the spectrum itself, or with integration
        the window of the mean that crossed, with the kind and bins of its highest-scoring spectrum."""
        if seq is None:
            return first + i, where[0][i], where[1][i]
        idx, score, kind, located = seq
        end = int(np.searchsorted(idx, first + i)) + 1
        lo = max(0, end - self.integrate)
        best = lo + int(np.argmax(score[lo:end]))
        return int(idx[lo]), kind[best], located[best]

    def _kinds_and_bins(self, window, first, n):
        kinds, bins = tags.symbol_tag_values(self, 0, n, tags.ANOMALY_KIND), [None] * n
        for tag in window(tags.ANOMALY_BINS):
            pair = pmt.to_python(tag.value)
            if isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(b, int) for b in pair) \
                    and 0 <= pair[0] < pair[1] <= self.nfft:
                bins[tag.offset - first] = pair
            else:  # a foreign or replayed stream's tag: the alert takes the band's edges, as one not located
                self.logger.warn(f"specenc_anomaly_bins={pmt.write_string(tag.value)[:80]} on spectrum {tag.offset} "
                                 f"is no bin range in 0..{self.nfft}; ignored")
        return kinds, bins

    def _take(self, tag, index):
        key = tag.key
        if pmt.eq(key, tags.CONTEXT):
            try:
                self._calibrated, calibrated_for = self._clock.apply_context(tag.value)
            except ValueError as exc:  # a foreign or replayed stream's tag: report and go on
                self.logger.error(f"specenc_context={pmt.write_string(tag.value)[:200]} on spectrum {index} "
                                  f"ignored: {exc}")
                return
            if self._threshold_override is None:
                self._threshold = self._calibrated
            self._check_kinds()
            self.integrate = self._integrate_asked or calibrated_for
            if self._threshold_override is None and self.integrate != calibrated_for:
                self.logger.warn(f"the model's threshold was calibrated for integrate={calibrated_for}, this block "
                                 f"integrates {self.integrate} scores: its false-alarm rate does not hold")
        else:  # rx_time, rx_freq, rx_rate
            tuning, when = (self._clock.freq, self._clock.rate), self._clock.time(index)
            self._clock.apply(tag, index, self.logger.warn)  # from this spectrum on
            if (self._clock.freq, self._clock.rate) != tuning:  # another band: its anomalies are new, not held off,
                self._last_above = None  # and its scores are not averaged with the old band's
                self._history = EMPTY_HISTORY
            elif abs(self._clock.time(index) - when) > self._clock.time(index + 1) - self._clock.time(index):
                # The time jumped (samples dropped, a new capture): a mean across it would be placed wrongly.
                self._history = EMPTY_HISTORY
            self.add_item_tag(0, tag.offset, key, tag.value)

    def _alert_run(self, out, where, seq, first, start, stop, threshold):
        scores = out[start:stop]
        if not self._warned_untagged and self._calibrated is None:
            # Without the encoder's context times count spectra, not samples; an explicit threshold hid that.
            self.logger.error("no specenc_context/score tags: connect this block to spectrum_encoder output 0")
            self._warned_untagged = True
        if threshold is None:
            return
        above = start + np.flatnonzero(scores > threshold)
        if above.size == 0:
            return
        for i in above:
            index = first + int(i)
            last, self._last_above = self._last_above, index
            if last is not None and index - last <= self.holdoff:
                continue
            start_index, kind, bins = self._source(where, seq, first, int(i))
            kind = kind or "unknown"
            # One tag per alert: a tag on every spectrum above the threshold smeared a time sink's labels
            # into a black band during long anomalies.
            self.add_item_tag(0, index, tags.ANOMALY, pmt.intern(kind))
            self.message_port_pub(tags.ALERTS_PORT,
                                  self._alert_pmt(kind, float(out[i]), threshold, bins, start_index, index))

    def _alert_pmt(self, kind, score, threshold, where, start_index, index):
        if where is not None:
            f_lo, f_hi = self._clock.edges_hz(where[0], where[1], self.nfft)
        else:
            f_lo, f_hi = self._clock.band_edges_hz()
        msg = self._clock.place(start_index)
        msg.update(kind=kind, score=score, threshold=float(threshold), spectra=index - start_index + 1,
                   sample_count=(index - start_index) * self._clock.step + self._clock.span,
                   freq_lower_edge=float(f_lo), freq_upper_edge=float(f_hi))
        return tags.dict_to_pmt(msg)
