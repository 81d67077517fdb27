"""Ctrl-C and SIGTERM (what systemd sends an edge radio's service) while a headless flowgraph runs.

Left to themselves, a KeyboardInterrupt ended Python under GNU Radio's running block threads (a segfault, no
outputs), and GNU Radio's own tb.wait() swallowed it (a cut-short run that looked whole: a benchmark's figures
inflated). Here the signal stops the flowgraph cleanly, the caller writes what was done and then raises Interrupted.
"""

import contextlib
import os
import signal
import threading


class Interrupted(KeyboardInterrupt):
    """A signal stopped the work: the message says what was done; the command line exits 128 + signum."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = signum


def no_timing(signum):
    """The benchmarks' Interrupted: a cut-short run is no figure."""
    return Interrupted("(no figures: a cut-short run is no timing)", signum)


@contextlib.contextmanager
def stop_on_signals(tb):
    """While inside, SIGINT and SIGTERM call tb.stop() (the blocks' stop() then write what they hold); yields a list
    that gets each signal's number. Only the main thread takes signals: elsewhere nothing changes; a signal the
    process was started ignoring (a script's background job ignores Ctrl-C) stays ignored."""
    got = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def stop(signum, _frame):
        got.append(signum)
        tb.stop()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield got
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def check_gnuradio_home():
    """ValueError unless GNU Radio can write its .gnuradio/prefs folder (in HOME, or where it falls back without one),
    as it does when a flowgraph starts: a service account's HOME=/nonexistent ended `specenc run` in a 20-line
    traceback, after its outputs were replaced (audits 79, 81)."""
    from gnuradio import gr

    from ..folders import make_folder

    prefs = os.path.join(gr.userconf_path(), "prefs")
    try:
        make_folder(prefs)
    except OSError as exc:
        raise ValueError(f"GNU Radio needs to write in {os.path.abspath(prefs)} ({exc.strerror or exc}): set HOME "
                         "to a folder you can write") from None


def run_to_end(tb, done_count=None, total=0, progress=None):
    """Run the flowgraph until it ends or a signal stops it, updating a tqdm-like `progress` from done_count() (up to
    `total`) meanwhile; returns the stopping signal's number, or 0."""
    check_gnuradio_home()
    with stop_on_signals(tb) as signals:
        tb.start()
        waiter = threading.Thread(target=tb.wait, daemon=True)
        waiter.start()
        shown = 0
        while waiter.is_alive():
            waiter.join(0.2)
            if progress is not None:
                now = min(done_count(), total)
                progress.update(now - shown)
                shown = now
        if progress is not None:
            progress.update(max(0, done_count() - shown))
    return signals[0] if signals else 0
