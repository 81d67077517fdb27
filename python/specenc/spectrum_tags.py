"""Stream tag keys, message port names and per-spectrum time/frequency bookkeeping shared by the blocks.

Keys are interned once here; the GRC yml files use the same strings, and README's table of the encoder's tags.

How results flow without a second backbone pass: `spectrum_encoder` runs the model once per spectrum
and tags each pass-through spectrum with its class, confidence, anomaly score and kind (and anomaly
bins when the model gives them). `anomaly_detector` only thresholds those tags. The encoder also tags
the first spectrum with `specenc_context` (threshold, IQ samples per spectrum, fallback tuning) so the
detector needs no model and no duplicated parameters.
"""

import math

import numpy as np
import pmt

from . import bands, dsp
from .training.calibrate import MAX_INTEGRATE

# Upstream tags (UHD/Soapy/sigmf_source conventions), moved by `specenc.psd` onto the spectrum
# holding the tagged sample.
RX_TIME = pmt.intern("rx_time")
RX_FREQ = pmt.intern("rx_freq")
RX_RATE = pmt.intern("rx_rate")
RX_MEANING = {"rx_time": "time", "rx_freq": "frequency", "rx_rate": "rate > 0"}  # what a usable value is

# Tags added by spectrum_encoder on each spectrum.
CLASS = pmt.intern("specenc_class")  # symbol: family name
CONFIDENCE = pmt.intern("specenc_confidence")  # double in [0, 1]
ANOMALY_SCORE = pmt.intern("specenc_anomaly_score")  # double in [0, 1]
ANOMALY_KIND = pmt.intern("specenc_anomaly_kind")  # symbol; only where the score is above the model's threshold
ANOMALY_BINS = pmt.intern("specenc_anomaly_bins")  # pair (bin_start, bin_stop), only when the model locates it
INVALID = pmt.intern("specenc_invalid")  # True on spectra holding NaN/inf (skipped by the model)
PSD_SETTINGS = pmt.intern("specenc_psd")  # dict nfft, hop, average on the psd block's first spectrum
CONTEXT = pmt.intern("specenc_context")  # dict on the first spectrum, see SpectrumClock.context_pmt
# Tag added by anomaly_detector on spectra whose score exceeds the threshold (value: kind symbol).
ANOMALY = pmt.intern("specenc_anomaly")

# Message ports.
DETECTIONS_PORT = pmt.intern("detections")
ALERTS_PORT = pmt.intern("alerts")


def is_real(x):
    """A finite int or float (not a bool): what a tag's or message's number must be."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def rx_time_seconds(value):
    """rx_time PMT tuple (seconds, fraction), each of any real PMT type -> float seconds; None for anything else."""
    pair = pmt.to_python(value)
    if isinstance(pair, tuple) and len(pair) == 2 and all(map(is_real, pair)):
        return float(pair[0]) + float(pair[1])
    return None


def _number(value):
    """A PMT number of any real type (double, long, uint64) -> float; None for anything else."""
    x = pmt.to_python(value)
    return float(x) if is_real(x) else None


class SpectrumClock:
    """Where each spectrum sits in time, IQ samples and frequency, kept up to date from rx_* tags.

    Args:
        step: IQ samples between the starts of consecutive spectra (psd hop * average).
        span: IQ samples one spectrum covers ((average - 1) * hop + nfft).
        sample_rate: fallback sample rate (Hz) until an rx_rate tag arrives; 0 = unknown.
        center_freq: fallback centre frequency (Hz) until an rx_freq tag arrives.
    """

    def __init__(self, step, span, sample_rate=0.0, center_freq=0.0):
        self.step = int(step)
        self.span = int(span)
        self.rate = float(sample_rate)
        self.freq = float(center_freq)
        # Time reference: (spectrum index, seconds) from the last rx_time tag; None = stream start is t=0.
        self._time_ref = None

    @classmethod
    def for_psd(cls, nfft, overlap, average, sample_rate=0.0, center_freq=0.0):
        hop = dsp.hop_size(nfft, overlap)
        return cls(hop * average, dsp.samples_read(1, nfft, overlap, average), sample_rate, center_freq)

    def context_pmt(self, threshold, integrate=1):
        """The `specenc_context` tag value: what a downstream block needs to place spectra, and the model's
        threshold with the number of scores averaged that it was calibrated for."""
        return pmt.to_pmt(
            {
                "threshold": float(threshold),
                "integrate": int(integrate),
                "step": self.step,
                "span": self.span,
                "sample_rate": self.rate,
                "center_freq": self.freq,
            }
        )

    def apply_context(self, value):
        """Take a `specenc_context` tag value -> (threshold, integrate); ValueError, the clock as it was, for a value
        that is not one (a replayed or foreign stream's tag)."""
        ctx = pmt.to_python(value)
        numbers = ("step", "span", "sample_rate", "center_freq", "threshold")
        if not isinstance(ctx, dict) or not all(is_real(ctx.get(k)) for k in numbers) \
                or not is_real(ctx.get("integrate", 1)):
            raise ValueError(f"needs {', '.join(numbers)} (and integrate) as finite numbers")
        step, span, integrate = int(ctx["step"]), int(ctx["span"]), int(ctx.get("integrate", 1))
        # bounded as the blocks bound them: a step of 1e300 killed the detector's thread at its first alert
        if not (1 <= step <= span <= dsp.MAX_SPAN and 1 <= integrate <= MAX_INTEGRATE) or ctx["sample_rate"] < 0:
            raise ValueError(f"needs 1 <= step <= span <= {dsp.MAX_SPAN}, integrate in 1..{MAX_INTEGRATE}, "
                             "sample_rate >= 0")
        self.step, self.span = step, span
        self.rate, self.freq = float(ctx["sample_rate"]), float(ctx["center_freq"])
        return float(ctx["threshold"]), integrate

    def apply(self, tag, index, warn):
        """Take one rx_* tag found on spectrum `index` (other keys are ignored). A value that is no time,
        frequency or rate > 0 (a source's bug) goes to `warn` and the clock keeps what it had."""
        key = pmt.symbol_to_string(tag.key)
        if key not in RX_MEANING:
            return
        value = rx_time_seconds(tag.value) if key == "rx_time" else _number(tag.value)
        if value is None or (key == "rx_rate" and value <= 0):
            warn(f"{key}={pmt.write_string(tag.value)} on spectrum {index} is no {RX_MEANING[key]}; ignored")
        elif key == "rx_time":
            self._time_ref = (index, value)
        elif key == "rx_freq":
            self.freq = value
        elif value != self.rate:
            # Keep time continuous across a rate change: re-anchor at the tagged spectrum. Not when no rate was known:
            # time() counted samples as seconds then, and the first rate is the stream's since its rx_time. Not for
            # a rate sent again unchanged: each re-anchor rounds epoch seconds (~0.24 us), and a source repeating
            # its rx_rate made that drift by ~1 s an hour (audit 87).
            if self.rate > 0:
                self._time_ref = (index, self.time(index))
            self.rate = value

    def time(self, index):
        """Seconds of the start of spectrum `index` (rx_time based, else since stream start)."""
        rate = self.rate if self.rate > 0 else 1.0
        if self._time_ref is None:
            return index * self.step / rate
        ref_index, ref_time = self._time_ref
        return ref_time + (index - ref_index) * self.step / rate

    def place(self, index):
        """Dict of time, sample position, tuning and band of spectrum `index` (plain Python types)."""
        return {
            "time": self.time(index),
            "spectrum": int(index),
            "sample_start": int(index) * self.step,
            "sample_count": self.span,
            "center_freq": self.freq,
            "sample_rate": self.rate,
            "band": bands.band_for_frequency(self.freq if self.freq > 0 else None),
        }

    def edges_hz(self, bin_start, bin_stop, nfft):
        """Frequency edges (Hz) of bins [bin_start, bin_stop) at the current tuning."""
        rate = self.rate if self.rate > 0 else 1.0
        return dsp.bin_edges_hz(bin_start, bin_stop, nfft, rate, self.freq)

    def band_edges_hz(self):
        """Edges (Hz) of the whole captured band, centre frequency +- half the sample rate."""
        rate = self.rate if self.rate > 0 else 1.0
        return self.freq - rate / 2, self.freq + rate / 2


# Per-item tags of a whole work() window in one C++ call (lib/stream_tags.cc): through the Python gateway
# every tag cost a call and a PMT made in Python. Call these from the block's work(). The compiled module
# is imported on use, so the blocks import in a source-only checkout.
def add_double_tags(block, output, offsets, values, key):
    """Tag item offsets[i] (absolute) of `output` with (key, double values[i])."""
    from .specenc_python import add_double_tags as add

    add(block.gateway, output, offsets, values, key)


def add_symbol_tags(block, output, offsets, codes, symbols, key):
    """Tag item offsets[i] (absolute) of `output` with (key, symbols[codes[i]]); symbols: PMT symbols."""
    from .specenc_python import add_symbol_tags as add

    add(block.gateway, output, offsets, codes, symbols, key)


def add_pair_tags(block, output, offsets, firsts, seconds, key):
    """Tag item offsets[i] (absolute) of `output` with (key, pmt.cons(firsts[i], seconds[i])) of longs."""
    from .specenc_python import add_pair_tags as add

    add(block.gateway, output, offsets, firsts, seconds, key)


def double_tag_values(block, input, n, key, fill=np.nan):
    """Per item of the window's first n on `input`: its `key` tag's double value (`fill` where none)."""
    from .specenc_python import double_tag_values as values

    return values(block.gateway, input, block.nitems_read(input), n, key, fill)


def symbol_tag_values(block, input, n, key):
    """Per item of the window's first n on `input`: its `key` tag's symbol as str ('' where none)."""
    from .specenc_python import symbol_tag_values as values

    return values(block.gateway, input, block.nitems_read(input), n, key)


def split_by_tags(tags, first_index, count):
    """Yield (start, stop, tags_at_start) runs of a work window so tuning changes apply in order."""
    by_offset = {}
    for tag in tags:
        by_offset.setdefault(tag.offset - first_index, []).append(tag)
    cuts = sorted(o for o in by_offset if 0 < o < count)
    starts = [0] + cuts
    stops = cuts + [count]
    for start, stop in zip(starts, stops):
        yield start, stop, by_offset.get(start, [])


def to_plain(value):
    """NumPy scalars -> Python scalars, for pmt.to_pmt and json."""
    if isinstance(value, np.generic):
        return value.item()
    return value


# Flat message dicts (str keys; str, bool, int, float or None values) to PMT as pmt.to_pmt builds them, without
# its per-value walk over every PMT type: that walk cost ~60 us per detections/alerts message.
_FROM_PYTHON = {str: pmt.string_to_symbol, bool: pmt.from_bool, int: pmt.from_long, float: pmt.from_double,
                type(None): lambda _: pmt.PMT_NIL}
_KEYS = {}


def dict_to_pmt(message):
    """A flat dict -> PMT dict equal to pmt.to_pmt(message); other value types go through pmt.to_pmt."""
    out = pmt.make_dict()
    for key, value in message.items():
        sym = _KEYS.get(key)
        if sym is None:
            sym = _KEYS[key] = pmt.string_to_symbol(key)
        value = to_plain(value)
        convert = _FROM_PYTHON.get(type(value), pmt.to_pmt)
        out = pmt.dict_add(out, sym, convert(value))
    return out
