"""`specenc calibrate INPUT [INPUT ...]`: set a model's alert threshold from clean recordings of your site (SigMF, or
raw IQ with --rate and --format, as a GNU Radio File Sink or rtl_sdr writes it).

Every site has its own noise floor and emitters; the threshold that gives the target false-alarm
rate on synthetic clean scenes is only a starting point. This scores every spectrum of recordings
the user knows to be anomaly-free (several of them can cover the site's traffic at different times) and
writes a copy of the model with the new threshold (a checkpoint as .safetensors, an exported model as .onnx
with its graph unchanged).

With --integrate N the threshold is for the mean of N consecutive scores, as anomaly_detector(integrate=N)
thresholds them: one site's scores are steady, so a persistent weak anomaly (a frequency hopper) that
lifts them a little for hundreds of spectra clears a threshold set on the site's own running means. The
model file records N, and the blocks and `specenc run` integrate that many scores by default. Neighbouring
means share N - 1 scores, so the confidence bound (which counts them as independent trials) is optimistic.
"""

import logging
import os

import numpy as np
from tqdm import tqdm

from .. import dsp, sigmf_io
from ..folders import make_parent
from ..model.spectrum_model import silent_rows
from ..truth import anomaly_kind
from . import calibrate, datasets, evaluate, modelio

log = logging.getLogger(__name__)


def add_arguments(parser):
    parser.add_argument("input", metavar="INPUT", nargs="+",
                        help="clean (anomaly-free) recordings of the site, one or more (its traffic at different "
                             "times): SigMF, or raw IQ with --rate and --format (the same for all)")
    parser.add_argument("--rate", type=float, help="sample rate in Hz (raw input; SigMF: overrides the metadata)")
    parser.add_argument("--freq", type=float, default=None,
                        help="centre frequency in Hz, which sets the band (raw input; SigMF: overrides the metadata)")
    parser.add_argument("--format", choices=sigmf_io.RAW_FORMATS, help="sample format (raw input)")
    parser.add_argument("--model", default=None,
                        help="model .safetensors, or the exported .onnx you deploy (an int8 one scores a little "
                             "differently from its fp32 source) (default: the shipped model)")
    parser.add_argument("--backend", default="", help="attention backend (default: the model's; a model trained "
                                                      "with flash runs here as sdpa), which the calibrated copy "
                                                      "records")
    parser.add_argument("--far", type=float, default=calibrate.DEFAULT_FAR,
                        help="target false alarms per spectrum, held with 95 %% confidence (default 1e-3; "
                             "at 1e-3 that takes >= 2996 clean spectra; fewer give their maximum score)")
    parser.add_argument("--average", type=int, default=1,
                        help="frames averaged per spectrum (default 1): the psd block's average in the flowgraph "
                             "the threshold is for, since averaging changes the scores")
    parser.add_argument("--max-spectra", type=int, default=200000, help="spectra to score at most per recording")
    parser.add_argument("--integrate", type=int, default=1,
                        help="calibrate the mean of this many consecutive scores, 1..100000 (default 1: each spectrum's "
                             "own); the detector then integrates as many")
    parser.add_argument("--out", required=True,
                        help="output model path: .safetensors (the .json is written beside), .onnx for an .onnx model")


def recalibrate(model, recordings, far, average=1, max_spectra=200000, integrate=1):
    """(threshold, summary) for `model` on clean recordings of one site (a SigMF meta path or sigmf_io.Recording,
    or a list of them); the threshold is for the mean of `integrate` consecutive scores of one recording (the running
    mean over each, one per spectrum from its integrate-th on)."""
    calibrate.check_far(far)
    if max_spectra < 1:
        raise ValueError(f"max_spectra={max_spectra} must be >= 1")
    if not 1 <= integrate <= calibrate.MAX_INTEGRATE:  # a model file holding more is refused at load
        raise ValueError(f"integrate={integrate} must be in 1..{calibrate.MAX_INTEGRATE}")
    dsp.check_params(model.nfft, 0.5, average)  # before the first recording is scored, not after
    if isinstance(recordings, (str, os.PathLike, sigmf_io.Recording)):
        recordings = [recordings]
    scored = [recording_scores(model, r, average, max_spectra, integrate) for r in recordings]
    used = [name for name, scores in scored if scores.size]
    if not used:
        raise ValueError("nothing to calibrate on: every recording was left out (see the warnings above: too short, "
                         "NaN/inf samples, or digital silence throughout)")
    scores = np.concatenate([scores for _, scores in scored])
    tau = calibrate.threshold_for_far(scores, far)
    return tau, {**calibrate.calibration_summary(scores, tau, far), "integrate": int(integrate),
                 "calibrated_on": ", ".join(used)}


def recording_scores(model, recording, average, max_spectra, integrate):
    """(file name, anomaly scores of the recording's spectra, or with integrate > 1 their running means: none across
    recordings, whose ends are not consecutive); no scores, with a warning, for one left out."""
    rec = recording if isinstance(recording, sigmf_io.Recording) else sigmf_io.open_recording(recording)
    name = os.path.basename(rec.meta_path or rec.data_path)
    if dsp.num_spectra(rec.num_samples, model.nfft, 0.5, average) < 1:
        log.warning("%s: its %d samples give no spectrum of nfft=%d, average=%d; left out of the calibration", name,
                    rec.num_samples, model.nfft, average)
        return name, np.empty(0, np.float32)
    rec, spectra, freq, _ = datasets.recording_spectra(rec, model.nfft, average=average, max_spectra=max_spectra)
    marked = [a for a in rec.annotations if anomaly_kind(a)]
    if marked:
        log.warning("%s marks %d anomalies (e.g. at sample %d); the threshold is set over their scores too: calibrate "
                    "on a recording without them", name, len(marked), marked[0]["core:sample_start"])
    if len(spectra) < integrate:  # one of several recordings may be: the others still calibrate
        log.warning("%s: its %d finite spectra are fewer than integrate=%d; left out of the calibration", name,
                    len(spectra), integrate)
        return name, np.empty(0, np.float32)
    with tqdm(total=len(spectra), desc=f"scoring {name}", unit="spec", disable=None) as bar:  # none in a log file
        scores = evaluate.predict_all(model, spectra, freq, progress=bar)["anomaly_score"]
    # Digital silence (a gap, zero padding) scores 0 at any site, and the spectra straddling its edges, partly zeros,
    # score far above it: as the site's clean trials the first would lower the threshold, the second raise it (a
    # 10 ms gap raised it 13-fold: audit 48). Both are left out, with the means that reach into them.
    gap = near_silence(silent_rows(spectra), model.nfft, average)
    kept = ~gap if integrate == 1 else calibrate.score_means(gap, integrate) == 0
    if gap.any():
        log.warning("%s: %d of its %d spectra are digital silence or straddle its edges (gaps, zero padding); %d of "
                    "its %d %s left out of the calibration", name, int(gap.sum()), len(spectra),
                    int((~kept).sum()), len(kept), "spectra" if integrate == 1 else f"means of {integrate} scores")
    return name, (scores if integrate == 1 else calibrate.score_means(scores, integrate))[kept]


def near_silence(silent, nfft, average, overlap=0.5):
    """(S,) bool: the silent spectra and those that share input samples with the gap around them (up to a spectrum's
    span beyond the silent ones on each side)."""
    span, step = dsp.samples_read(1, nfft, overlap, average), average * dsp.hop_size(nfft, overlap)
    reach = -(-span // step)
    # "full" cut to the centre: mode "same" returns the longer input's length, the window's for a short recording
    return np.convolve(silent.astype(float), np.ones(2 * reach + 1))[reach:reach + len(silent)] > 0


def main(args):
    from .. import model as model_lib

    for path in args.input:
        if not (os.path.exists(path) or os.path.isfile(sigmf_io.meta_path_for(path))):  # a base name, as run takes
            raise FileNotFoundError(f"no such recording: {path}")
    recs, names = {}, {}  # one data file named twice (a glob's .sigmf-meta and .sigmf-data) is scored once
    for path in args.input:
        rec = sigmf_io.open_recording(path, args.rate, args.freq, args.format)
        key = os.path.realpath(rec.data_path)
        if key in recs:
            log.warning("%s is %s again; scored once", path, names[key])
            continue
        recs[key], names[key] = rec, path
    recs = list(recs.values())
    model = model_lib.load_model(args.model, backend=args.backend)
    modelio.check_out_path(model, args.out)
    make_parent(args.out)  # before the scoring, which takes minutes on long recordings
    tau, summary = recalibrate(model, recs, args.far, args.average, args.max_spectra, args.integrate)
    summary["average"] = args.average  # the flowgraph's psd averaging the threshold holds for
    out = modelio.save_with_threshold(model, args.out, tau, summary)
    trials = "spectra" if args.integrate == 1 else f"means of {args.integrate} scores"
    print(f"threshold {summary['threshold']:.6g} (was {model.threshold:.6g}); false alarms on "
          f"{summary['clean_spectra']} {trials}: {summary['measured_far']:.2e}/spectrum, at most "
          f"{summary['far_upper_bound']:.2e} with {100 * summary['confidence']:.0f} % confidence (target {args.far:g}) -> {out}")
    if args.integrate > 1:
        print(f"the threshold is for the mean of {args.integrate} scores: anomaly_detector and specenc run integrate "
              f"{args.integrate} with this model unless told otherwise")
    return 0

