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


def test_a_rate_of_zero_is_no_rate_and_the_clock_keeps_its_own():
    """audit 61: rx_rate=0 was taken silently (`< 0` instead of `<= 0`): times then counted samples as seconds. A
    value that is no rate > 0 is reported and ignored."""
    clock = SpectrumClock(step=512, span=1024, sample_rate=1e6)
    warnings = []
    for value in (0.0, -1.0):
        clock.apply(tag("rx_rate", pmt.from_double(value)), 7, warnings.append)
    assert warnings == [f"rx_rate={v} on spectrum 7 is no rate > 0; ignored" for v in (0, -1)]
    assert clock.rate == 1e6 and clock.time(100) == pytest.approx(100 * 512 / 1e6)


@pytest.mark.parametrize("field,value", [("step", 0), ("span", 0), ("integrate", 0), ("sample_rate", -1.0),
                                         ("step", 1e300), ("span", 2 ** 24 + 1), ("integrate", 100001), ("step", 65)])
def test_a_context_with_zero_step_span_or_integrate_is_refused(field, value):
    """audit 61: a specenc_context with step=0 or integrate=0 (a foreign or replayed stream's tag) was taken: every
    spectrum at time 0, or means of no scores; so was a negative rate. Audit 86: a step of 1e300 killed the detector's
    thread at its first alert (a sample index past int64), an integrate of 2^63 kept every score. Refused, and the
    clock stays as it was."""
    context = {"threshold": 0.5, "integrate": 1, "step": 32, "span": 64, "sample_rate": 1e6, "center_freq": 1e8}
    clock = SpectrumClock(step=512, span=1024, sample_rate=2e6, center_freq=5e8)
    assert clock.apply_context(pmt.to_pmt(context)) == (0.5, 1)
    clock = SpectrumClock(step=512, span=1024, sample_rate=2e6, center_freq=5e8)
    with pytest.raises(ValueError, match=r"needs 1 <= step <= span <= 16777216, integrate in 1..100000, sample_rate"):
        clock.apply_context(pmt.to_pmt({**context, field: value}))
    assert (clock.step, clock.span, clock.rate, clock.freq) == (512, 1024, 2e6, 5e8)
