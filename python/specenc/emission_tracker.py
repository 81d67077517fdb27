"""Per-spectrum detections -> emissions: one record per emission instead of one per spectrum.

An emission is a run of detections whose bins overlap in spectra at most `max_gap` apart, at one
tuning (a retune ends every open emission). A detection joins an emission of its family when it overlaps the
bins any earlier one reached, or else one of another family whose latest detection it mostly covers (the
model's label flickered); it is published as the family with the most confidence summed over its detections,
that sum over all of them its confidence, and with its median detection's edges. spectrum_encoder publishes each emission
once, when it ends (or every `max_spectra` spectra for a long one), which keeps the message rate
independent of the spectrum rate.

The joining runs in C++ (lib/emission_tracker.cc) on predict's detection columns, once per run of
spectra at one tuning: on the bench scene (~19 detections per spectrum) it costs 1.2 us per spectrum
against 11 us for the per-detection Python loop it replaced. This module keeps the tuning,
placement (Hz, seconds, samples) and message forms.
"""

import math
from dataclasses import dataclass

import numpy as np

from . import dsp


@dataclass(slots=True)
class Emission:
    family: str
    first: int  # spectrum index of the first detection
    last: int  # spectrum index of the latest detection
    bin_start: int  # the median detection's edges (lower median of starts, upper median of stops)
    bin_stop: int  # exclusive
    reach_start: int  # lowest bin any of its detections reached
    reach_stop: int  # exclusive
    count: int  # detections joined
    place: dict  # SpectrumClock.place(first): time, sample_start, sample_count, tuning, band
    sample_end: int  # IQ sample after the latest detection's spectrum
    confidence_sum: float
    nfft: int
    # Mean level of its detections over their local floor (dB, their finite contrast_db from
    # model.detections.drop_faint), or None when the model measured none.
    contrast_db: float = None

    def _hz(self, start, stop):
        """(lower, upper) Hz of bins [start, stop) at the emission's tuning."""
        rate = self.place["sample_rate"] if self.place["sample_rate"] > 0 else 1.0
        return dsp.bin_edges_hz(start, stop, self.nfft, rate, self.place["center_freq"])

    @property
    def freq_edges(self):
        """(lower, upper) Hz of the median detection's bins."""
        return self._hz(self.bin_start, self.bin_stop)

    def as_dict(self):
        """The `detections` message / JSON form."""
        out = dict(self.place)
        f_lo, f_hi = self.freq_edges
        r_lo, r_hi = self._hz(self.reach_start, self.reach_stop)  # a drifting emission's whole range
        out.update(family=self.family, confidence=self.confidence_sum / self.count,
                   freq_lower_edge=f_lo, freq_upper_edge=f_hi, reach_lower_edge=r_lo, reach_upper_edge=r_hi,
                   bin_start=self.bin_start, bin_stop=self.bin_stop, spectra=self.count,
                   sample_count=self.sample_end - self.place["sample_start"])
        if self.contrast_db is not None:
            out["contrast_db"] = self.contrast_db
        return out


# With noise_db set, an emission is published only when its detections together stand clear of the noise: each
# detection's contrast_db (model.detections.drop_faint) times sqrt(its width) over noise_db is a z-score, and their sum
# over sqrt(their count) (Stouffer's method) must reach MIN_EVIDENCE. On the generated recordings at K = 1 (the
# seven of out/eval_data and the demo scene; ad-hoc script) 8 dropped 1174 of the 1273 emissions that lay on
# no emitter and 67 of the 794 that matched one, and the emitters' time covered went 0.719 -> 0.716; at K = 4
# 275 of 314 and 4 of 219, coverage unchanged. On six fresh recordings (seeds 41-46): 335 of 551 and 29 of 532 at
# K = 1 (coverage 0.657 -> 0.656), 86 of 142 and 6 of 158 at K = 4.
MIN_EVIDENCE = 8.0


class EmissionTracker:
    """Joins detections across spectra; `update` returns the emissions that just ended.

    max_gap: spectra without the detection that still continue an emission. 8 bridges the
    spectrum-to-spectrum flicker of a detector (2 left emissions ~7 spectra long on the demo scene,
    8 gave 2.7x fewer, longer ones) and still separates bursts a few milliseconds apart.
    min_spectra: emissions seen in fewer spectra are dropped as flicker. With 50 % overlapping frames
    and no averaging every IQ sample lies in two consecutive spectra, so a real emission is seen at
    least twice; the shipped model's one-spectrum detections on the demo scene were 2/3 of all and
    mostly on noise (spectrum_encoder sets 2 in that case, else 1).
    min_nested_spectra: the same for a nested emission, one opened inside the reach of an emission that
    the same spectrum had already joined (a detection cut in two at a valley, a neighbour under a wide
    detection); its bins are that emission's already, and a piece seen once is the cut flickering. On the
    bench scene at K = 4 (2 s, shipped model, ad-hoc) 130 of the 147 one-spectrum emissions were nested:
    requiring 2 spectra of them left 204 emissions instead of 333 (179 before detections were cut at bin
    valleys), 3 or 4 left 174 or 164 but also dropped pieces that matched an emitter on the demo scene.
    noise_db: the dB scatter of one noise bin (dsp.noise_scatter_db of the stream's averaging); with it, emissions
    whose evidence is below min_evidence are dropped (see MIN_EVIDENCE); 0 keeps them all. Detections without
    a contrast_db (NaN) count as clear.
    """

    def __init__(self, nfft, max_gap=8, max_spectra=1024, min_spectra=1, min_nested_spectra=2, noise_db=0.0,
                 min_evidence=MIN_EVIDENCE):
        from .specenc_python import emission_tracker  # here, so the blocks import in a source-only checkout

        self.nfft = nfft
        self.min_spectra = min_spectra
        self.min_nested_spectra = max(min_spectra, min_nested_spectra)
        self.noise_db, self.min_evidence = noise_db, min_evidence
        self._core = emission_tracker(max_gap, max_spectra)
        self._names = None  # the model's family names: the C++ tracker's family codes index them
        self._places = {}  # open emission id -> SpectrumClock.place(first), taken when it opened
        self._clock = None  # clock of the latest spectra: step and span to place an emission's end
        self._tuning = None  # (center_freq, sample_rate) of the open emissions

    def update(self, first, n, detections, spectra, clock):
        """Visit spectra first .. first + n - 1, all at `clock` (spectrum_tags.SpectrumClock: tuning for Hz,
        placement), with their detections: model Detections whose row r is spectrum spectra[r] (increasing
        indices in that range; spectra without a row have no detections). Returns the emissions that
        ended, oldest first."""
        if self._names is None:
            self._names = detections.names
        elif detections.names != self._names:
            raise ValueError(f"detections name families {detections.names}, earlier ones {self._names}")
        ended = []
        if (clock.freq, clock.rate) != self._tuning:
            ended += self.flush()
            self._tuning = (clock.freq, clock.rate)
        self._clock = clock
        index = np.asarray(spectra, np.int64)[detections.row]
        opened, done = self._core.update(first, n, index, detections.family, detections.bin_start,
                                         detections.bin_stop, detections.confidence, self._evidence(detections),
                                         detections.contrast_db)
        for em in opened:
            self._places[em.id] = clock.place(em.first)
        return ended + self._kept(done)

    def _evidence(self, detections):
        """Each detection's z-score: contrast_db sqrt(width) / noise_db (inf without one; 0 when not weighed)."""
        if self.noise_db <= 0:
            return np.zeros(len(detections.row))
        contrast = detections.contrast_db.astype(np.float64)
        z = contrast * np.sqrt(detections.bin_stop - detections.bin_start) / self.noise_db
        return np.where(np.isnan(contrast), np.inf, z)

    def flush(self):
        """Every emission still open (end of stream, retune), oldest first."""
        return self._kept(self._core.flush())

    def _kept(self, ems):
        """C++ emissions -> Emission; those seen in fewer than min_spectra (nested: min_nested_spectra) spectra,
        and with noise_db set those short of min_evidence, are dropped."""
        out = []
        for em in ems:
            place = self._places.pop(em.id)
            clear = self.noise_db <= 0 or em.evidence_sum >= self.min_evidence * math.sqrt(em.count)
            if clear and em.count >= (self.min_nested_spectra if em.nested else self.min_spectra):
                out.append(Emission(self._names[em.family], em.first, em.last, em.bin_start, em.bin_stop,
                                    em.reach_start, em.reach_stop, em.count, place,
                                    em.last * self._clock.step + self._clock.span,
                                    em.confidence_sum, self.nfft,
                                    em.level_sum / em.level_count if em.level_count else None))
        return out
