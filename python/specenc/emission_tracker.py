"""Per-spectrum detections -> emissions: one record per emission instead of one per spectrum.

An emission is a run of detections of one family whose bins overlap in spectra at most `max_gap`
apart, at one tuning. spectrum_encoder publishes each emission once, when it ends (or every `max_spectra` spectra
for a long one), which keeps the message rate independent of the spectrum rate.
"""

from dataclasses import dataclass


@dataclass
class Emission:
    family: str
    first: int  # spectrum index of the first detection
    last: int  # spectrum index of the latest detection
    bin_start: int
    bin_stop: int  # exclusive
    place: dict  # SpectrumClock.place(first): time, sample_start, sample_count, tuning, band
    sample_end: int  # IQ sample after the latest detection's spectrum
    freq_lower_edge: float
    freq_upper_edge: float
    confidence_sum: float
    count: int = 1

    def as_dict(self):
        """The `detections` message / JSON form."""
        out = dict(self.place)
        out.update(family=self.family, confidence=self.confidence_sum / self.count,
                   freq_lower_edge=self.freq_lower_edge, freq_upper_edge=self.freq_upper_edge,
                   bin_start=self.bin_start, bin_stop=self.bin_stop, spectra=self.count,
                   sample_count=self.sample_end - self.place["sample_start"])
        return out

    def annotation(self):
        """SigMF annotation (core:label = family)."""
        return {
            "core:sample_start": self.place["sample_start"],
            "core:sample_count": self.sample_end - self.place["sample_start"],
            "core:freq_lower_edge": self.freq_lower_edge,
            "core:freq_upper_edge": self.freq_upper_edge,
            "core:label": self.family,
            "specenc:confidence": round(self.confidence_sum / self.count, 4),
            "specenc:spectra": self.count,
        }


class EmissionTracker:
    """Joins detections across spectra; `update` returns the emissions that just ended.

    max_gap: spectra without the detection that still continue an emission. 8 bridges the
    spectrum-to-spectrum flicker of a detector (2 left emissions ~7 spectra long on the demo scene,
    8 gave 2.7x fewer, longer ones) and still separates bursts a few milliseconds apart.
    min_spectra: emissions seen in fewer spectra are dropped as flicker. With 50 % overlapping frames
    and no averaging every IQ sample lies in two consecutive spectra, so a real emission is seen at
    least twice; the shipped model's one-spectrum detections on the demo scene were 2/3 of all and
    mostly on noise (spectrum_encoder sets 2 in that case, else 1).
    """

    def __init__(self, max_gap=8, max_spectra=1024, min_spectra=1):
        self.max_gap = max_gap
        self.max_spectra = max_spectra
        self.min_spectra = min_spectra
        self._open = {}  # family -> list of Emission

    def update(self, index, detections, clock, nfft):
        """Add spectrum `index`'s detections (model dicts with bin_start/bin_stop/family/confidence).

        clock: spectrum_tags.SpectrumClock at this spectrum (tuning for Hz, placement).
        """
        ended = []
        for det in detections:
            family, conf = str(det["family"]), float(det["confidence"])
            lo, hi = int(det["bin_start"]), int(det["bin_stop"])
            tracks = self._open.setdefault(family, [])
            for em in tracks:
                if (em.last < index and lo < em.bin_stop and em.bin_start < hi
                        and em.place["center_freq"] == clock.freq):  # a retune ends an emission
                    f_lo, f_hi = clock.edges_hz(lo, hi, nfft)
                    em.last = index
                    em.bin_start, em.bin_stop = min(em.bin_start, lo), max(em.bin_stop, hi)
                    em.freq_lower_edge = min(em.freq_lower_edge, f_lo)
                    em.freq_upper_edge = max(em.freq_upper_edge, f_hi)
                    em.sample_end = index * clock.step + clock.span
                    em.confidence_sum += conf
                    em.count += 1
                    break
            else:
                f_lo, f_hi = clock.edges_hz(lo, hi, nfft)
                place = clock.place(index)
                tracks.append(Emission(family, index, index, lo, hi, place, place["sample_start"] + clock.span,
                                       f_lo, f_hi, conf))
        for family, tracks in self._open.items():
            keep = []
            for em in tracks:
                done = index - em.last > self.max_gap or em.last - em.first + 1 >= self.max_spectra
                if not done:
                    keep.append(em)
                elif em.count >= self.min_spectra:
                    ended.append(em)
            self._open[family] = keep
        return ended

    def flush(self):
        """Every emission still open (end of stream), oldest first."""
        rest = [em for tracks in self._open.values() for em in tracks if em.count >= self.min_spectra]
        self._open = {}
        return sorted(rest, key=lambda e: (e.first, e.bin_start))
