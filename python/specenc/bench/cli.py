"""`specenc bench SUITE`: dispatch to one benchmark suite, imported only when it runs."""

import argparse
import importlib

# suite -> (module relative to this package, one-line help)
SUITES = {
    "psd": (".psd", "samples/s of specenc.psd vs NumPy vs stock GNU Radio FFT blocks"),
    "model": (".model", "SpectrumEncoder latency and throughput per backend/runtime"),
    "flowgraph": (".flowgraph", "the full IQ-to-alerts flowgraph, spectra/s and CPU share"),
    "paper": (".paper", "the tables and figures of the write-up"),
}


def _load(name):
    return importlib.import_module(SUITES[name][0], __package__)


def add_arguments(parser):
    import sys

    # Its own dest: a suite's parser sets its own --quick default over the namespace, which would drop this flag.
    parser.add_argument("--quick", dest="smoke", action="store_true",
                        help="without a SUITE: the CI smoke test, `bench paper --quick` (every experiment, tiny "
                             "sizes); before a SUITE: that suite's --quick")
    sub = parser.add_subparsers(dest="suite", metavar="SUITE")
    chosen = next((a for a in sys.argv[1:] if a in SUITES), None)
    for name, (_, help_text) in SUITES.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # only the suite that runs is imported (torch is slow to import)
            _load(name).add_arguments(p)


def main(args):
    smoke = getattr(args, "smoke", False)
    if args.suite is None:
        if not smoke:
            raise ValueError(f"choose a benchmark SUITE ({', '.join(SUITES)}) or --quick")
        args.suite = "paper"
    try:
        module = _load(args.suite)
    except ModuleNotFoundError as exc:
        raise ValueError(f"benchmark suite {args.suite!r} is not available yet ({exc.name} missing)") from None
    # called as cli.main(argv) from Python, the suite's options were not added: use their defaults
    defaults = argparse.ArgumentParser()
    module.add_arguments(defaults)
    for key, value in vars(defaults.parse_args([])).items():
        if not hasattr(args, key):
            setattr(args, key, value)
    if smoke:
        if not hasattr(args, "quick"):
            raise ValueError(f"--quick: `specenc bench {args.suite}` has no quick mode")
        args.quick = True
    return module.main(args)
