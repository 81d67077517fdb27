"""`specenc` command line: one subcommand per module, imported only when that subcommand runs.

Each subcommand module defines `add_arguments(parser)` and `main(args) -> int`; its one-line help
lives here so that `specenc --help` imports nothing heavy.
Errors the user can fix are raised as `UsageError` (or ValueError/FileNotFoundError) and printed
as one line, with exit status 2; anything else is a bug and keeps its traceback.
"""

import argparse
import importlib
import os
import signal
import sys
import threading

# subcommand -> (module relative to gnuradio.specenc, one-line help)
COMMANDS = {
    "demo": (".app.demo", "generate a scene with known ghost anomalies and run the full flowgraph on it"),
    "run": (".app.run", "run the flowgraph on a SigMF or raw IQ recording; write annotations and alerts"),
    "synth": (".synth.cli", "generate synthetic RF scenes as SigMF recordings with truth annotations"),
    "train": (".training.train_cli", "train a SpectrumEncoder on generated scenes"),
    "eval": (".training.eval_cli", "evaluate a model and the baselines; write JSON, markdown and plots"),
    "calibrate": (".training.calibrate_cli", "set the alert threshold from clean recordings of your site"),
    "bench": (".bench.cli", "benchmarks: psd, model, flowgraph, paper"),
    "export": (".model.export_cli", "export the model to ONNX or torch.export, optionally int8/fp16"),
}


class UsageError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def _load(name):
    return importlib.import_module(COMMANDS[name][0], __package__)


def build_parser(argv):
    parser = argparse.ArgumentParser(prog="specenc", description="Learned spectrum awareness for GNU Radio.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # Only the chosen subcommand's module is imported (torch is slow to import).
    chosen = next((a for a in argv if a in COMMANDS), None)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            _load(name).add_arguments(p)
    return parser


def main(argv=None):
    _standard_streams()
    try:
        return _flushed(_run(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:
        return _reader_gone()
    except SystemExit as done:  # argparse's --help or usage error (status 0 or 2): its text is written here too
        return _flushed(done.code or 0)


def _run(argv):
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except BrokenPipeError:
        raise
    except OSError as exc:  # its help not written (a full disk; unbuffered, it failed in argparse's own write)
        return _stdout_failed(exc)
    # SIGTERM (kill, timeout, a service stopped) ends a command as Ctrl-C does: its cleanup runs (training's worker
    # processes were left running) and a headless flowgraph writes what it has done. Only the main thread can set it,
    # and a SIGTERM the process was started ignoring stays ignored.
    previous = signal.getsignal(signal.SIGTERM)
    handle = threading.current_thread() is threading.main_thread() and previous is not signal.SIG_IGN
    if handle:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return _load(args.command).main(args) or 0
    except BrokenPipeError:
        raise
    except (UsageError, ValueError, OSError) as exc:  # OSError: a missing file, a folder given for a file, ...
        print(f"specenc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # app.interrupts.Interrupted says which signal and what was done
        signum = getattr(exc, "signum", signal.SIGINT)
        detail = f" {exc}" if str(exc) else ""
        print(f"specenc {args.command}: interrupted by {signal.Signals(signum).name}{detail}", file=sys.stderr)
        return 128 + signum  # 130 for Ctrl-C, 143 for SIGTERM, as a shell reports them
    finally:
        if handle:
            signal.signal(signal.SIGTERM, previous)


def _flushed(code):
    """`code`, once what stdout holds is written: a full disk is one line here (at exit it was "Exception ignored"
    and status 120, and the text still held was tried again)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return _reader_gone()
    except OSError as exc:
        return _stdout_failed(exc)
    return code


def _reader_gone():
    """stdout's reader is gone (`specenc run ... | head -1`): stop quietly, as other tools do, with SIGPIPE's status."""
    _drop_stdout()
    return 128 + signal.SIGPIPE


def _stdout_failed(exc):
    _drop_stdout()
    print(f"specenc: error: writing stdout: {exc.strerror or exc}", file=sys.stderr)
    return 2


def _drop_stdout():
    """Point stdout at /dev/null, dropping what its buffer holds, so nothing is tried again at exit."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _standard_streams():
    """Before any command: a stdout or stderr the shell closed (`2>&-`) is /dev/null, as tqdm and GNU Radio write
    there (every command ended silently with status 1) and a file opened later would take its number; GNU Radio's
    log goes to stderr unless the user's config.conf sets log_file (Debian's system config sends it to stdout, amid
    alerts and summaries)."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is None:
            os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
            setattr(sys, name, open(fd, "w", closefd=False))
    if not _configured("log_file"):  # the environment would beat the user's own config.conf
        os.environ.setdefault("GR_CONF_LOG_LOG_FILE", "stderr")


def _configured(key):
    """Whether the user's GNU Radio config.conf sets `key` of its [LOG] section (keys in any case, as GNU Radio reads
    them)."""
    import configparser

    conf = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        conf.read(os.path.join(os.path.expanduser("~"), ".gnuradio", "config.conf"), encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return False
    return any(section.lower() == "log" and conf.has_option(section, key) for section in conf.sections())


def _terminate(signum, _frame):
    from .app.interrupts import Interrupted

    raise Interrupted("", signum)


if __name__ == "__main__":
    # `python -m` runs this file as a module other than gnuradio.specenc.cli, whose UsageError the commands raise: its
    # main did not catch them (a usage error became a traceback and status 1)
    from gnuradio.specenc import cli

    sys.exit(cli.main())
