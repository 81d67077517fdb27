"""bands.band_for_frequency: the documented table, its edges (lower inclusive, upper exclusive) and its order."""

import pytest

from gnuradio.specenc import bands


@pytest.mark.parametrize("freq_hz,band", [
    (1_176.45e6, "gnss"),  # GPS L5 / Galileo E5a: inside aero's 960-1215 MHz too; GNSS is listed first
    (1_207.14e6, "gnss"),  # Galileo E5b, the same
    (1_227.60e6, "gnss"),  # GPS L2
    (1_575.42e6, "gnss"),  # L1
    (1_030e6, "aero"), (1_090e6, "aero"),  # SSR / ADS-B
    (127e6, "aero"), (433.92e6, "ism"), (868.3e6, "ism"), (915e6, "ism"), (2_440e6, "ism"),
    (900e6, "cellular"), (1_850e6, "cellular"), (3_500e6, "cellular"), (100e6, "other"), (0.0, "other"),
    (None, "other"),
])
def test_frequencies_fall_in_their_documented_band(freq_hz, band):
    """Moving aero's 960-1215 MHz before GNSS's 1164-1300 MHz ("first match wins, so narrower allocations come
    first") turned GPS L5 and Galileo E5 into aero, and dynamic RoPE would read the aero theta there (audit 66)."""
    assert bands.band_for_frequency(freq_hz) == band


@pytest.mark.parametrize("freq_hz,band", [
    (433.05e6, "ism"), (434.79e6, "other"),
    (863e6, "ism"), (870e6, "cellular"),  # SRD 868 inside the 698-960 MHz cellular range
    (2_400e6, "ism"), (2_500e6, "cellular"), (2_300e6, "cellular"),
    (108e6, "aero"), (137e6, "other"),
    (960e6, "aero"), (1_215e6, "gnss"), (1_164e6, "gnss"), (1_300e6, "other"),
    (1_559e6, "gnss"), (1_610e6, "other"), (698e6, "cellular"), (3_800e6, "other"),
])
def test_a_range_holds_its_lower_edge_and_not_its_upper(freq_hz, band):
    """The module docstring: ranges are inclusive of the lower edge, exclusive of the upper. Reversed, 2400 MHz
    became cellular, 433.05 MHz other and 863 MHz cellular (audit 66)."""
    assert bands.band_for_frequency(freq_hz) == band
