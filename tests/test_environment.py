"""Where users run it (audit 79): a broken stdout or a full disk under the alert sink, the command line with stderr
closed, stdout's reader gone or stdout on a full disk, a HOME where GNU Radio cannot work, output files written through
temporary files of their own, a file name that is no UTF-8 in the waterfall's title, and python -OO."""

import errno
import importlib
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pmt
import pytest
from blocks_fake_model import small_model_file

from gnuradio.specenc import cli, folders, sigmf_io
from gnuradio.specenc.alert_sink import alert_sink

alert_sink_module = importlib.import_module("gnuradio.specenc.alert_sink")  # the package's name is the block

ALERT = {"kind": "jamming", "score": 0.93, "threshold": 0.5, "time": 12.5, "freq_lower_edge": 433.0e6,
         "freq_upper_edge": 434.0e6, "center_freq": 433.92e6, "sample_rate": 1e6, "band": "ism", "spectrum": 7,
         "sample_start": 224, "sample_count": 1024}


def _noise(samples, seed=3):
    return (np.random.default_rng(seed).normal(size=(samples, 2)) * 0.01).astype(np.float32).view(np.complex64).ravel()


def _alerts(n):
    return [dict(ALERT, sample_start=224 + 1024 * i, time=12.5 + i) for i in range(n)]


def _child_env():
    """The test's environment (its PYTHONPATH names the tree under test) as a user's shell has it: stdout buffered
    (PYTHONUNBUFFERED changes when a failed write is seen), and no bytecode written into the tree."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _specenc(*argv):
    return [sys.executable, "-m", "gnuradio.specenc.cli", *argv]


class _BrokenPipe:
    """sys.stdout once its reader is gone (`| head -1`)."""

    def __init__(self):
        self.writes = 0

    def write(self, text):
        self.writes += 1
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


class _FullDisk:
    """The sink's JSONL file on a full disk."""

    def write(self, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    flush = write

    def close(self):
        pass


def _subscriber(zmq, sink):
    endpoint = sink._socket.getsockopt_string(zmq.LAST_ENDPOINT)
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(endpoint)
    assert sink.wait_for_subscriber(5000)
    return sub


def _received(sub, n):
    got = []
    while len(got) < n and sub.poll(2000):
        got.append(json.loads(sub.recv_string()))
    sub.close()
    return got


def test_a_broken_stdout_keeps_no_message_from_the_jsonl_zmq_and_sigmf_outputs(tmp_path, capfd):
    """One try covered every output, written in turn: once stdout's reader was gone each alert reached the JSONL file
    alone (ZMQ and SigMF lost them all) and the error was logged on every alert (audit 79). Now every other output gets
    each message and the sink stops printing, unlogged: its reader went, as `| head -1` asks (audit 85)."""
    zmq = pytest.importorskip("zmq")
    jsonl, meta = tmp_path / "a.jsonl", tmp_path / "a.sigmf-meta"
    broken = _BrokenPipe()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stdout", broken)
        sink = alert_sink(jsonl_path=str(jsonl), sigmf_path=str(meta), stdout=True, zmq_address="tcp://127.0.0.1:*")
        sub = _subscriber(zmq, sink)
        for alert in _alerts(3):
            sink.handle(pmt.to_pmt(alert))
        sink.stop()
    try:
        assert _received(sub, 3) == _alerts(3)
        assert [json.loads(x) for x in jsonl.read_text().splitlines()] == _alerts(3)
        assert [a["core:sample_start"] for a in json.loads(meta.read_text())["annotations"]] == [224, 1248, 2272]
        assert broken.writes == 1 and sink.stdout is False and sink.count == 3  # printed once, not tried again
        logged = "".join(capfd.readouterr())
        assert "not written" not in logged
    finally:
        sink.close()


def test_a_full_disk_under_the_jsonl_file_keeps_no_message_from_stdout_zmq_and_sigmf(tmp_path, capsys):
    """A JSONL write that failed (ENOSPC) skipped stdout, ZMQ and SigMF for every alert, and stop()'s unguarded flush
    raised before the SigMF file's last rewrite (audit 79)."""
    zmq = pytest.importorskip("zmq")
    meta = tmp_path / "a.sigmf-meta"
    sink = alert_sink(jsonl_path=str(tmp_path / "a.jsonl"), sigmf_path=str(meta), stdout=True,
                      zmq_address="tcp://127.0.0.1:*")
    real, sink._jsonl = sink._jsonl, _FullDisk()
    real.close()
    try:
        sub = _subscriber(zmq, sink)
        for alert in _alerts(3):
            sink.handle(pmt.to_pmt(alert))
        assert _received(sub, 3) == _alerts(3)
        assert capsys.readouterr().out.count("ALERT t=1") == 3
        assert sink.stop() is True  # its flush of the JSONL file raised, before the SigMF file's last rewrite
        assert [a["core:sample_start"] for a in json.loads(meta.read_text())["annotations"]] == [224, 1248, 2272]
    finally:
        sink.close()


def test_the_command_line_works_with_stderr_closed(tmp_path):
    """With fd 2 closed (`2>&-`) sys.stderr is None and tqdm's bar raised on it: every command ended with status 1,
    its traceback lost on the closed stderr, nothing written (audit 79)."""
    out = tmp_path / "s.sigmf-meta"
    closed = ["sh", "-c", 'exec "$@" 2>&-', "sh"]
    done = subprocess.run(closed + _specenc("synth", "--seconds", "0.05", "--out", str(out)), stdout=subprocess.PIPE,
                          text=True, env=_child_env(), timeout=120)
    assert done.returncode == 0
    assert done.stdout.splitlines() == [str(out)]
    assert sigmf_io.read_meta(out).num_samples > 0


def test_the_command_line_ends_quietly_with_141_when_stdouts_reader_is_gone(tmp_path):
    """`specenc ... | head -1`: stdout's buffer was flushed at exit, outside main's try, and a gone reader gave status
    120 and "Exception ignored ... BrokenPipeError" on stderr (audit 79). Now 141, as a shell reports SIGPIPE."""
    out = tmp_path / "s.sigmf-meta"
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command prints
    try:
        done = subprocess.run(_specenc("synth", "--seconds", "0.05", "--out", str(out)), stdout=write,
                              stderr=subprocess.PIPE, text=True, env=_child_env(), timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 128 + signal.SIGPIPE, done.stderr
    assert "Exception ignored" not in done.stderr and "Broken pipe" not in done.stderr and "error" not in done.stderr
    assert sigmf_io.read_meta(out).num_samples > 0  # the work was done; only the printing stopped


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_the_command_line_reports_stdout_on_a_full_disk_as_one_line(tmp_path):
    """`specenc ... > /dev/full`: the summary was flushed at exit, giving status 120 and a two-line "Exception
    ignored" (audit 79); then the text still held was tried again at exit (audit 80). One line and status 2."""
    with open("/dev/full", "w") as full:
        done = subprocess.run(_specenc("synth", "--seconds", "0.05", "--out", str(tmp_path / "s.sigmf-meta")),
                              stdout=full, stderr=subprocess.PIPE, text=True, env=_child_env(), timeout=120)
    said = done.stderr.splitlines()  # no progress bar either: stderr is no terminal (audit 79)
    assert done.returncode == 2, done.stderr
    assert said == ["specenc: error: writing stdout: No space left on device"], done.stderr


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, specenc_cpp):
    """A small model and a short noise recording (20 480 samples) in a folder of their own."""
    folder = tmp_path_factory.mktemp("environment")
    meta = sigmf_io.write_recording(str(folder / "rec.sigmf-meta"), _noise(1024 * 20), 1e6, 915e6)
    return small_model_file(folder), meta


def test_run_in_a_home_where_gnu_radio_cannot_work_is_one_line_and_leaves_the_last_outputs(inputs, tmp_path):
    """A service's HOME=/nonexistent: GNU Radio failed to make ~/.gnuradio at the flowgraph's start, a 20-line
    traceback after the last run's outputs were replaced (audit 79). Now one line naming .gnuradio, before anything
    is touched. In a process of its own: GNU Radio reads HOME once, when it is loaded."""
    weights, meta = inputs
    out, alerts = tmp_path / "o.sigmf-meta", tmp_path / "a.jsonl"
    argv = ["run", meta, "--model", weights, "--out", str(out), "--alerts", str(alerts)]
    assert cli.main(argv) == 0
    alerts.write_text(json.dumps(ALERT) + "\n")  # the last run's alerts (a noise recording gives none)
    before = out.read_bytes(), alerts.read_bytes()
    env = dict(_child_env(), HOME="/proc/nonexistent")  # not made even by root
    done = subprocess.run(_specenc(*argv), capture_output=True, text=True, env=env, timeout=300)
    said = [line for line in done.stderr.splitlines() if "is NOT trained" not in line]  # the small model's warning
    assert done.returncode == 2 and len(said) == 1 and said[0].startswith("specenc run: error:"), done.stderr
    err = said[0]
    assert "/proc/nonexistent/.gnuradio" in err and "HOME" in err
    assert (out.read_bytes(), alerts.read_bytes()) == before


WRITERS = {"write_text_atomic": lambda path, doc: folders.write_text_atomic(path, json.dumps(doc)),
           "alert_sink's write_json_atomic": lambda path, doc: alert_sink_module.write_json_atomic(path, doc)}


@pytest.mark.parametrize("writer", WRITERS)
def test_two_writers_of_one_output_use_temporary_files_of_their_own(tmp_path, monkeypatch, writer):
    """Every writer used `path.tmp`: two runs into one output wrote into one temporary file, and their texts mixed
    or one found its file gone (audit 79). Here a second writer writes while the first one's file waits to replace
    the output."""
    path, replace, sources, write = tmp_path / "o.sigmf-meta", os.replace, [], WRITERS[writer]

    def replace_later(src, dst):
        sources.append(src)
        if len(sources) == 1:
            write(path, {"writer": "second"})
            with open(src) as f:
                assert json.load(f) == {"writer": "first"}  # the other writer left this one's file alone
        replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_later)
    write(path, {"writer": "first"})
    assert len(sources) == 2 and sources[0] != sources[1]
    assert all(os.path.dirname(s) == str(tmp_path) and s != f"{path}.tmp" for s in sources)
    assert json.loads(path.read_text()) == {"writer": "first"} and os.listdir(tmp_path) == [path.name]


def test_an_output_whose_name_has_no_room_for_tmp_is_written(tmp_path):
    """A meta of a 255-byte name (the file system's limit) failed: `name.tmp` was too long (audit 79)."""
    meta = tmp_path / ("x" * (255 - len(".sigmf-meta")) + ".sigmf-meta")
    sigmf_io.write_recording(str(meta), _noise(64), 1e6, 915e6)
    assert sigmf_io.read_meta(meta).num_samples == 64
    folders.write_text_atomic(meta, "{}\n")
    assert meta.read_text() == "{}\n" and sorted(os.listdir(tmp_path)) == sorted([meta.name, meta.name[:-4] + "data"])


def test_a_failed_write_leaves_the_old_content_and_no_temporary_file(tmp_path, monkeypatch):
    """A write that fails (a value JSON cannot hold, text the file cannot encode, Ctrl-C) leaves the output as it was
    and no temporary file beside it: sigmf_io left `meta.tmp`, half-written, behind (audit 79)."""
    meta = sigmf_io.write_recording(str(tmp_path / "r.sigmf-meta"), _noise(64), 1e6, 915e6)
    before = sorted(os.listdir(tmp_path)), open(meta, "rb").read()
    with pytest.raises(ValueError, match="not JSON compliant"):
        sigmf_io.write_annotations(meta, [{"core:sample_start": 0, "core:sample_count": 4, "specenc:x": float("nan")}])
    assert (sorted(os.listdir(tmp_path)), open(meta, "rb").read()) == before
    with pytest.raises(UnicodeEncodeError):
        folders.write_text_atomic(meta, "caf\udce9")
    assert (sorted(os.listdir(tmp_path)), open(meta, "rb").read()) == before

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        folders.write_text_atomic(meta, "{}\n")
    assert (sorted(os.listdir(tmp_path)), open(meta, "rb").read()) == before


def test_the_waterfall_takes_a_title_of_bytes_that_are_no_utf8(tmp_path):
    """A recording named in Latin-1 (r\\xe9c.sigmf-meta) gave a title holding surrogate escapes, which matplotlib
    refused (TypeError) after the whole run: no PNG (audit 79)."""
    from gnuradio.specenc.app import waterfall

    png = tmp_path / "w.png"
    title = os.fsdecode(b"caf\xe9.sigmf-meta")
    assert waterfall.render(str(png), np.zeros((4, 64)), 1e-3, 1e8, 1e6, title=title) == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_ablations_command_runs_under_python_oo():
    """python -OO drops docstrings: the parser's description read __doc__.splitlines() and raised (audit 79)."""
    done = subprocess.run([sys.executable, "-OO", "-m", "gnuradio.specenc.training.ablations", "--help"],
                          capture_output=True, text=True, env=_child_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:") and "--report-only" in done.stdout


@pytest.mark.parametrize("conf, honoured", [
    ("[LOG]\nlog_file = /tmp/gr.log\n", True),
    ("[LOG]\nLOG_FILE = /tmp/gr.log\n", True),  # GNU Radio reads keys in any case
    ("[PerfCounters]\nlog_file = x\n", False),  # another section's key says nothing of the log
    ("not an ini file [", False),
])
def test_gnu_radios_log_goes_to_stderr_unless_the_users_config_sets_it(tmp_path, monkeypatch, conf, honoured):
    """Debian's system config sends GNU Radio's log to stdout, amid alerts (audit 79); the environment variable that
    moves it would beat the user's own config.conf, so it is set only where that says nothing (audits 81, 82)."""
    (tmp_path / ".gnuradio").mkdir()
    (tmp_path / ".gnuradio" / "config.conf").write_text(conf)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("GR_CONF_LOG_LOG_FILE", raising=False)
    cli._standard_streams()
    assert ("GR_CONF_LOG_LOG_FILE" not in os.environ) == honoured


def test_a_sigmf_file_that_cannot_be_rewritten_is_logged_once_until_it_can(tmp_path, capfd, monkeypatch):
    """The SigMF rewrite logged its failure at every retry, each second, while README promised once (audit 85)."""
    meta = tmp_path / "a.sigmf-meta"
    sink = alert_sink(sigmf_path=str(meta), stdout=False)
    disk = {"full": True}
    write = alert_sink_module.write_json_atomic

    def full_or_free(path, document):
        if disk["full"]:
            raise OSError(28, "No space left on device")
        write(path, document)

    monkeypatch.setattr(alert_sink_module, "write_json_atomic", full_or_free)
    try:
        for alert in _alerts(3):
            sink.handle(pmt.to_pmt(alert))
            sink._rewrite_pending()  # the timer's retry, at once
        assert "".join(capfd.readouterr()).count("not rewritten") == 1  # every failed rewrite, logged once
        assert len(json.loads(meta.read_text())["annotations"]) == 0
        disk["full"] = False
        sink._rewrite_pending()
        assert len(json.loads(meta.read_text())["annotations"]) == 3
        disk["full"] = True
        sink.handle(pmt.to_pmt(_alerts(4)[3]))
        sink._rewrite_pending()
        assert "".join(capfd.readouterr()).count("not rewritten") == 1  # failing again after it worked: said again
    finally:
        sink.close()


@pytest.mark.parametrize("argv", [["run", "--help"], ["eval", "--help"], ["run", "RUN"]])
def test_every_path_to_a_gone_reader_ends_quietly_with_141(inputs, tmp_path, argv):
    """Help texts (printed by argparse) and a run printing its alerts line by line reach a gone reader by other paths
    than synth's final flush: each must end with 141 and nothing on stderr (audit 84: mutants of those paths gave a
    traceback, status 1, or "error: Broken pipe", status 2, unseen)."""
    weights, meta = inputs
    if argv[-1] == "RUN":
        argv = ["run", meta, "--model", weights, "--out", str(tmp_path / "o.sigmf-meta"), "--per-spectrum",
                "--print-alerts", "--threshold", "0.5"]
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(_specenc(*argv), stdout=write, stderr=subprocess.PIPE, text=True, env=_child_env(),
                              timeout=300)
    finally:
        os.close(write)
    said = [line for line in done.stderr.splitlines() if "is NOT trained" not in line]
    assert done.returncode == 128 + signal.SIGPIPE and said == [], done.stderr


def test_python_m_reports_a_usage_error_as_one_line(inputs, tmp_path):
    """Under `python -m gnuradio.specenc.cli` the module ran as __main__, whose UsageError is another class than the
    one the commands raise: a usage error became a traceback and status 1 (audit 84)."""
    weights, meta = inputs
    done = subprocess.run(_specenc("run", meta, "--model", weights, "--out", str(tmp_path / "new") + os.sep),
                          capture_output=True, text=True, env=_child_env(), timeout=300)
    said = [line for line in done.stderr.splitlines() if "is NOT trained" not in line]
    assert done.returncode == 2 and len(said) == 1 and said[0].startswith("specenc run: error: --out"), done.stderr


def test_a_lower_case_log_section_is_the_users_too(tmp_path, monkeypatch):
    """config.conf's [log] in lower case is GNU Radio's LOG section as well (audit 84)."""
    (tmp_path / ".gnuradio").mkdir()
    (tmp_path / ".gnuradio" / "config.conf").write_text("[log]\nlog_file = /tmp/gr.log\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("GR_CONF_LOG_LOG_FILE", raising=False)
    cli._standard_streams()
    assert "GR_CONF_LOG_LOG_FILE" not in os.environ


def test_a_name_of_four_byte_characters_is_written(tmp_path):
    """The temporary file's name was cut in characters: 61 four-byte characters (244 bytes) had no room (audit 84)."""
    path = tmp_path / ("\U0001F4E1" * 61)
    folders.write_text_atomic(path, "ok")
    assert path.read_text() == "ok" and os.listdir(tmp_path) == [path.name]
