"""`specenc` command line: one subcommand per module, imported only when that subcommand runs.

Each subcommand module defines `HELP` (one line), `add_arguments(parser)` and `main(args) -> int`.
Errors the user can fix are raised as `UsageError` (or ValueError/FileNotFoundError) and printed
as one line, with exit status 2; anything else is a bug and keeps its traceback.
"""

import argparse
import importlib
import sys

# subcommand -> module (relative to gnuradio.specenc)
COMMANDS = {
    "demo": ".app.demo",
    "run": ".app.run",
    "synth": ".synth.cli",
    "train": ".training.train_cli",
    "eval": ".training.eval_cli",
    "calibrate": ".training.calibrate_cli",
    "bench": ".bench.cli",
    "export": ".model.export_cli",
}


class UsageError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def _load(name):
    return importlib.import_module(COMMANDS[name], __package__)


def build_parser(argv):
    parser = argparse.ArgumentParser(prog="specenc", description="Learned spectrum awareness for GNU Radio.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # Only the chosen subcommand's module is imported (torch is slow to import); `--help` lists all.
    chosen = next((a for a in argv if a in COMMANDS), None)
    for name in COMMANDS:
        if chosen in (None, name):
            module = _load(name)
            add_arguments = module.add_arguments
            help_text = module.HELP
        else:
            add_arguments, help_text = None, ""
        p = sub.add_parser(name, help=help_text, description=help_text)
        if add_arguments:
            add_arguments(p)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        return _load(args.command).main(args) or 0
    except (UsageError, ValueError, FileNotFoundError) as exc:
        print(f"specenc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"specenc {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
