"""Training smoke run, exact resume, eval CLI output and calibrate CLI on tiny models and data."""

import argparse
import importlib.util
import json
import logging
import os
import pathlib
import shutil
import signal

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from gnuradio.specenc import bands, dsp, labels, sigmf_io, truth
from gnuradio.specenc.model import ModelConfig, SpectrumModel, load_model
from gnuradio.specenc.training import calibrate, calibrate_cli, checkpoint, datasets, eval_cli, evaluate, modelio, train
from gnuradio.specenc.training import report as report_lib
from gnuradio.specenc.training.config import TrainConfig

TINY_MODEL = {"d_model": 16, "n_layers": 1, "n_heads": 2, "n_kv_heads": 2, "anomaly_hidden": 8, "pool_stride": 8}


def tiny_config(**over):
    base = dict(model=TINY_MODEL, nfft=256, batch_size=8, lr=3e-3, warmup_steps=2, steps_per_epoch=10,
                max_epochs=2, val_spectra=16, calib_spectra=64, threads=1, seed=3)
    return TrainConfig(**{**base, **over}).validate()


def test_twenty_steps_reduce_the_loss_and_write_a_calibrated_model(tmp_path):
    summary = train.train(tiny_config(), tmp_path, show_progress=False)
    hist = json.loads((tmp_path / "metrics.json").read_text())
    assert [row["step"] for row in hist] == [10, 20]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert hist[-1]["val_loss"] < hist[0]["val_loss"]
    assert (tmp_path / "metrics.csv").read_text().startswith("epoch,step,")
    model = load_model(str(tmp_path / "model.safetensors"))
    assert model.trained and model.nfft == 256
    assert model.threshold == pytest.approx(summary["calibration"]["threshold"])
    assert summary["calibration"]["measured_far"] <= 1e-3 or summary["calibration"]["clean_spectra"] < 1000


def test_resume_continues_exactly_where_an_interrupted_run_stopped(tmp_path):
    cfg = tiny_config(steps_per_epoch=4, max_epochs=3, pool_batches=3, pool_refresh=0.5)
    train.train(cfg, tmp_path / "straight", show_progress=False, calibrate_model=False)
    part = tmp_path / "resumed"
    assert train.train(cfg, part, show_progress=False, calibrate_model=False, stop_after=1)["steps"] == 4
    train.train(cfg, part, resume=True, show_progress=False, calibrate_model=False)
    a = load_file(checkpoint.file_path(tmp_path / "straight", "weights"))
    b = load_file(checkpoint.file_path(part, "weights"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    hist_a = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    hist_b = json.loads((part / "metrics.json").read_text())
    assert [r["val_loss"] for r in hist_a] == [r["val_loss"] for r in hist_b]


def test_a_checkpoint_is_resumed_with_its_own_config_or_not_overwritten(tmp_path):
    cfg = tiny_config(steps_per_epoch=2, max_epochs=3)
    train.train(cfg, tmp_path, show_progress=False, calibrate_model=False, stop_after=1)
    with pytest.raises(ValueError, match="holds the checkpoint of an earlier run \\(epoch 1\\): --resume it"):
        train.train(cfg, tmp_path, show_progress=False, calibrate_model=False)  # a fresh run would overwrite it
    with pytest.raises(ValueError, match="differs from the one .* trained with in lr, seed; only max_minutes"):
        train.train(tiny_config(steps_per_epoch=2, max_epochs=3, seed=7, lr=1e-3), tmp_path, resume=True,
                    show_progress=False, calibrate_model=False)
    # How long it runs may change, and where its batches are made (the same batches either way; audit 40).
    longer = tiny_config(steps_per_epoch=2, max_epochs=4, patience=9, workers=1)
    assert train.train(longer, tmp_path, resume=True, show_progress=False, calibrate_model=False)["steps"] == 8


def test_a_diverged_run_stops_at_its_step_and_says_what_to_do(tmp_path, monkeypatch):
    """A non-finite loss went on for an epoch and then failed validation on "scores contain NaN or inf" (audit 40)."""
    real, calls = modelio.forward_loss, []

    def diverging(net, batch, cfg, tau, device):
        loss, terms, out = real(net, batch, cfg, tau, device)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 3 else loss), terms, out

    monkeypatch.setattr(modelio, "forward_loss", diverging)
    with pytest.raises(ValueError, match=r"training diverged at step 2 \(loss nan, gradient norm nan\) at lr .*: "
                                         r"train again with a lower lr, or a grad_clip > 0, into another --out"):
        train.train(tiny_config(steps_per_epoch=5), tmp_path, show_progress=False, calibrate_model=False)


def test_weights_that_overflow_on_an_epochs_last_step_stop_the_run_before_validation(tmp_path, monkeypatch):
    """A finite loss and gradient can still leave weights infinite; on an epoch's last step validation then failed
    on NaN scores, unexplained (audit 41)."""
    real_step, calls = torch.optim.AdamW.step, []

    def overflowing(self, *args, **kwargs):
        out = real_step(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 3:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("inf"))
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", overflowing)
    with pytest.raises(ValueError, match=r"training diverged at step 2 \(weights no longer finite\)"):
        train.train(tiny_config(steps_per_epoch=3), tmp_path, show_progress=False, calibrate_model=False)


def test_a_flash_backend_without_flash_attn_is_refused_before_the_run_folder(tmp_path):
    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("SKIPPED: flash-attn is installed here")
    with pytest.raises(ValueError, match="attention backend 'flash' needs the flash-attn package"):
        train.train(tiny_config(model={**TINY_MODEL, "backend": "flash"}), tmp_path / "run", show_progress=False)
    assert not (tmp_path / "run").exists()  # it failed at the first step, leaving an empty folder



def test_a_finished_run_leaves_no_batch_pool_behind(tmp_path):
    # lr ~0: the validation loss cannot improve, so patience 1 stops the run after its second epoch
    cfg = tiny_config(steps_per_epoch=2, max_epochs=4, patience=1, lr=1e-12, pool_batches=3, pool_refresh=0.5)
    summary = train.train(cfg, tmp_path, show_progress=False, calibrate_model=False)
    assert summary["stopped"].startswith("early stop") and summary["epochs"] == 2
    assert not list(tmp_path.glob("pool*")) and (tmp_path / "model.safetensors").exists()


def test_a_budget_spent_between_epochs_is_recorded_and_resumes_to_nothing(tmp_path, monkeypatch, caplog):
    # The time budget runs out during epoch 1's validation: epoch 2 stops before its first step.
    cfg = tiny_config(steps_per_epoch=2, max_epochs=4, pool_batches=3, pool_refresh=0.5)
    monkeypatch.setattr(train, "progress", lambda c, step, elapsed_s: 1.0 if step >= 2 else step / c.total_steps)
    summary = train.train(cfg, tmp_path, show_progress=False, calibrate_model=False)
    assert summary["stopped"].startswith("schedule complete") and summary["steps"] == 2
    assert checkpoint.saved_state(tmp_path)["stopped"] == summary["stopped"]
    assert not list(tmp_path.glob("pool*"))
    with caplog.at_level(logging.WARNING):
        again = train.train(cfg, tmp_path, resume=True, show_progress=False, calibrate_model=False)
    assert again["steps"] == 2 and "that run had finished" in caplog.text


def test_ship_refuses_a_model_of_another_spectrum_length_before_training(tmp_path):
    from gnuradio.specenc.training import train_cli

    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_config().to_dict()))
    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    with pytest.raises(ValueError, match="--ship: the blocks and the command line default to 1024-bin spectra"):
        train_cli.main(parser.parse_args(["--config", str(path), "--out", str(tmp_path / "out"), "--ship"]))
    assert not (tmp_path / "out").exists()  # refused before any training


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    SpectrumModel.from_config(ModelConfig(nfft=256, **TINY_MODEL), seed=1, threshold=0.5).save(str(path))
    return str(path)


@pytest.mark.parametrize("flag", ["--n-test", "--n-clean", "--ae-steps", "--average"])
def test_eval_cli_refuses_empty_sets_before_any_work(tmp_path, flag):
    parser = argparse.ArgumentParser()
    eval_cli.add_arguments(parser)
    with pytest.raises(ValueError, match=f"{flag}=0 must be >= 1"):  # an IndexError deep in the generator before
        eval_cli.main(parser.parse_args([flag, "0", "--out", str(tmp_path)]))


def test_eval_cli_writes_complete_results_and_plots(tmp_path, tiny_model, capsys):
    parser = argparse.ArgumentParser()
    eval_cli.add_arguments(parser)
    args = parser.parse_args(["--model", tiny_model, "--out", str(tmp_path), "--n-test", "32", "--n-clean", "32",
                              "--ae-steps", "3", "--seed", "7"])
    assert eval_cli.main(args) == 0
    text = (tmp_path / "results.json").read_text()

    def strict(constant):  # as jq or JavaScript read it: no NaN or Infinity
        raise AssertionError(f"results.json holds {constant}")

    res = json.loads(text, parse_constant=strict)
    assert res["detection"]["emissions_snr_ge_10"]["precision"] is None  # a recall only: no precision of its own
    assert res["family"]["count"] == 32 and len(res["family"]["confusion"]) == 9
    assert list(res["family"]["by_snr"]) == ["< -5 dB", "-5..0 dB", "0..10 dB", "10..20 dB", "20..40 dB", ">= 40 dB"]
    with_emitter = sum(v["count"] for v in res["family"]["by_snr"].values())
    report = (tmp_path / "report.md").read_text()
    assert with_emitter <= 32 and (with_emitter == 32 or "hold no emitter at all" in report)
    assert set(res["family"]["by_width"]) == {"1..4 bins", "4..16 bins", "16..64 bins", ">= 64 bins"}
    assert sum(v["count"] for v in res["family"]["by_width"].values()) <= 32
    assert sum(v["count"] for v in res["family"]["by_band"].values()) == 32
    assert "By band plan" in (tmp_path / "report.md").read_text()
    assert "family accuracy by band: " in capsys.readouterr().out
    assert 0.0 <= res["family"]["accuracy_untuned"] <= 1.0
    assert "Without the tuning" in (tmp_path / "report.md").read_text()
    assert {"all", "snr_ge_10"} <= set(res["detection"])
    for block in (res["anomaly"], res["baselines"]["zscore"]["anomaly"], res["baselines"]["autoencoder"]["anomaly"]):
        assert 0.0 <= block["auroc"] <= 1.0
        assert block["false_alarms"]["clean_spectra"] == 32
    assert set(res["margins"]) == {"zscore", "autoencoder"}
    assert len(res["targets"]) == 5
    for name in ("report.md", "confusion.png", "roc.png", "pr.png", "accuracy_vs_snr.png"):
        assert (tmp_path / name).stat().st_size > 0
    # The report rebuilds from the saved results, whose missing figures read null.
    report_lib.write_report(res, str(tmp_path / "again"))
    assert (tmp_path / "again" / "report.md").read_text() == (tmp_path / "report.md").read_text()
    # A report of recordings alone (no generated scenes, no plots) into that folder leaves no plot of the first
    # one beside it (audit 64), and a file where the folder goes is named.
    report_lib.write_report({k: v for k, v in res.items() if k != "family"}, str(tmp_path / "again"))
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["report.md", "results.json"]
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        report_lib.write_report(res, str(tmp_path / "report.md" / "x"))


TRAINED = {"target_far": 0.2, "clean_spectra": 64}  # 32 clean scenes can show 0.2, not 1e-3


@pytest.mark.parametrize("metadata, far, expect, same", [
    ({"training": {"calibration": TRAINED}}, "0.2", "calibrated in training to 0.2 on 64 clean scenes", True),
    ({"calibration": {**TRAINED, "integrate": 16}}, "0.2", "calibrated per spectrum on the same clean scenes, to its "
     "own target of 0.2", True),
    # Neither rate can be shown on 32 scenes: both thresholds are their highest score, the same rule (audit 45).
    ({"calibration": {**TRAINED, "target_far": 1e-3, "integrate": 16}}, "1e-3", "the highest score of the same "
     "clean scenes (too few to show its target of 0.001)", True),
    ({"training": {"calibration": TRAINED}}, "1e-3", "compares detectors at different false-alarm rates", False),
    ({"training": {"calibration": {**TRAINED, "target_far": 1e-3}}}, "0.2", "calibrated in training to 0.001", False),
    ({"calibration": {**TRAINED, "calibrated_on": "site.sigmf-meta"}}, "0.2", "clean spectra of site.sigmf-meta",
     False),
    ({}, "0.2", "has no calibration record", False)])
def test_eval_says_how_the_models_threshold_compares_with_the_baselines(tmp_path, tiny_model, metadata, far, expect,
                                                                        same):
    model = tmp_path / "m.safetensors"
    shutil.copy(tiny_model, model)
    info = json.loads(pathlib.Path(tiny_model).with_suffix(".json").read_text())
    info["metadata"] = metadata
    model.with_suffix(".json").write_text(json.dumps(info))
    parser = argparse.ArgumentParser()
    eval_cli.add_arguments(parser)
    assert eval_cli.main(parser.parse_args(["--model", str(model), "--out", str(tmp_path / "e"), "--n-test", "32",
                                            "--n-clean", "32", "--ae-steps", "3", "--far", far])) == 0
    res = json.loads((tmp_path / "e" / "results.json").read_text())
    report = (tmp_path / "e" / "report.md").read_text()
    assert expect in report
    # 32 clean scenes cannot show 1e-3: every threshold is their highest score, and the report says so.
    assert ("highest score of 32 clean calibration scenes" in report) == (far == "1e-3")
    # A threshold for 16-score means scores single scenes at one calibrated per spectrum, as the baselines' are.
    assert (res["anomaly"]["threshold"] != 0.5) == ("integrate" in metadata.get("calibration", {}))
    assert res["data"]["calibration"]["same_target"] == same
    assert ("F1@τ" in res["margins"]["zscore"]) == same


def test_eval_scores_a_generated_recording_at_a_threshold_calibrated_on_its_site_twin(tmp_path, tiny_model):
    from gnuradio.specenc.synth import write_scenario

    ghosts = write_scenario(str(tmp_path / "rec" / "cell.sigmf-meta"), scenario="cellular", seconds=0.01, seed=5,
                            sample_rate=2.56e6, anomalies=("spoofing",))
    write_scenario(str(tmp_path / "rec" / "clean.sigmf-meta"), scenario="cellular", seconds=0.01, seed=6,
                   sample_rate=2.56e6, anomalies=())
    parser = argparse.ArgumentParser()
    eval_cli.add_arguments(parser)
    twins = tmp_path / "twins"
    args = parser.parse_args(["--model", tiny_model, "--out", str(tmp_path / "eval"), "--data", str(tmp_path / "rec"),
                              "--site-twins", str(twins)])
    assert eval_cli.main(args) == 0
    res = json.loads((tmp_path / "eval" / "results.json").read_text())["recordings"]
    assert "site_calibrated" not in res["clean"]  # no ghost to score
    site = res["cell"]["site_calibrated"]
    assert site["integrate"] == 16 and 0.0 <= site["f1"] <= 1.0
    paths = [str(twins / f"cell_site{take}.sigmf-meta") for take in range(evaluate.TWIN_TAKES)]
    rec = sigmf_io.read_meta(ghosts)
    for take, path in enumerate(paths):  # the recording's site at its length (a longer scene is another site)
        twin = sigmf_io.read_meta(path)
        assert twin.num_samples == rec.num_samples and twin.center_freq == rec.center_freq
        assert not any(a["core:label"] == "anomaly" for a in twin.annotations)
        assert (twin.global_["specenc:seed"], twin.global_["specenc:take"]) == (5, take)
        assert twin.global_["specenc:ghost_free"] == ["spoofing"]  # drawn with the recording's ghosts
    # The threshold is the twins': their 16-score means, as specenc calibrate --integrate 16 sets it.
    model = load_model(tiny_model)
    tau, _ = calibrate_cli.recalibrate(model, paths, 1e-3, integrate=16)
    assert site["threshold"] == pytest.approx(tau)
    assert "site-calibrated F1" in (tmp_path / "eval" / "report.md").read_text()
    # The same name, another site: the twins left from before are not reused.
    write_scenario(ghosts, scenario="cellular", seconds=0.01, seed=7, sample_rate=2.56e6, anomalies=("spoofing",))
    assert eval_cli.main(args) == 0
    assert sigmf_io.read_meta(paths[0]).global_["specenc:seed"] == 7
    # A recording too short for a 16-score mean gets no site figure; it stopped the whole run (audit 39).
    short = write_scenario(str(tmp_path / "rec" / "short.sigmf-meta"), scenario="cellular", seconds=0.0008, seed=5,
                           sample_rate=2.56e6, anomalies=("spoofing",))
    assert eval_cli.main(args) == 0
    assert "site_calibrated" not in json.loads((tmp_path / "eval" / "results.json").read_text())["recordings"]["short"]
    os.remove(short)
    # Nor after other ghosts: a twin is drawn with them, so it was another site (audit 38).
    write_scenario(ghosts, scenario="cellular", seconds=0.01, seed=7, sample_rate=2.56e6, anomalies=("stealth",))
    assert eval_cli.main(args) == 0
    assert sigmf_io.read_meta(paths[-1]).global_["specenc:ghost_free"] == ["stealth"]


def test_a_recordings_alerts_follow_the_models_calibrated_integration(tmp_path, tiny_model):
    """A model calibrated for means of n scores raises alerts on those means in the flowgraph; eval counts the
    same (on single scores, a site threshold that low alerted on most spectra)."""
    from gnuradio.specenc.synth import write_scenario

    rec = write_scenario(str(tmp_path / "clean.sigmf-meta"), scenario="cellular", seconds=0.01, seed=6,
                         sample_rate=2.56e6, anomalies=())
    model = load_model(tiny_model)
    opened, spectra, freq, _ = datasets.recording_spectra(rec, model.nfft)
    scores = evaluate.predict_all(model, spectra, freq, np.full(len(spectra), opened.sample_rate))["anomaly_score"]
    model.threshold = float(np.median(scores))
    model.metadata = {**model.metadata, "calibration": {"integrate": 8}}
    out = evaluate.evaluate_recording(model, rec)
    means = calibrate.integrated_scores(scores, 8)
    assert out["integrate"] == 8 and out["alert_rate"] == pytest.approx(np.mean(means > model.threshold))
    assert out["alert_rate"] != pytest.approx(np.mean(scores > model.threshold))



def test_eval_leaves_out_a_recording_without_a_finite_spectrum_and_says_so(tmp_path, tiny_model, caplog):
    """It was reported as "0 spectra, nan over the threshold" (audit 53); an error for it lost the report of every
    other recording and of the synthetic part (audit 55)."""
    rng = np.random.default_rng(2)
    noise = ((rng.normal(size=256 * 10) + 1j * rng.normal(size=256 * 10)) * 1e-3).astype(np.complex64)
    good = sigmf_io.write_recording(str(tmp_path / "good.sigmf-meta"), noise, 1e6, 433.92e6)
    bad = sigmf_io.write_recording(str(tmp_path / "nan.sigmf-meta"), np.full_like(noise, np.nan), 1e6, 433.92e6)
    with caplog.at_level("WARNING"):
        out = evaluate.evaluate_recordings(load_model(tiny_model), [good, bad])
    assert list(out) == ["good"] and out["good"]["spectra"] == 19
    assert "nan.sigmf-meta: no spectrum without NaN/inf samples; left out of the evaluation" in caplog.text


def test_recording_truth_is_the_generators_not_a_models_output(tmp_path):
    """Only truth annotations count: a recording whose only truth is an anomaly says nothing of families, and
    `specenc run`'s output (detections with a confidence, per-spectrum scores) is no truth at all."""
    starts = np.array([0, 1024, 2048])
    anomaly_only = [{"core:sample_start": 0, "core:sample_count": 1500, "core:label": "anomaly",
                     "specenc:kind": "jamming"},
                    {"core:sample_start": 0, "core:sample_count": 4000, "core:label": "a tone"}]  # free text
    found = datasets._annotation_truth(anomaly_only, starts, 1024, 1e6)
    assert found["family"] is None and found["anomaly"].tolist() == [True, True, False]
    run_output = [{"core:sample_start": 0, "core:sample_count": 4000, "core:label": "am", "specenc:confidence": 0.9},
                  {"core:sample_start": 0, "core:sample_count": 1024, "core:label": "anomaly",
                   "specenc:kind": "jamming", "specenc:score": 0.99}]
    assert not any(truth.is_truth(a) for a in run_output)


def test_holds_burst_sees_an_emission_but_not_a_dc_spike():
    rng = np.random.default_rng(5)
    floor = rng.normal(-90, 2, (3, 256))
    floor[1, 128] += 40  # LO leakage at DC only
    floor[2, 40:48] += 15  # an 8-bin emission 15 dB up
    assert evaluate.holds_burst(floor).tolist() == [False, False, True]


def test_holds_burst_leaves_dc_bins_out_and_sees_an_emission_just_past_them():
    """An LO leakage 5 bins wide and 40 dB up is no transmission (DC_BINS = 4 either side left out); without that,
    such spectra entered a capture's family accuracy as bursts (audit 66)."""
    x = np.full((2, 256), -90.0)
    x[0, 126:131] += 40  # DC (bin 128) and two bins either side
    x[1, 133:141] += 15  # an 8-bin emission starting just past DC's 4 bins
    assert evaluate.holds_burst(x).tolist() == [False, True]


def test_an_emissions_snr_is_the_highest_of_the_emitters_labelling_it():
    """truth_tokens gives a run of bins the highest SNR among its emitters: a run labelled by a 20 dB and a 0 dB
    emitter is a 20 dB emission, counted in emissions_snr_ge_10; the lowest dropped it (audit 66)."""
    truth = evaluate.truth_tokens(np.array([[0, 1, 1, 1, 1, 0]]), np.array([[np.nan, 20, 20, 0, 0, np.nan]]))
    assert truth == [[(1, 5, 1, 20.0)]]


def test_capture_family_accuracy_leaves_out_a_capture_with_no_burst():
    """A capture in which no spectrum holds a burst has no family accuracy (nan): the mean over captures skips it
    rather than becoming nan (audit 66)."""
    recordings = {"a": {"capture_family": "fsk", "capture_rows": 0, "family_accuracy": float("nan")},
                  "b": {"capture_family": "fsk", "capture_rows": 50, "family_accuracy": 0.9},
                  "synthetic": {"family_accuracy": 0.5}}  # not a capture scored against its transmitter
    assert evaluate.capture_family_accuracy(recordings) == 0.9
    assert evaluate.capture_family_accuracy({"a": recordings["a"]}) is None


def test_eval_scores_a_capture_against_its_transmitters_family_on_its_bursts(tmp_path, tiny_model):
    rng = np.random.default_rng(6)
    n = 256 * 200
    iq = (rng.normal(size=n) + 1j * rng.normal(size=n)) * 1e-3
    iq[n // 2:] += 0.1 * np.exp(2j * np.pi * 0.2 * np.arange(n - n // 2))  # a carrier keyed on halfway
    sigmf_io.write_recording(str(tmp_path / "remote.sigmf-meta"), iq.astype(np.complex64), 1e6, 433.92e6)
    sigmf_io.write_recording(str(tmp_path / "quiet.sigmf-meta"), iq[: n // 2].astype(np.complex64), 1e6, 433.92e6)
    (tmp_path / "families.json").write_text(json.dumps({"remote": {"family": "tone"}, "quiet": {"family": "noise"},
                                                        "elsewhere": {"family": "fsk"}}))
    parser = argparse.ArgumentParser()
    eval_cli.add_arguments(parser)
    args = parser.parse_args(["--model", tiny_model, "--data", str(tmp_path), "--out", str(tmp_path / "eval"),
                              "--capture-families", str(tmp_path / "families.json")])
    assert eval_cli.main(args) == 0
    rec = json.loads((tmp_path / "eval" / "results.json").read_text())["recordings"]
    spectra = dsp.power_spectrum(iq.astype(np.complex64), 256)
    pred = np.array(load_model(tiny_model).predict(spectra, rx_freq=433.92e6).label_index)
    on = np.arange(len(spectra)) * 128 + 256 > n // 2  # spectra that see the carrier
    assert rec["remote"]["capture_rows"] == on.sum() and rec["remote"]["capture_family"] == "tone"
    assert rec["remote"]["family_accuracy"] == pytest.approx(np.mean(pred[on] == labels.FAMILY_INDEX["tone"]))
    assert rec["quiet"]["capture_rows"] == rec["quiet"]["spectra"]  # "noise": every spectrum is scored
    assert "of %d (tone)" % on.sum() in (tmp_path / "eval" / "report.md").read_text()


def test_eval_refuses_a_capture_family_outside_the_vocabulary(tmp_path):
    (tmp_path / "families.json").write_text(json.dumps({"remote": {"family": "ook"}}))
    with pytest.raises(ValueError, match="'remote' needs a \"family\" among noise, tone"):
        eval_cli.load_capture_families(str(tmp_path / "families.json"), {"remote"})


def test_eval_refuses_a_recording_too_short_before_the_synthetic_part(tmp_path, tiny_model, monkeypatch):
    sigmf_io.write_recording(str(tmp_path / "rec" / "short.sigmf-meta"), np.zeros(100, np.complex64), 1e6, 1e8)
    monkeypatch.setattr(evaluate, "evaluate_synthetic", lambda *a: pytest.fail("ran the synthetic part first"))
    parser = argparse.ArgumentParser()
    eval_cli.add_arguments(parser)
    args = parser.parse_args(["--model", tiny_model, "--out", str(tmp_path / "e"), "--data", "synthetic",
                              "--data", str(tmp_path / "rec")])
    with pytest.raises(ValueError, match="short.sigmf-meta: too short for one spectrum of nfft=256"):
        eval_cli.main(args)


def test_eval_scores_max_spectra_of_a_recording_and_refuses_two_of_one_name(tmp_path, tiny_model, caplog):
    iq = (np.random.default_rng(2).normal(size=(256 * 60, 2)) * 1e-3).astype(np.float32).view(np.complex64).ravel()
    for folder in ("a", "b"):
        sigmf_io.write_recording(str(tmp_path / folder / "site.sigmf-meta"), iq, 1e6, 433.92e6)
    parser = argparse.ArgumentParser()
    eval_cli.add_arguments(parser)
    args = parser.parse_args(["--model", tiny_model, "--out", str(tmp_path / "e"), "--data", str(tmp_path / "a"),
                              "--max-spectra", "7"])
    with caplog.at_level("WARNING"):
        assert eval_cli.main(args) == 0
    assert json.loads((tmp_path / "e" / "results.json").read_text())["recordings"]["site"]["spectra"] == 7
    assert "site.sigmf-meta: scoring its first 7 of 119 spectra (max_spectra)" in caplog.text
    args = parser.parse_args(["--model", tiny_model, "--out", str(tmp_path / "e2"), "--data", str(tmp_path / "a"),
                              "--data", str(tmp_path / "b")])
    with pytest.raises(ValueError, match="two recordings named 'site': .*a/site.sigmf-meta and .*b/site.sigmf-meta"):
        eval_cli.main(args)  # the second would have replaced the first in results.json
    args = parser.parse_args(["--model", tiny_model, "--out", str(tmp_path / "e3"), "--data", str(tmp_path / "a"),
                              "--data", str(tmp_path / "a" / ".." / "a" / "site.sigmf-meta"), "--max-spectra", "7"])
    assert eval_cli.main(args) == 0  # one file reached two ways is scored once, not refused (audit 38)


def test_eval_and_calibrate_refuse_an_output_under_a_file_before_any_work(tmp_path, tiny_model, monkeypatch):
    """Both failed on os.makedirs after minutes of scoring, with "[Errno 17] File exists" (audit 36)."""
    (tmp_path / "afile").write_text("x")
    meta = sigmf_io.write_recording(str(tmp_path / "site.sigmf-meta"), np.ones(4096, np.complex64), 1e6, 433.92e6)
    monkeypatch.setattr(evaluate, "evaluate_recording", lambda *a, **k: pytest.fail("scored before the check"))
    monkeypatch.setattr(calibrate_cli, "recording_scores", lambda *a, **k: pytest.fail("scored before the check"))
    for cli_module, argv in ((eval_cli, ["--model", tiny_model, "--data", meta, "--out",
                                         str(tmp_path / "afile" / "e")]),
                             (eval_cli, ["--model", tiny_model, "--data", meta, "--out", str(tmp_path / "e"),
                                         "--site-twins", str(tmp_path / "afile" / "twins")]),
                             (calibrate_cli, [meta, "--model", tiny_model, "--out",
                                              str(tmp_path / "afile" / "m.safetensors")])):
        parser = argparse.ArgumentParser()
        cli_module.add_arguments(parser)
        with pytest.raises(NotADirectoryError, match="afile is a file, not a folder"):
            cli_module.main(parser.parse_args(argv))


def test_calibrate_cli_sets_the_threshold_for_the_target_rate(tmp_path, tiny_model):
    rng = np.random.default_rng(4)
    n = 256 * 400
    iq = ((rng.normal(size=n) + 1j * rng.normal(size=n)) * 1e-3).astype(np.complex64)
    meta = sigmf_io.write_recording(str(tmp_path / "clean.sigmf-meta"), iq, 1e6, 433.92e6)
    parser = argparse.ArgumentParser()
    calibrate_cli.add_arguments(parser)
    out = tmp_path / "site.safetensors"
    args = parser.parse_args([meta, "--model", tiny_model, "--far", "0.01", "--out", str(out)])
    assert calibrate_cli.main(args) == 0
    model = load_model(str(out))
    spectra = dsp.power_spectrum(iq, 256)
    scores = model.predict(spectra, rx_freq=433.92e6).anomaly_score
    assert len(spectra) == 799
    # 0.01 * 799 = 7.99 expected; 3 exceedances have a 95 % upper bound of 7.75 (4: 9.15), so the 4th largest
    assert model.threshold == pytest.approx(float(np.sort(scores)[::-1][3]), abs=1e-6)
    assert np.sum(scores > model.threshold) <= 3
    calibration = json.loads((tmp_path / "site.json").read_text())["metadata"]["calibration"]
    assert calibration["target_far"] == 0.01 and calibration["average"] == 1


def test_calibrate_warns_on_a_recording_that_marks_anomalies(tmp_path, tiny_model, caplog):
    iq = (np.random.default_rng(4).normal(size=(256 * 40, 2)) * 1e-3).astype(np.float32).view(np.complex64).ravel()
    ghost = {"core:sample_start": 2560, "core:sample_count": 512, "core:label": "anomaly", "specenc:kind": "jamming"}
    meta = sigmf_io.write_recording(str(tmp_path / "site.sigmf-meta"), iq, 1e6, 433.92e6, annotations=[ghost])
    with caplog.at_level("WARNING"):
        calibrate_cli.recalibrate(load_model(tiny_model), meta, far=0.01)
    assert "site.sigmf-meta marks 1 anomalies (e.g. at sample 2560)" in caplog.text


def test_run_warns_when_its_averaging_is_not_the_one_the_threshold_was_calibrated_for(tmp_path, tiny_model, caplog,
                                                                                      specenc_cpp):
    from gnuradio.specenc import cli

    rng = np.random.default_rng(4)
    iq = ((rng.normal(size=256 * 800) + 1j * rng.normal(size=256 * 800)) * 1e-3).astype(np.complex64)
    meta = sigmf_io.write_recording(str(tmp_path / "clean.sigmf-meta"), iq, 1e6, 433.92e6)
    site = str(tmp_path / "site.safetensors")
    assert cli.main(["calibrate", meta, "--model", tiny_model, "--far", "0.01", "--average", "2", "--out", site]) == 0
    with caplog.at_level("WARNING"):
        cli.main(["run", meta, "--model", site, "--out", str(tmp_path / "o.sigmf-meta")])
    assert "calibrated on spectra averaging 2 frames; --average 1 gives other scores" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        cli.main(["run", meta, "--model", site, "--average", "2", "--out", str(tmp_path / "o.sigmf-meta")])
    assert "calibrated on spectra averaging" not in caplog.text


def test_calibrate_cli_takes_a_raw_recording_as_a_sigmf_one(tmp_path, tiny_model):
    rng = np.random.default_rng(4)
    iq = ((rng.normal(size=256 * 400) + 1j * rng.normal(size=256 * 400)) * 1e-3).astype(np.complex64)
    meta = sigmf_io.write_recording(str(tmp_path / "clean.sigmf-meta"), iq, 1e6, 433.92e6)
    iq.tofile(tmp_path / "clean.cf32")  # as a GNU Radio File Sink writes it
    parser = argparse.ArgumentParser()
    calibrate_cli.add_arguments(parser)
    thresholds = []
    for argv in ([meta], [str(tmp_path / "clean.cf32"), "--rate", "1e6", "--freq", "433.92e6", "--format", "cf32"]):
        out = tmp_path / f"site{len(thresholds)}.safetensors"
        assert calibrate_cli.main(parser.parse_args([*argv, "--model", tiny_model, "--far", "0.01",
                                                     "--out", str(out)])) == 0
        thresholds.append(load_model(str(out)).threshold)
    assert thresholds[0] == thresholds[1]
    with pytest.raises(ValueError, match="needs a sample rate and a format"):
        calibrate_cli.main(parser.parse_args([str(tmp_path / "clean.cf32"), "--model", tiny_model,
                                              "--out", str(tmp_path / "x.safetensors")]))


def test_calibrate_cli_integrate_sets_the_threshold_of_running_means(tmp_path, tiny_model):
    rng = np.random.default_rng(4)
    iq = ((rng.normal(size=256 * 400) + 1j * rng.normal(size=256 * 400)) * 1e-3).astype(np.complex64)
    meta = sigmf_io.write_recording(str(tmp_path / "clean.sigmf-meta"), iq, 1e6, 433.92e6)
    parser = argparse.ArgumentParser()
    calibrate_cli.add_arguments(parser)
    out = tmp_path / "site.safetensors"
    args = parser.parse_args([meta, "--model", tiny_model, "--far", "0.01", "--integrate", "8", "--out", str(out)])
    assert calibrate_cli.main(args) == 0
    model = load_model(str(out))
    scores = model.predict(dsp.power_spectrum(iq, 256), rx_freq=433.92e6).anomaly_score.astype(np.float64)
    means = np.convolve(scores, np.ones(8) / 8, "valid")  # 792 means: 3 may exceed, as for 799 spectra
    assert model.threshold == pytest.approx(float(np.sort(means)[::-1][3]), abs=1e-6)
    assert model.threshold < float(np.sort(scores)[::-1][3])  # means scatter less than single scores
    assert model.metadata["calibration"]["integrate"] == 8
    with pytest.raises(ValueError, match=r"integrate=0 must be in 1\.\.100000"):
        calibrate_cli.recalibrate(model, meta, 0.01, integrate=0)
    with pytest.raises(ValueError, match="nothing to calibrate on: every recording was left out"):
        calibrate_cli.recalibrate(model, meta, 0.01, integrate=800)


@pytest.mark.parametrize("integrate", [1, 4])
def test_calibrate_leaves_out_a_recording_too_short_or_all_nan_and_goes_on(tmp_path, tiny_model, caplog, integrate):
    """3 spectra (fewer than the gap window's 5) raised an IndexError, a recording without a finite spectrum numpy's
    "v cannot be empty", and either aborted the calibration of the good recordings beside it (audit 53)."""
    rng = np.random.default_rng(5)

    def recording(name, n):
        iq = ((rng.normal(size=n) + 1j * rng.normal(size=n)) * 1e-3).astype(np.complex64)
        if name == "nan":
            iq[:] = np.nan
        return sigmf_io.write_recording(str(tmp_path / f"{name}.sigmf-meta"), iq, 1e6, 433.92e6)

    recs = [recording("good", 256 * 100), recording("short", 256 * 2), recording("nan", 256 * 10),
            recording("tiny", 100)]  # shorter than one spectrum: aborted after the others were scored (audit 55)
    model = load_model(tiny_model)
    with caplog.at_level("WARNING"):
        _, summary = calibrate_cli.recalibrate(model, recs, far=0.2, integrate=integrate)
    assert summary["clean_spectra"] == {1: 199 + 3, 4: 199 - 3}[integrate]
    assert "nan.sigmf-meta: its 0 finite spectra are fewer than integrate" in caplog.text
    assert ("short.sigmf-meta: its 3 finite spectra are fewer than integrate=4" in caplog.text) == (integrate == 4)
    assert "tiny.sigmf-meta: its 100 samples give no spectrum of nfft=256, average=1; left out" in caplog.text
    # the record names only what it was calibrated on (it listed the recordings left out too; audit 55)
    assert summary["calibrated_on"] == {1: "good.sigmf-meta, short.sigmf-meta", 4: "good.sigmf-meta"}[integrate]


@pytest.mark.parametrize("integrate", [1, 4])
def test_calibrate_leaves_digital_silence_out(tmp_path, tiny_model, caplog, integrate):
    """A gap of zeros scores 0: counted as clean trials it would lower the threshold (audit of session 22)."""
    rng = np.random.default_rng(4)
    iq = ((rng.normal(size=256 * 100) + 1j * rng.normal(size=256 * 100)) * 1e-3).astype(np.complex64)
    gapped = np.concatenate([iq[:256 * 50], np.zeros(256 * 100, np.complex64), iq[256 * 50:]])
    model = load_model(tiny_model)
    with caplog.at_level("WARNING"):
        tau, summary = calibrate_cli.recalibrate(model, sigmf_io.write_recording(
            str(tmp_path / "gap.sigmf-meta"), gapped, 1e6, 433.92e6), far=0.2, integrate=integrate)
    # 199 spectra all zeros, and 2 on each side that share samples with the gap (the one straddling its edge, partly
    # zeros, scores high: audit 48)
    assert "gap.sigmf-meta: 203 of its 399 spectra are digital silence or straddle its edges" in caplog.text
    # Left: the other 196, or the means of 4 within the two stretches of them (3 fewer each)
    assert summary["clean_spectra"] == {1: 196, 4: 196 - 2 * 3}[integrate]
    with pytest.raises(ValueError, match="nothing to calibrate on: every recording was left out"):
        calibrate_cli.recalibrate(model, sigmf_io.write_recording(str(tmp_path / "zeros.sigmf-meta"),
                                                                  np.zeros(256 * 20, np.complex64), 1e6, 433.92e6), 0.2)


def test_calibrate_and_eval_refuse_an_average_below_one(tmp_path, tiny_model):
    iq = np.ones(4096, np.complex64)
    meta = sigmf_io.write_recording(str(tmp_path / "clean.sigmf-meta"), iq, 1e6, 433.92e6)
    model = load_model(tiny_model)
    with pytest.raises(ValueError, match="average=0 must be a whole number in 1.."):
        calibrate_cli.recalibrate(model, meta, 1e-3, average=0)
    with pytest.raises(ValueError, match="average=0 must be a whole number in 1.."):
        evaluate.evaluate_recording(model, meta, average=0)


def test_worker_processes_give_the_same_batches_as_inline_generation():
    cfg = tiny_config(pool_batches=3, pool_refresh=0.5, unknown_band=0.5)
    inline = train.BatchSource(cfg)
    want = [inline.next() for _ in range(6)]
    cfg.workers = 1
    ahead = train.BatchSource(cfg)
    try:
        got = [ahead.next() for _ in range(6)]
        # Ctrl-C is the training process's: a worker's own KeyboardInterrupt printed a traceback over its one line
        for process in ahead._workers._processes.values():
            blocked = next(x for x in open(f"/proc/{process.pid}/status") if x.startswith("SigBlk:"))
            assert int(blocked.split()[1], 16) & (1 << (signal.SIGINT - 1)), blocked
    finally:
        ahead.close()
    assert ahead.made == inline.made and signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    for a, b in zip(want, got):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_ctrl_c_while_a_batch_worker_starts_is_raised_after_it_has_started(ctrl_c_handled):
    """Blocking SIGINT in the main thread did not hold it back (another thread of the process took it and Python
    raised KeyboardInterrupt in the middle of starting a worker; audit 65): it is noted, then raised."""
    import threading
    import time

    reached = []
    with pytest.raises(KeyboardInterrupt):
        with train._ctrl_c_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # a handler that raised would have raised by now
            reached.append(True)
    assert reached == [True] and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    inside = []  # off the main thread the handler stays, but workers started there keep Ctrl-C blocked too (audit 68)

    def held_in_a_thread():
        with train._ctrl_c_held():
            inside.append(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))

    worker = threading.Thread(target=held_in_a_thread)
    worker.start()
    worker.join()
    assert inside == [True]


def test_unknown_band_rows_get_band_other_and_keep_their_labels():
    other = bands.BAND_INDEX["other"]
    plain = train.training_batch(tiny_config(), 0)
    hidden = train.training_batch(tiny_config(unknown_band=1.0), 0)
    assert np.all(hidden["band"] == other) and np.any(plain["band"] != other)
    for k in ("spectra", "family", "bin_family", "anomaly"):
        np.testing.assert_array_equal(plain[k], hidden[k], err_msg=k)


def test_calibrate_cli_takes_several_recordings_of_the_site(tmp_path, tiny_model):
    """The threshold of two recordings is set on all their scores; with integration, no mean spans the end of one
    recording and the start of the next."""
    rng = np.random.default_rng(4)
    metas, iqs = [], []
    for i, n in enumerate((256 * 300, 256 * 200)):
        iqs.append(((rng.normal(size=n) + 1j * rng.normal(size=n)) * 1e-3 * (1 + 9 * i)).astype(np.complex64))
        metas.append(sigmf_io.write_recording(str(tmp_path / f"clean{i}.sigmf-meta"), iqs[-1], 1e6, 433.92e6))
    parser = argparse.ArgumentParser()
    calibrate_cli.add_arguments(parser)
    out = tmp_path / "site.safetensors"
    assert calibrate_cli.main(parser.parse_args([*metas, "--model", tiny_model, "--far", "0.01", "--integrate", "8",
                                                 "--out", str(out)])) == 0
    model = load_model(str(out))
    means = np.concatenate([np.convolve(model.predict(dsp.power_spectrum(iq, 256), rx_freq=433.92e6).anomaly_score
                                        .astype(np.float64), np.ones(8) / 8, "valid") for iq in iqs])
    assert len(means) == 599 - 7 + 399 - 7
    cal = model.metadata["calibration"]
    assert cal["clean_spectra"] == len(means) and cal["calibrated_on"] == "clean0.sigmf-meta, clean1.sigmf-meta"
    assert model.threshold == pytest.approx(calibrate.threshold_for_far(means, 0.01), abs=1e-6)
    # A glob's .sigmf-data and .sigmf-meta, and the base name, are one recording: counted once (it was counted
    # three times, and the model recorded a confidence bound 3 times too good; audit 53)
    again = [metas[0].replace(".sigmf-meta", ".sigmf-data"), metas[0][: -len(".sigmf-meta")]]
    assert calibrate_cli.main(parser.parse_args([*metas, *again, "--model", tiny_model, "--far", "0.01",
                                                 "--integrate", "8", "--out", str(out)])) == 0
    assert load_model(str(out)).metadata["calibration"] == cal
    with pytest.raises(FileNotFoundError, match="no such recording: .*absent.sigmf-meta"):
        calibrate_cli.main(parser.parse_args([metas[0], str(tmp_path / "absent.sigmf-meta"), "--out", str(out)]))
    base = metas[0][: -len(".sigmf-meta")]  # as specenc run takes it
    assert calibrate_cli.main(parser.parse_args([base, "--model", tiny_model, "--far", "0.01", "--out", str(out)])) == 0


def test_a_config_that_is_no_text_is_named(tmp_path):
    """A binary file (a checkpoint given as --config) gave only "'utf-8' codec can't decode byte" (audit 53)."""
    path = tmp_path / "model.pt"
    path.write_bytes(b"PK\x03\x04\x80\x81\xff" * 10)
    with pytest.raises(ValueError, match="model.pt: not valid JSON"):
        TrainConfig.load(str(path))
