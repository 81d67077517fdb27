"""alert_sink: each message written and flushed to JSONL, SigMF, stdout and ZMQ (posted messages, no sleeps)."""

import importlib
import json
import os
import time

import numpy as np
import pmt
import pytest
from gnuradio import gr

from gnuradio.specenc import message_senders
from gnuradio.specenc.alert_sink import alert_sink

alert_sink_module = importlib.import_module("gnuradio.specenc.alert_sink")  # the package's name is the block

ALERT = {"kind": "jamming", "score": 0.93, "threshold": 0.5, "time": 12.5, "freq_lower_edge": 433.0e6,
         "freq_upper_edge": 434.0e6, "center_freq": 433.92e6, "sample_rate": 1e6, "band": "ism", "spectrum": 7,
         "sample_start": 224, "sample_count": 1024}
DETECTION = {"family": "fsk", "confidence": 0.8, "time": 12.6, "freq_lower_edge": 433.9e6,
             "freq_upper_edge": 433.95e6, "spectrum": 9, "sample_start": 288, "sample_count": 1024}


class silent_source(gr.basic_block):
    """Publishes nothing; only gives the sink a connection so the flowgraph schedules it."""

    def __init__(self):
        gr.basic_block.__init__(self, name="silent_source", in_sig=None, out_sig=None)
        self.message_port_register_out(pmt.intern("out"))


def deliver(sink, messages):
    """Post messages, then the ('system', 'done') message, and run until the sink has handled them all."""
    tb = gr.top_block()
    source = silent_source()  # kept referenced until the flowgraph is done
    tb.msg_connect(source, "out", sink, "alerts")
    tb.start()
    port = pmt.intern("alerts")
    for msg in messages:
        sink.to_basic_block()._post(port, pmt.to_pmt(msg))
    done = pmt.cons(pmt.intern("done"), pmt.from_long(1))
    source.to_basic_block()._post(pmt.intern("system"), done)
    sink.to_basic_block()._post(pmt.intern("system"), done)
    tb.wait()


def test_jsonl_sigmf_and_stdout(tmp_path, capsys):
    jsonl, meta = tmp_path / "a.jsonl", tmp_path / "a.sigmf-meta"
    sink = alert_sink(jsonl_path=str(jsonl), sigmf_path=str(meta), stdout=True)
    second = dict(ALERT, kind="stealth", score=float("nan"), sample_start=100)
    unplaced = {k: v for k, v in ALERT.items() if k != "sample_start"}  # a hand-made message: no SigMF place
    deliver(sink, [ALERT, second, DETECTION, unplaced])
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert lines[0] == ALERT and lines[1]["score"] is None and lines[2]["family"] == "fsk" and lines[3] == unplaced
    doc = json.loads(meta.read_text())
    assert doc["global"]["core:sample_rate"] == 1e6 and doc["captures"][0]["core:frequency"] == 433.92e6
    anns = doc["annotations"]
    assert [a["core:sample_start"] for a in anns] == [100, 224, 288]  # sorted
    jam = anns[1]
    assert jam["core:label"] == "anomaly" and jam["specenc:kind"] == "jamming" and jam["specenc:score"] == 0.93
    assert jam["core:freq_lower_edge"] == 433.0e6 and jam["core:sample_count"] == 1024
    assert anns[2]["core:label"] == "fsk" and anns[2]["specenc:confidence"] == 0.8
    assert any(e["name"] == "specenc" for e in doc["global"]["core:extensions"])
    sigmf = pytest.importorskip("sigmf")
    sigmf.SigMFFile(metadata=doc).validate()  # the reference implementation accepts it
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ALERT t=12.500000s jamming score=0.93 433.0000-434.0000 MHz")
    assert len(out) == 4 and sink.count == 4


def test_sigmf_captures_follow_the_tuning_of_the_alerts(tmp_path):
    """A retune mid-stream: the SigMF file gets a capture at the first message of the new tuning, so a reader finds
    each annotation's centre frequency; a late message of the old tuning (another port) changes nothing."""
    meta = tmp_path / "a.sigmf-meta"
    sink = alert_sink(sigmf_path=str(meta), stdout=False)
    retuned = dict(ALERT, center_freq=868.3e6, freq_lower_edge=868.4e6, freq_upper_edge=868.5e6, sample_start=5000)
    late = dict(DETECTION, center_freq=433.92e6, sample_start=3000)
    deliver(sink, [ALERT, retuned, dict(retuned, sample_start=9000), late])
    doc = json.loads(meta.read_text())
    assert doc["captures"] == [{"core:sample_start": 0, "core:frequency": 433.92e6},
                               {"core:sample_start": 5000, "core:frequency": 868.3e6}]
    sigmf = pytest.importorskip("sigmf")
    assert sigmf.SigMFFile(metadata=doc).get_capture_info(5000)["core:frequency"] == 868.3e6
    steady = alert_sink(sigmf_path=str(tmp_path / "b.sigmf-meta"), stdout=False)
    deliver(steady, [dict(ALERT, sample_start=1024 * i) for i in range(200)])
    assert steady._tunings == {0: 433.92e6}  # what a days-long run keeps for its captures: one entry per retune


def test_a_message_one_output_cannot_take_reaches_none(tmp_path, capfd):
    """Each output's form is made before any is written: a message the console line or SigMF cannot hold went to the
    JSONL file alone (and the log said 'not written'); now it goes nowhere, logged, and the next one is written."""
    jsonl, meta = tmp_path / "a.jsonl", tmp_path / "a.sigmf-meta"
    sink = alert_sink(jsonl_path=str(jsonl), sigmf_path=str(meta), stdout=True)
    bad = [dict(ALERT, time="soon"), {k: v for k, v in ALERT.items() if k != "freq_upper_edge"},
           dict(ALERT, sample_start=-5), dict(ALERT, sample_count=2.5), dict(ALERT, center_freq="433.92 MHz")]
    deliver(sink, [*bad, ALERT])
    quiet_jsonl, quiet_meta = tmp_path / "q.jsonl", tmp_path / "q.sigmf-meta"  # without the console line too
    quiet = alert_sink(jsonl_path=str(quiet_jsonl), sigmf_path=str(quiet_meta), stdout=False)
    deliver(quiet, [dict(ALERT, freq_lower_edge="433 MHz"), dict(ALERT, sample_rate=-1e6), ALERT])
    assert [json.loads(x) for x in quiet_jsonl.read_text().splitlines()] == [ALERT]
    assert json.loads(quiet_meta.read_text())["global"]["core:sample_rate"] == 1e6
    assert [json.loads(x) for x in jsonl.read_text().splitlines()] == [ALERT]
    assert [a["core:sample_start"] for a in json.loads(meta.read_text())["annotations"]] == [224]
    out = capfd.readouterr().out
    assert out.count("message not written") == 7 and out.count("ALERT t=12.5") == 1
    for message in ("both freq_lower_edge and freq_upper_edge", "sample_start=-5 is no sample index",
                    "sample_count=2.5 is no sample index", "center_freq='433.92 MHz' is no frequency",
                    "freq_lower_edge='433 MHz' is no frequency", "sample_rate=-1000000.0 is no rate >= 0"):
        assert message in out


def test_an_unknown_rate_reaches_every_output(tmp_path):
    """Rate 0 is the blocks' "unknown" (no rx_rate tag, sample_rate 0): the SigMF file leaves it out, and the alert
    reaches every output (it was refused by all of them when a SigMF file was set; audit 28)."""
    jsonl, meta = tmp_path / "a.jsonl", tmp_path / "a.sigmf-meta"
    unknown = dict(ALERT, sample_rate=0.0)
    deliver(alert_sink(jsonl_path=str(jsonl), sigmf_path=str(meta), stdout=False), [unknown])
    assert [json.loads(x) for x in jsonl.read_text().splitlines()] == [unknown]
    written = json.loads(meta.read_text())
    assert "core:sample_rate" not in written["global"] and len(written["annotations"]) == 1


def test_the_sink_runs_until_every_sender_of_ours_is_done(tmp_path):
    """The encoder's `detections` end before the detector's last alerts: GNU Radio ended the sink at the first
    "done" and the alerts after it were lost (audit 28: 3 of 6 runs of a recording lost up to 56)."""
    jsonl = tmp_path / "a.jsonl"
    sink = alert_sink(jsonl_path=str(jsonl), stdout=False)
    senders = [silent_source(), silent_source()]  # as the encoder and the detector
    for sender in senders:
        message_senders.register(sender)
    tb = gr.top_block()
    for sender in senders:
        tb.msg_connect(sender, "out", sink, "alerts")
    tb.start()
    done = pmt.cons(pmt.intern("done"), pmt.from_long(1))
    senders[0].to_basic_block()._post(pmt.intern("system"), done)  # the first ends, and tells the sink so
    time.sleep(0.3)  # time enough for the sink's thread to end, had it taken that "done" as its own end
    assert senders[0].to_basic_block().finished() and not sink.to_basic_block().finished()
    sink.to_basic_block()._post(pmt.intern("alerts"), pmt.to_pmt(ALERT))
    senders[1].to_basic_block()._post(pmt.intern("system"), done)
    tb.wait()
    assert [json.loads(line) for line in jsonl.read_text().splitlines()] == [ALERT]
    sink.close()


def test_a_restarted_flowgraph_keeps_writing_and_a_closed_sink_frees_its_zmq_address(tmp_path):
    zmq = pytest.importorskip("zmq")
    sink = alert_sink(jsonl_path=str(tmp_path / "a.jsonl"), stdout=False, zmq_address="tcp://127.0.0.1:*")
    endpoint = sink._socket.getsockopt_string(zmq.LAST_ENDPOINT)
    deliver(sink, [ALERT])
    deliver(sink, [DETECTION])  # stop() then start() again: the outputs stay open (audit 29: JSONL went silent)
    assert [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()] == [ALERT, DETECTION]
    sink.close()
    alert_sink(stdout=False, zmq_address=endpoint).close()  # "Address already in use" while `sink` held it


def test_outputs_that_would_destroy_a_recording_are_refused(tmp_path):
    """A SigMF path at a recording's meta was rewritten metadata-only (captures, datetime and annotations gone) and a
    JSONL path at its data file emptied the samples, without a word (audit 31)."""
    from gnuradio.specenc import sigmf_io

    meta = tmp_path / "rec.sigmf-meta"
    sigmf_io.write_recording(str(meta), np.zeros(64, np.complex64), sample_rate=1e6, center_freq=433.92e6)
    before = meta.read_text(), (tmp_path / "rec.sigmf-data").read_bytes()
    raw = tmp_path / "capture.cu8"
    raw.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="is the meta of a recording"):
        alert_sink(sigmf_path=str(meta), stdout=False)
    with pytest.raises(ValueError, match="is a SigMF file's name"):
        alert_sink(jsonl_path=str(tmp_path / "REC.SIGMF-DATA"), stdout=False)
    with pytest.raises(ValueError, match="exists and holds no JSON lines"):
        alert_sink(jsonl_path=raw, stdout=False)
    assert (meta.read_text(), (tmp_path / "rec.sigmf-data").read_bytes(), raw.stat().st_size) == (*before, 1024)
    # The sink's own files of an earlier run may be written again (also given as pathlib paths), as may a meta
    # without samples beside it (a metadata-only one, `specenc run`'s output).
    ours, lines = tmp_path / "alerts.sigmf-meta", tmp_path / "alerts.jsonl"
    for _ in range(2):
        deliver(alert_sink(jsonl_path=lines, sigmf_path=ours, stdout=False), [ALERT])
    assert len(json.loads(ours.read_text())["annotations"]) == 1 and len(lines.read_text().splitlines()) == 1
    # A run without alerts leaves neither file holding the last run's (the SigMF one kept them: audit 63).
    deliver(alert_sink(jsonl_path=lines, sigmf_path=ours, stdout=False), [])
    assert json.loads(ours.read_text())["annotations"] == [] and lines.read_text() == ""
    with pytest.raises(ValueError, match="cannot be written: .*Is a directory"):
        alert_sink(sigmf_path=tmp_path, stdout=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alerts.jsonl", "alerts.sigmf-meta", "capture.cu8",
                                                          "rec.sigmf-data", "rec.sigmf-meta"]  # no .tmp left


def test_zmq_endpoints_ipv6_and_ports_out_of_range():
    pytest.importorskip("zmq")
    for address in ("tcp://127.0.0.1:99999", "tcp://*:0", "tcp://*:port"):
        with pytest.raises(ValueError, match="the port must be 1..65535 or"):
            alert_sink(stdout=False, zmq_address=address)
    alert_sink(stdout=False, zmq_address="tcp://[::1]:*").close()  # "No such device" without the IPV6 option
    zmq = pytest.importorskip("zmq")
    sink = alert_sink(stdout=False, zmq_address="tcp://lo:*")  # an interface name binds its IPv4 address
    assert sink._socket.getsockopt_string(zmq.LAST_ENDPOINT).startswith("tcp://127.0.0.1:")
    sink.close()


def test_written_before_the_flowgraph_ends(tmp_path):
    """Flushed per message: the file holds the alert while the block is still alive, before stop()."""
    jsonl = tmp_path / "a.jsonl"
    sink = alert_sink(jsonl_path=str(jsonl), stdout=False)
    sink.handle(pmt.to_pmt(ALERT))
    assert json.loads(jsonl.read_text()) == ALERT
    sink.close()


def test_zmq_pub(tmp_path):
    zmq = pytest.importorskip("zmq")
    sink = alert_sink(stdout=False, zmq_address="tcp://127.0.0.1:*")
    endpoint = sink._socket.getsockopt_string(zmq.LAST_ENDPOINT)
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoint)
    assert sink.wait_for_subscriber(5000)  # the subscription has reached the publisher: nothing is lost
    deliver(sink, [ALERT, DETECTION])
    assert sub.poll(5000)
    assert json.loads(sub.recv_string()) == ALERT
    assert json.loads(sub.recv_string())["family"] == "fsk"
    sub.close()
    sink.close()


def test_bad_inputs():
    with pytest.raises(ValueError, match="cannot be bound"):
        alert_sink(stdout=False, zmq_address="nonsense://x")
    sink = alert_sink(stdout=False)
    with pytest.raises(ValueError, match="expects PMT dict"):
        sink._write(pmt.from_long(3))
    with pytest.raises(ValueError, match="alerts \\(with kind\\) or detections \\(with family\\)"):
        sink._write(pmt.to_pmt({3: 4}))  # was written to the JSONL and stdout as a "detection" (audit 53)
    with pytest.raises(ValueError, match="freq_lower_edge=inf is no frequency"):  # was "needs both edges"
        sink._write(pmt.to_pmt(dict(ALERT, freq_lower_edge=float("inf"))))
    with pytest.raises(ValueError, match="needs zmq_address"):
        sink.wait_for_subscriber(1)
    with pytest.raises(ValueError, match="its folder .*nowhere does not exist or cannot be written"):
        alert_sink(stdout=False, sigmf_path="/nowhere/a.sigmf-meta")


def test_a_message_that_cannot_be_written_is_skipped_and_the_rest_written(tmp_path, capfd):
    """An exception in the handler would end the sink's thread: every later alert would be lost."""
    jsonl, meta = tmp_path / "a.jsonl", tmp_path / "a.sigmf-meta"
    sink = alert_sink(jsonl_path=str(jsonl), sigmf_path=str(meta), stdout=False)
    tb = gr.top_block()
    source = silent_source()
    tb.msg_connect(source, "out", sink, "alerts")
    tb.start()
    port = pmt.intern("alerts")
    for msg in (pmt.to_pmt(ALERT), pmt.from_long(3), pmt.to_pmt(dict(ALERT, score="high")),
                pmt.to_pmt(dict(ALERT, sample_start=500))):
        sink.to_basic_block()._post(port, msg)
    done = pmt.cons(pmt.intern("done"), pmt.from_long(1))
    source.to_basic_block()._post(pmt.intern("system"), done)
    sink.to_basic_block()._post(pmt.intern("system"), done)
    tb.wait()
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert [x["sample_start"] for x in lines] == [224, 224, 500]  # the non-dict one skipped, the rest in order
    assert "message not written" in capfd.readouterr().out
    with pytest.raises(ValueError, match="are the same file"):
        alert_sink(jsonl_path=str(meta), sigmf_path=str(tmp_path / "x" / ".." / "a.sigmf-meta"), stdout=False)


def test_a_burst_of_alerts_does_not_rewrite_the_sigmf_file_each_time(tmp_path, monkeypatch):
    """Each rewrite costs in proportion to the annotations held (56 ms at 6000): one per alert made long runs
    quadratic. Rewrites are spaced so they take at most 5 % of the time, a timer writes what is pending, and
    stop() writes the rest."""
    meta = tmp_path / "a.sigmf-meta"
    sizes, write = [], alert_sink_module.write_json_atomic

    def slow_write(path, document):  # as slow as a file of ~2000 annotations
        time.sleep(0.02)
        write(path, document)
        sizes.append(len(document["annotations"]))  # once written: the test reads the file when it sees the size

    monkeypatch.setattr(alert_sink_module, "write_json_atomic", slow_write)
    sink = alert_sink(sigmf_path=str(meta), stdout=False)
    sink.handle(pmt.to_pmt(ALERT))
    assert sizes == [0, 1]  # the empty file when the block is made, then a lone alert at once
    for i in range(100):
        sink.handle(pmt.to_pmt(dict(ALERT, sample_start=1000 + i)))
    assert len(sizes) < 10  # not 101
    deadline = time.monotonic() + 10
    while sizes[-1] < 101 and time.monotonic() < deadline:  # the timer writes the burst without a new alert
        time.sleep(0.05)
    assert sizes[-1] == 101 and len(json.loads(meta.read_text())["annotations"]) == 101
    sink.handle(pmt.to_pmt(dict(ALERT, sample_start=5000)))
    sink.stop()
    assert len(json.loads(meta.read_text())["annotations"]) == 102


def test_a_slow_sigmf_rewrite_holds_up_no_message(tmp_path, monkeypatch):
    """Once a rewrite is dear, the timer's thread does it, outside the lock: on the message thread, or holding the
    lock, it held up the next messages' JSONL, stdout and ZMQ lines (0.8 s at 100 000 annotations; audit 56)."""
    meta, jsonl = tmp_path / "a.sigmf-meta", tmp_path / "a.jsonl"
    write = alert_sink_module.write_json_atomic

    spans = []  # (start, end) of each rewrite

    def slow_write(path, document):
        start = time.monotonic()
        time.sleep(0.3)
        write(path, document)
        spans.append((start, time.monotonic()))

    sink = alert_sink(jsonl_path=str(jsonl), sigmf_path=str(meta), stdout=False)
    monkeypatch.setattr(alert_sink_module, "write_json_atomic", slow_write)
    monkeypatch.setattr(alert_sink_module, "REWRITE_DUTY", 0.5)  # 0.6 s between rewrites: three in the loop
    sink.handle(pmt.to_pmt(ALERT))  # written at once: no rewrite has been dear yet
    took = []
    for i in range(40):
        t0 = time.monotonic()
        sink.handle(pmt.to_pmt(dict(ALERT, sample_start=1000 + i)))
        took.append(time.monotonic() - t0)
        time.sleep(0.05)  # the timer's rewrite runs meanwhile
    assert max(took) < 0.15 and len(jsonl.read_text().splitlines()) == 41
    # and rewrites keep to their share of the time: a message during one armed the next at once (audit 58)
    assert len(spans) >= 2 and all(b[0] - a[1] > 0.5 for a, b in zip(spans, spans[1:]))
    sink.stop()
    assert len(json.loads(meta.read_text())["annotations"]) == 41
    sink.close()


def test_the_jsonl_file_can_be_rotated_by_copy_and_truncate(tmp_path):
    """logrotate's copytruncate: written at its old offset, the next line followed a run of NUL bytes (audit 56)."""
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"an": "older run"}\n')
    sink = alert_sink(jsonl_path=str(jsonl), stdout=False)
    assert jsonl.read_text() == ""  # emptied when the block is made, as before
    for i in range(3):
        sink.handle(pmt.to_pmt(dict(ALERT, sample_start=i)))
    os.truncate(jsonl, 0)  # the copy was taken
    sink.handle(pmt.to_pmt(dict(ALERT, sample_start=99)))
    assert [json.loads(line)["sample_start"] for line in jsonl.read_text().splitlines()] == [99]
    sink.close()
    fifo = tmp_path / "alerts.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a consumer, as `... --alerts /dev/stdout | jq` has
    for path in (os.devnull, str(fifo)):  # neither can be truncated: "[Errno 22] Invalid argument" (audit 58)
        sink = alert_sink(jsonl_path=path, stdout=False)
        sink.handle(pmt.to_pmt(ALERT))
        sink.close()
    assert json.loads(os.read(reader, 4096)) == ALERT
    os.close(reader)


def test_a_failed_sigmf_rewrite_is_tried_again_without_a_new_message(tmp_path, monkeypatch):
    """A message during a rewrite that failed (a full disk) waited for the next message or stop(), which can be
    hours away (audit 60)."""
    meta = tmp_path / "a.sigmf-meta"
    write, failures = alert_sink_module.write_json_atomic, [OSError(28, "No space left on device")]

    def full_once(path, document):
        if failures:
            raise failures.pop()
        write(path, document)

    sink = alert_sink(sigmf_path=str(meta), stdout=False)
    monkeypatch.setattr(alert_sink_module, "write_json_atomic", full_once)
    sink.handle(pmt.to_pmt(ALERT))  # its rewrite fails; nothing else comes
    deadline = time.monotonic() + 5
    while not json.loads(meta.read_text())["annotations"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(json.loads(meta.read_text())["annotations"]) == 1
    sink.close()
