"""`specenc calibrate INPUT.sigmf-meta`: set a model's alert threshold from a clean recording of your site.

Every site has its own noise floor and emitters; the threshold that gives the target false-alarm
rate on synthetic clean scenes is only a starting point. This scores every spectrum of a recording
the user knows to be anomaly-free and writes a copy of the model with the new threshold.
"""

import logging
import os

import numpy as np

from tqdm import tqdm

from . import calibrate, datasets, evaluate, modelio

log = logging.getLogger(__name__)


def add_arguments(parser):
    parser.add_argument("input", metavar="INPUT.sigmf-meta", help="a clean (anomaly-free) SigMF recording of the site")
    parser.add_argument("--model", default=None, help="model .safetensors (default: the shipped model)")
    parser.add_argument("--far", type=float, default=calibrate.DEFAULT_FAR,
                        help="target false alarms per spectrum, held with 95 %% confidence (default 1e-3; "
                             "at 1e-3 that takes >= 2996 clean spectra; fewer give their maximum score)")
    parser.add_argument("--average", type=int, default=1,
                        help="frames averaged per spectrum (default 1): the psd block's average in the flowgraph "
                             "the threshold is for, since averaging changes the scores")
    parser.add_argument("--max-spectra", type=int, default=200000, help="spectra to score at most")
    parser.add_argument("--out", required=True, help="output model path (.safetensors; the .json is written beside)")


def recalibrate(model, meta_path, far, average=1, max_spectra=200000):
    """(threshold, summary) for `model` on the clean recording at `meta_path`."""
    calibrate.check_far(far)
    rec, spectra, _ = datasets.recording_spectra(meta_path, model.nfft, average=average, max_spectra=max_spectra)
    freq = np.full(len(spectra), rec.center_freq)  # the band (dynamic RoPE) the recording's spectra belong to
    with tqdm(total=len(spectra), desc="scoring", unit="spec") as bar:
        scores = evaluate.predict_all(model, spectra, freq, progress=bar)["anomaly_score"]
    tau = calibrate.threshold_for_far(scores, far)
    return tau, calibrate.calibration_summary(scores, tau, far)


def main(args):
    from .. import model as model_lib

    if not os.path.exists(args.input):
        raise FileNotFoundError(f"no such recording: {args.input}")
    model = model_lib.load_model(args.model)
    tau, summary = recalibrate(model, args.input, args.far, args.average, args.max_spectra)
    summary["calibrated_on"] = os.path.basename(args.input)
    out = modelio.save_with_threshold(model, args.out, tau, summary)
    print(f"threshold {summary['threshold']:.6g} (was {model.threshold:.6g}); false alarms on "
          f"{summary['clean_spectra']} spectra: {summary['measured_far']:.2e}/spectrum, at most "
          f"{summary['far_upper_bound']:.2e} with {100 * summary['confidence']:.0f} % confidence (target {args.far:g}) -> {out}")
    return 0

