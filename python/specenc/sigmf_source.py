"""GNU Radio source that plays a SigMF recording or a raw IQ file, with rx_freq/rx_rate/rx_time tags."""

import numpy as np
import pmt
from gnuradio import gr

from . import sigmf_io

RX_FREQ = pmt.intern("rx_freq")
RX_RATE = pmt.intern("rx_rate")
RX_TIME = pmt.intern("rx_time")


class sigmf_source(gr.sync_block):
    """Complex samples from a file, read through a memory map one output buffer at a time.

    Args:
        path: `.sigmf-meta`/`.sigmf-data` (or their base name) or a raw IQ file.
        repeat: start again at the end (tags are emitted once, at the first sample).
        rate: sample rate in Hz; required for raw files, overrides the SigMF meta when given.
        freq: centre frequency in Hz; overrides the SigMF capture frequency; raw default 0.
        fmt: raw sample format cu8, ci8, ci16 or cf32 (None for SigMF: core:datatype is used).

    Output sample 0 carries rx_freq (Hz, double), rx_rate (Hz, double) and rx_time
    (uint64 seconds, double fraction since the Unix epoch, from core:datetime, else (0, 0.0)).
    Integer formats are scaled to full scale 1.0 (see gnuradio.specenc.sigmf_io).
    """

    def __init__(self, path, repeat=False, rate=None, freq=None, fmt=None):
        gr.sync_block.__init__(self, name="specenc_sigmf_source", in_sig=None, out_sig=[np.complex64])
        self.recording = sigmf_io.open_recording(path, rate=rate, freq=freq, fmt=fmt)
        if self.recording.num_samples == 0:
            raise ValueError(f"{path}: recording holds no samples")
        self._repeat = bool(repeat)
        self._raw = sigmf_io.raw_view(self.recording)  # mapped once, not per work() call
        self._pos = 0
        secs, frac = (sigmf_io.datetime_to_rx_time(self.recording.datetime)
                      if self.recording.datetime else (0, 0.0))
        self._tags = (
            (RX_FREQ, pmt.from_double(self.recording.center_freq)),
            (RX_RATE, pmt.from_double(self.recording.sample_rate)),
            (RX_TIME, pmt.make_tuple(pmt.from_uint64(secs), pmt.from_double(frac))),
        )

    def work(self, input_items, output_items):
        out = output_items[0]
        rec = self.recording
        if self._pos >= rec.num_samples:
            if not self._repeat:
                return -1  # WORK_DONE
            self._pos = 0
        if self.nitems_written(0) == 0:
            for key, value in self._tags:
                self.add_item_tag(0, 0, key, value)
        n = min(len(out), rec.num_samples - self._pos)
        sigmf_io.to_complex(self._raw[self._pos:self._pos + n], rec.datatype, out[:n])
        self._pos += n
        return n
