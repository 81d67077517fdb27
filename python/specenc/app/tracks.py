"""Per-spectrum detections -> emission tracks (one SigMF annotation per emission, not per spectrum)."""

from dataclasses import dataclass


@dataclass
class Track:
    family: str
    first: int  # spectrum index
    last: int
    bin_start: int
    bin_stop: int
    sample_start: int
    sample_end: int  # exclusive
    freq_lower_edge: float
    freq_upper_edge: float
    confidence_sum: float
    count: int

    def annotation(self):
        return {
            "core:sample_start": self.sample_start,
            "core:sample_count": self.sample_end - self.sample_start,
            "core:freq_lower_edge": self.freq_lower_edge,
            "core:freq_upper_edge": self.freq_upper_edge,
            "core:label": self.family,
            "specenc:confidence": round(self.confidence_sum / self.count, 4),
            "specenc:spectra": self.count,
        }


def merge_detections(detections, max_gap=2):
    """Join detections of one family whose bins overlap and whose spectra are at most max_gap apart.

    detections: dicts as published on spectrum_encoder's `detections` port, in stream order.
    """
    open_tracks, done = [], []
    for det in detections:
        index = det["spectrum"]
        still_open = []
        for tr in open_tracks:
            (still_open if index - tr.last <= max_gap else done).append(tr)
        open_tracks = still_open
        for tr in open_tracks:
            if (tr.family == det["family"] and tr.last < index
                    and det["bin_start"] < tr.bin_stop and tr.bin_start < det["bin_stop"]):
                tr.last = index
                tr.bin_start, tr.bin_stop = min(tr.bin_start, det["bin_start"]), max(tr.bin_stop, det["bin_stop"])
                tr.freq_lower_edge = min(tr.freq_lower_edge, det["freq_lower_edge"])
                tr.freq_upper_edge = max(tr.freq_upper_edge, det["freq_upper_edge"])
                tr.sample_end = det["sample_start"] + det["sample_count"]
                tr.confidence_sum += det["confidence"]
                tr.count += 1
                break
        else:
            open_tracks.append(Track(det["family"], index, index, det["bin_start"], det["bin_stop"],
                                     det["sample_start"], det["sample_start"] + det["sample_count"],
                                     det["freq_lower_edge"], det["freq_upper_edge"], det["confidence"], 1))
    return sorted(done + open_tracks, key=lambda t: (t.sample_start, t.freq_lower_edge))
