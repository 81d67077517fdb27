"""Alert threshold from a target false-alarm rate on clean (anomaly-free) spectra.

An alert fires when `score > threshold`. With N clean scores and a target rate `far`, at most
m = floor(far * N) of them may exceed the threshold, so the threshold is the (m+1)-th largest
score: the rate measured on the calibration data is then <= far (ties only lower it).
"""

import logging
import math

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_FAR = 1e-3


def check_far(far):
    if not (0.0 < far < 1.0):
        raise ValueError(f"far={far} must be a false-alarm rate per spectrum in (0, 1), e.g. 1e-3")


def threshold_for_far(clean_scores, far=DEFAULT_FAR):
    """Smallest data-derived threshold whose false-alarm rate on `clean_scores` is <= far."""
    check_far(far)
    s = np.asarray(clean_scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise ValueError("no clean scores to calibrate on")
    if not np.all(np.isfinite(s)):
        raise ValueError("clean scores contain NaN or inf")
    if s.size < math.ceil(1.0 / far):
        # Too few spectra to observe one false alarm at this rate: the threshold is the maximum
        # seen, and the true rate is only bounded by ~1/N.
        log.warning("only %d clean spectra for far=%g; the threshold is their maximum (rate bound ~%.1e)",
                    s.size, far, 1.0 / s.size)
    allowed = int(math.floor(far * s.size))
    return float(np.sort(s)[::-1][allowed])


def calibration_summary(clean_scores, threshold, far):
    """What the chosen threshold does on the calibration data (for logs and the model file)."""
    s = np.asarray(clean_scores, dtype=np.float64)
    return {
        "threshold": float(threshold),
        "target_far": float(far),
        "measured_far": float(np.mean(s > threshold)),
        "clean_spectra": int(s.size),
    }
