"""Recordings: SigMF output loads, validates and round-trips; truth lines up with the PSD; determinism; CLI."""

import json

import numpy as np
import pytest

from gnuradio.specenc import cli, dsp, labels, sigmf_io
from gnuradio.specenc.synth import SCENARIOS, make_recording, write_scenario
from gnuradio.specenc.synth.recording import DEMO_KINDS

RATE, SECONDS = 250e3, 0.6
NFFT = 1024


@pytest.fixture(scope="module")
def demo():
    return make_recording("demo", SECONDS, 3, RATE, 127e6)


def test_demo_has_each_kind_once_at_separate_times(demo):
    iq, anns = demo
    assert iq.dtype == np.complex64 and len(iq) == int(SECONDS * RATE)
    anomalies = [a for a in anns if a["core:label"] == "anomaly"]
    assert sorted(a["specenc:kind"] for a in anomalies) == sorted(DEMO_KINDS)
    spans = sorted((a["core:sample_start"], a["core:sample_start"] + a["core:sample_count"]) for a in anomalies)
    for (s0, e0), (s1, _) in zip(spans, spans[1:]):
        assert e0 <= s1, "anomalies overlap in time"
    assert spans[0][0] > 0 and spans[-1][1] <= len(iq)
    for a in anns:
        assert 127e6 - RATE / 2 <= a["core:freq_lower_edge"] < a["core:freq_upper_edge"] <= 127e6 + RATE / 2
        assert a["core:label"] in labels.FAMILIES or a["core:label"] == "anomaly"


def band_power_db(iq, ann, t0, t1, stat=np.mean):
    """Power (dB) of the annotation's frequency band over samples [t0, t1): `stat` over its bins."""
    spec = dsp.power_spectrum(iq[t0:t1], NFFT, 0.5, "hann", 1, db=False).mean(axis=0)
    f = 127e6 + (np.arange(NFFT) - NFFT / 2) * RATE / NFFT
    inside = (f >= ann["core:freq_lower_edge"]) & (f <= ann["core:freq_upper_edge"])
    if not inside.any():
        inside = np.abs(f - (ann["core:freq_lower_edge"] + ann["core:freq_upper_edge"]) / 2) <= RATE / NFFT
    return 10 * np.log10(stat(spec[inside]))


def test_anomaly_truth_lines_up_with_the_psd(demo):
    """Inside its time span, each anomaly's band differs from just before it the way its kind says."""
    iq, anns = demo
    for a in (a for a in anns if a["core:label"] == "anomaly"):
        s, n = a["core:sample_start"], a["core:sample_count"]
        # Wideband kinds change the floor (median); narrow ones add power (mean); hops light up more bins.
        stat = {"jamming": np.median, "band_erasure": np.median,
                "hopping": lambda p: np.mean(p > 4 * np.median(p)) + 1e-3}.get(a["specenc:kind"], np.mean)
        during = band_power_db(iq, a, s + n // 4, s + 3 * n // 4, stat)
        before = band_power_db(iq, a, max(s - n // 2, 0), s, stat)
        if a["specenc:kind"] == "band_erasure":
            assert before - during > 6, a
        else:
            assert during - before > 2, a


def test_emitter_truth_lines_up_with_the_psd(demo):
    iq, anns = demo
    floor = np.median(dsp.power_spectrum(iq, NFFT, 0.5, "hann", 8))
    checked = 0
    for a in anns:
        if a["core:label"] == "anomaly" or a["specenc:snr_db"] < 15 or a["core:sample_count"] < 8 * NFFT:
            continue
        s, n = a["core:sample_start"], a["core:sample_count"]
        assert band_power_db(iq, a, s, s + n) > floor + 3, a
        checked += 1
    assert checked >= 3


def test_deterministic_with_seed():
    a, anns_a = make_recording("ism", 0.2, 7, RATE, 433.92e6, anomalies=["jamming"])
    b, anns_b = make_recording("ism", 0.2, 7, RATE, 433.92e6, anomalies=["jamming"])
    c, _ = make_recording("ism", 0.2, 8, RATE, 433.92e6, anomalies=["jamming"])
    np.testing.assert_array_equal(a, b)
    assert json.dumps(anns_a, default=float) == json.dumps(anns_b, default=float)
    assert not np.array_equal(a, c)


def test_sigmf_round_trip_and_validation(tmp_path, demo):
    meta = write_scenario(str(tmp_path / "demo.sigmf-meta"), "demo", SECONDS, 3, RATE, 127e6)
    rec = sigmf_io.read_meta(meta)
    assert rec.datatype == "cf32_le" and rec.sample_rate == RATE and rec.center_freq == 127e6
    assert rec.num_samples == len(demo[0])
    np.testing.assert_array_equal(sigmf_io.read_samples(rec), demo[0])
    def rows(annotations):  # annotations of one start are written in content order, not the generator's
        return sorted((a["core:sample_start"], a["core:sample_count"], a["core:label"],
                       round(a["core:freq_lower_edge"], 3)) for a in annotations)

    assert rows(rec.annotations) == rows(demo[1])
    assert [a["core:sample_start"] for a in rec.annotations] == sorted(a["core:sample_start"] for a in demo[1])
    assert rec.global_["specenc:scenario"] == "demo"
    sigmffile = pytest.importorskip("sigmf.sigmffile")
    sigmffile.fromfile(meta).validate()  # raises on a schema violation


def test_ci16_output_matches_cf32(tmp_path):
    kw = dict(scenario="gnss", seconds=0.05, seed=2, sample_rate=4e6, center_freq=1575.42e6, anomalies=["spoofing"])
    def samples(name, **extra):
        return sigmf_io.read_samples(sigmf_io.read_meta(write_scenario(str(tmp_path / name), **kw, **extra)))

    f, i = samples("f.sigmf-meta"), samples("i.sigmf-meta", datatype="ci16_le")
    assert np.max(np.abs(f)) < 1.0  # headroom: no clipping in the integer file
    assert np.max(np.abs(i - f)) <= 1.5 / 32768


def test_ci16_recordings_leave_headroom_over_low_duty_pulses(tmp_path):
    """Headroom was set from emitters' mean power: a pulsed emitter at 3 % duty stood 4 dB over full scale, and ci16
    clipped it silently (audit 37)."""
    meta = write_scenario(str(tmp_path / "p.sigmf-meta"), "other", 0.1, 22, datatype="ci16_le")
    pulsed = [a for a in sigmf_io.read_meta(meta).annotations if a["specenc:params"].get("mode") == "pulsed"]
    assert pulsed and min(a["specenc:params"]["duty"] for a in pulsed) < 0.05
    raw = np.fromfile(meta.replace(".sigmf-meta", ".sigmf-data"), "<i2")
    assert np.abs(raw.astype(np.int32)).max() < 32767


def test_a_ghost_free_twin_is_the_same_site(demo):
    """The clean recording a site is calibrated on: drawn without its ghosts, it had shifted draws, another floor
    (median 9 dB off) and other channels (audit 37); drawn with them and rendered without, it is the same site."""
    iq, anns = demo
    twin_iq, twin_anns = make_recording("demo", SECONDS, 3, RATE, 127e6, ghost_free=True)
    assert not [a for a in twin_anns if a["core:label"] == "anomaly"]

    def channels(annotations):
        return {(round(a["core:freq_lower_edge"]), round(a["core:freq_upper_edge"]), a["specenc:snr_db"])
                for a in annotations if a["core:label"] != "anomaly" and a["specenc:role"] == "normal"}

    assert channels(twin_anns) <= channels(anns) and len(channels(twin_anns)) >= len(channels(anns)) - 1
    before = int(SECONDS * RATE / 7 * 0.6)  # the first ghost's slot starts here
    levels = [np.median(dsp.power_spectrum(x[:before], NFFT)) for x in (iq, twin_iq)]
    assert levels[0] == pytest.approx(levels[1], abs=0.5)


def test_takes_of_a_twin_are_the_same_bursty_site_with_other_noise():
    """eval's site twins were 4x as long: a longer scene draws other burst trains and parameters, so an aero twin
    shared none of its recording's 16 channels (audit 38). Takes of the recording's length are its site."""
    def site(**kw):
        iq, anns = make_recording("aero", 0.05, 14, 2e6, 127e6, anomalies="all", **kw)
        annotations = {(a["core:sample_start"], round(a["core:freq_lower_edge"]), a["specenc:snr_db"]) for a in anns
                       if a["core:label"] != "anomaly" and a["specenc:role"] == "normal"}
        return iq, annotations, np.median(dsp.power_spectrum(iq[:20_000], NFFT))

    iq, bursts, level = site()  # its bursts include the pieces of those an anomaly changed for a while
    takes = [site(ghost_free=True, take=take) for take in (0, 1)]
    assert len(bursts) > 5 and all(t[1] <= bursts and {b[1:] for b in t[1]} == {b[1:] for b in bursts}
                                   and t[2] == pytest.approx(level, abs=1.0) for t in takes)
    assert not np.allclose(takes[0][0], takes[1][0])  # other noise: more of the site's traffic to calibrate on


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_scenario_generates(scenario):
    iq, anns = make_recording(scenario, 0.05, 1, sample_rate=1e6, anomalies=None if scenario == "demo" else ())
    assert len(iq) == 50_000 and np.all(np.isfinite(iq))
    assert all(a["core:sample_start"] + a["core:sample_count"] <= len(iq) for a in anns)


def test_bad_input_is_rejected_clearly(capsys):
    with pytest.raises(ValueError, match="unknown scenario 'wifi'"):
        make_recording("wifi", 1.0, 0)
    with pytest.raises(ValueError, match="is in band 'other' but scenario 'gnss' needs band 'gnss'"):
        make_recording("gnss", 0.1, 0, center_freq=433e6)
    with pytest.raises(ValueError, match="seconds=-1"):
        make_recording("demo", -1, 0)
    with pytest.raises(ValueError, match="unknown anomaly kind 'ghost'"):
        make_recording("ism", 0.1, 0, anomalies=["ghost"])
    with pytest.raises(ValueError, match="'stealth' is not one the 'ism' scenario's band admits; it admits "
                                         "band_erasure, hopping, jamming"):
        make_recording("ism", 0.1, 0, anomalies=["stealth"])  # it would fit, but a free band has no gap to hide in
    with pytest.raises(ValueError, match="datatype='cu8'"):
        write_scenario("/tmp/never.sigmf-meta", "demo", 0.1, 0, datatype="cu8")
    assert cli.main(["synth", "--seed", "-1", "--out", "/tmp/never.sigmf-meta"]) == 2
    assert "seed=-1 must be a whole number >= 0" in capsys.readouterr().err  # numpy's message named no seed
    with pytest.raises(ValueError, match="center_freq=-50000000.0 must be a frequency >= 0 Hz"):
        make_recording("other", 0.1, 0, center_freq=-50e6)
    assert cli.main(["synth", "--rate", "10e6", "--seconds", "0.01", "--out", "/tmp/never.sigmf-meta"]) == 2
    assert "too fast for the demo's 25 kHz channels" in capsys.readouterr().err  # its ghosts no longer showed
    assert len(make_recording("demo", 0.001, 0, sample_rate=10e6)[0]) == 10_000  # bench flowgraph's fast scenes
    for folder in ("/tmp", "/tmp/not_made_yet/"):  # it wrote /tmp.sigmf-meta, /tmp/not_made_yet/.sigmf-meta
        assert cli.main(["synth", "--seconds", "0.01", "--out", folder]) == 2
        assert f"--out {folder} is a folder" in capsys.readouterr().err


def test_cli_writes_recording_and_plot(tmp_path, capsys):
    out, png = tmp_path / "x.sigmf-meta", tmp_path / "x.png"
    rc = cli.main(["synth", "--scenario", "cellular", "--seconds", "0.02", "--seed", "4", "--rate", "5e6",
                   "--anomalies", "spoofing,stealth", "--datatype", "ci16_le", "--out", str(out), "--plot", str(png)])
    assert rc == 0 and png.stat().st_size > 10_000
    rec = sigmf_io.read_meta(str(out))
    assert rec.datatype == "ci16_le"
    kinds = {a.get("specenc:kind") for a in rec.annotations if a["core:label"] == "anomaly"}
    assert kinds == {"spoofing", "stealth"}
    assert cli.main(["synth", "--anomalies", "ghost", "--out", str(out)]) == 2
    assert "unknown kind 'ghost'" in capsys.readouterr().err


def test_all_means_every_kind_the_band_admits():
    from gnuradio.specenc.synth.anomalies import KINDS_BY_BAND

    _, anns = make_recording("ism", 0.05, 0, 1e6, anomalies="all")
    kinds = sorted(a["specenc:kind"] for a in anns if a["core:label"] == "anomaly")
    assert kinds == sorted(KINDS_BY_BAND["ism"])


def test_sigterm_ends_a_command_as_ctrl_c_does(tmp_path, capsys, monkeypatch):
    """SIGTERM (kill, timeout, a stopped service) killed the process outright: `specenc train` left its batch workers
    running (audit 64). It now unwinds like Ctrl-C: one line, exit status 143, and the handler is the command's only."""
    import os
    import signal

    from gnuradio.specenc.synth import cli as synth_cli

    def killed_while_writing(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not end the command")

    monkeypatch.setattr(synth_cli, "write_scenario", killed_while_writing)
    assert cli.main(["synth", "--seconds", "0.01", "--out", str(tmp_path / "s.sigmf-meta")]) == 143
    assert capsys.readouterr().err == "specenc synth: interrupted by SIGTERM\n"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_the_plot_printed_is_the_plot_written(tmp_path, capsys):
    """`--plot X` printed X and wrote X.png (audit 64)."""
    assert cli.main(["synth", "--seconds", "0.01", "--out", str(tmp_path / "s"), "--plot", str(tmp_path / "p")]) == 0
    printed = capsys.readouterr().out.splitlines()[-1]
    assert printed == str(tmp_path / "p.png") and (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("kind", ["frequency_shift", "spoofing"])
def test_an_altered_emitters_anomaly_spans_only_the_time_it_is_on(kind):
    """A frequency_shift or spoofing anomaly is the altered emitter: its truth is that emitter's activity in the
    slot, not the whole slot. In the bursty aero band (the demo's channels stay on, so its checks never see this),
    truth over the whole slot was 98 % of samples where nothing anomalous shows (audit 66)."""
    from gnuradio.specenc.synth.recording import annotations_for, build_scene

    n, rate, shorter = 1_000_000, 2e6, 0
    slot_start = int(n // 2 * 0.6)  # one anomaly: slots of n/2, the anomaly from 0.6 of its slot (build_scene)
    for seed in range(20):  # 2 to 3 in 6 seeds start inside the anomaly's time: 20 leave a margin (audit 68)
        sc, truth = build_scene("aero", n, rate, np.random.default_rng(seed), [kind])
        anns = annotations_for(sc, truth, n, rate, 127e6)
        altered = [(a["core:sample_start"], a["core:sample_count"]) for a in anns
                   if a["core:label"] != "anomaly" and a["specenc:role"] == kind]
        marked = [(a["core:sample_start"], a["core:sample_count"]) for a in anns if a["core:label"] == "anomaly"]
        assert len(altered) == 1 and marked == altered, seed
        shorter += marked[0][0] > slot_start  # a burst that starts inside the anomaly's time
    assert shorter >= 4
