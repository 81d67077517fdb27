"""`specenc run INPUT --out OUT.sigmf-meta`: the full flowgraph on a SigMF or raw IQ recording.

Writes a SigMF meta whose annotations hold the emission tracks (core:label = family) and the alerts
(core:label = anomaly), optionally one annotation per spectrum, an alerts JSONL and a waterfall PNG,
and prints a summary table.
"""

import bisect
import logging
import math
import os

from .. import sigmf_io
from ..alert_sink import to_annotation
from ..cli import UsageError
from ..folders import image_path, make_parent
from . import interrupts, summary

log = logging.getLogger(__name__)


def add_model_arguments(parser, alerts=True):
    """Model and inference flags shared by run, demo and bench flowgraph (alerts=False: without the alert
    flags, which a benchmark of throughput would ignore)."""
    parser.add_argument("--model", default="", help="model file (default: the shipped model)")
    parser.add_argument("--backend", default="", help="attention backend (default: the model's)")
    parser.add_argument("--runtime", default="torch", choices=("torch", "onnxruntime"),
                        help="inference runtime (default torch)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                        help="inference device (default cpu)")
    parser.add_argument("--threads", type=int, default=2, help="inference threads (default 2)")
    parser.add_argument("--batch", type=int, default=64, help="most spectra per model call (default 64)")
    parser.add_argument("--average", type=int, default=1,
                        help="average K FFT frames per spectrum (default 1; the model was trained on 1, 2 and 4)")
    if not alerts:
        return
    parser.add_argument("--threshold", type=float, default=-1.0,
                        help="alert threshold on the anomaly score (default: the model's calibrated one; under it, "
                             "alerts read kind 'unknown': specenc calibrate lowers the model's own)")
    parser.add_argument("--integrate", type=int, default=0,
                        help="alert on the mean of this many consecutive scores (default: what the model's threshold "
                             "was calibrated for, see specenc calibrate --integrate; 1 for the shipped model)")


def add_arguments(parser):
    parser.add_argument("input", help="SigMF recording (.sigmf-meta/.sigmf-data) or raw IQ file")
    parser.add_argument("--rate", type=float, help="sample rate in Hz (raw input; SigMF: overrides the metadata)")
    parser.add_argument("--freq", type=float, default=None,
                        help="centre frequency in Hz (raw input: default 0, baseband; SigMF: overrides the metadata)")
    parser.add_argument("--format", choices=sigmf_io.RAW_FORMATS, help="sample format (raw input)")
    add_model_arguments(parser)
    parser.add_argument("--per-spectrum", action="store_true", help="also annotate every spectrum with its class")
    parser.add_argument("--out", required=True, help="output SigMF meta with detections and alerts")
    parser.add_argument("--alerts", default="", help="alerts as JSON lines")
    parser.add_argument("--waterfall", default="", help="waterfall PNG with detections and alerts")
    parser.add_argument("--print-alerts", action="store_true", help="print each alert as it happens")


def load(args):
    """Load the model once (clear errors before any flowgraph exists); returns (model, average)."""
    from ..training.calibrate import MAX_INTEGRATE
    from ..spectrum_encoder import MAX_BATCH, open_model
    from ..training.calibrate import model_calibration

    # In the flags' own names, before the model loads (the blocks would say it in their parameters' names).
    if args.threads < 0:
        raise UsageError(f"--threads={args.threads} must be >= 0")
    if args.average < 1:
        raise UsageError(f"--average={args.average} must be >= 1")
    if not 1 <= args.batch <= MAX_BATCH:
        raise UsageError(f"--batch={args.batch} must be in 1..{MAX_BATCH}")
    if getattr(args, "threshold", -1.0) > 1.0:
        raise UsageError(f"--threshold={args.threshold} must be <= 1 (scores are in 0..1; negative = calibrated)")
    if not 0 <= getattr(args, "integrate", 0) <= MAX_INTEGRATE:
        raise UsageError(f"--integrate={args.integrate} must be in 0..{MAX_INTEGRATE} (0 = the model's calibration)")
    model = open_model(args.model, args.backend, args.runtime, args.device, args.threads)
    calibrated = model_calibration(model).get("average", args.average)
    if calibrated != args.average:  # averaging changes the scores: the threshold holds for its own average
        log.warning("the model's threshold was calibrated on spectra averaging %d frames; --average %d gives other "
                    "scores (pass --average %d)", calibrated, args.average, calibrated)
    return model, args.average


def model_note(model, path=""):
    """One line saying which model ran where (device=auto's choice), and loudly when it is untrained."""
    trained = getattr(model, "trained", None)
    providers = getattr(model, "providers", None)  # an onnxruntime model's execution providers, in order
    where = (f"onnxruntime on {model.device} ({', '.join(p.replace('ExecutionProvider', '') for p in providers)})"
             if providers else f"torch on {getattr(model, 'device', 'cpu')}")
    name = f"{path or 'shipped default'}, {where}"
    if trained is False:
        return f"model: {name} (UNTRAINED placeholder: labels and scores are meaningless)"
    return f"model: {name}"


def spectrum_annotations(result):
    """One annotation per spectrum: its family and confidence, and the score the alerts were decided on (with
    integration the mean of the last N, left out until N scores have come: JSON has no NaN); `invalid` for a
    spectrum the model did not score (NaN/inf samples, a failed batch), which had none."""
    out = []
    for i, (label, c, s) in enumerate(zip(result.labels, result.confidence, result.scores)):
        ann = {"core:sample_start": i * result.step, "core:sample_count": result.span, "core:label": label or "invalid"}
        if label:
            ann["specenc:confidence"] = round(float(c), 4)
        if math.isfinite(s):
            ann["specenc:score"] = round(float(s), 4)
        out.append(ann)
    return out


def start_at_retunes(annotations, retunes, step, sample_rate):
    """An annotation whose first spectrum is already of a retune's tuning (from spectrum n // step on, where the psd
    block puts the rx_freq tag) but starts before its sample n is made to start at n: a SigMF reader takes the centre
    from the capture its core:sample_start falls in, and found edges outside that capture's band (audit 63). Its
    specenc:time moves with it (audit 87)."""
    samples = sorted(n for n, _ in retunes)
    for ann in annotations:  # by bisection: thousands of retunes and annotations took seconds (audit 86)
        start = ann["core:sample_start"]
        # the last retune after the start within the spectrum holding it: n // step * step <= start < n
        j = bisect.bisect_left(samples, (start // step + 1) * step) - 1
        if j >= 0 and samples[j] > start:
            n = samples[j]
            ann["core:sample_start"], ann["core:sample_count"] = n, ann["core:sample_count"] - (n - start)
            if "specenc:time" in ann:
                ann["specenc:time"] += (n - start) / sample_rate
    return annotations


def check_outputs(rec, **paths):
    """Refuse an output (flag=path) that is a folder, the input's meta or data file (the alerts file, opened for writing
    before the flowgraph starts, emptied the samples it was about to read) or another output."""
    def same(path):  # one key for one file, however it is reached (symbolic or hard link, relative path)
        return (os.stat(path).st_dev, os.stat(path).st_ino) if os.path.exists(path) else os.path.realpath(path)

    taken = {same(p): "the input recording itself" for p in (rec.meta_path, rec.data_path) if p}
    for flag, path in paths.items():
        # open() said "[Errno 21] Is a directory", naming no option; "new/" became the hidden file new/.sigmf-meta
        if path and (os.path.isdir(path) or path.endswith(os.sep)):
            raise UsageError(f"--{flag} {path} is a folder; give a file in it")
        if path and same(path) in taken:
            raise UsageError(f"--{flag} {path} is {taken[same(path)]}; choose another file")
        if path:
            taken[same(path)] = f"--{flag}'s file too"


def execute(rec, model, average, args, out, alerts_path="", waterfall_path="", per_spectrum=False, truth=None,
            title="", emitters=None):
    """Run the chain and write every output; returns (result, summary rows)."""
    from tqdm import tqdm

    from ..alert_sink import check_output_paths
    from . import flowgraph, waterfall

    out_meta = sigmf_io.meta_path_for(out)
    check_outputs(rec, out=out_meta, alerts=alerts_path, waterfall=waterfall_path)
    glob = sigmf_io.read_global(out_meta)  # read once: an earlier output may hold thousands of annotations
    samples = sigmf_io.described_samples(out_meta, glob)  # samples that --out would describe
    ours = "specenc:threshold" in glob  # an earlier run's output, of another input maybe
    if os.path.isfile(samples) and not os.path.samefile(samples, rec.data_path) and not ours:
        what = "is the meta of the recording of" if os.path.exists(out_meta) else "would pair with the samples"
        raise UsageError(f"--out {out} {what} {samples}: it would describe samples that are not the input's; choose "
                         "another file")
    # Refused inputs leave the last run's outputs be: a recording too short, a HOME where GNU Radio cannot work, an
    # --alerts file the sink would refuse or cannot open
    total = flowgraph.count_spectra(rec, model.nfft, 0.5, average)
    interrupts.check_gnuradio_home()
    check_output_paths(alerts_path, "", jsonl_name="--alerts")
    for path in (out, alerts_path, waterfall_path):
        if path:
            make_parent(path)
    if alerts_path:
        try:
            open(alerts_path, "a").close()
        except OSError as exc:
            raise UsageError(f"--alerts {alerts_path} cannot be written: {exc.strerror or exc}") from None
    # The last run's meta and waterfall go now, as the alerts file is emptied now: a run killed part way left them
    # beside this one's alerts.
    for path in (out_meta, waterfall_path):
        if path and os.path.isfile(path):
            os.remove(path)
    from ..training.calibrate import model_integrate

    integrate = args.integrate or model_integrate(model)
    if integrate > total:
        log.warning("the recording's %d spectra are fewer than the %d scores each alert's mean needs (--integrate, "
                    "or the model's calibration): no alert can be raised", total, integrate)
    with tqdm(total=total, unit="spectra", desc="flowgraph", leave=False, disable=None) as bar:
        result = flowgraph.run_chain(rec, model, average=average, threshold=args.threshold, batch=args.batch,
                                     threads=args.threads, integrate=args.integrate, alerts_jsonl=alerts_path,
                                     stdout=getattr(args, "print_alerts", False), progress=bar)
    annotations = [to_annotation(d) for d in result.detections] + [to_annotation(a) for a in result.alerts]
    if per_spectrum:
        annotations += spectrum_annotations(result)
    start_at_retunes(annotations, sigmf_io.retunes(rec), result.step, result.sample_rate)
    described = rec.global_.get("core:description")  # a synth recording's says its annotations are the truth
    extra = {"specenc:threshold": result.threshold,
             "core:description": "gr-specenc detections and alerts (the model's, not truth)"
                                 + (f" on: {described}" if described else "")}
    # core:dataset is a file name beside the meta in SigMF; a relative path keeps it findable elsewhere. Between the
    # folders as they are (a path from a linked folder is followed from the folder it links to), to the data file by
    # its own name (a link into git-annex's store stays the link).
    out_dir = os.path.realpath(os.path.dirname(os.path.abspath(out_meta)))
    data_dir = os.path.realpath(os.path.dirname(os.path.abspath(rec.data_path)))
    if data_dir != out_dir:
        extra["core:dataset"] = os.path.relpath(os.path.join(data_dir, os.path.basename(rec.data_path)), out_dir)
    sigmf_io.write_annotations(out_meta, annotations, recording=rec, extra_global=extra)
    if waterfall_path and not len(result.rows):  # stopped before its first spectrum: nothing to draw
        log.warning("no spectrum was made: no waterfall written to %s", waterfall_path)
    elif waterfall_path:
        waterfall.render(waterfall_path, result.rows, result.decimation * result.step / result.sample_rate,
                         result.center_freq, result.sample_rate, result.detections, result.alerts, truth or (),
                         title=title or os.path.basename(result.input_name),
                         retunes=sigmf_io.retunes(rec))
    if result.interrupted:
        raise interrupts.Interrupted(f"after {result.num_spectra} of {result.expected_spectra} spectra; the outputs "
                                     "cover those", result.interrupted)
    return result, summary.summary_rows(result, truth, emitters)


def main(args):
    if os.path.isdir(args.out) or args.out.endswith(os.sep):
        example = os.path.join(args.out, "run.sigmf-meta")
        raise UsageError(f"--out {args.out} is a folder; give a file in it ({example})")
    args.waterfall = args.waterfall and image_path(args.waterfall, "--waterfall")
    rec = sigmf_io.open_recording(args.input, args.rate, args.freq, args.format)
    model, average = load(args)
    print(model_note(model, args.model))
    result, rows = execute(rec, model, average, args, args.out, args.alerts, args.waterfall, args.per_spectrum)
    outputs = [("annotations", sigmf_io.meta_path_for(args.out))]
    outputs += [(k, v) for k, v in (("alerts file", args.alerts), ("waterfall", args.waterfall)) if v]
    print(summary.table(rows + outputs, title="specenc run"))
    if result.ended_early:
        log.error("%s ended after %d of its %d spectra (logged above); the outputs cover those", result.input_name,
                  result.num_spectra, result.expected_spectra)
        return 1
    return 0
