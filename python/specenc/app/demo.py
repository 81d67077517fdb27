"""`specenc demo`: generate (or reuse) a scene with known ghost anomalies and run the full flowgraph on it.

Prints a summary table including how many of the injected anomalies the alerts caught (an alert
catches an anomaly when they overlap in time and frequency), and writes alerts JSONL, a SigMF
annotation file and a waterfall PNG into the output folder.
"""

import os

from .. import sigmf_io
from . import run, summary

RECORDING = "demo_scene.sigmf-meta"


def add_arguments(parser):
    parser.add_argument("--out-dir", default=os.path.join("out", "demo"), help="output folder (default out/demo)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the generated scene (default 4 s)")
    parser.add_argument("--seed", type=int, default=7, help="scene seed (default 7)")
    parser.add_argument("--regenerate", action="store_true", help="make a new scene even if one exists")
    run.add_model_arguments(parser)
    parser.add_argument("--print-alerts", action="store_true", help="print each alert as it happens")


def scene(out_dir, seconds, seed, regenerate=False):
    """The demo recording's meta path, generated unless a matching one is there already."""
    meta = os.path.join(out_dir, RECORDING)
    if not regenerate and os.path.isfile(meta):
        glob = sigmf_io.read_meta(meta).global_
        if glob.get("specenc:seed") == seed and glob.get("specenc:seconds") == seconds:
            return meta, False
    from ..synth import write_scenario

    os.makedirs(out_dir, exist_ok=True)
    write_scenario(meta, scenario="demo", seconds=seconds, seed=seed)
    # Remember what made it, so a later demo reuses it only when the request matches.
    sigmf_io.write_annotations(meta, [], extra_global={"specenc:seed": seed, "specenc:seconds": seconds})
    return meta, True


def main(args):
    if not args.seconds > 0:
        raise ValueError(f"--seconds={args.seconds} must be > 0")
    model, average = run.load(args)
    meta, made = scene(args.out_dir, args.seconds, args.seed, args.regenerate)
    rec = sigmf_io.read_meta(meta)
    truth = summary.truth_anomalies(rec.annotations)
    print(("generated " if made else "reusing ") + f"{meta} ({rec.num_samples / rec.sample_rate:.2f} s, "
          f"{len(truth)} ghost anomalies)")
    print(run.model_note(model, args.model))
    paths = {name: os.path.join(args.out_dir, name) for name in
             ("demo_scene.specenc.sigmf-meta", "alerts.jsonl", "waterfall.png")}
    out, alerts, png = paths.values()
    _, rows = run.execute(rec, model, average, args, out, alerts, png, truth=truth,
                          title=f"specenc demo: {len(truth)} ghost anomalies (orange), alerts (red)",
                          emitters=summary.truth_emitters(rec.annotations))
    print(summary.table(rows + [("annotations", out), ("alerts", alerts), ("waterfall", png)],
                        title="specenc demo"))
    return 0
