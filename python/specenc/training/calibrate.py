"""Alert threshold from a target false-alarm rate on clean (anomaly-free) spectra.

An alert fires when `score > threshold`. The rate measured on N clean spectra is only an estimate:
at 1e-3 and N = 32768 about 33 spectra exceed the threshold, and another clean set of the same size
sees 33 +- 6. Calibrating to the measured rate therefore misses the target on held-out data about
half the time. So the threshold lets through at most k calibration spectra, k the largest count
whose one-sided `confidence` upper bound (exact Poisson) on the true rate is still <= far: then the
true rate is <= far with that confidence. The threshold is the (k+1)-th largest score (ties only
lower the rate). With too few spectra for any k, it is their maximum and a warning says so.
"""

import logging
import math

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_FAR = 1e-3
CONFIDENCE = 0.95
MAX_INTEGRATE = 100000  # most consecutive scores averaged (anomaly_detector, a model's calibration record)
# Scores averaged per alert decision when calibrating to one site (specenc demo, specenc eval --site-twins): 8 ms at
# 1 MS/s; the demo scenes it was chosen on are in app/demo.py.
SITE_INTEGRATE = 16


def score_means(scores, n):
    """The mean of each n consecutive scores (len - n + 1 of them; none when fewer than n), as
    anomaly_detector(integrate=n) thresholds them."""
    scores = np.asarray(scores, np.float64)
    # np.convolve would swap a signal shorter than the window for the window.
    return np.convolve(scores, np.ones(n) / n, "valid") if len(scores) >= n else np.zeros(0)


def integrated_scores(scores, n):
    """Per spectrum, the mean of the n scores up to it, as anomaly_detector(integrate=n) thresholds them (0, no
    alert, before the n-th); the scores themselves for n = 1."""
    scores = np.asarray(scores, np.float64)
    return np.concatenate([np.zeros(min(n - 1, len(scores))), score_means(scores, n)]) if n > 1 else scores


def model_calibration(model):
    """The record of how the model's threshold was calibrated: `specenc calibrate`'s, else training's ({} when its
    file has neither)."""
    meta = getattr(model, "metadata", {})
    return meta.get("calibration") or meta.get("training", {}).get("calibration", {})


def model_integrate(model):
    """How many consecutive scores the model's threshold is for (its calibration's --integrate; 1 when not said)."""
    return int(model_calibration(model).get("integrate", 1))


def check_far(far):
    if not (0.0 < far < 1.0):
        raise ValueError(f"far={far} must be a false-alarm rate per spectrum in (0, 1), e.g. 1e-3")


def poisson_upper(k, confidence=CONFIDENCE):
    """Exact one-sided upper `confidence` bound on a Poisson mean after observing k events."""
    j = np.arange(k + 1)
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(j[1:]))])

    def cdf(lam):  # P(X <= k | lam)
        return float(np.exp(j * math.log(lam) - lam - log_factorial).sum())

    lo, hi = max(float(k), 1e-12), float(k) + 10.0 * math.sqrt(k + 1.0) + 10.0
    for _ in range(80):  # bisection: cdf falls as lam grows
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cdf(mid) > 1.0 - confidence else (lo, mid)
    return hi


def allowed_false_alarms(n, far, confidence=CONFIDENCE):
    """Most calibration exceedances among n that still bound the true rate by far (-1: not even 0 does)."""
    k = int(math.floor(far * n))
    while k >= 0 and poisson_upper(k, confidence) > far * n:
        k -= 1
    return k


def threshold_for_far(clean_scores, far=DEFAULT_FAR, confidence=CONFIDENCE):
    """Threshold whose true false-alarm rate is <= far with `confidence`, from `clean_scores`."""
    check_far(far)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must be in (0, 1)")
    s = np.asarray(clean_scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise ValueError("no clean scores to calibrate on")
    if not np.all(np.isfinite(s)):
        raise ValueError("clean scores contain NaN or inf")
    allowed = allowed_false_alarms(s.size, far, confidence)
    if allowed < 0:
        log.warning("%d clean spectra cannot show a rate below far=%g with %.0f %% confidence (that needs %d); "
                    "the threshold is their maximum", s.size, far, 100 * confidence,
                    math.ceil(-math.log(1.0 - confidence) / far))
        allowed = 0
    return float(np.sort(s)[::-1][allowed])


def calibration_summary(clean_scores, threshold, far, confidence=CONFIDENCE):
    """What the chosen threshold does on the calibration data (for logs and the model file)."""
    s = np.asarray(clean_scores, dtype=np.float64)
    alarms = int(np.sum(s > threshold))
    return {
        "threshold": float(threshold),
        "target_far": float(far),
        "measured_far": alarms / s.size,
        "far_upper_bound": poisson_upper(alarms, confidence) / s.size,
        "confidence": float(confidence),
        "clean_spectra": int(s.size),
    }
