"""EmissionTracker joins per-spectrum detections into emissions and places them in samples and Hz."""

import pytest

from gnuradio.specenc import dsp
from gnuradio.specenc.emission_tracker import EmissionTracker
from gnuradio.specenc.spectrum_tags import SpectrumClock

NFFT = 64


def det(lo, hi, family="fsk", confidence=0.5):
    return {"bin_start": lo, "bin_stop": hi, "family": family, "confidence": confidence}


def test_overlapping_detections_join_and_end_after_the_gap():
    clock = SpectrumClock(step=32, span=64, sample_rate=1e6, center_freq=100e6)
    tr = EmissionTracker(max_gap=2)
    assert tr.update(0, [det(10, 14), det(40, 44, "ask")], clock, NFFT) == []
    assert tr.update(1, [det(12, 16, confidence=0.7)], clock, NFFT) == []  # joins, widens to [10, 16)
    assert [e.family for e in tr.update(3, [], clock, NFFT)] == ["ask"]  # last seen at 0: 3 > 0 + max_gap
    ended = tr.update(4, [], clock, NFFT)
    assert [e.family for e in ended] == ["fsk"]  # last seen at 1
    fsk = ended[0].as_dict()
    assert (fsk["bin_start"], fsk["bin_stop"], fsk["spectra"]) == (10, 16, 2)
    assert fsk["confidence"] == pytest.approx(0.6)
    assert (fsk["sample_start"], fsk["sample_count"]) == (0, 32 + 64)
    assert (fsk["freq_lower_edge"], fsk["freq_upper_edge"]) == pytest.approx(
        dsp.bin_edges_hz(10, 16, NFFT, 1e6, 100e6))


def test_a_detection_that_flickers_wider_joins_but_does_not_widen_the_emission():
    clock = SpectrumClock(step=32, span=64, sample_rate=1e6, center_freq=100e6)
    tr = EmissionTracker(max_gap=2)
    for index, d in enumerate([det(10, 14), det(4, 30), det(10, 14), det(10, 15), det(28, 31)]):
        assert tr.update(index, [d], clock, NFFT) == []  # [28, 31) overlaps only the wide one's reach: joins
    (em,) = tr.flush()
    assert em.count == 5 and (em.reach_start, em.reach_stop) == (4, 31)
    assert (em.as_dict()["bin_start"], em.as_dict()["bin_stop"]) == (10, 15)  # median edges of the five
    assert em.annotation()["core:freq_lower_edge"] == pytest.approx(dsp.bin_edges_hz(10, 15, NFFT, 1e6, 100e6)[0])


def test_a_retune_ends_open_emissions_at_the_old_tuning():
    clock = SpectrumClock(step=32, span=64, sample_rate=1e6, center_freq=100e6)
    tr = EmissionTracker(max_gap=8)
    tr.update(0, [det(10, 14)], clock, NFFT)
    clock.freq = 200e6
    ended = tr.update(1, [det(10, 14)], clock, NFFT)  # same bins, other frequency: a new emission
    assert [e.as_dict()["center_freq"] for e in ended] == [100e6]
    rest = tr.flush()
    assert [(e.first, e.as_dict()["center_freq"]) for e in rest] == [(1, 200e6)]
