"""Speculative ensemble: a small fast model answers; rows where its family confidence < `min_confidence`
are re-run through a larger model, whose family, confidence and detections replace the small one's for
those rows.

The anomaly outputs (score, kind, located bins) and the embedding stay the small model's for every row:
its calibrated threshold is the ensemble's, and the larger model's scores sit on a scale of their own
(a score of one model against the other's threshold would alert wrongly). `stats` counts how often the slow
path ran and the time each path took, so its cost can be reported.
"""

import time

import numpy as np


class SpeculativeEnsemble:
    def __init__(self, small, large, min_confidence=0.8):
        if small.nfft != large.nfft:
            raise ValueError(f"ensemble models disagree on nfft: small {small.nfft}, large {large.nfft}")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence={min_confidence!r} must be in [0, 1]")
        self.small, self.large, self.min_confidence = small, large, float(min_confidence)
        self.threshold, self.nfft = small.threshold, small.nfft
        self.stats = {"calls": 0, "rows": 0, "slow_rows": 0, "slow_calls": 0, "fast_s": 0.0, "slow_s": 0.0}

    @property
    def config(self):
        return self.small.config

    def slow_fraction(self):
        return self.stats["slow_rows"] / max(1, self.stats["rows"])

    def predict(self, spectra, rx_freq=None, sample_rate=None):
        t0 = time.perf_counter()
        p = self.small.predict(spectra, rx_freq, sample_rate)
        t1 = time.perf_counter()
        n = len(p.labels)
        self.stats["calls"] += 1
        self.stats["rows"] += n
        self.stats["fast_s"] += t1 - t0
        slow = np.flatnonzero(p.confidence < self.min_confidence)
        if len(slow) == 0:
            return p
        x = np.asarray(spectra, np.float32).reshape(n, -1)[slow]
        freq = None if rx_freq is None else np.broadcast_to(np.asarray(rx_freq, np.float64), (n,))[slow]
        q = self.large.predict(x, freq, sample_rate)
        self.stats["slow_rows"] += len(slow)
        self.stats["slow_calls"] += 1
        self.stats["slow_s"] += time.perf_counter() - t1
        for j, i in enumerate(slow):
            p.labels[i] = q.labels[j]
        p.detections = p.detections.replace(slow, q.detections)
        p.label_index[slow] = q.label_index
        p.confidence[slow] = q.confidence
        return p
