"""specenc.alert_sink: write alert (or detection) messages to JSONL, SigMF annotations, stdout and ZMQ.

JSONL, stdout and ZMQ are written and flushed as each message arrives, so nothing is lost on Ctrl-C or
when a later block crashes. The SigMF file is rewritten atomically (temp file + rename), so it is a valid
SigMF meta at every moment: at once on a message while a rewrite is cheap (under SYNC_REWRITE_S), else by a
timer thread, and never more than REWRITE_DUTY of the time (a rewrite costs in proportion to the annotations
held, 56 ms at 6000: rewriting on every message made a long run quadratic, and a rewrite on the message thread
held up the next messages' JSONL, stdout and ZMQ lines, 0.8 s at 100 000); stop() writes what is pending. A
process killed in between leaves the SigMF file that far behind the JSONL.
"""

import contextlib
import functools
import gc
import json
import math
import os
import sys
import threading
import time

import pmt
from gnuradio import gr

from . import message_senders, sigmf_io
from .folders import write_text_atomic
from . import spectrum_tags as tags

SIGMF_VERSION = "1.0.0"
REWRITE_DUTY = 0.05  # most of the sink's time that SigMF rewrites may take
SYNC_REWRITE_S = 0.01  # a rewrite that took less is done at once on the message's thread


def message_to_dict(msg):
    """PMT dict of an alert (kind) or a detection (family) -> plain dict with JSON-safe values (non-finite floats
    become None, but for the frequency edges, which place it)."""
    value = pmt.to_python(msg)
    if not isinstance(value, dict) or not ({"kind", "family"} & set(map(str, value))):
        raise ValueError(f"alert_sink expects PMT dicts of alerts (with kind) or detections (with family), got "
                         f"{pmt.write_string(msg)[:80]}")
    for edge in ("freq_lower_edge", "freq_upper_edge"):
        if isinstance(value.get(edge), float) and not math.isfinite(value[edge]):
            raise ValueError(f"{edge}={value[edge]} is no frequency")
    return {str(k): (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in value.items()}


def _is_sample_index(value):
    return tags.is_real(value) and value >= 0 and value == int(value)


def _check_tuning(alert):
    """ValueError unless the message's centre and rate, which the SigMF file's captures and global hold, are numbers
    (a rate >= 0: 0 is the blocks' "unknown", left out of the file) or absent."""
    freq, rate = alert.get("center_freq"), alert.get("sample_rate")
    if freq is not None and not tags.is_real(freq):
        raise ValueError(f"center_freq={freq!r} is no frequency")
    if rate is not None and not (tags.is_real(rate) and rate >= 0):
        raise ValueError(f"sample_rate={rate!r} is no rate >= 0")


def check_output_paths(jsonl_path, sigmf_path, jsonl_name="jsonl_path"):
    """ValueError for an output that would destroy a recording: a JSONL path at a file that holds no JSON lines (it
    is emptied when the block is made: a SigMF or raw capture's samples gone), or a SigMF path at the meta of a
    recording whose samples are there (rewritten metadata-only: its captures and annotations gone). jsonl_name: the
    JSONL path's name in the message (specenc run checks its --alerts before it touches any output)."""
    named = f"{jsonl_name} {jsonl_path}" if jsonl_name.startswith("--") else f"{jsonl_name}={jsonl_path!r}"
    if jsonl_path and jsonl_path.lower().endswith((".sigmf-data", ".sigmf-meta", ".sigmf")):
        raise ValueError(f"{named} is a SigMF file's name, and the alerts file is emptied at the start: give a .jsonl "
                         "path")
    if jsonl_path and os.path.isfile(jsonl_path) and not _holds_json_lines(jsonl_path):
        raise ValueError(f"{named} exists and holds no JSON lines (a recording?); it would be emptied at the start: "
                         "give a new path")
    samples = sigmf_path and sigmf_io.described_samples(sigmf_path)
    if samples and os.path.isfile(samples):
        raise ValueError(f"sigmf_path={sigmf_path!r} is the meta of a recording ({samples}): the alert sink would "
                         "replace it; give a new path")


@contextlib.contextmanager
def _writable(name, path):
    """An OSError writing output `name` as one ValueError naming it and why (a folder, or a folder missing)."""
    try:
        yield
    except OSError as exc:
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            where = "it is a folder"
        elif os.path.lexists(path):
            where = "the file, or the file its link names, cannot be written"
        else:
            where = f"its folder {folder} does not exist or cannot be written"
        raise ValueError(f"{name}={path!r} cannot be written: {exc.strerror or exc} ({where})") from None


def _holds_json_lines(path):
    """An empty file, or one whose first line is a JSON object (an alerts file of an earlier run)."""
    with open(path, "rb") as f:
        first = f.readline(65536)
    try:
        return not first or isinstance(json.loads(first), dict)
    except (ValueError, RecursionError):  # UnicodeDecodeError included: binary samples; RecursionError: nested deep
        return False


def _check_tcp_port(address):
    """ValueError for a tcp:// endpoint whose port is not 1..65535 or * (ZMQ binds 99999 as 34463 without a word)."""
    if address.startswith("tcp://"):
        port = address.rsplit(":", 1)[-1]
        if port != "*" and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(f"zmq_address={address!r}: the port must be 1..65535 or *")


def to_annotation(alert):
    """Alert or detection dict -> SigMF annotation (core:label 'anomaly' for alerts, else the family); ValueError for
    a place SigMF cannot hold (a negative or fractional sample, one frequency edge)."""
    ann = {}
    for key in ("sample_start", "sample_count"):
        if key in alert:
            if not _is_sample_index(alert[key]):
                raise ValueError(f"{key}={alert[key]!r} is no sample index")
            ann[f"core:{key}"] = int(alert[key])
    if (alert.get("freq_lower_edge") is None) != (alert.get("freq_upper_edge") is None):
        raise ValueError("a message needs both freq_lower_edge and freq_upper_edge or neither")
    for key in ("freq_lower_edge", "freq_upper_edge"):
        if alert.get(key) is not None and not tags.is_real(alert[key]):
            raise ValueError(f"{key}={alert[key]!r} is no frequency")
    if alert.get("freq_lower_edge") is not None:
        ann["core:freq_lower_edge"] = alert["freq_lower_edge"]
        ann["core:freq_upper_edge"] = alert["freq_upper_edge"]
    if "kind" in alert:
        ann["core:label"] = "anomaly"
        ann["specenc:kind"] = alert["kind"]
        ann["specenc:score"] = alert.get("score")
    else:
        ann["core:label"] = alert.get("family", "unknown")
        ann["specenc:confidence"] = alert.get("confidence")
        if "spectra" in alert:
            ann["specenc:spectra"] = alert["spectra"]
        if alert.get("contrast_db") is not None:
            ann["specenc:contrast_db"] = round(alert["contrast_db"], 2)
    for key in ("time", "band"):
        if key in alert:
            ann[f"specenc:{key}"] = alert[key]
    return ann


def annotations_meta(annotations, sample_rate, tunings=None):
    """A metadata-only SigMF document holding `annotations` (sorted by sample_start). `tunings`, {sample_start:
    centre Hz} of the messages, become its captures: one where the centre changes (the first at sample 0)."""
    glob = {
        "core:datatype": "cf32_le",
        "core:version": SIGMF_VERSION,
        "core:description": "gr-specenc alerts",
        "core:recorder": "gr-specenc",
        "core:extensions": [{"name": "specenc", "version": "1.0.0", "optional": True}],
        "core:metadata_only": True,
    }
    if sample_rate:
        glob["core:sample_rate"] = float(sample_rate)
    captures = []
    for start, freq in sorted((tunings or {}).items()):
        if not captures or freq != captures[-1]["core:frequency"]:
            captures.append({"core:sample_start": int(start) if captures else 0, "core:frequency": float(freq)})
    anns = sorted(annotations, key=lambda a: a.get("core:sample_start", 0))
    return {"global": glob, "captures": captures or [{"core:sample_start": 0}], "annotations": anns}


def write_json_atomic(path, document):
    write_text_atomic(path, json.dumps(document, indent=2))


def _open_outputs(jsonl_path, sigmf_path):
    """The JSONL file ('' = None), open and emptied, once the SigMF file is replaced with an empty one. Both are made
    now, which finds a path that cannot be written now rather than at the first alert, and a run without alerts
    leaves none of the last run's. Emptied once, then appended to: rotated by logrotate's copytruncate, the file starts
    again with whole lines (written at the old offset, the next line followed a run of NUL bytes)."""
    made = jsonl_path and not os.path.lexists(jsonl_path)  # a link to nothing is the user's
    with _writable("jsonl_path", jsonl_path):
        jsonl = open(jsonl_path, "a", buffering=1) if jsonl_path else None
    try:
        with _writable("sigmf_path", sigmf_path):
            if sigmf_path:
                write_json_atomic(sigmf_path, annotations_meta([], 0))
    except ValueError:  # a sink not made leaves no file behind
        if jsonl is not None:
            jsonl.close()
        if made:
            os.remove(jsonl_path)
        raise
    if jsonl is not None and os.path.isfile(jsonl_path):  # a pipe or /dev/stdout cannot be truncated
        jsonl.truncate(0)
    return jsonl


def _bound_socket(zmq_address):
    """A ZMQ XPUB socket bound to `zmq_address` (XPUB sends like PUB and also lets wait_for_subscriber() see
    subscriptions arrive); ValueError naming the address when it cannot be bound."""
    import zmq

    _check_tcp_port(zmq_address)
    socket = zmq.Context.instance().socket(zmq.XPUB)
    socket.setsockopt(zmq.LINGER, 1000)
    if zmq_address.startswith("tcp://["):  # an IPv6 literal; an interface name stays IPv4 (its IPv6 address
        socket.setsockopt(zmq.IPV6, 1)  # alone with the option), as IPv4 subscribers expect
    for attempt, wait in enumerate([0.05] * 20 + [None]):  # a closed sink's address is freed on ZMQ's thread, later
        try:
            socket.bind(zmq_address)
            return socket
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE or wait is None:
                socket.close()
                raise ValueError(f"zmq_address={zmq_address!r} cannot be bound: {exc} (another program's, or a sink "
                                 "of this process not closed: sink.close() frees it)") from exc
            if attempt == 0:
                gc.collect()  # a sink deleted with its flowgraph holds the address until the collector frees it
            time.sleep(wait)


def _print(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class alert_sink(gr.basic_block):
    """Write each message on port `alerts` to the chosen outputs. The block runs until every spectrum_encoder and
    anomaly_detector connected to it is done (GNU Radio alone would end it with the first, losing the last alerts).

    Inputs:
        alerts (message): PMT dicts from anomaly_detector (`alerts`) or spectrum_encoder (`detections`).
    Outputs:
        none (files, stdout, ZMQ PUB).

    Args:
        jsonl_path: write one JSON object per line (the file is emptied when the block is made) ('' = off).
        sigmf_path: SigMF meta file holding the alerts as annotations, replaced when the block is made ('' = off);
            every annotation stays in memory and the file is rewritten whole, so runs of days with detections
            connected want the JSONL file instead.
        stdout: print one line per alert.
        zmq_address: ZMQ PUB endpoint to bind, e.g. 'tcp://*:5557' ('' = off); each message is one JSON string.
    """

    def __init__(self, jsonl_path="", sigmf_path="", stdout=True, zmq_address=""):
        gr.basic_block.__init__(self, name="alert_sink", in_sig=None, out_sig=None)
        jsonl_path, sigmf_path = os.fspath(jsonl_path or ""), os.fspath(sigmf_path or "")  # pathlib paths too
        self.message_port_register_in(tags.ALERTS_PORT)
        self.set_msg_handler(tags.ALERTS_PORT, self.handle)
        self.set_msg_handler(pmt.intern("system"), self._system)
        self._dones = 0
        self._started_at = -1  # message_senders' mark at start()
        self.jsonl_path, self.sigmf_path, self.stdout = jsonl_path, sigmf_path, bool(stdout)
        if sigmf_path and jsonl_path and os.path.realpath(jsonl_path) == os.path.realpath(sigmf_path):
            raise ValueError(f"jsonl_path and sigmf_path are the same file ({sigmf_path}); give two")
        check_output_paths(jsonl_path, sigmf_path)
        # The ZMQ address first: a sink refused for it (a typo in the port) leaves the last run's files be.
        self._socket = _bound_socket(zmq_address) if zmq_address else None
        try:
            self._jsonl = _open_outputs(jsonl_path, sigmf_path)
        except ValueError:
            if self._socket is not None:
                self._socket.close()
            raise
        self._annotations = []
        self._failing = set()  # outputs whose last write failed (logged once)
        self._rewrite_failing = False  # the SigMF file's last rewrite failed (logged once)
        self._sample_rate, self._tunings = 0.0, {}  # {sample_start: centre Hz} where the messages' centre changed
        self._last_freq = None
        self._lock = threading.Lock()  # the handler and the rewrite timer share the annotations
        self._rewriting = threading.Lock()  # one rewrite at a time, each of a later snapshot
        self._pending = False  # annotations not in the file yet
        self._timer = None
        self._writing = False  # a rewrite is writing its snapshot (outside the lock)
        self._rewritten_at, self._rewrite_cost = -math.inf, 0.0
        self.count = 0

    def wait_for_subscriber(self, timeout_ms=5000):
        """Block until a ZMQ subscriber has connected (True) or the timeout passes (False)."""
        if self._socket is None:
            raise ValueError("wait_for_subscriber needs zmq_address set")
        if not self._socket.poll(timeout_ms):
            return False
        self._socket.recv()  # the subscription message
        return True

    def handle(self, msg):
        """One message to every output. A message that cannot be written (not a dict, values JSON cannot hold, a
        place SigMF cannot hold) is logged and goes to no output: an exception here would end the block's thread and
        lose every later alert."""
        try:
            self._write(msg)
        except Exception as exc:  # noqa: BLE001 - report and go on: a bad message must not end the flowgraph
            self.logger.error(f"message not written ({type(exc).__name__}: {exc}): {pmt.write_string(msg)[:200]}")

    def _system(self, msg):
        """End the block once every sender of ours connected here is done, not at the first (message_senders)."""
        if message_senders.is_done(msg):
            self._dones += 1
            if self._dones < message_senders.connections_to(self, self._started_at):
                return
            msg = message_senders.DONE_MSG
        self.to_basic_block().system_handler(msg)

    def _write(self, msg):
        """Every output's form first, then the writes: a message one output cannot take reaches none."""
        alert = message_to_dict(msg)
        line = json.dumps(alert, sort_keys=True, allow_nan=False)
        text = self.format_line(alert) if self.stdout else ""
        annotation = None
        if self.sigmf_path and "sample_start" in alert:
            annotation = to_annotation(alert)
            _check_tuning(alert)
        self.count += 1
        if annotation is None and self.sigmf_path:  # a SigMF annotation must say where it starts
            self.logger.warn(f"a message without sample_start is left out of {self.sigmf_path}: {line[:100]}")
        # Each output on its own: one that fails (a full disk, stdout's reader gone) kept the message from the
        # outputs after it, and its failure from the log when that went to the same stdout (audit 79).
        for output, write in ((self.jsonl_path, self._jsonl and functools.partial(self._append, line)),
                              ("stdout", self.stdout and functools.partial(_print, text)),
                              ("ZMQ", self._socket and functools.partial(self._socket.send_string, line)),
                              (self.sigmf_path, annotation and functools.partial(self._annotate, alert, annotation))):
            if not write:
                continue
            try:
                write()
                self._failing.discard(output)
            except Exception as exc:  # noqa: BLE001 - reported, and the other outputs still get the message
                if output == "stdout" and isinstance(exc, BrokenPipeError):
                    self.stdout = False  # its reader is gone (`| head -1`): printing ends, as asked, unlogged
                elif output not in self._failing:  # once until it works again, not once per alert
                    self.logger.error(f"messages not written to {output} ({type(exc).__name__}: {exc})")
                    self._failing.add(output)

    def _append(self, line):
        self._jsonl.write(line + "\n")
        self._jsonl.flush()

    def _annotate(self, alert, annotation):
        with self._lock:
            self._annotations.append(annotation)
            self._sample_rate = self._sample_rate or alert.get("sample_rate") or 0.0
            freq = alert.get("center_freq")
            if freq and freq != self._last_freq:  # a change; messages of two ports may come out of order: by sample
                self._tunings[alert["sample_start"]] = self._last_freq = freq
            self._pending = True
            if self._timer is not None or self._writing:  # a rewrite is due, or the one running re-arms at its end
                return
            wait = max(0.0, self._rewritten_at + self._rewrite_cost / REWRITE_DUTY - time.monotonic())
            now = wait == 0.0 and self._rewrite_cost < SYNC_REWRITE_S
            if not now:
                self._arm(wait)
        if now:
            self._rewrite_pending()

    def _arm(self, wait):
        """The timer that rewrites the file after `wait` s (the caller holds the lock)."""
        self._timer = threading.Timer(wait, self._rewrite_pending)
        self._timer.daemon = True
        self._timer.start()

    def _rewrite_pending(self):
        """Write what the file lacks (the message's thread while rewrites are cheap, the timer's, stop/close): the
        annotations are taken under the lock and written outside it, so messages go on meanwhile; those that came
        meanwhile are written once the rewrite's share of the time has passed."""
        with self._rewriting:
            with self._lock:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                if not self._pending:
                    return
                annotations, rate, tunings = list(self._annotations), self._sample_rate, dict(self._tunings)
                self._pending, self._writing = False, True
            start = time.monotonic()
            try:
                write_json_atomic(self.sigmf_path, annotations_meta(annotations, rate, tunings))
            except OSError as exc:  # tried again later: messages that came meanwhile armed no timer of their own
                with self._lock:
                    self._pending, self._writing = True, False
                    if self._timer is None:
                        self._arm(max(1.0, self._rewrite_cost / REWRITE_DUTY))
                if not self._rewrite_failing:  # once until a rewrite works again, not at every retry
                    self.logger.error(f"{self.sigmf_path} not rewritten ({exc}); {len(annotations)} annotations held, "
                                      "tried again each second")
                    self._rewrite_failing = True
                return
            self._rewrite_failing = False
            with self._lock:
                self._writing = False
                self._rewritten_at = time.monotonic()
                self._rewrite_cost = self._rewritten_at - start
                if self._pending and self._timer is None:
                    self._arm(self._rewrite_cost / REWRITE_DUTY)

    @staticmethod
    def format_line(alert):
        lo, hi = alert.get("freq_lower_edge"), alert.get("freq_upper_edge")
        where = f"{lo / 1e6:.4f}-{hi / 1e6:.4f} MHz" if lo is not None and hi is not None else "? MHz"
        t = alert.get("time")
        when = f"t={t:.6f}s" if t is not None else "t=?"
        if "kind" in alert:
            score = alert.get("score")
            return (f"ALERT {when} {alert['kind']} score={score if score is None else round(score, 3)} "
                    f"{where} band={alert.get('band', '?')}")
        return f"detection {when} {alert.get('family')} {where}"

    def start(self):
        self._dones = 0  # a restarted or reconfigured flowgraph (lock/unlock) ends again with its senders' "done"s
        self._started_at = message_senders.sink_started()
        return True

    def stop(self):
        """Write what the SigMF file lacks; the outputs stay open for a restart (close() releases them)."""
        self._rewrite_pending()
        return True

    def close(self):
        """Write what the SigMF file lacks; release the JSONL file and the ZMQ address (garbage collection does too):
        a new flowgraph's sink can bind the same address once the old one is closed."""
        jsonl, socket, self._jsonl, self._socket = self._jsonl, self._socket, None, None
        try:
            self._rewrite_pending()
            if jsonl is not None:
                jsonl.close()  # on a full disk its last flush raises: the address is released all the same
        finally:
            if socket is not None:
                socket.close()
