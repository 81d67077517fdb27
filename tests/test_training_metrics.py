"""Metrics, calibration and baselines on hand-made cases with known answers."""

import math

import numpy as np
import pytest

from gnuradio.specenc.training import baselines, calibrate, metrics


def test_confusion_matrix_and_accuracy_on_known_labels():
    true = [0, 0, 1, 1, 2, 2]
    pred = [0, 1, 1, 1, 2, 0]
    cm = metrics.confusion_matrix(true, pred, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert metrics.accuracy(true, pred) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="0..2"):
        metrics.confusion_matrix([3], [0], 3)


def test_accuracy_by_snr_bins_and_noise_rows():
    true = np.array([1, 1, 1, 1, 0])
    pred = np.array([1, 0, 1, 1, 0])
    snr = np.array([-3.0, 5.0, 15.0, 40.0, np.nan])
    out = metrics.accuracy_by_snr(true, pred, snr)
    assert out["-5..0 dB"] == {"accuracy": 1.0, "count": 1}
    assert out["0..10 dB"] == {"accuracy": 0.0, "count": 1}
    assert out["20..40 dB"]["count"] == 0 and out[">= 40 dB"]["count"] == 1  # 40 dB is above the bins
    assert out["< -5 dB"]["count"] == 0
    assert sum(v["count"] for v in out.values()) == 4  # every spectrum with an emitter; the noise-only one in none


def test_accuracy_by_width_bins_and_noise_rows():
    true = np.array([1, 2, 2, 3, 0])
    pred = np.array([1, 0, 2, 3, 0])
    width = np.array([1.0, 5.0, 15.9, 700.0, 0.0])
    out = metrics.accuracy_by_width(true, pred, width)
    assert out["1..4 bins"] == {"accuracy": 1.0, "count": 1}
    assert out["4..16 bins"] == {"accuracy": 0.5, "count": 2}
    assert out["16..64 bins"]["count"] == 0 and out[">= 64 bins"] == {"accuracy": 1.0, "count": 1}


def test_accuracy_by_group_names_only_present_groups():
    out = metrics.accuracy_by_group([1, 2, 2, 0], [1, 0, 2, 0], [0, 2, 2, 2], ["ism", "cellular", "gnss"])
    assert out == {"ism": {"accuracy": 1.0, "count": 1}, "gnss": {"accuracy": 2 / 3, "count": 3}}


def test_runs_and_iou():
    assert metrics.runs([0, 3, 3, 0, 0, 5, 5, 5, 3]) == [(1, 3, 3), (5, 8, 5), (8, 9, 3)]
    assert metrics.interval_iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert metrics.interval_iou((0, 10), (10, 20)) == 0.0


def test_detection_matching_is_one_to_one_with_iou_threshold():
    truth = [[(100, 200, 1), (400, 410, 2)]]
    # one good match, one duplicate on the same emission, one too small (IoU 0.2) on the other
    dets = [[(110, 200, 1), (100, 190, 1), (400, 402, 2)]]
    out = metrics.detection_scores(truth, dets)
    assert out["recall"] == pytest.approx(1 / 2)
    assert out["precision"] == pytest.approx(1 / 3)
    assert metrics.detection_scores(truth, [[(110, 200, 7)]], need_family=True)["recall"] == 0.0


def test_emission_recall_counts_only_emissions_at_snr_ge_10():
    from gnuradio.specenc.training.evaluate import detection_block, truth_tokens
    fam = np.zeros((1, 64), np.int64)
    snr = np.full((1, 64), np.nan, np.float32)
    fam[0, 4:12], snr[0, 4:12] = 1, 20.0  # strong, found
    fam[0, 20:28], snr[0, 20:28] = 2, 3.0  # weak, missed
    fam[0, 40:48], snr[0, 40:48] = 3, 12.0  # strong, missed
    truth = truth_tokens(fam, snr)
    assert [t[3] for t in truth[0]] == [20.0, 3.0, 12.0]
    out = detection_block(truth, [[(4, 12, 1)]], snr_db=[20.0])
    assert out["all"]["recall"] == pytest.approx(1 / 3)
    assert out["emissions_snr_ge_10"]["recall"] == pytest.approx(1 / 2)
    assert out["emissions_snr_ge_10"]["truth"] == 2 and math.isnan(out["emissions_snr_ge_10"]["precision"])


def test_f1_auroc_and_average_precision_on_known_scores():
    labels = np.array([0, 0, 1, 1])
    assert metrics.auroc(labels, [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert metrics.auroc(labels, [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)  # ties count one half
    assert metrics.auroc(labels, [0.0, 0.1, 0.9, 1.0]) == 1.0
    f = metrics.f1_at(labels, [0.1, 0.6, 0.7, 0.2], threshold=0.5)
    assert (f["tp"], f["fp"], f["fn"], f["tn"]) == (1, 1, 1, 1)
    assert f["f1"] == pytest.approx(0.5)
    # ranking 1,0,1,0 from the top: precision 1 at recall .5, 2/3 at recall 1
    assert metrics.average_precision(labels, [0.8, 0.1, 0.9, 0.7]) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    fpr, tpr, _ = metrics.roc_curve(labels, [0.1, 0.4, 0.35, 0.8])
    assert np.trapz(tpr, fpr) == pytest.approx(0.75)


def test_calibration_bounds_the_true_rate_with_confidence():
    rng = np.random.default_rng(0)
    clean = rng.normal(size=10_000)
    tau = calibrate.threshold_for_far(clean, far=1e-3)
    # 4 exceedances: the exact 95 % Poisson upper bound for 4 is 9.15 <= 10 expected at 1e-3; for 5 it is 10.5.
    assert np.sum(clean > tau) == 4 and tau == pytest.approx(np.sort(clean)[-5])
    assert calibrate.poisson_upper(4) == pytest.approx(9.1535, abs=1e-3)
    assert calibrate.poisson_upper(0) == pytest.approx(-np.log(0.05))
    summary = calibrate.calibration_summary(clean, tau, 1e-3)
    assert summary["measured_far"] == 4e-4 and summary["far_upper_bound"] <= 1e-3
    # The true rate (Gaussian scores: known tail) is within the target in ~95 % of calibrations; the plain
    # 1e-3 quantile of the same draws meets it only about half the time.
    def true_rate(t):
        return 0.5 * math.erfc(t / math.sqrt(2.0))
    draws = [rng.normal(size=10_000) for _ in range(200)]
    bounded = np.mean([true_rate(calibrate.threshold_for_far(d, 1e-3)) <= 1e-3 for d in draws])
    plain = np.mean([true_rate(np.sort(d)[-11]) <= 1e-3 for d in draws])
    assert bounded >= 0.9 and plain < 0.7
    assert calibrate.threshold_for_far([0.1, 0.2, 0.3], far=1e-3) == 0.3  # few spectra: the max
    with pytest.raises(ValueError, match="far=2"):
        calibrate.threshold_for_far(clean, far=2)


def test_zscore_baseline_fires_on_an_injected_bump():
    rng = np.random.default_rng(1)
    clean = (-100 + 5 * np.log10(rng.exponential(size=(400, 256)))).astype(np.float32)
    det = baselines.ZScoreDetector().fit(clean[:300])
    test = clean[300:].copy()
    test[:50, 120:130] += 20.0  # a 20 dB emission where none belongs
    scores = det.score(test)
    labels = np.r_[np.ones(50), np.zeros(50)]
    assert metrics.auroc(labels, scores) > 0.99
    found = det.detections(test[:1])[0]
    assert any(metrics.interval_iou((s, e), (120, 130)) >= 0.3 for s, e, _ in found)


def test_autoencoder_baseline_scores_unseen_shapes_higher():
    rng = np.random.default_rng(2)
    nfft = 64

    def clean(n):
        return (-90 + rng.normal(0, 1, size=(n, nfft))).astype(np.float32)

    ae = baselines.train_autoencoder((clean(64) for _ in range(200)), nfft, steps=200)
    odd = clean(32)
    odd[:, 20:30] += 25.0
    assert ae.score(odd).mean() > 3 * ae.score(clean(32)).mean()


def test_localisation_scores_bin_iou_on_rows_with_truth():
    true = np.zeros((3, 10), bool)
    pred = np.zeros((3, 10), bool)
    true[0, 2:6], pred[0, 3:6] = True, True  # IoU 3/4
    true[1, 0:2], pred[1, 8:10] = True, True  # IoU 0
    pred[2, :] = True  # no truth: not scored
    out = metrics.localisation(true, pred)
    assert out["rows"] == 2
    assert out["located"] == pytest.approx(0.5)
    assert out["mean_iou"] == pytest.approx(0.375)


def test_kind_named_counts_only_caught_anomalies():
    from gnuradio.specenc.labels import ANOMALY_INDEX
    from gnuradio.specenc.training.evaluate import kind_named
    jam, shift = ANOMALY_INDEX["jamming"], ANOMALY_INDEX["frequency_shift"]
    true = np.array([jam, jam, jam, shift, -1])
    pred = ["jamming", "frequency_shift", "jamming", "frequency_shift", "jamming"]
    fired = np.array([True, True, False, True, True])  # the third is missed, the last is a false alarm
    out = kind_named(true, pred, fired)
    assert out["jamming"] == {"caught": 2, "named": 0.5}
    assert out["frequency_shift"] == {"caught": 1, "named": 1.0}
    assert out["stealth"]["caught"] == 0 and np.isnan(out["stealth"]["named"])


def test_detection_f1_is_the_harmonic_mean_of_precision_and_recall():
    """audit 61: F1 computed as p*r/(p+r) (half the harmonic mean) passed; it goes into eval's detection table."""
    truth = [[(100, 200, 1), (400, 410, 2)]]
    out = metrics.detection_scores(truth, [[(110, 200, 1), (100, 190, 1), (400, 402, 2)]])
    assert out["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))  # 0.4
    out = metrics.detection_scores(truth, [[(100, 200, 1)]])  # one det, matched: precision 1, recall 1/2
    assert (out["precision"], out["recall"], out["f1"]) == (1.0, 0.5, pytest.approx(2 / 3))


def test_best_f1_reports_the_highest_f1_and_its_threshold():
    """audit 61: the "oracle best" F1 taken at the worst threshold (argmin) passed. Thresholds from the top: 0.8
    (F1 2/3), 0.4 (1/2), 0.35 (4/5), 0.1 (2/3)."""
    out = metrics.best_f1([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert out == {"f1": pytest.approx(0.8), "threshold_ge": 0.35}


def test_a_score_equal_to_the_threshold_raises_no_alert_in_the_metrics():
    """audit 61: `score >= threshold` in false_alarm_rate or f1_at passed. The rule is `score > threshold`, the anomaly
    detector's and calibrate's, whose threshold is itself a clean score: a tie is the normal case."""
    assert metrics.false_alarm_rate([0.2, 0.5, 0.5, 0.9], 0.5) == 0.25
    f = metrics.f1_at([0, 1, 1, 0], [0.5, 0.5, 0.9, 0.1], threshold=0.5)
    assert (f["tp"], f["fp"], f["fn"], f["tn"]) == (1, 0, 1, 2)
    assert (f["precision"], f["recall"]) == (1.0, 0.5)
    clean = np.random.default_rng(0).normal(size=10_000)
    tau = calibrate.threshold_for_far(clean, far=1e-3)  # the 5th largest clean score
    assert metrics.false_alarm_rate(clean, tau) == calibrate.calibration_summary(clean, tau, 1e-3)["measured_far"]
    assert metrics.false_alarm_rate(clean, tau) == 4e-4


def test_a_detection_at_iou_exactly_0_3_is_a_match_and_located():
    """audit 61: `IoU > 0.3` in matching or localisation passed; the documented rule is IoU >= 0.3 (DETECTION_IOU)."""
    assert metrics.DETECTION_IOU == 0.3
    assert metrics.interval_iou((0, 10), (7, 10)) == 0.3
    assert metrics.match_detections([(0, 10, 1)], [(7, 10, 1)]) == (1, 1)
    out = metrics.detection_scores([[(0, 10, 1)]], [[(7, 10, 1)]])
    assert (out["precision"], out["recall"]) == (1.0, 1.0)
    true, pred = np.zeros((1, 20), bool), np.zeros((1, 20), bool)
    true[0, 0:10], pred[0, 7:10] = True, True  # bin IoU 3/10
    assert metrics.localisation(true, pred)["located"] == 1.0


def test_detection_matching_is_greedy_from_the_highest_iou():
    """audit 61: matching from the lowest IoU up passed. Highest first, the long truth takes the long detection (IoU
    0.9); the short truth's only candidate (IoU 1/3) is then used, and the other detection overlaps only the long
    truth (0.4): one match each way. Lowest first would pair both and report precision and recall 1."""
    truth = [(0, 100, 1), (0, 30, 1)]
    dets = [(0, 90, 1), (60, 100, 1)]
    assert metrics.match_detections(truth, dets) == (1, 1)
    out = metrics.detection_scores([truth], [dets])
    assert (out["precision"], out["recall"]) == (0.5, 0.5)


def test_calibration_record_gives_the_exact_poisson_upper_bound():
    """audit 61: far_upper_bound reported as the measured rate (alarms / n, 2.3x tighter than the 95 % bound) passed:
    the old check was only `<= far`."""
    scores = np.arange(1000.0)
    summary = calibrate.calibration_summary(scores, 995.5, 1e-2)  # 996..999 above: 4 alarms
    assert summary["measured_far"] == 4e-3
    assert summary["far_upper_bound"] == pytest.approx(calibrate.poisson_upper(4) / 1000)
    assert summary["far_upper_bound"] == pytest.approx(9.1535e-3, abs=1e-6)
    summary = calibrate.calibration_summary(scores, 999.0, 1e-2)  # none above: -ln(0.05) / n
    assert (summary["measured_far"], summary["far_upper_bound"]) == (0.0, pytest.approx(-np.log(0.05) / 1000))


def test_integrated_scores_put_each_mean_on_the_last_spectrum_of_its_window():
    """audit 61: the n - 1 leading zeros moved to the end (every mean one spectrum early) passed; eval scores these
    per spectrum against per-spectrum labels, as anomaly_detector(integrate=n) places its means."""
    assert calibrate.integrated_scores([1, 2, 3, 4, 5], 2).tolist() == [0.0, 1.5, 2.5, 3.5, 4.5]
    np.testing.assert_allclose(calibrate.integrated_scores([1, 2, 3, 4, 5], 3), [0.0, 0.0, 2.0, 3.0, 4.0], atol=1e-12)
    assert calibrate.integrated_scores([1, 2], 3).tolist() == [0.0, 0.0]  # fewer than n: no mean, no alert
    assert calibrate.integrated_scores([1, 2, 3], 1).tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("kwargs,message", [
    (dict(clean_scores=[0.1, float("nan"), 0.3] * 2000, far=1e-3), "clean scores contain NaN or inf"),
    (dict(clean_scores=[0.1, 0.2, 0.3] * 2000, far=1e-3, confidence=1.0), r"confidence=1.0 must be in \(0, 1\)"),
    (dict(clean_scores=[0.1, 0.2, 0.3] * 2000, far=0.0), r"far=0.0 must be a false-alarm rate per spectrum"),
])
def test_calibration_refuses_nan_scores_certain_confidence_and_zero_far_by_name(kwargs, message):
    """audit 61: without these checks a NaN score gave threshold nan (no alert ever), confidence=1 "math domain
    error" and far=0 a ZeroDivisionError."""
    with pytest.raises(ValueError, match=message):
        calibrate.threshold_for_far(**kwargs)
