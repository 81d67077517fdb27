"""GNU Radio source that plays a SigMF recording or a raw IQ file, with rx_freq/rx_rate/rx_time tags."""

import bisect

import numpy as np
import pmt
from gnuradio import gr

from . import sigmf_io

RX_FREQ = pmt.intern("rx_freq")
RX_RATE = pmt.intern("rx_rate")
RX_TIME = pmt.intern("rx_time")


class sigmf_source(gr.sync_block):
    """Complex samples from a file, read one output buffer at a time.

    Args:
        path: `.sigmf-meta`/`.sigmf-data` (or their base name), a raw IQ file, or an opened sigmf_io.Recording
            (then rate, freq and fmt are its own).
        repeat: start again at the end (rx_rate and rx_time are tagged on the first pass only).
        rate: sample rate in Hz; required for raw files, overrides the SigMF meta when given.
        freq: centre frequency in Hz; overrides the SigMF capture frequencies (all of them); raw default 0.
        fmt: raw sample format cu8, ci8, ci16 or cf32 (None for SigMF: core:datatype is used).

    Output sample 0 carries rx_freq (Hz, double), rx_rate (Hz, double) and rx_time
    (uint64 seconds, double fraction since the Unix epoch, from core:datetime, else (0, 0.0)).
    A later SigMF capture at another core:frequency (a receiver that retuned) gets rx_freq on its first
    sample, and one with a core:datetime of its own, or a core:global_index past its samples (samples the receiver
    dropped), gets rx_time, so alerts after it are placed right.
    Integer formats are scaled to full scale 1.0 (see gnuradio.specenc.sigmf_io). A file cut short while it plays
    is logged as an error and the stream ends where its data does.
    """

    def __init__(self, path, repeat=False, rate=None, freq=None, fmt=None):
        gr.sync_block.__init__(self, name="specenc_sigmf_source", in_sig=None, out_sig=[np.complex64])
        if isinstance(path, sigmf_io.Recording):
            self.recording = path
        else:
            self.recording = sigmf_io.open_recording(path, rate=rate, freq=freq, fmt=fmt)
        rec = self.recording
        if rec.num_samples == 0:
            raise ValueError(f"{rec.meta_path or rec.data_path}: recording holds no samples")
        self._repeat = bool(repeat)
        self._file = open(rec.data_path, "rb")  # noqa: SIM115 - read on every work() call for the block's life
        self._pos = 0
        retunes = [(n, RX_FREQ, pmt.from_double(f)) for n, f in sigmf_io.retunes(rec)]
        times = [(n, RX_TIME, rx_time(when)) for n, _, when in sigmf_io.capture_changes(rec) if when]
        tuning = (0, RX_FREQ, pmt.from_double(rec.center_freq))
        # (sample, key, value) tags of this pass; a repeat goes back to the first capture's frequency and retunes
        # again, but tags no time (it would run backwards)
        start = (0, RX_TIME, rx_time(sigmf_io.start_datetime(rec)))
        self._use_tags([tuning, (0, RX_RATE, pmt.from_double(rec.sample_rate)), start, *retunes, *times])
        self._repeat_tags = [tuning, *retunes] if retunes else []

    def _use_tags(self, tags):
        """Tag this pass with `tags`, kept in sample order with their samples apart, so that each work() call finds
        its own by bisection (a scan of all of them each call made a long scanning recording play slower than real
        time: thousands of captures; audit 86)."""
        self._tags = sorted(tags, key=lambda t: t[0])  # stable: a sample's tags keep their order
        self._tag_samples = [t[0] for t in self._tags]

    def work(self, input_items, output_items):
        out, done = output_items[0], 0
        while done < len(out):  # a repeated file shorter than the buffer plays as often as it fits
            if self._pos >= self.recording.num_samples:
                if not self._repeat:
                    break
                self._pos = 0
                self._use_tags(self._repeat_tags)
            got = self._play(out[done:], self.nitems_written(0) + done)
            if got == 0:
                break
            done += got
        return done or -1  # -1: WORK_DONE

    def _play(self, out, written):
        """Samples from the current position into `out`, tagged; returns how many."""
        rec = self.recording
        n = min(len(out), rec.num_samples - self._pos)
        got = sigmf_io.read_complex(self._file, rec.datatype, self._pos, out[:n])
        first, stop = (bisect.bisect_left(self._tag_samples, n) for n in (self._pos, self._pos + got))
        for sample, key, value in self._tags[first:stop]:
            self.add_item_tag(0, written + sample - self._pos, key, value)
        self._pos += got
        if got < n:
            self.logger.error(f"{rec.data_path}: the data ends at sample {self._pos}, not {rec.num_samples} as "
                              "when it was opened (cut short since?); the stream ends there")
            self._repeat, self._pos = False, rec.num_samples  # the next call ends the stream
        return got

def rx_time(when):
    """rx_time PMT for a core:datetime (None: (0, 0.0), the time unknown)."""
    secs, frac = sigmf_io.datetime_to_rx_time(when) if when else (0, 0.0)
    return pmt.make_tuple(pmt.from_uint64(secs), pmt.from_double(frac))
