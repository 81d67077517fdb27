"""Read and write SigMF recordings and raw IQ files without loading them whole.

Samples are read and converted to complex64 only for the slice asked for, so a
multi-gigabyte capture costs nothing until it is read (read, not memory-mapped: a file cut short while
mapped kills the process with SIGBUS; read, it is a clear error). Integer formats are scaled to full scale 1.0:

    cu8      (x - 127.5) / 127.5     (RTL-SDR)
    ci8      x / 128
    ci16_le  x / 32768
    cf32_le  as stored

Writers produce SigMF 1.x metadata (core:version, core:datatype, core:sample_rate, one capture
with core:frequency/core:sample_start/core:datetime, annotations sorted by core:sample_start) and
declare every non-core namespace used (e.g. `specenc:`) in core:extensions.
This module imports no GNU Radio.
"""

import bisect
import datetime as _dt
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from .folders import make_parent, write_text_atomic

log = logging.getLogger(__name__)

SIGMF_VERSION = "1.0.0"
META_EXT, DATA_EXT, ARCHIVE_EXT = ".sigmf-meta", ".sigmf-data", ".sigmf"

# canonical datatype -> (numpy dtype of one real component, scale, offset); value = (raw - offset) * scale
DATATYPES = {
    "cu8": (np.dtype(np.uint8), 1 / 127.5, 127.5),
    "ci8": (np.dtype(np.int8), 1 / 128.0, 0.0),
    "ci16_le": (np.dtype("<i2"), 1 / 32768.0, 0.0),
    "cf32_le": (np.dtype("<f4"), 1.0, 0.0),
}
# accepted spellings -> canonical; the single-byte types have no endianness
ALIASES = {
    "cu8": "cu8", "cu8_le": "cu8", "ci8": "ci8", "ci8_le": "ci8",
    "ci16": "ci16_le", "ci16_le": "ci16_le", "cs16": "ci16_le",
    "cf32": "cf32_le", "cf32_le": "cf32_le", "fc32": "cf32_le",
}
RAW_FORMATS = ("cu8", "ci8", "ci16", "cf32")  # the --format choices of the command line for raw files


@dataclass
class Recording:
    """What a reader needs to know about one recording (SigMF or raw)."""

    meta_path: str | None  # None for raw files
    data_path: str
    datatype: str  # canonical name, a key of DATATYPES
    sample_rate: float
    center_freq: float
    num_samples: int
    datetime: str | None = None  # ISO 8601 UTC of sample 0 ("...Z"), when known
    annotations: list = field(default_factory=list)
    global_: dict = field(default_factory=dict)
    captures: list = field(default_factory=list)
    # The captures' and annotations' core:sample_start count from the data file's first sample, which is sample
    # `offset` (core:offset) of the whole recording: SigMF's sample indices are absolute.
    offset: int = 0


def canonical_datatype(name, where=""):
    """Canonical datatype name for a SigMF/raw format spelling; ValueError (naming `where`) when unsupported."""
    key = str(name).strip().lower()
    if key not in ALIASES:
        raise ValueError(f"{where + ': ' if where else ''}unsupported datatype {name!r}; "
                         f"supported: cu8, ci8, ci16_le (ci16), cf32_le (cf32)")
    return ALIASES[key]


def _shifted(items, by):
    """Copies of captures/annotations with `by` added to each core:sample_start."""
    return [{**item, "core:sample_start": int(item.get("core:sample_start", 0)) + by} for item in items]


def _from_offset(meta_path, what, items, offset):
    """`items` counted from the data file's first sample, sorted. SigMF's sample indices are absolute: a recording
    split over files numbers each file's first sample core:offset."""
    for i, item in enumerate(items):
        start = item.get("core:sample_start", 0) if isinstance(item, dict) else None
        if not _is_whole(start):
            raise ValueError(f"{meta_path}: {what} {i}: core:sample_start={start!r} is not a sample index")
        if start < offset:
            raise ValueError(f"{meta_path}: {what} {i} starts at sample {start}, before core:offset={offset} (the "
                             "data file's first sample)")
    return sorted(_shifted(items, -offset), key=lambda item: item["core:sample_start"])


def _check_annotation_fields(meta_path, annotations):
    """ValueError naming the annotation unless its core:sample_count is a count, its frequency edges, SNR and hop
    bandwidth numbers (other writers' files get these wrong; a string count failed deep in the flowgraph); a warning
    for one edge alone (SigMF wants both) and for edges the wrong way round (_normalised swaps them)."""
    for i, ann in enumerate(annotations):
        count = ann.get("core:sample_count", 0)
        # 1000.0 is a count too (JSON Schema's integer; writers with float arithmetic give it)
        if not (_is_whole(count) or isinstance(count, float) and count.is_integer() and count >= 0):
            raise ValueError(f"{meta_path}: annotation {i}: core:sample_count={count!r} is not a sample count")
        for key in ("core:freq_lower_edge", "core:freq_upper_edge"):
            edge = ann.get(key, 0.0)
            if isinstance(edge, bool) or not isinstance(edge, (int, float)) or not math.isfinite(edge):
                raise ValueError(f"{meta_path}: annotation {i}: {key}={edge!r} is not a frequency in Hz")
        # the truth specenc synth writes, which eval reads: a list or a string there was a traceback naming no file
        params, snr = ann.get("specenc:params", {}), ann.get("specenc:snr_db", 0.0)
        hop_bw = params.get("hop_bw", 0.0) if isinstance(params, dict) else None
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (hop_bw, snr)):
            raise ValueError(f"{meta_path}: annotation {i}: specenc:params must be an object (hop_bw a number) and "
                             f"specenc:snr_db a number, not {params!r} and {snr!r}")
        if ("core:freq_lower_edge" in ann) != ("core:freq_upper_edge" in ann):
            log.warning("%s: annotation %d gives one frequency edge: it is read as placed nowhere in frequency",
                        meta_path, i)
        if ann.get("core:freq_lower_edge", -math.inf) > ann.get("core:freq_upper_edge", math.inf):
            log.warning("%s: annotation %d: core:freq_lower_edge=%r lies above core:freq_upper_edge=%r; read the other "
                        "way round", meta_path, i, ann["core:freq_lower_edge"], ann["core:freq_upper_edge"])


def _normalised(annotations, captures, num_samples):
    """Each annotation's core:sample_count as an int, and one for an annotation without: SigMF's 'through the end of
    its capture' (the next capture's start, or the end of the data); frequency edges in order."""
    starts = [c["core:sample_start"] for c in captures]
    for ann in annotations:
        if ann.get("core:freq_lower_edge", -math.inf) > ann.get("core:freq_upper_edge", math.inf):
            ann["core:freq_lower_edge"], ann["core:freq_upper_edge"] = ann["core:freq_upper_edge"], \
                ann["core:freq_lower_edge"]
        if "core:sample_count" in ann:
            ann["core:sample_count"] = int(ann["core:sample_count"])
        else:
            # The captures are sorted: a scan for each annotation was quadratic (20 000 retunes: 4 s to read the meta)
            i = bisect.bisect_right(starts, ann["core:sample_start"])
            end = starts[i] if i < len(starts) else num_samples
            ann["core:sample_count"] = max(end - ann["core:sample_start"], 0)


def _is_whole(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _rate(value, what):
    """`value` as a sample rate in Hz; ValueError naming `what` unless it is finite and > 0."""
    try:
        rate = math.nan if isinstance(value, bool) else float(value)  # JSON true read as 1 Hz
    except (TypeError, ValueError):
        rate = math.nan
    if not 0 < rate < math.inf:
        raise ValueError(f"{what}={value!r} must be a finite sample rate > 0 Hz")
    return rate


def _freq(value, what):
    """`value` as a centre frequency in Hz (None and 0: baseband); ValueError naming `what` unless it is finite."""
    try:
        freq = float(value or 0.0)
    except (TypeError, ValueError):
        freq = math.nan
    if not math.isfinite(freq):
        raise ValueError(f"{what}={value!r} must be a finite centre frequency in Hz")
    return freq


def _item_bytes(datatype):
    return 2 * DATATYPES[datatype][0].itemsize


def _count_samples(data_path, datatype, trailing_bytes=0):
    """Samples in the data file, less its trailing_bytes (core:trailing_bytes: a footer that is not IQ)."""
    if not os.path.isfile(data_path):
        raise FileNotFoundError(f"data file not found: {data_path}")
    size = os.path.getsize(data_path) - trailing_bytes
    if size < 0:
        raise ValueError(f"{data_path}: core:trailing_bytes={trailing_bytes} is more than the file's "
                         f"{size + trailing_bytes} bytes")
    item = _item_bytes(datatype)
    if size % item:
        raise ValueError(
            f"{data_path}: truncated data: {size} bytes is not a whole number of {datatype} samples "
            f"({item} bytes each)")
    return size // item


def meta_path_for(path):
    """The .sigmf-meta path for a meta, data or base path."""
    path = os.fspath(path)
    for ext in (META_EXT, DATA_EXT, "."):
        if path.endswith(ext):
            return path[: -len(ext)] + META_EXT
    return path + META_EXT


def data_path_for(path):
    """The .sigmf-data path beside a meta, data or base path."""
    return meta_path_for(path)[: -len(META_EXT)] + DATA_EXT


def read_global(path):
    """The global object of the SigMF meta at `path` (meta, data or base path); {} when there is none or it is no
    SigMF meta."""
    try:
        with open(meta_path_for(path), encoding="utf-8") as f:
            glob = json.load(f)["global"]
    except (OSError, ValueError, TypeError, KeyError, RecursionError):
        return {}
    return glob if isinstance(glob, dict) else {}


def described_samples(path, glob=None):
    """The samples file a SigMF meta path names (its core:dataset, else the .sigmf-data beside it), whether or not the
    meta or the file exists: an output written at that meta would take another recording's metadata. glob: the meta's
    read_global, when the caller has it."""
    name = (read_global(path) if glob is None else glob).get("core:dataset")
    if isinstance(name, str) and name:
        return os.path.join(os.path.dirname(meta_path_for(path)), name)
    return data_path_for(path)


def read_meta(path, rate=None):
    """Parse a SigMF recording (meta, data or base path) into a Recording; the samples stay on disk. rate (Hz), when
    given, is used instead of core:sample_rate (which SigMF leaves optional)."""
    meta_path = meta_path_for(path)
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(f"SigMF meta file not found: {meta_path}")
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        raise ValueError(f"{meta_path}: not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path}: not a SigMF meta (a JSON object holding 'global', 'captures', 'annotations')")
    glob = meta.get("global")
    if not isinstance(glob, dict):
        raise ValueError(f"{meta_path}: missing 'global' object")
    if "core:datatype" not in glob:
        raise ValueError(f"{meta_path}: missing core:datatype in global")
    datatype = canonical_datatype(glob["core:datatype"], meta_path)
    if glob.get("core:metadata_only"):
        raise ValueError(f"{meta_path}: core:metadata_only: it describes a recording without its samples")
    if rate is None and glob.get("core:sample_rate") is None:
        raise ValueError(f"{meta_path}: missing core:sample_rate in global (give the sample rate to use)")
    rate = _rate(glob["core:sample_rate"], f"{meta_path}: core:sample_rate") if rate is None else _rate(rate, "rate")
    if glob.get("core:num_channels", 1) != 1:
        raise ValueError(f"{meta_path}: core:num_channels={glob['core:num_channels']!r}; only 1 channel is supported")
    for key in ("core:offset", "core:trailing_bytes"):
        if not _is_whole(glob.get(key, 0)):
            raise ValueError(f"{meta_path}: {key}={glob[key]!r} must be a whole number >= 0")
    offset = glob.get("core:offset", 0)
    captures = _from_offset(meta_path, "capture", meta.get("captures") or [], offset)
    starts = [c["core:sample_start"] for c in captures]
    if len(set(starts)) < len(starts):  # which one holds from there on is undefined: the alerts and the file disagreed
        twice = next(x for x, y in zip(starts, starts[1:]) if x == y)
        raise ValueError(f"{meta_path}: two captures start at sample {twice + offset}")
    for i, capture in enumerate(captures):
        freq = capture.get("core:frequency", 0.0)
        if isinstance(freq, bool) or not isinstance(freq, (int, float)) or not math.isfinite(freq):
            raise ValueError(f"{meta_path}: capture {i}: core:frequency={freq!r} is not a frequency in Hz")
        if "core:datetime" in capture:
            try:
                if datetime_to_rx_time(capture["core:datetime"])[0] < 0:
                    raise ValueError(f"core:datetime={capture['core:datetime']!r} lies before 1970, which GNU Radio's "
                                     "rx_time cannot carry")
            except ValueError as exc:
                raise ValueError(f"{meta_path}: capture {i}: {exc}") from None
    if any(c.get("core:header_bytes") for c in captures):
        raise ValueError(f"{meta_path}: core:header_bytes (non-conforming dataset) is not supported")
    first = captures[0] if captures else {}
    when, start = first.get("core:datetime"), first.get("core:sample_start", 0)
    if when and sum(datetime_to_rx_time(when)) < start / rate:  # rx_time has no time before 1970
        log.warning("%s: its first capture's core:datetime %s, less the %d samples before it, lies before 1970 (a "
                    "clock never set?); its start time is taken as unknown", meta_path, when, start)
        when = None
    base_dir = os.path.dirname(meta_path)
    data_name = glob.get("core:dataset")
    if data_name is not None and not isinstance(data_name, str):  # os.path.join raised a TypeError
        raise ValueError(f"{meta_path}: core:dataset={data_name!r} must be the data file's name")
    data_path = os.path.join(base_dir, data_name) if data_name else data_path_for(meta_path)
    annotations = _from_offset(meta_path, "annotation", meta.get("annotations") or [], offset)
    _check_annotation_fields(meta_path, meta.get("annotations") or [])
    num_samples = _count_samples(data_path, datatype, glob.get("core:trailing_bytes", 0))
    _normalised(annotations, captures, num_samples)
    past = [a for a in annotations if a["core:sample_start"] + a["core:sample_count"] > num_samples]
    past += [c for c in captures if c["core:sample_start"] >= num_samples > 0]
    if past:
        log.warning("%s: %d captures or annotations reach past the %d samples its data holds (from sample %d)",
                    meta_path, len(past), num_samples, min(item["core:sample_start"] for item in past))
    return Recording(
        meta_path=meta_path,
        data_path=data_path,
        datatype=datatype,
        sample_rate=rate,
        center_freq=float(first.get("core:frequency", 0.0)),
        num_samples=num_samples,
        datetime=when,
        annotations=annotations,
        global_=glob,
        captures=captures,
        offset=offset,
    )


def open_raw(path, sample_rate, center_freq, fmt):
    """A Recording for a headerless IQ file with the rate (Hz), centre frequency (Hz) and format given."""
    path = os.fspath(path)
    datatype = canonical_datatype(fmt)
    return Recording(
        meta_path=None,
        data_path=path,
        datatype=datatype,
        sample_rate=_rate(sample_rate, "sample_rate"),
        center_freq=_freq(center_freq, "center_freq"),
        num_samples=_count_samples(path, datatype),
        global_={"core:datatype": datatype, "core:sample_rate": float(sample_rate)},
    )


def is_sigmf(path):
    """True for a .sigmf-meta path, or a data or base path with a .sigmf-meta beside it."""
    path = os.fspath(path)
    return path.endswith(META_EXT) or os.path.isfile(meta_path_for(path))


def open_recording(path, rate=None, freq=None, fmt=None):
    """A Recording for a SigMF recording or a raw file, as the command line and the source block take it.

    SigMF: rate/freq (Hz), when given, override the metadata; fmt must be None (core:datatype rules).
    Raw: rate (Hz) and fmt (cu8, ci8, ci16, cf32) are required; freq defaults to 0 (baseband).
    """
    path = os.fspath(path)
    if not path:
        raise ValueError("no input file given: name a .sigmf-meta or raw IQ recording")
    if path.lower().endswith(ARCHIVE_EXT):  # a tar: read as raw IQ it would be its headers and JSON
        raise ValueError(f"{path} is a SigMF archive; extract it (tar xf) and give its .sigmf-meta")
    if is_sigmf(path):
        if fmt:
            raise ValueError(f"format {fmt!r} given for SigMF recording {path}; its core:datatype sets the format")
        rec = read_meta(path, rate)
        if freq is None and "core:frequency" not in (rec.captures[0] if rec.captures else {}):
            log.warning("%s: no core:frequency in its first capture; taken as 0 Hz (baseband), which tells the "
                        "model no band: give the centre frequency", rec.meta_path)
        if freq is not None:  # for the whole recording, also where a later capture retuned
            rec.center_freq = _freq(freq, "freq")
            rec.captures = [{**c, "core:frequency": rec.center_freq} for c in rec.captures]
        return rec
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder; give a recording in it")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"input file not found: {path}")
    # X.SIGMF-META was read as raw IQ: its JSON text analysed as samples (audit 69)
    if path.lower().endswith((META_EXT, DATA_EXT)) and not path.endswith((META_EXT, DATA_EXT)):
        raise ValueError(f"{path}: SigMF names its files in lower case ({META_EXT}, {DATA_EXT}); rename the pair")
    if rate is None or not fmt:
        raise ValueError(f"raw file {path} needs a sample rate and a format (cu8, ci8, ci16, cf32), "
                         f"or a .sigmf-meta beside it")
    return open_raw(path, rate, _freq(freq, "freq"), fmt)  # named as the caller gave it


def capture_changes(rec):
    """[(sample, centre Hz or None, core:datetime or None)] of each capture after the first that retunes (another
    core:frequency) or restarts the clock: a core:datetime of its own, or a core:global_index that runs ahead of its
    sample_start (samples the receiver dropped: its time is then the clock's plus the samples since, dropped ones
    included), in sample order."""
    out, freq = [], rec.center_freq
    # The clock: a datetime (None: the stream's own time) at a file sample, and the receiver's sample count there
    # (core:global_index) once a capture gives it.
    when_ref, sample_ref, index_ref = start_datetime(rec), 0, None
    for i, c in enumerate(rec.captures):
        f, when, index = c.get("core:frequency"), c.get("core:datetime"), c.get("core:global_index")
        start = int(c.get("core:sample_start", 0))
        if _is_whole(index):
            dropped = (index - index_ref) - (start - sample_ref) if index_ref is not None else 0
            if dropped > 0 and not when:
                try:
                    when = datetime_after(when_ref, (index - index_ref) / rec.sample_rate)
                except (OverflowError, ValueError, OSError):  # past the year 9999: a corrupt count
                    raise ValueError(f"{rec.meta_path}: capture {i}: core:global_index {index} puts it past any date "
                                     "a clock can give") from None
            elif dropped <= 0:  # no gap, or the receiver's count restarted: it counts on from here
                index_ref = index - (start - sample_ref)
        if i == 0:  # the first capture sets the stream's start: rx_* tags on sample 0
            continue
        if when:
            when_ref, sample_ref, index_ref = when, start, index if _is_whole(index) else None
        retune = f is not None and float(f) != freq
        freq = float(f) if f is not None else freq
        if retune or when:
            out.append((start, freq if retune else None, when))
    return out


def retunes(rec):
    """[(sample, centre Hz)] of each capture after the first that retunes."""
    return [(n, f) for n, f, _ in capture_changes(rec) if f is not None]


def spectrum_freqs(rec, count, step):
    """(count,) centre frequency (Hz) of each of `count` spectra `step` samples apart: a capture that retunes at
    sample n does so from spectrum n // step on, where the psd block puts the source's rx_freq tag."""
    starts, freqs = zip((0, rec.center_freq), *retunes(rec))
    return np.asarray(freqs)[np.searchsorted(np.asarray(starts) // step, np.arange(count), side="right") - 1]


def to_complex(raw, datatype, out=None):
    """(n, 2) raw I/Q of `datatype` -> complex64 scaled to full scale 1.0, written into `out` when given."""
    _, scale, offset = DATATYPES[datatype]
    if out is None:
        out = np.empty(len(raw), np.complex64)
    pairs = out.view(np.float32).reshape(-1, 2)  # complex64 is interleaved float32 I, Q: convert in one pass
    np.copyto(pairs, raw, casting="unsafe")  # integers up to 16 bits are exact in float32
    if offset:
        pairs -= np.float32(offset)
    if scale != 1.0:
        pairs *= np.float32(scale)
    return out


def read_complex(f, datatype, start, out):
    """Fill complex64 `out` from sample `start` of the open data file `f`, scaled to full scale 1.0; returns the
    samples read, fewer than len(out) only where the file ends early (cut short after it was opened). Read, not
    memory-mapped: reading a map past the end of a file cut short kills the whole process (SIGBUS)."""
    dtype, item = DATATYPES[datatype][0], _item_bytes(datatype)
    f.seek(start * item)
    if dtype == np.float32:  # complex64 is interleaved float32: straight into the output
        return f.readinto(out.view(np.uint8)) // item
    raw = np.empty((len(out), 2), dtype)
    got = f.readinto(raw.view(np.uint8)) // item
    to_complex(raw[:got], datatype, out[:got])
    return got


def read_samples(rec, start=0, count=None):
    """Samples [start, start+count) as complex64, scaled to full scale 1.0 (count None = to the end)."""
    if not 0 <= start <= rec.num_samples:
        raise ValueError(f"start={start} outside the recording (0..{rec.num_samples})")
    stop = rec.num_samples if count is None else min(rec.num_samples, start + int(count))
    if count is not None and count < 0:
        raise ValueError(f"count={count} must be >= 0")
    out = np.empty(stop - start, np.complex64)
    with open(rec.data_path, "rb") as f:
        got = read_complex(f, rec.datatype, start, out)
    if got < len(out):
        raise ValueError(f"{rec.data_path}: the data ends at sample {start + got}, not {stop} as when it was opened "
                         "(cut short since?)")
    return out


# --- time ---------------------------------------------------------------------------------------

_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]00:?00)?$")


def datetime_to_rx_time(text):
    """ISO 8601 UTC string -> (whole seconds since the Unix epoch, fractional seconds), GNU Radio's rx_time.

    The fraction is parsed separately so nanosecond timestamps keep their precision.
    """
    m = _ISO.match(str(text).strip())
    try:
        whole = _dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=_dt.timezone.utc)
    except (AttributeError, ValueError):  # no match, or no such date or time (a month 13, a leap second)
        raise ValueError(f"core:datetime={text!r} is not ISO 8601 UTC (YYYY-MM-DDTHH:MM:SS[.fff]Z)") from None
    frac = float("0" + m.group(2)) if m.group(2) else 0.0
    return int(whole.timestamp()), frac


def start_datetime(rec):
    """core:datetime of the data file's first sample (None when unknown): the first capture's, which SigMF dates at
    that capture's own first sample."""
    start = rec.captures[0].get("core:sample_start", 0) if rec.captures else 0
    return datetime_after(rec.datetime, -start / rec.sample_rate) if rec.datetime and start else rec.datetime


def datetime_after(when, seconds):
    """core:datetime `when` (None: the epoch, rx_time (0, 0.0) as an unknown time) plus `seconds`, to the ns."""
    secs, frac = datetime_to_rx_time(when) if when else (0, 0.0)
    whole, ns = divmod(round((frac + seconds) * 1e9), 10**9)
    stamp = _dt.datetime.fromtimestamp(secs + whole, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ns:09d}Z"


def now_datetime():
    """Current UTC time in SigMF's ISO 8601 form."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- writing ------------------------------------------------------------------------------------

def _to_raw(iq, datatype):
    """complex samples -> interleaved array in `datatype` (integers rounded and clipped to range)."""
    dtype, scale, offset = DATATYPES[datatype]
    inter = np.empty((len(iq), 2), np.float64 if dtype.kind != "f" else np.float32)
    inter[:, 0], inter[:, 1] = iq.real, iq.imag
    if dtype.kind == "f":
        return inter.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.rint(inter / scale + offset), info.min, info.max).astype(dtype)


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} to SigMF JSON")


def _check_annotations(annotations):
    out = []
    for i, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            raise ValueError(f"annotation {i} must be a dict, got {type(ann).__name__}")
        start = ann.get("core:sample_start")
        if start is None or int(start) < 0:
            raise ValueError(f"annotation {i} needs core:sample_start >= 0, got {start!r}")
        if ("core:freq_lower_edge" in ann) != ("core:freq_upper_edge" in ann):
            raise ValueError(f"annotation {i} must give both core:freq_lower_edge and core:freq_upper_edge or neither")
        ann = dict(ann)
        ann["core:sample_start"] = int(start)
        if "core:sample_count" in ann:
            ann["core:sample_count"] = int(ann["core:sample_count"])
        out.append(ann)
    # Equal starts in content order: emissions come from the tracker in an order that follows where the encoder's
    # batches were cut (scheduler timing), and two runs on one input must write the same file.
    return sorted(out, key=lambda a: (a["core:sample_start"], json.dumps(a, sort_keys=True, default=str)))


def _declare_extensions(meta):
    """Declare every non-core namespace used in the meta, as SigMF requires."""
    used = set()
    for obj in [meta["global"], *meta["captures"], *meta["annotations"]]:
        used.update(k.split(":", 1)[0] for k in obj if ":" in k)
    used.discard("core")
    declared = meta["global"].setdefault("core:extensions", [])
    names = {e.get("name") for e in declared}
    for name in sorted(used - names):
        declared.append({"name": name, "version": "1.0.0", "optional": True})


def _write_meta(meta_path, meta):
    _declare_extensions(meta)
    # NaN is not JSON: an error here rather than a file SigMF readers reject
    write_text_atomic(meta_path, json.dumps(meta, indent=2, default=_json_default, allow_nan=False) + "\n")


def write_recording(meta_path, iq, sample_rate, center_freq, datatype="cf32_le", annotations=(),
                    extra_global=None, description="", datetime=None):
    """Write iq as a SigMF recording (`.sigmf-data` beside the meta); returns the meta path.

    datetime: ISO 8601 UTC of sample 0 for core:datetime (default: now).
    """
    meta_path = meta_path_for(meta_path)
    datatype = canonical_datatype(datatype)
    if not float(sample_rate) > 0:
        raise ValueError(f"sample_rate={sample_rate} must be > 0 Hz")
    iq = np.asarray(iq)
    if iq.ndim != 1:
        raise ValueError(f"iq must be one-dimensional, got shape {iq.shape}")
    if datetime is not None:
        datetime_to_rx_time(datetime)  # validate before writing anything
    make_parent(meta_path)
    data_path = data_path_for(meta_path)
    if os.path.exists(meta_path):  # an interrupted write left the old meta describing the new samples (audit 64)
        os.remove(meta_path)
    with open(data_path, "wb") as f:
        step = 1 << 20  # convert in slices so memory stays bounded for long captures
        for start in range(0, len(iq), step):
            _to_raw(iq[start:start + step], datatype).tofile(f)
    glob = {
        "core:datatype": datatype,
        "core:sample_rate": float(sample_rate),
        "core:version": SIGMF_VERSION,
        "core:recorder": "gr-specenc",
    }
    if description:
        glob["core:description"] = description
    glob.update(extra_global or {})
    meta = {
        "global": glob,
        "captures": [{
            "core:sample_start": 0,
            "core:frequency": float(center_freq),
            "core:datetime": datetime or now_datetime(),
        }],
        "annotations": _check_annotations(annotations),
    }
    _write_meta(meta_path, meta)
    return meta_path


def write_annotations(meta_path, annotations, recording=None, replace=False, extra_global=None):
    """Add annotations to a SigMF meta file (kept sorted by core:sample_start); returns the meta path.

    When the meta does not exist yet and `recording` is given, a new meta is created that describes
    that recording's samples (core:dataset names its data file when it is not the default beside the
    meta). replace=True drops the annotations already there. The new annotations' core:sample_start count
    from the data file's first sample; the meta's core:offset is added (SigMF's indices are absolute).
    """
    meta_path = meta_path_for(meta_path)
    new = _check_annotations(annotations)
    if os.path.isfile(meta_path):
        try:
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ValueError(f"{meta_path}: not valid JSON, so its annotations cannot be added to: {exc}") from None
        meta.setdefault("captures", [])
        old = [] if replace else meta.get("annotations") or []
        offset = int(meta["global"].get("core:offset", 0))
        meta["annotations"] = _check_annotations(list(old) + _shifted(new, offset))
    elif recording is not None:
        glob = {k: v for k, v in recording.global_.items() if k not in ("core:dataset", "core:sha512")}
        glob.update({"core:datatype": recording.datatype, "core:sample_rate": recording.sample_rate,
                     "core:version": glob.get("core:version", SIGMF_VERSION)})
        default_data = data_path_for(meta_path)
        if os.path.abspath(recording.data_path) != os.path.abspath(default_data):
            glob["core:dataset"] = os.path.basename(recording.data_path)
        capture = {"core:sample_start": 0, "core:frequency": recording.center_freq}
        if recording.datetime:
            capture["core:datetime"] = recording.datetime
        meta = {"global": glob, "captures": _shifted(recording.captures or [capture], recording.offset),
                "annotations": _shifted(new, recording.offset)}
    else:
        raise FileNotFoundError(f"SigMF meta file not found: {meta_path} (pass recording= to create one)")
    meta["global"].update(extra_global or {})
    dataset = meta["global"].get("core:dataset")
    # SigMF readers look for core:dataset relative to the meta's folder (a caller may give a relative path).
    if dataset and not os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(meta_path)), dataset)):
        log.warning("core:dataset %s is not found from %s; SigMF readers will not find the samples", dataset, meta_path)
    make_parent(meta_path)
    _write_meta(meta_path, meta)
    return meta_path
