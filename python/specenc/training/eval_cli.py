"""`specenc eval --model M --data D`: model and baselines on the same data; JSON, markdown and PNG plots."""

import glob
import json
import logging
import os
import shlex
import sys

from .. import dsp, labels, sigmf_io
from ..folders import make_folder
from . import calibrate, evaluate, report

log = logging.getLogger(__name__)


def add_arguments(parser):
    parser.add_argument("--model", default=None,
                        help="model .safetensors or exported .onnx (default: the shipped model)")
    parser.add_argument("--backend", default="", help="attention backend (default: the model's; a model trained "
                                                      "with flash runs here as sdpa, the same maths)")
    parser.add_argument("--data", action="append", default=None, metavar="D",
                        help="'synthetic' (held-out generated scenes), a .sigmf-meta file or a directory of them "
                             "(repeatable; default: synthetic)")
    parser.add_argument("--out", default="out/eval", help="directory for results.json, report.md and plots (out/eval)")
    parser.add_argument("--seed", type=int, default=2026, help="test-set seed, a stream disjoint from training (2026)")
    parser.add_argument("--n-test", type=int, default=2048, help="mixed held-out scenes, half with anomalies (2048)")
    parser.add_argument("--n-clean", type=int, default=4096, help="clean scenes per clean set: calibration, false alarms (4096)")
    parser.add_argument("--far", type=float, default=calibrate.DEFAULT_FAR,
                        help="false-alarm rate the baselines are calibrated to; the model keeps its own threshold "
                             "unless that is for means of several scores (specenc calibrate --integrate) "
                             "(%(default)g)")
    parser.add_argument("--ae-steps", type=int, default=300, help="training steps of the autoencoder baseline (300)")
    parser.add_argument("--average", type=int, default=1,
                        help="frames averaged per spectrum for recordings (default 1; training saw 1, 2 and 4)")
    parser.add_argument("--max-spectra", type=int, default=evaluate.MAX_RECORDING_SPECTRA,
                        help="spectra scored at most per recording, from its start (%(default)d; a cut is logged)")
    parser.add_argument("--capture-families", default=None, metavar="FILE.json",
                        help="the known family of real captures' transmitters, {recording name: {\"family\": F, ...}}: "
                             "family accuracy on their bursts (e.g. docs/eval/capture_families.json)")
    parser.add_argument("--site-twins", default=None, metavar="DIR",
                        help="also score each generated recording with ghosts at a threshold calibrated, as "
                             "`specenc calibrate --integrate 16` does, on ghost-free twins of its site (its "
                             "scenario and seed drawn with its ghosts and rendered without them, four takes of "
                             "other noise over the stretch scored), generated into DIR once")


def _recording_paths(spec):
    if os.path.isdir(spec):
        paths = sorted(glob.glob(os.path.join(glob.escape(spec), "*.sigmf-meta")))  # a folder "x [2024]" too
        if not paths:
            raise FileNotFoundError(f"no .sigmf-meta files in {spec}")
        return paths
    if spec.endswith((".sigmf-meta", ".sigmf-data")):  # its meta: truth and tuning are there
        meta = sigmf_io.meta_path_for(spec)
        if not os.path.exists(meta):
            raise FileNotFoundError(f"no such recording: {meta}")
        return [meta]
    raise ValueError(f"--data {spec!r}: expected 'synthetic', a .sigmf-meta file or a directory of them")


def load_capture_families(path, recording_names):
    """{recording name: family} from a JSON file {name: {"family": F, ...}}; names not among the recordings
    are logged and ignored."""
    if path is None:
        return {}
    with open(path) as f:
        try:
            table = json.load(f)
        except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
            raise ValueError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(table, dict):
        raise ValueError(f"{path}: expected a JSON object {{recording name: {{\"family\": F}}}}")
    out = {}
    for name, entry in table.items():
        family = entry.get("family") if isinstance(entry, dict) else None
        if not isinstance(family, str) or family not in labels.FAMILY_INDEX:
            raise ValueError(f"{path}: {name!r} needs a \"family\" among {', '.join(labels.FAMILIES)}, got {family!r}")
        if name in recording_names:
            out[name] = family
        else:
            log.warning("%s: %s is not among the --data recordings; ignored", path, name)
    return out


def main(args):
    from .. import model as model_lib

    calibrate.check_far(args.far)
    for flag, value, least in (("--average", args.average, 1), ("--n-test", args.n_test, 1),
                               ("--n-clean", args.n_clean, 1), ("--ae-steps", args.ae_steps, 1),
                               ("--max-spectra", args.max_spectra, 1)):
        if value < least:  # before minutes of synthetic evaluation, not after
            raise ValueError(f"{flag}={value} must be >= {least}")
    for folder in (args.out, args.site_twins):  # before minutes of work, not after
        if folder:
            make_folder(folder)
    data = args.data or ["synthetic"]
    # One file reached two ways (a folder and a path in it) is scored once.
    paths = list({os.path.realpath(p): p for d in data if d != "synthetic" for p in _recording_paths(d)}.values())
    evaluate.check_recording_names(paths)
    families = load_capture_families(args.capture_families, {evaluate.recording_name(p) for p in paths})
    model = model_lib.load_model(args.model, backend=args.backend)
    for p in paths:  # a recording too short to score stops the run here, not after the synthetic part
        if dsp.num_spectra(sigmf_io.read_meta(p).num_samples, model.nfft, 0.5, args.average) < 1:
            raise ValueError(f"{p}: too short for one spectrum of nfft={model.nfft}, average={args.average}")
    results = {}
    if "synthetic" in data:
        results = evaluate.evaluate_synthetic(model, args.n_test, args.n_clean, args.seed, args.far, args.ae_steps)
        results["targets"] = evaluate.check_targets(results)
    if paths:
        results["recordings"] = evaluate.evaluate_recordings(model, paths, args.average, families, args.site_twins,
                                                              args.max_spectra)
    results["command"] = "specenc eval " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 \
        else "specenc eval"
    results["model"] = {"path": args.model or "(shipped default)", "name": os.path.basename(args.model or "default"),
                        "threshold": float(model.threshold), "parameters": _parameters(model)}
    path = report.write_report(results, args.out)
    print(_summary(results))
    print(f"report: {path}")
    return 0


def _parameters(model):
    net = getattr(model, "net", None) or getattr(model, "module", None)
    return int(sum(p.numel() for p in net.parameters())) if net is not None else None


def _summary(results):
    lines = []
    if "family" in results:
        f, a = results["family"], results["anomaly"]
        lines.append(f"family accuracy {100 * f['accuracy']:.1f} % (SNR>=10 dB: {100 * f['accuracy_snr_ge_10']:.1f} %), "
                     f"detection recall of emissions at SNR>=10 dB {results['detection']['emissions_snr_ge_10']['recall']:.3f}, "
                     f"anomaly F1 {a['at_threshold']['f1']:.3f} AUROC {a['auroc']:.3f}, "
                     f"false alarms {a['false_alarms']['per_spectrum']:.2e}/spectrum")
        if "by_band" in f:
            lines.append("  family accuracy by band: " + ", ".join(
                f"{band} {100 * v['accuracy']:.1f} %" for band, v in f["by_band"].items()))
        for name, b in results["baselines"].items():
            lines.append(f"  baseline {name}: F1 {b['anomaly']['at_threshold']['f1']:.3f} AUROC {b['anomaly']['auroc']:.3f}")
        if not results["data"]["calibration"]["same_target"]:
            lines.append("  (the model's F1 and the baselines' are at different false-alarm rates: see the report)")
    for name, r in results.get("recordings", {}).items():
        known = (f", {r['capture_family']} named on {100 * r['family_accuracy']:.1f} % of {r['capture_rows']} bursts"
                 if "capture_family" in r else "")
        lines.append(f"  {name}: {r['spectra']} spectra, {r['alert_rate']:.2e} over the threshold{known}")
    acc = evaluate.capture_family_accuracy(results.get("recordings", {}))
    if acc is not None:
        lines.append(f"  real captures, transmitter's family named (mean over captures): {100 * acc:.1f} %")
    return "\n".join(lines)
