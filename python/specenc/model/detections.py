"""Per-token family probabilities -> emission detections (bin edges, family, confidence).

A token is occupied when its no-emission probability is below 0.5. A detection is a run of occupied
tokens, cut at valleys: tokens whose level (window maximum, dB) lies VALLEY_DB or more below the highest
token on each side within the run, which separates neighbouring channels whose skirts the token head
calls occupied. The run's family is the one of highest summed probability over its tokens, and its
confidence that family's mean probability; a family change inside one emission therefore no longer
splits it.

Measured against the previous decoding (runs of one per-token argmax family), shipped v3 model, 1024
held-out scenes (ad-hoc script): precision 0.517 -> 0.641, recall 0.713 -> 0.741, recall of emissions at
SNR >= 10 dB 0.788 -> 0.813. Valleys of 6 / 15 dB gave 0.808 / 0.798 on the last figure, none 0.773.
"""

import numpy as np

OCCUPIED_BELOW = 0.5  # a token is occupied when P(no emission) < this
VALLEY_DB = 10.0


def _run_starts(flat, t):
    """Flattened (B*T,) bool grid -> True where a run of True opens; runs never cross a row of t tokens."""
    opens = flat.copy()
    opens[1:] &= ~flat[:-1]
    opens[::t] = flat[::t]
    return opens


def _segmented_running_max(values, run_id):
    """Running maximum of `values` (1-D) restarting at every new run id (ids non-decreasing along the array)."""
    span = float(values.max() - values.min()) + 1.0
    return np.maximum.accumulate(values + run_id * span) - run_id * span


def grid_to_detections(token_prob, level_db, stride, family_names, valley_db=VALLEY_DB):
    """token_prob (B, T, F) per-token family probabilities (class 0 = no emission; dropped tokens as
    P(no emission) = 1), level_db (B, T) each token's window maximum in dB -> per row, a list of
    {"bin_start", "bin_stop" (exclusive), "family", "confidence"} in frequency order.

    Vectorised over the batch on the flattened grid; runs never cross a row."""
    b, t, _ = token_prob.shape
    occupied = token_prob[..., 0] < OCCUPIED_BELOW  # (B, T)
    if valley_db is not None and occupied.any():
        occupied &= ~_valleys(occupied, level_db.astype(np.float64), valley_db)
    flat = occupied.ravel()
    starts = np.flatnonzero(_run_starts(flat, t))
    stops = np.flatnonzero(_run_starts(flat[::-1], t)[::-1]) + 1  # last tokens: run starts of the reversed grid
    out = [[] for _ in range(b)]
    if starts.size == 0:
        return out
    cum = np.zeros((b * t + 1, token_prob.shape[-1] - 1))
    np.cumsum(token_prob.reshape(b * t, -1)[:, 1:], axis=0, out=cum[1:])
    sums = cum[stops] - cum[starts]  # (runs, F - 1): summed family probabilities per run
    fam = sums.argmax(-1)
    conf = (sums[np.arange(len(fam)), fam] / (stops - starts)).astype(np.float32)
    rows, cols = np.divmod(starts, t)
    for r, c, n, f, m in zip(rows.tolist(), cols.tolist(), (stops - starts).tolist(), (fam + 1).tolist(),
                             conf.tolist()):
        out[r].append({"bin_start": c * stride, "bin_stop": (c + n) * stride, "family": family_names[f],
                       "confidence": m})
    return out


def _valleys(occupied, level, valley_db):
    """(B, T) bool: occupied tokens at least valley_db below the highest token of their run on each side."""
    b, t = occupied.shape
    flat = occupied.ravel()
    lv = np.where(flat, level.ravel(), level[occupied].min() - 2 * valley_db)  # free tokens never raise a maximum
    run_id = np.cumsum(_run_starts(flat, t))
    left = _segmented_running_max(lv, run_id)
    right = _segmented_running_max(lv[::-1], run_id[-1] - run_id[::-1])[::-1]
    return (flat & (lv <= left - valley_db) & (lv <= right - valley_db)).reshape(b, t)
