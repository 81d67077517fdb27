"""Truth per spectrum from SigMF annotations, and seed streams that never overlap."""

import json
import re

import numpy as np
import pytest

from gnuradio.specenc import dsp, labels, sigmf_io, truth
from gnuradio.specenc.training import datasets


def test_annotation_truth_takes_the_dominant_family_and_flags_anomalous_spectra():
    ann = [
        {"core:sample_start": 0, "core:sample_count": 4000, "core:label": "fm", "specenc:snr_db": 10.0,
         "core:freq_lower_edge": 0.0, "core:freq_upper_edge": 1e3},
        {"core:sample_start": 1000, "core:sample_count": 1000, "core:label": "ofdm", "specenc:snr_db": 10.0,
         "core:freq_lower_edge": 0.0, "core:freq_upper_edge": 1e5},  # same SNR, 100x wider: dominant
        {"core:sample_start": 0, "core:sample_count": 4000, "core:label": "tone", "specenc:snr_db": -10.0},  # invisible
        {"core:sample_start": 3000, "core:sample_count": 500, "core:label": "anomaly", "specenc:kind": "jamming"},
    ]
    starts = np.array([0, 1024, 2048, 3072, 5000])
    found = datasets._annotation_truth(ann, starts, 1024, 1e6)
    f = labels.FAMILY_INDEX
    assert found["family"].tolist() == [f["ofdm"], f["ofdm"], f["fm"], f["fm"], 0]
    assert found["anomaly"].tolist() == [False, False, True, True, False]
    # A hopper: its box spans 200 kHz of hops, its SNR is one 2 kHz hop's (params.hop_bw, fraction of the rate).
    hopper = {"core:sample_start": 0, "core:sample_count": 4000, "core:label": "fsk", "specenc:snr_db": 20.0,
              "core:freq_lower_edge": 0.0, "core:freq_upper_edge": 2e5, "specenc:params": {"hop_bw": 0.002}}
    found = datasets._annotation_truth(ann[:1] + [hopper], starts, 1024, 1e6)
    assert found["family"][0] == f["fsk"]  # 20 dB over 2 kHz beats 10 dB over 1 kHz
    strong_fm = dict(ann[0], **{"specenc:snr_db": 25.0})  # 25 dB over 1 kHz beats it; its 200 kHz box would not
    assert datasets._annotation_truth([strong_fm, hopper], starts, 1024, 1e6)["family"][0] == f["fm"]
    assert not truth.is_truth({"core:label": "Sensible Living RadioHead ASK (OOK) transmission"})


def test_an_invisible_emitter_does_not_set_a_spectrums_family():
    """Below -3 dB SNR an emitter is not visible (the batch labels' rule): a -10 dB OFDM over 500 kHz would outweigh
    a 10 dB tone by SNR x bandwidth, and eval scored family accuracy against it when the cut was dropped (audit 66).
    (The -10 dB tone above, one bin wide, lost to the others either way.)"""
    ann = [{"core:sample_start": 0, "core:sample_count": 100_000, "core:label": "ofdm", "specenc:snr_db": -10.0,
            "core:freq_lower_edge": 0.0, "core:freq_upper_edge": 5e5},
           {"core:sample_start": 0, "core:sample_count": 100_000, "core:label": "tone", "specenc:snr_db": 10.0,
            "core:freq_lower_edge": 0.0, "core:freq_upper_edge": 1e3}]
    truth = datasets._annotation_truth(ann, np.arange(0, 4096, 512), 1024, 1e6)
    assert truth["family"].tolist() == [labels.FAMILY_INDEX["tone"]] * 8
    ann[0]["specenc:snr_db"] = -3.0  # visible from -3 dB on
    assert datasets._annotation_truth(ann, np.array([0]), 1024, 1e6)["family"].tolist() == [labels.FAMILY_INDEX["ofdm"]]


def test_streams_are_disjoint_and_reproducible():
    a = datasets.stream(0, datasets.TRAIN_STREAM).random(4)
    assert np.array_equal(a, datasets.stream(0, datasets.TRAIN_STREAM).random(4))
    for kind in (datasets.VAL_STREAM, datasets.CALIB_STREAM, datasets.TEST_STREAM):
        assert not np.array_equal(a, datasets.stream(0, kind).random(4))


def test_recording_spectra_leave_out_nan_samples_and_keep_truth_and_tuning_aligned(tmp_path, caplog):
    """calibrate and eval read recordings through recording_spectra: spectra of NaN samples are left out with a
    warning (as the flowgraph skips them; predict refuses them), and the truth and frequency of the others stay theirs."""
    iq = (np.random.default_rng(0).normal(size=(40 * 512, 2)) * 0.01).astype(np.float32).view(np.complex64).ravel()
    iq[10 * 512 + 100] = np.nan  # in spectra 9 and 10 (1024 samples, 512 apart)
    anns = [{"core:sample_start": 20 * 512, "core:sample_count": 1024, "core:label": "anomaly",
             "specenc:kind": "jamming"}]
    meta = sigmf_io.write_recording(tmp_path / "r", iq, 1e6, 915e6, annotations=anns)
    doc = json.load(open(meta))
    doc["captures"].append({"core:sample_start": 30 * 512, "core:frequency": 2.44e9})
    json.dump(doc, open(meta, "w"))
    with caplog.at_level("WARNING"):
        _, spectra, freqs, truth = datasets.recording_spectra(meta, 1024)
    assert "2 of 39 spectra hold NaN or inf samples (the first from sample 4608); left out" in caplog.text
    assert len(spectra) == len(freqs) == len(truth["anomaly"]) == 37 and np.isfinite(spectra).all()
    kept = [i for i in range(39) if i not in (9, 10)]
    assert [kept[i] for i in np.flatnonzero(truth["anomaly"])] == [19, 20, 21]  # spectra holding samples 10240..11263
    assert [kept[i] for i in np.flatnonzero(freqs == 2.44e9)] == list(range(30, 39))


def test_recording_spectra_read_in_blocks_and_say_when_they_stop_short(tmp_path, caplog, monkeypatch):
    """Recordings are read a block at a time (a whole span at once held the file in memory); a cap on the spectra
    read is logged, not silent."""
    iq = (np.random.default_rng(1).normal(size=(30_000, 2)) * 0.1).astype(np.float32).view(np.complex64).ravel()
    meta = sigmf_io.write_recording(tmp_path / "r", iq, 1e6, 915e6)
    reference = dsp.power_spectrum(iq, 1024, average=2)
    monkeypatch.setattr(datasets, "READ_SAMPLES", 3000)  # two spectra of 2 frames per read
    _, spectra, freqs, _ = datasets.recording_spectra(meta, 1024, average=2)
    np.testing.assert_array_equal(spectra, reference)
    assert len(freqs) == len(spectra) == 28
    with caplog.at_level("WARNING"):
        _, capped, _, _ = datasets.recording_spectra(meta, 1024, average=2, max_spectra=5)
    np.testing.assert_array_equal(capped, reference[:5])
    assert "scoring its first 5 of 28 spectra (max_spectra)" in caplog.text


def test_an_averaged_spectrums_truth_covers_every_sample_it_reads(tmp_path):
    """With average=4 a spectrum reads 2560 samples (4 frames of 1024, 512 apart) and starts 2048 after the last:
    spectrum 1 (samples 2048..4607) holds the anomaly at 3500..3999. Truth taken over nfft samples only missed it
    (audit 66)."""
    iq = (np.random.default_rng(2).normal(size=(4 * 2048 + 512, 2)) * 0.01).astype(np.float32).view(np.complex64)
    anns = [{"core:sample_start": 3500, "core:sample_count": 500, "core:label": "anomaly", "specenc:kind": "jamming"}]
    meta = sigmf_io.write_recording(tmp_path / "r", iq.ravel(), 1e6, 915e6, annotations=anns)
    _, spectra, _, truth = datasets.recording_spectra(meta, 1024, average=4)
    assert dsp.samples_read(1, 1024, 0.5, 4) == 2560 and len(spectra) == 4
    assert truth["anomaly"].tolist() == [False, True, False, False]


def _foreign_recording(tmp_path, annotations, captures=()):
    """A recording as another tool writes it: its annotations put into the meta as they are."""
    iq = (np.random.default_rng(3).normal(size=(80 * 512, 2)) * 0.01).astype(np.float32).view(np.complex64).ravel()
    meta = sigmf_io.write_recording(tmp_path / "r", iq, 1e6, 915e6)
    doc = json.load(open(meta))
    doc["annotations"] = annotations
    doc["captures"] += list(captures)
    json.dump(doc, open(meta, "w"))
    return meta


def test_other_tools_labels_name_families_and_anomalies_regardless_of_case(tmp_path):
    """"FM" and "Jamming" are truth as "fm" and "jamming" are (audit 72: other tools' labels were dropped unsaid, and a
    kind-named anomaly counted only in the demo's summary)."""
    assert truth.family({"core:label": " FM "}) == "fm" and truth.anomaly_kind({"core:label": "Jamming"}) == "jamming"
    assert truth.anomaly_kind({"core:label": "anomaly"}) == "unknown"
    assert truth.family({"core:label": "anomaly"}) is None
    assert truth.is_foreign({"core:label": "LTE"}) and not truth.is_foreign({"core:comment": "no label"})
    assert not truth.is_truth({"core:label": "jamming", "specenc:score": 0.9})  # the alert sink's output
    meta = _foreign_recording(tmp_path, [
        {"core:sample_start": 0, "core:sample_count": 20 * 512, "core:label": "FM"},
        {"core:sample_start": 30 * 512, "core:sample_count": 1024, "core:label": "Jamming"}])
    _, _, _, found = datasets.recording_spectra(meta, 1024)
    assert found["family"][:19].tolist() == [labels.FAMILY_INDEX["fm"]] * 19
    assert found["family"][20:].tolist() == [labels.FAMILY_INDEX["noise"]] * 59
    assert np.flatnonzero(found["anomaly"]).tolist() == [29, 30, 31]


def test_spectra_under_an_emission_of_an_unknown_family_have_no_family_truth(tmp_path):
    """An "LTE" emission's strength is not annotated, so where it lies the dominant family is unknown: those spectra
    are -1 (left out of family accuracy), not noise or the other annotation's family. A note without frequency edges
    (a whole-file description) is no emission: it left every spectrum out (audit 74)."""
    edges = {"core:freq_lower_edge": 914.9e6, "core:freq_upper_edge": 915.1e6}
    meta = _foreign_recording(tmp_path, [
        {"core:sample_start": 0, "core:sample_count": 40 * 512, "core:label": "fm"},
        {"core:sample_start": 20 * 512, "core:sample_count": 40 * 512, "core:label": "LTE", **edges},
        {"core:sample_start": 0, "core:label": "Roof antenna, Tuesday noon"}])
    _, _, _, found = datasets.recording_spectra(meta, 1024)
    assert found["family"][:19].tolist() == [labels.FAMILY_INDEX["fm"]] * 19
    assert (found["family"][19:60] == -1).all()
    assert found["family"][60:].tolist() == [labels.FAMILY_INDEX["noise"]] * 19
    assert truth.foreign_labels(sigmf_io.read_meta(meta).annotations) == "'Roof antenna, Tuesday noon', 'LTE'"


def test_an_annotation_without_a_count_lasts_to_the_end_of_its_capture(tmp_path):
    """SigMF: without core:sample_count an annotation runs through the end of its capture; eval read it to the end of
    the file, marking spectra after a retune anomalous (audit 72)."""
    meta = _foreign_recording(tmp_path, [{"core:sample_start": 20_000, "core:label": "anomaly"},
                                         {"core:sample_start": 40_000, "core:label": "fm"}],
                              captures=[{"core:sample_start": 30_000, "core:frequency": 2.44e9}])
    rec = sigmf_io.read_meta(meta)
    assert [a["core:sample_count"] for a in rec.annotations] == [10_000, 80 * 512 - 40_000]
    _, _, _, found = datasets.recording_spectra(meta, 1024)
    assert np.flatnonzero(found["anomaly"]).tolist() == list(range(38, 59))  # spectra touching 20000..29999


@pytest.mark.parametrize("field, message", [
    ({"core:sample_count": "4000"}, "annotation 0: core:sample_count='4000' is not a sample count"),
    ({"core:sample_count": None}, "annotation 0: core:sample_count=None is not a sample count"),
    ({"core:sample_count": 1000.5}, "annotation 0: core:sample_count=1000.5 is not a sample count"),
    ({"core:freq_lower_edge": None, "core:freq_upper_edge": 1e3}, "core:freq_lower_edge=None is not a frequency"),
])
def test_annotation_fields_of_the_wrong_kind_are_refused_by_name(tmp_path, field, message):
    """A string count reached an int + str deep in run, the source block and calibrate (audit 72)."""
    meta = _foreign_recording(tmp_path, [{"core:sample_start": 0, "core:label": "fm", **field}])
    with pytest.raises(ValueError, match=re.escape(message)):
        sigmf_io.read_meta(meta)


def test_a_whole_float_count_is_a_count(tmp_path):
    """1000.0 is an integer to JSON Schema, and writers with float arithmetic give it; it reads as the int 1000."""
    meta = _foreign_recording(tmp_path, [{"core:sample_start": 0, "core:label": "fm", "core:sample_count": 1000.0}])
    count = sigmf_io.read_meta(meta).annotations[0]["core:sample_count"]
    assert count == 1000 and isinstance(count, int)


def test_edges_the_wrong_way_round_are_read_the_right_way_with_a_warning(tmp_path, caplog):
    """A 200 kHz FM annotated with its edges swapped was a 1 Hz emission, losing dominance to a 1 kHz tone (audit 72);
    refusing the file stopped run and the source block, which never read edges (audit 74)."""
    meta = _foreign_recording(tmp_path, [
        {"core:sample_start": 0, "core:label": "fm", "core:freq_lower_edge": 915.1e6, "core:freq_upper_edge": 914.9e6},
        {"core:sample_start": 0, "core:label": "tone", "core:freq_lower_edge": 915e6,
         "core:freq_upper_edge": 915.001e6}])
    with caplog.at_level("WARNING"):
        rec, _, _, found = datasets.recording_spectra(meta, 1024)
    assert "annotation 0: core:freq_lower_edge=915100000.0 lies above core:freq_upper_edge=914900000.0" in caplog.text
    fm = rec.annotations[0]
    assert (fm["core:freq_lower_edge"], fm["core:freq_upper_edge"]) == (914.9e6, 915.1e6)
    assert (found["family"] == labels.FAMILY_INDEX["fm"]).all()


def test_the_models_own_annotations_and_contradictions_are_read_as_meant():
    """specenc run's and the sink's annotations (a confidence or a score) are never truth, whatever their label: eval
    would score the model against itself (audit 84); a kind given with another anomaly label is the kind."""
    assert truth.family({"core:label": "fm", "specenc:confidence": 0.9}) is None
    assert truth.anomaly_kind({"core:label": "anomaly", "specenc:kind": "jamming", "specenc:score": 0.99}) is None
    assert truth.anomaly_kind({"core:label": "jamming", "specenc:kind": "spoofing"}) == "spoofing"


def test_an_uncounted_annotation_past_the_data_lasts_no_samples_and_is_warned_of(tmp_path, caplog):
    """Without a count, an annotation that starts past the data's end lasts 0 samples (not a negative count) and is
    named among those reaching past the data (audit 84)."""
    with caplog.at_level("WARNING"):
        meta = _foreign_recording(tmp_path, [{"core:sample_start": 50_000, "core:label": "fm"}])
        rec = sigmf_io.read_meta(meta)
    assert rec.annotations[0]["core:sample_count"] == 0
    assert "reach past the 40960 samples its data holds (from sample 50000)" in caplog.text


@pytest.mark.parametrize("edge", [float("inf"), True])
def test_an_edge_that_is_no_finite_frequency_is_refused(tmp_path, edge):
    """inf or true as a frequency edge was read as one (audit 84): refused by name, as a string is."""
    meta = _foreign_recording(tmp_path, [{"core:sample_start": 0, "core:label": "fm", "core:freq_lower_edge": 1e6,
                                          "core:freq_upper_edge": edge}])
    with pytest.raises(ValueError, match="core:freq_upper_edge=.* is not a frequency in Hz"):
        sigmf_io.read_meta(meta)


@pytest.mark.parametrize("text", ['{"global": []}', '{"captures": []}', "[1, 2]", "not json", ""])
def test_a_meta_that_is_no_sigmf_object_has_no_global(tmp_path, text):
    """read_global and described_samples answer for any file at a meta's path (an output about to be written there):
    a list, a global that is no object, no JSON at all (audit 84: crashed with AttributeError, KeyError)."""
    meta = tmp_path / "x.sigmf-meta"
    meta.write_text(text)
    assert sigmf_io.read_global(meta) == {}
    assert sigmf_io.described_samples(meta) == str(tmp_path / "x.sigmf-data")
