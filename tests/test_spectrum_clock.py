"""SpectrumClock: spectrum times from rx_time and rx_rate tags, whichever comes first."""

import pmt
import pytest
from gnuradio import gr

from gnuradio.specenc.spectrum_tags import SpectrumClock


def tag(key, value):
    return gr.tag_utils.python_to_tag((0, pmt.intern(key), value))


def rx_time(seconds):
    return tag("rx_time", pmt.make_tuple(pmt.from_uint64(int(seconds)), pmt.from_double(seconds % 1)))


def test_a_rate_that_arrives_after_rx_time_times_the_stream_from_that_time():
    """The first rate is the stream's since its rx_time: before, the clock re-anchored at a time that counted
    samples as seconds (spectrum 200 at 52200 s instead of 1000.1 s; audit 26)."""
    clock = SpectrumClock(step=512, span=1024, sample_rate=0.0)
    clock.apply(rx_time(1000), 0, pytest.fail)
    clock.apply(tag("rx_rate", pmt.from_double(1e6)), 100, pytest.fail)
    assert clock.time(200) == pytest.approx(1000 + 200 * 512 / 1e6, abs=1e-9)


def test_a_change_of_a_known_rate_keeps_time_continuous():
    clock = SpectrumClock(step=512, span=1024, sample_rate=1e6)
    clock.apply(rx_time(1000), 0, pytest.fail)
    clock.apply(tag("rx_rate", pmt.from_double(2e6)), 100, pytest.fail)
    at_change = 1000 + 100 * 512 / 1e6
    assert clock.time(100) == pytest.approx(at_change, abs=1e-9)
    assert clock.time(200) == pytest.approx(at_change + 100 * 512 / 2e6, abs=1e-9)
