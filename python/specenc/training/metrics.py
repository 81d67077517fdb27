"""Evaluation metrics in plain NumPy: family accuracy, confusion, detection matching, anomaly scores.

Conventions: an alert fires when `score > threshold` (strictly), the same rule the anomaly detector
block uses. Detections and truth emissions are half-open bin ranges [bin_start, bin_stop).
"""

import numpy as np

# SNR bins (dB): the four the issue asks for, and those below and above them so every spectrum with an emitter is in
# one (the generator draws emitters from -10 to 55 dB); lower edge inclusive, upper exclusive.
SNR_BINS = ((-np.inf, -5.0), (-5.0, 0.0), (0.0, 10.0), (10.0, 20.0), (20.0, 40.0), (40.0, np.inf))
DETECTION_IOU = 0.3


def snr_bin_name(lo, hi):
    if not np.isfinite(lo):
        return f"< {hi:g} dB"
    return f"{lo:g}..{hi:g} dB" if np.isfinite(hi) else f">= {lo:g} dB"


def confusion_matrix(true, pred, num_classes):
    """(num_classes, num_classes) counts, rows = truth, columns = prediction."""
    true, pred = np.asarray(true, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    if true.shape != pred.shape:
        raise ValueError(f"true {true.shape} and pred {pred.shape} must have the same shape")
    for name, a in (("true", true), ("pred", pred)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} labels must be in 0..{num_classes - 1}, got {a.min()}..{a.max()}")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (true, pred), 1)
    return cm


def accuracy(true, pred):
    true, pred = np.asarray(true), np.asarray(pred)
    return float(np.mean(true == pred)) if true.size else float("nan")


def _accuracy_by_bin(true, pred, values, bins, name):
    """{name(lo, hi): {"accuracy", "count"}} over rows whose value lies in [lo, hi); a finite last bin also
    takes its upper edge, and nan values belong to no bin."""
    true, pred, values = np.asarray(true), np.asarray(pred), np.asarray(values, dtype=np.float64)
    out = {}
    for i, (lo, hi) in enumerate(bins):
        upper = values <= hi if i == len(bins) - 1 else values < hi
        sel = (values >= lo) & upper
        out[name(lo, hi)] = {"accuracy": accuracy(true[sel], pred[sel]), "count": int(sel.sum())}
    return out


def accuracy_by_snr(true, pred, snr_db, bins=SNR_BINS):
    """{bin name: {"accuracy", "count"}} over spectra whose dominant-emitter SNR falls in each bin.

    Spectra without any emitter (snr nan) belong to no bin.
    """
    return _accuracy_by_bin(true, pred, snr_db, bins, snr_bin_name)


WIDTH_BINS = ((1.0, 4.0), (4.0, 16.0), (16.0, 64.0), (64.0, float("inf")))


def accuracy_by_width(true, pred, width_bins, bins=WIDTH_BINS):
    """{"a..b bins": {"accuracy", "count"}} by the dominant emitter's bandwidth in analysis bins.

    A PSD shows a family only through its shape, so narrow emitters are where families blur. Spectra
    without a visible emitter (width 0) belong to no bin."""
    return _accuracy_by_bin(true, pred, width_bins, bins,
                            lambda lo, hi: f"{lo:g}..{hi:g} bins" if np.isfinite(hi) else f">= {lo:g} bins")


def accuracy_by_group(true, pred, group, names):
    """{names[g]: {"accuracy", "count"}} for each group index g present in `group` (e.g. the band plan)."""
    true, pred, group = np.asarray(true), np.asarray(pred), np.asarray(group)
    return {names[g]: {"accuracy": accuracy(true[group == g], pred[group == g]), "count": int((group == g).sum())}
            for g in np.unique(group)}


def runs(mask_or_labels):
    """Contiguous runs of equal non-zero values in a 1-D array -> [(start, stop, value)], stop exclusive."""
    a = np.asarray(mask_or_labels).astype(np.int64)
    if a.size == 0:
        return []
    change = np.flatnonzero(np.diff(a)) + 1
    starts = np.concatenate(([0], change))
    stops = np.concatenate((change, [a.size]))
    return [(int(s), int(e), int(a[s])) for s, e in zip(starts, stops) if a[s] != 0]


def interval_iou(a, b):
    """Intersection over union of half-open intervals a=(start, stop), b=(start, stop)."""
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def localisation(true_bins, pred_bins):
    """Anomaly location on rows with a truth extent: bin-set IoU of predicted vs true anomaly bins
    (both (B, N) bool) -> {"rows", "located" (IoU >= DETECTION_IOU), "mean_iou"}."""
    true_bins, pred_bins = np.asarray(true_bins, bool), np.asarray(pred_bins, bool)
    rows = true_bins.any(axis=1)
    inter = (true_bins & pred_bins)[rows].sum(axis=1)
    union = (true_bins | pred_bins)[rows].sum(axis=1)
    iou = inter / np.maximum(union, 1)
    return {"rows": int(rows.sum()), "located": float(np.mean(iou >= DETECTION_IOU)) if rows.any() else float("nan"),
            "mean_iou": float(iou.mean()) if rows.any() else float("nan")}


def match_detections(truth, detections, iou=DETECTION_IOU, need_family=False):
    """Greedy one-to-one matching by IoU (highest first) -> (matched truth count, matched detection count).

    truth: [(start, stop, family_index)]; detections: [(start, stop, family_index)].
    With need_family a match also needs the same family.
    """
    pairs = []
    for i, t in enumerate(truth):
        for j, d in enumerate(detections):
            if need_family and t[2] != d[2]:
                continue
            v = interval_iou(t[:2], d[:2])
            if v >= iou:
                pairs.append((v, i, j))
    pairs.sort(reverse=True)
    used_t, used_d = set(), set()
    for _, i, j in pairs:
        if i not in used_t and j not in used_d:
            used_t.add(i)
            used_d.add(j)
    return len(used_t), len(used_d)


def detection_scores(truth_per_row, dets_per_row, iou=DETECTION_IOU, need_family=False):
    """Precision/recall/F1 of detections pooled over rows, plus the counts they came from."""
    tp_t = tp_d = n_t = n_d = 0
    for truth, dets in zip(truth_per_row, dets_per_row):
        mt, md = match_detections(truth, dets, iou, need_family)
        tp_t, tp_d, n_t, n_d = tp_t + mt, tp_d + md, n_t + len(truth), n_d + len(dets)
    precision = tp_d / n_d if n_d else float("nan")
    recall = tp_t / n_t if n_t else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if n_d and n_t and precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "truth": n_t, "detections": n_d}


def binary_counts(labels, scores, threshold):
    labels = np.asarray(labels).astype(bool)
    alert = np.asarray(scores) > threshold
    return {
        "tp": int(np.sum(alert & labels)),
        "fp": int(np.sum(alert & ~labels)),
        "fn": int(np.sum(~alert & labels)),
        "tn": int(np.sum(~alert & ~labels)),
    }


def f1_at(labels, scores, threshold):
    """Precision, recall and F1 of `score > threshold` against 0/1 labels."""
    c = binary_counts(labels, scores, threshold)
    precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, **c}


def _check_binary(labels, scores):
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be equal 1-D shapes")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or inf")
    return labels, scores


def auroc(labels, scores):
    """Area under the ROC curve (Mann-Whitney U with tied scores counted one half); nan if one class is absent."""
    labels, scores = _check_binary(labels, scores)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s))
    # Average ranks over ties (1-based).
    uniq, first, counts = np.unique(s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _curve_points(labels, scores):
    """Cumulative TP/FP counts at each distinct threshold, scores descending."""
    labels, scores = _check_binary(labels, scores)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct score
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    return tp, fp, s[last], int(labels.sum()), int((~labels).sum())


def roc_curve(labels, scores):
    """(fpr, tpr, thresholds) with (0, 0) prepended; threshold t means `score >= t`."""
    tp, fp, thr, n_pos, n_neg = _curve_points(labels, scores)
    fpr = np.r_[0.0, fp / max(n_neg, 1)]
    tpr = np.r_[0.0, tp / max(n_pos, 1)]
    return fpr, tpr, np.r_[np.inf, thr]


def pr_curve(labels, scores):
    """(precision, recall, thresholds) from the highest threshold down."""
    tp, fp, thr, n_pos, _ = _curve_points(labels, scores)
    precision = tp / (tp + fp)
    recall = tp / max(n_pos, 1)
    return precision, recall, thr


def average_precision(labels, scores):
    """Step-wise area under the PR curve (sum of precision times recall increments)."""
    labels = np.asarray(labels).astype(bool)
    if not labels.any():
        return float("nan")
    precision, recall, _ = pr_curve(labels, scores)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def best_f1(labels, scores):
    """Highest F1 over all thresholds (an oracle figure, reported beside the calibrated one)."""
    precision, recall, thr = pr_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    i = int(np.argmax(f1))
    return {"f1": float(f1[i]), "threshold_ge": float(thr[i])}


def false_alarm_rate(scores_clean, threshold):
    """Alerts per spectrum on anomaly-free spectra."""
    s = np.asarray(scores_clean)
    return float(np.mean(s > threshold)) if s.size else float("nan")
