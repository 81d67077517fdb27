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

A model with the per-bin occupancy head (bin_edges) then cuts each detection at bin resolution:
trim_to_bins moves its outer edges to occupied bins, split_at_valleys cuts it at free gaps that are valleys.

Last, drop_faint removes detections whose bins stand barely above the free bins beside them: noise peaks of
a single-frame periodogram, and bumps of an uneven noise floor, which the token head takes for emissions.
"""

import operator
from collections.abc import Sequence

import numpy as np

OCCUPIED_BELOW = 0.5  # a token is occupied when P(no emission) < this
VALLEY_DB = 10.0
# Bin-resolution cuts (split_at_valleys): chosen on 4096 validation-stream scenes, where they raised the recall
# of emissions at SNR >= 10 dB from 0.834 to 0.844 at equal precision (0.681 / 0.682; ad-hoc script).
SPLIT_GAP_BINS = 5
SPLIT_VALLEY_DB = 6.0
# Detections no brighter than their surroundings (drop_faint): on 4096 validation-stream scenes, a 2 dB floor over
# the 16 nearest free bins on each side raised detection precision from 0.682 to 0.777 for recall 0.762 -> 0.751
# (emissions at SNR >= 10 dB: 0.844 -> 0.840); 1 / 3 dB gave 0.752 / 0.803 precision, 0.841 / 0.834 (ad-hoc script).
FAINT_DB = 2.0
FLOOR_BINS = 16


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
    P(no emission) = 1), level_db (B, T) each token's window maximum in dB -> Detections (per row, a list
    of {"bin_start", "bin_stop" (exclusive), "family", "confidence", "contrast_db"} in frequency order; contrast
    not measured yet: drop_faint measures it).

    Vectorised over the batch on the flattened grid; runs never cross a row."""
    b, t, _ = token_prob.shape
    occupied = token_prob[..., 0] < OCCUPIED_BELOW  # (B, T)
    if valley_db is not None and occupied.any():
        occupied &= ~_valleys(occupied, level_db.astype(np.float64), valley_db)
    flat = occupied.ravel()
    starts = np.flatnonzero(_run_starts(flat, t))
    stops = np.flatnonzero(_run_starts(flat[::-1], t)[::-1]) + 1  # last tokens: run starts of the reversed grid
    cum = np.zeros((b * t + 1, token_prob.shape[-1] - 1))
    np.cumsum(token_prob.reshape(b * t, -1)[:, 1:], axis=0, out=cum[1:])
    sums = cum[stops] - cum[starts]  # (runs, F - 1): summed family probabilities per run
    fam = sums.argmax(-1)
    conf = (sums[np.arange(len(fam)), fam] / (stops - starts)).astype(np.float32)
    rows, cols = np.divmod(starts, t)
    return Detections(b, rows, cols * stride, (cols + stops - starts) * stride, fam + 1, conf, family_names)


def trim_to_bins(dets, occupied, stride):
    """Detections with each one's first and last token cut to the bins `occupied` (B, N) bool marks there
    (the per-bin head of a `bin_edges` model): a detection is otherwise at least one token wide, which
    put emitters narrower than a token below IoU 0.3. A token with no such bin keeps its edge."""
    if not len(dets.row):
        return dets
    span = np.arange(stride)
    first = occupied[dets.row[:, None], dets.bin_start[:, None] + span]  # (D, s): bins of the first token
    last = occupied[dets.row[:, None], dets.bin_stop[:, None] - stride + span]
    start = np.where(first.any(1), dets.bin_start + first.argmax(1), dets.bin_start)
    stop = np.where(last.any(1), dets.bin_stop - last[:, ::-1].argmax(1), dets.bin_stop)
    return Detections(len(dets), dets.row, start, stop, dets.family, dets.confidence, dets.names, dets.contrast_db)


def split_at_valleys(dets, occupied, level, min_gap=SPLIT_GAP_BINS, valley_db=SPLIT_VALLEY_DB):
    """Detections with each one cut where `occupied` (B, N) bool (the per-bin head) leaves a gap of at least
    `min_gap` free bins between occupied ones, whose highest bin of `level` (B, N) dB lies `valley_db` or more
    below the highest bin on each side within the detection (the token valleys' rule at bin resolution):
    two emissions a few bins apart otherwise share one run of occupied tokens. Pieces keep the family and
    confidence of the detection they came from; a gap at a detection's end is not a cut.

    Works on the flattened grid: free runs are found once, and only those inside a detection are weighed."""
    if not len(dets.row):
        return dets
    n = occupied.shape[1]
    free = np.concatenate([[False], ~occupied.ravel(), [False]])
    change = np.flatnonzero(free[1:] != free[:-1])
    # Maximal free runs [start, stop) of the flat grid; unlike _run_starts' runs they may cross rows, which is
    # harmless (only runs inside a detection are kept) and a quarter of the cost (0.6 against 2.3 us per spectrum).
    gap_start, gap_stop = change[::2], change[1::2]
    det_start, det_stop = dets.row * n + dets.bin_start, dets.row * n + dets.bin_stop
    d = np.searchsorted(det_start, gap_start, side="right") - 1
    inside = (d >= 0) & (gap_stop - gap_start >= min_gap)
    inside[inside] &= (gap_start[inside] > det_start[d[inside]]) & (gap_stop[inside] < det_stop[d[inside]])
    gap_start, gap_stop, d = gap_start[inside], gap_stop[inside], d[inside]
    if len(d):
        flat = np.append(level.ravel(), 0.0)  # a range may end at the grid's end: reduceat needs that index

        def highest(lo, hi):  # max of flat[lo[i]:hi[i]] for each i (every range non-empty)
            return np.maximum.reduceat(flat, np.stack([lo, hi], 1).ravel())[::2]

        sides = np.minimum(highest(det_start[d], gap_start), highest(gap_stop, det_stop[d]))
        cut = highest(gap_start, gap_stop) <= sides - valley_db
        gap_start, gap_stop = gap_start[cut], gap_stop[cut]
    if not len(gap_start):
        return dets
    piece_start = np.sort(np.concatenate([det_start, gap_stop]))
    piece_stop = np.sort(np.concatenate([det_stop, gap_start]))
    d = np.searchsorted(det_start, piece_start, side="right") - 1
    return Detections(len(dets), dets.row[d], piece_start - dets.row[d] * n, piece_stop - dets.row[d] * n,
                      dets.family[d], dets.confidence[d], dets.names, dets.contrast_db[d])


def local_contrast_db(dets, level, floor_bins=FLOOR_BINS):
    """(D,) how far each detection's mean `level` (B, N) dB over its bins lies above the local floor: the median
    level of the `floor_bins` nearest bins on each side, in the same row, that no detection covers; where its row
    has no free bin, the row's 10th-percentile level (a whole band called occupied is mostly a flat noise floor,
    which an infinite contrast let through: audit 46).

    Vectorised: the free bins of the flattened grid are listed once; each detection reads its neighbours there."""
    if not len(dets.row):
        return np.zeros(0)
    b, n = level.shape
    flat = np.append(np.asarray(level, np.float32).ravel(), np.float32(0))  # a detection may end at the grid's end
    start, stop = dets.row * n + dets.bin_start, dets.row * n + dets.bin_stop
    depth = np.cumsum(np.bincount(start, minlength=b * n + 1) - np.bincount(stop, minlength=b * n + 1))[:-1]
    free = np.flatnonzero(depth == 0)  # flat indices of bins no detection covers, ascending
    mean = np.add.reduceat(flat, np.stack([start, stop], 1).ravel(), dtype=np.float64)[::2] / (stop - start)
    out, lone = np.zeros(len(start)), np.ones(len(start), bool)
    if len(free):
        left = np.searchsorted(free, start)[:, None] - np.arange(floor_bins, 0, -1)  # the floor_bins free bins below
        right = np.searchsorted(free, stop)[:, None] + np.arange(floor_bins)  # and above
        slot = np.concatenate([left, right], axis=1)
        near = free[np.clip(slot, 0, len(free) - 1)]
        ok = (slot >= 0) & (slot < len(free)) & (near // n == dets.row[:, None])
        # float32, as the spectra: sorting these rows costs a sixth of sorting them as float64
        values = np.sort(np.where(ok, flat[near], np.float32(np.inf)), axis=1)  # unused slots sort last
        count = ok.sum(axis=1)
        pick = np.arange(len(values))
        out = mean - 0.5 * (values[pick, np.maximum(count - 1, 0) // 2].astype(np.float64) + values[pick, count // 2])
        lone = count == 0
    if lone.any():
        out[lone] = mean[lone] - np.percentile(level[dets.row[lone]], 10, axis=1)
    return out


def drop_faint(dets, level, min_db=FAINT_DB, floor_bins=FLOOR_BINS):
    """The detections at least `min_db` brighter than their local floor, with that contrast as their contrast_db."""
    contrast = local_contrast_db(dets, level, floor_bins)
    keep = contrast >= min_db
    return Detections(len(dets), dets.row[keep], dets.bin_start[keep], dets.bin_stop[keep], dets.family[keep],
                      dets.confidence[keep], dets.names, contrast[keep])


def _row_indices(rows, what):
    """rows as int64 indices; a boolean mask (as integers, rows 0 and 1) or floats (truncated) are refused."""
    a = np.asarray(rows)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"Detections.{what}: rows must be integer row indices, not {a.dtype} (a mask: np.flatnonzero)")
    return a.astype(np.int64).ravel()


class Detections(Sequence):
    """The detections of a batch of spectra: row i reads as a list of {"bin_start", "bin_stop" (exclusive),
    "family", "confidence", "contrast_db"} dicts in frequency order.

    Kept as flat columns sorted by row, and turned into dicts only when a row is read: building ~19 dicts
    per spectrum cost 4 % of predict on the bench scene, and the flowgraph's emission tracker takes the
    columns as they are.

    Columns: row, bin_start, bin_stop (int64), family (int64, index into `names`), confidence (float32),
    contrast_db (float32: dB of its mean level over the local floor, local_contrast_db; NaN where not measured).
    """

    def __init__(self, n_rows, row, bin_start, bin_stop, family, confidence, names, contrast_db=None):
        self.row = np.asarray(row, np.int64)
        self.bin_start = np.asarray(bin_start, np.int64)
        self.bin_stop = np.asarray(bin_stop, np.int64)
        self.family = np.asarray(family, np.int64)
        self.confidence = np.asarray(confidence, np.float32)
        self.contrast_db = (np.full(len(self.row), np.nan, np.float32) if contrast_db is None
                            else np.asarray(contrast_db, np.float32))
        self.names = tuple(names)
        if len(self.row) and (self.row[0] < 0 or self.row[-1] >= n_rows or (np.diff(self.row) < 0).any()):
            raise ValueError(f"Detections: rows must be sorted and in 0..{n_rows - 1}")
        self._bounds = np.searchsorted(self.row, np.arange(n_rows + 1))  # row i: columns [bounds[i], bounds[i+1])

    def __len__(self):
        return len(self._bounds) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step != 1:
                return self.take(np.arange(start, stop, step))
            if (start, stop) == (0, len(self)):
                return self
            a, b = self._bounds[start], self._bounds[max(start, stop)]  # rows start..stop-1: one stretch
            return Detections(max(0, stop - start), self.row[a:b] - start, self.bin_start[a:b], self.bin_stop[a:b],
                              self.family[a:b], self.confidence[a:b], self.names, self.contrast_db[a:b])
        i = operator.index(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"row {i} of {len(self)}")
        a, b = self._bounds[i % len(self)], self._bounds[i % len(self) + 1]
        return [{"bin_start": s, "bin_stop": e, "family": self.names[f], "confidence": c,
                 "contrast_db": None if k != k else k}  # None where not measured (NaN): equal when compared
                for s, e, f, c, k in zip(self.bin_start[a:b].tolist(), self.bin_stop[a:b].tolist(),
                                         self.family[a:b].tolist(), self.confidence[a:b].tolist(),
                                         self.contrast_db[a:b].tolist())]

    def __repr__(self):
        return f"Detections({len(self)} rows, {len(self.row)} detections)"

    def take(self, rows):
        """The detections of `rows` (row indices, any order), renumbered 0, 1, ..."""
        rows = _row_indices(rows, "take")
        if len(rows) and not (-len(self) <= rows.min() and rows.max() < len(self)):
            raise IndexError(f"rows {rows.min()}..{rows.max()} of {len(self)}")
        rows = rows % max(len(self), 1)
        first, counts = self._bounds[rows], self._bounds[rows + 1] - self._bounds[rows]
        new_row = np.repeat(np.arange(len(rows)), counts)
        where = np.repeat(first - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        return Detections(len(rows), new_row, self.bin_start[where], self.bin_stop[where], self.family[where],
                          self.confidence[where], self.names, self.contrast_db[where])

    @classmethod
    def concat(cls, parts):
        """The rows of every part, in order (one model's parts: the same family names)."""
        names = parts[0].names
        if any(p.names != names for p in parts):
            raise ValueError("Detections.concat: parts name their families differently")
        offsets = np.cumsum([0] + [len(p) for p in parts])
        columns = {k: np.concatenate([getattr(p, k) for p in parts])
                   for k in ("bin_start", "bin_stop", "family", "confidence", "contrast_db")}
        return cls(offsets[-1], np.concatenate([p.row + o for p, o in zip(parts, offsets)]), names=names, **columns)

    def replace(self, rows, other):
        """These detections with row rows[j] taken from other's row j."""
        rows = _row_indices(rows, "replace")
        if len(rows) != len(other):
            raise ValueError(f"Detections.replace: {len(rows)} rows to replace by the {len(other)} of the other")
        source = np.arange(len(self))
        source[rows] = len(self) + np.arange(len(other))
        return Detections.concat([self, other]).take(source)


def _valleys(occupied, level, valley_db):
    """(B, T) bool: occupied tokens at least valley_db below the highest token of their run on each side."""
    b, t = occupied.shape
    flat = occupied.ravel()
    lv = np.where(flat, level.ravel(), level[occupied].min() - 2 * valley_db)  # free tokens never raise a maximum
    run_id = np.cumsum(_run_starts(flat, t))
    left = _segmented_running_max(lv, run_id)
    right = _segmented_running_max(lv[::-1], run_id[-1] - run_id[::-1])[::-1]
    return (flat & (lv <= left - valley_db) & (lv <= right - valley_db)).reshape(b, t)
