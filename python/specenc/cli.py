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
    argv = sys.argv[1:] if argv is None else argv
    _standard_streams()
    args = build_parser(argv).parse_args(argv)
    # SIGTERM (kill, timeout, a service stopped) ends a command as Ctrl-C does: its cleanup runs (training's worker
    # processes were left running) and a headless flowgraph writes what it has done. Only the main thread can set it,
    # and a SIGTERM the process was started ignoring stays ignored.
    previous = signal.getsignal(signal.SIGTERM)
    handle = threading.current_thread() is threading.main_thread() and previous is not signal.SIG_IGN
    if handle:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        code = _load(args.command).main(args) or 0
        sys.stdout.flush()  # here, where a full disk is one line (at exit it was "Exception ignored" and status 120)
        return code
    except BrokenPipeError:  # stdout's reader is gone (`specenc run ... | head -1`): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
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


def _standard_streams():
    """Before any command: a stdout or stderr the shell closed (`2>&-`) is /dev/null, as tqdm and GNU Radio write
    there (every command ended silently with status 1) and a file opened later would take its number; GNU Radio's
    log goes to stderr unless configured otherwise (Debian's config sends it to stdout, amid alerts and summaries)."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is None:
            os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
            setattr(sys, name, open(fd, "w", closefd=False))
    os.environ.setdefault("GR_CONF_LOG_LOG_FILE", "stderr")


def _terminate(signum, _frame):
    from .app.interrupts import Interrupted

    raise Interrupted("", signum)


if __name__ == "__main__":
    sys.exit(main())
