"""`specenc synth`: write a synthetic scenario as SigMF with truth annotations (and a waterfall PNG)."""

import os

from .. import labels
from ..folders import image_path, make_parent
from .recording import DEMO_MAX_RATE, SCENARIOS, write_scenario


def _kinds(text):
    """'none' | 'all' | comma-separated kinds -> tuple of kinds, "all", or None (scenario default)."""
    if text is None:
        return None
    if text == "none":
        return ()
    if text == "all":
        return "all"  # every kind the scenario's band admits
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    for k in kinds:
        if k not in labels.ANOMALY_INDEX:
            raise ValueError(f"--anomalies: unknown kind {k!r}; "
                             f"choose from {', '.join(labels.ANOMALY_KINDS)}, all, none")
    return kinds


def add_arguments(p):
    p.add_argument("--scenario", default="demo", choices=sorted(SCENARIOS),
                   help="band plan to draw the scene from; 'demo' (default) = VHF air band with six known anomalies")
    p.add_argument("--seconds", type=float, default=4.0, help="duration (s, default 4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0; same seed, same file)")
    p.add_argument("--rate", type=float, default=None, help="sample rate (Hz); default depends on the scenario")
    p.add_argument("--freq", type=float, default=None,
                   help="centre frequency (Hz); must lie in the scenario's band; default depends on the scenario")
    p.add_argument("--anomalies", default=None,
                   help="comma-separated kinds to inject at random times, 'all' (those the band admits) or 'none' "
                        f"({', '.join(labels.ANOMALY_KINDS)}); default: the demo's six, none otherwise")
    p.add_argument("--datatype", default="cf32_le", choices=("cf32_le", "ci16_le"),
                   help="sample format (default cf32_le)")
    p.add_argument("--out", required=True, help="output .sigmf-meta (the .sigmf-data is written beside it)")
    p.add_argument("--plot", default=None, help="also render a waterfall PNG with truth boxes")


def main(args):
    if os.path.isdir(args.out) or args.out.endswith(("/", os.sep)):  # DIR.sigmf-meta beside it, DIR/.sigmf-meta
        raise ValueError(f"--out {args.out} is a folder; give a .sigmf-meta path in it")
    if args.scenario == "demo" and args.rate is not None and args.rate > DEMO_MAX_RATE:  # (bench uses faster ones)
        raise ValueError(f"--rate {args.rate:g} is too fast for the demo's 25 kHz channels (at most {DEMO_MAX_RATE:g} "
                         "Hz, 10 bins of raster; its frequency shift vanished at 10 MS/s): use the aero scenario")
    make_parent(args.out)  # before the rendering, which takes a while for long scenes
    if args.plot:
        args.plot = image_path(args.plot, "--plot")  # the file printed is the file written
        make_parent(args.plot)
    meta = write_scenario(args.out, args.scenario, args.seconds, args.seed, args.rate, args.freq,
                          _kinds(args.anomalies), args.datatype, args.plot, progress=True)
    print(meta)
    if args.plot:
        print(args.plot)
    return 0
