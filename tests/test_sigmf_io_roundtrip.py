"""SigMF/raw reading and writing: scaling per datatype, memmap slices, clear errors, valid metadata."""

import json
import os
import warnings

import numpy as np
import pytest

from gnuradio.specenc import sigmf_io


@pytest.fixture
def iq():
    rng = np.random.default_rng(1)
    return (0.5 * (rng.standard_normal(5000) + 1j * rng.standard_normal(5000))).clip(-0.99, 0.99).astype(np.complex64)


# datatype -> worst-case quantisation error after a write/read round trip
STEPS = {"cf32_le": 1e-7, "ci16_le": 0.5 / 32768 + 1e-7, "ci8": 0.5 / 128 + 1e-7, "cu8": 0.5 / 127.5 + 1e-7}


@pytest.mark.parametrize("datatype", sorted(STEPS))
def test_roundtrip_each_datatype(tmp_path, iq, datatype):
    iq = (iq.real.clip(-0.99, 0.99) + 1j * iq.imag.clip(-0.99, 0.99)).astype(np.complex64)
    meta = sigmf_io.write_recording(tmp_path / "rec", iq, 2.4e6, 433.92e6, datatype=datatype,
                                    datetime="2026-11-23T12:00:00.250Z")
    assert meta.endswith(".sigmf-meta") and os.path.isfile(meta[:-4] + "data")
    rec = sigmf_io.read_meta(meta)
    assert (rec.datatype, rec.sample_rate, rec.center_freq, rec.num_samples) == (datatype, 2.4e6, 433.92e6, len(iq))
    assert rec.datetime == "2026-11-23T12:00:00.250Z"
    back = sigmf_io.read_samples(rec)
    assert back.dtype == np.complex64
    assert np.max(np.abs(back.real - iq.real)) <= STEPS[datatype]
    assert np.max(np.abs(back.imag - iq.imag)) <= STEPS[datatype]
    np.testing.assert_array_equal(sigmf_io.read_samples(rec, 1234, 100), back[1234:1334])


def test_a_write_stopped_part_way_leaves_no_old_meta_over_new_samples(tmp_path, iq, monkeypatch):
    """`specenc synth` stopped while it rewrote a recording left the old meta (rate, centre, truth) over the new
    partial samples, loading without a word (audit 64)."""
    meta = tmp_path / "r.sigmf-meta"
    sigmf_io.write_recording(str(meta), iq, sample_rate=1e6, center_freq=433.92e6)

    def stopped(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(sigmf_io, "_to_raw", stopped)
    with pytest.raises(KeyboardInterrupt):
        sigmf_io.write_recording(str(meta), iq, sample_rate=2e6, center_freq=868e6)
    assert not meta.exists()


def test_integer_scaling_is_documented_full_scale(tmp_path):
    raw = tmp_path / "x.cu8"
    np.array([0, 255, 127, 128], np.uint8).tofile(raw)
    rec = sigmf_io.open_raw(raw, 1e6, 100e6, "cu8")
    np.testing.assert_allclose(sigmf_io.read_samples(rec), [-1 + 1j, (-0.5 + 0.5j) / 127.5], rtol=1e-6)
    np.array([-128, 127, 16384, -32768], "<i2").tofile(tmp_path / "x.ci16")
    rec = sigmf_io.open_raw(tmp_path / "x.ci16", 1e6, 0, "ci16")
    np.testing.assert_allclose(sigmf_io.read_samples(rec), [(-128 + 127j) / 32768, 0.5 - 1j], rtol=1e-6)
    np.array([-128, 64], np.int8).tofile(tmp_path / "x.ci8")
    rec = sigmf_io.open_raw(tmp_path / "x.ci8", 1e6, 0, "ci8")
    np.testing.assert_allclose(sigmf_io.read_samples(rec), [-1 + 0.5j], rtol=1e-6)


def test_written_meta_is_valid_sigmf_with_sorted_annotations_and_declared_extension(tmp_path, iq):
    from sigmf import validate

    anns = [
        {"core:sample_start": 900, "core:sample_count": 10, "core:label": "fm", "specenc:confidence": np.float32(0.5)},
        {"core:sample_start": 100, "core:sample_count": 10, "core:label": "tone",
         "core:freq_lower_edge": 1.0, "core:freq_upper_edge": 2.0},
    ]
    meta = sigmf_io.write_recording(tmp_path / "a.sigmf-meta", iq, 1e6, 868e6, annotations=anns, description="test")
    with open(meta) as f:
        doc = json.load(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # undeclared extension would warn
        validate.validate(doc)
    assert doc["global"]["core:version"].startswith("1.")
    assert [a["core:sample_start"] for a in doc["annotations"]] == [100, 900]
    assert {"name": "specenc", "version": "1.0.0", "optional": True} in doc["global"]["core:extensions"]
    sigmf_io.write_annotations(meta, [{"core:sample_start": 500, "core:label": "ask"}])
    rec = sigmf_io.read_meta(meta)
    assert [a["core:sample_start"] for a in rec.annotations] == [100, 500, 900]
    sigmf_io.write_annotations(meta, [{"core:sample_start": 7}], replace=True)
    assert [a["core:sample_start"] for a in sigmf_io.read_meta(meta).annotations] == [7]


def test_annotations_with_one_start_are_written_in_one_order_whatever_order_they_came_in(tmp_path, iq):
    """Emissions ending in one encoder call came in an order set by where the batches were cut, so two runs of
    `specenc run` on one input wrote different files (audit 52)."""
    anns = [{"core:sample_start": 0, "core:sample_count": n, "core:label": label, "core:freq_lower_edge": lo,
             "core:freq_upper_edge": lo + 1.0} for n, label, lo in ((10, "fm", 5.0), (10, "fm", 2.0), (4, "am", 9.0))]
    written = []
    for order in (anns, anns[::-1], anns[1:] + anns[:1]):
        meta = sigmf_io.write_recording(tmp_path / "a.sigmf-meta", iq, 1e6, 868e6, annotations=order)
        written.append(sigmf_io.read_meta(meta).annotations)
    assert written[0] == written[1] == written[2]
    assert sorted(map(str, written[0])) == sorted(map(str, anns))


def test_write_annotations_creates_meta_describing_another_recording(tmp_path, iq):
    src = sigmf_io.read_meta(sigmf_io.write_recording(tmp_path / "in", iq, 1e6, 868e6, datatype="ci16_le"))
    out = sigmf_io.write_annotations(tmp_path / "out.sigmf-meta", [{"core:sample_start": 3}], recording=src)
    rec = sigmf_io.read_meta(out)
    assert rec.data_path == src.data_path and rec.num_samples == len(iq) and rec.datatype == "ci16_le"
    with pytest.raises(FileNotFoundError, match="recording="):
        sigmf_io.write_annotations(tmp_path / "none.sigmf-meta", [])


def test_core_offset_counts_sample_indices_from_the_whole_recording(tmp_path, iq):
    """A recording split over files numbers each file's first sample core:offset; SigMF's captures and annotations
    give absolute indices. Read, they count from the file's first sample; written, the offset is added back."""
    meta = sigmf_io.write_recording(tmp_path / "part2", iq, 1e6, 915e6, annotations=[{"core:sample_start": 0}])
    doc = json.load(open(meta))
    doc["global"]["core:offset"] = 5000
    doc["captures"][0]["core:sample_start"] = 5000
    doc["captures"].append({"core:sample_start": 5600, "core:frequency": 2.44e9})
    doc["annotations"] = [{"core:sample_start": 5300, "core:sample_count": 10, "core:label": "fsk"}]
    json.dump(doc, open(meta, "w"))
    rec = sigmf_io.read_meta(meta)
    assert rec.offset == 5000
    assert [c["core:sample_start"] for c in rec.captures] == [0, 600]
    assert [a["core:sample_start"] for a in rec.annotations] == [300]
    assert sigmf_io.retunes(rec) == [(600, 2.44e9)]
    out = sigmf_io.write_annotations(tmp_path / "out.sigmf-meta", [{"core:sample_start": 3}], recording=rec)
    written = json.load(open(out))
    assert written["global"]["core:offset"] == 5000
    assert [c["core:sample_start"] for c in written["captures"]] == [5000, 5600]
    assert [a["core:sample_start"] for a in written["annotations"]] == [5003]
    sigmf_io.write_annotations(out, [{"core:sample_start": 7}])  # added to the meta it wrote
    assert [a["core:sample_start"] for a in sigmf_io.read_meta(out).annotations] == [3, 7]
    doc["annotations"] = [{"core:sample_start": 4999}]
    json.dump(doc, open(meta, "w"))
    with pytest.raises(ValueError, match="annotation 0 starts at sample 4999, before core:offset=5000"):
        sigmf_io.read_meta(meta)
    doc["global"]["core:offset"] = 2.5
    json.dump(doc, open(meta, "w"))
    with pytest.raises(ValueError, match="core:offset=2.5 must be a whole number"):
        sigmf_io.read_meta(meta)


def test_clear_errors(tmp_path, iq):
    meta = sigmf_io.write_recording(tmp_path / "r", iq, 1e6, 1e8, datatype="ci16_le")
    with open(meta[:-4] + "data", "ab") as f:
        f.write(b"\x01")  # one stray byte
    with pytest.raises(ValueError, match="truncated"):
        sigmf_io.read_meta(meta)
    doc = json.load(open(meta))
    doc["global"]["core:datatype"] = "ri16_le"
    json.dump(doc, open(meta, "w"))
    with pytest.raises(ValueError, match=r"r.sigmf-meta: unsupported datatype 'ri16_le'"):
        sigmf_io.read_meta(meta)
    del doc["global"]["core:sample_rate"]
    doc["global"]["core:datatype"] = "cf32_le"
    json.dump(doc, open(meta, "w"))
    with pytest.raises(ValueError, match="missing core:sample_rate"):
        sigmf_io.read_meta(meta)
    with pytest.raises(FileNotFoundError):
        sigmf_io.read_meta(tmp_path / "absent.sigmf-meta")
    with pytest.raises(ValueError, match="sample_rate"):
        sigmf_io.open_raw(meta[:-4] + "data", 0, 0, "cf32")
    with pytest.raises(ValueError, match="unsupported datatype 'cs12'"):
        sigmf_io.open_raw(meta[:-4] + "data", 1e6, 0, "cs12")


def test_malformed_metadata_and_rates_are_named(tmp_path, iq):
    """Mistakes in a meta or in the rate given are one error naming the field, never a Python exception of its own
    (AttributeError, 'could not convert string to float') nor a value quietly ignored (rate 0)."""
    meta = sigmf_io.write_recording(tmp_path / "r", iq, 1e6, 1e8)
    good = json.load(open(meta))

    def broken(change):
        doc = json.loads(json.dumps(good))
        change(doc)
        json.dump(doc, open(meta, "w"))
        return meta

    for change, message in [
        (lambda d: d.clear() or d.update(x=1), "missing 'global' object"),
        (lambda d: d["captures"][0].update({"core:frequency": "abc"}), r"capture 0: core:frequency='abc' is not a"),
        (lambda d: d["annotations"].append({"core:sample_start": "x"}), r"annotation 0: core:sample_start='x' is not"),
        (lambda d: d["global"].update({"core:sample_rate": float("inf")}), "core:sample_rate=inf must be a finite"),
        (lambda d: d["global"].update({"core:sample_rate": True}), "core:sample_rate=True must be a finite"),  # 1 Hz
        (lambda d: d["captures"].append({**d["captures"][0], "core:frequency": 2e8}),  # audit 53: alerts at 200 MHz
         "two captures start at sample 0"),
        (lambda d: d["global"].update({"core:num_channels": None}), "core:num_channels=None; only 1 channel"),
        (lambda d: d["global"].update({"core:trailing_bytes": -8}), "core:trailing_bytes=-8 must be a whole number"),
        (lambda d: d["captures"][0].update({"core:datetime": "2016-12-31T23:59:60Z"}),  # a leap second
         r"capture 0: core:datetime='2016-12-31T23:59:60Z' is not ISO 8601 UTC"),
        (lambda d: d["captures"][0].update({"core:datetime": "1969-12-31T23:59:59Z"}),
         "capture 0: core:datetime='1969-12-31T23:59:59Z' lies before 1970"),
    ]:
        with pytest.raises(ValueError, match=message):
            sigmf_io.read_meta(broken(change))
    open(meta, "w").write("[1, 2]")
    with pytest.raises(ValueError, match="not a SigMF meta"):
        sigmf_io.read_meta(meta)
    json.dump(good, open(meta, "w"))
    for rate in (0, -1e6, float("inf")):
        with pytest.raises(ValueError, match=f"rate={rate!r} must be a finite sample rate > 0 Hz"):
            sigmf_io.open_recording(meta, rate=rate)
    with pytest.raises(ValueError, match="is a folder"):
        sigmf_io.open_recording(tmp_path)
    for freq in (float("nan"), float("inf"), "abc"):  # the source tagged rx_freq=nan: alerts at 0 Hz (audit 31)
        with pytest.raises(ValueError, match=f"freq={freq!r} must be a finite centre frequency"):
            sigmf_io.open_recording(meta, freq=freq)
        raw = tmp_path / "cap.cf32"
        raw.write_bytes(open(meta[:-4] + "data", "rb").read())
        with pytest.raises(ValueError, match=f"freq={freq!r} must be a finite centre frequency"):  # raw: same name
            sigmf_io.open_recording(raw, rate=1e6, fmt="cf32", freq=freq)
    # A data file without its meta is raw IQ when given a rate and a format, and says what it needs otherwise.
    data = tmp_path / "alone.sigmf-data"
    data.write_bytes(open(meta[:-4] + "data", "rb").read())
    rec = sigmf_io.open_recording(data, rate=1e6, fmt="cf32")
    assert rec.meta_path is None and rec.num_samples == len(iq)
    with pytest.raises(ValueError, match="needs a sample rate and a format"):
        sigmf_io.open_recording(data)


def test_a_start_before_1970_is_unknown_and_items_past_the_data_are_named(tmp_path, iq, caplog):
    """A clock never set (core:datetime at the epoch) on a capture that starts later put the file's start before
    1970: the source block then crashed making rx_time. Captures and annotations past the data were kept silently."""
    meta = sigmf_io.write_recording(tmp_path / "r", iq, 1e6, 1e8)
    doc = json.load(open(meta))
    doc["captures"][0].update({"core:sample_start": 100, "core:datetime": "1970-01-01T00:00:00Z"})
    doc["annotations"] = [{"core:sample_start": len(iq) - 10, "core:sample_count": 50, "core:label": "late"}]
    json.dump(doc, open(meta, "w"))
    with caplog.at_level("WARNING"):
        rec = sigmf_io.read_meta(meta)
    assert rec.datetime is None and sigmf_io.start_datetime(rec) is None  # rx_time (0, 0.0): the time unknown
    assert f"1 captures or annotations reach past the {len(iq)} samples its data holds (from sample {len(iq) - 10})" \
        in caplog.text
    assert "less the 100 samples before it, lies before 1970" in caplog.text


def test_optional_fields_and_archives(tmp_path, iq, caplog):
    meta = sigmf_io.write_recording(tmp_path / "r", iq, 1e6, 1e8)
    with open(meta[:-4] + "data", "ab") as f:
        f.write(np.array([1000, -1000], np.float32).tobytes())  # an 8-byte footer that is not IQ
    doc = json.load(open(meta))
    doc["global"]["core:trailing_bytes"] = 8
    del doc["global"]["core:sample_rate"]  # optional in SigMF: the caller gives it
    json.dump(doc, open(meta, "w"))
    doc["captures"][0].pop("core:frequency")
    json.dump(doc, open(meta, "w"))
    with caplog.at_level("WARNING"):
        rec = sigmf_io.open_recording(meta, rate=2e6)
    assert rec.num_samples == len(iq) and rec.sample_rate == 2e6 and rec.center_freq == 0.0
    assert "no core:frequency in its first capture" in caplog.text
    np.testing.assert_array_equal(sigmf_io.read_samples(rec), iq)
    doc["global"]["core:metadata_only"] = True
    json.dump(doc, open(meta, "w"))
    with pytest.raises(ValueError, match="core:metadata_only: it describes a recording without its samples"):
        sigmf_io.read_meta(meta, rate=1e6)
    archive = tmp_path / "r.sigmf"
    archive.write_bytes(b"a tar of meta and data")
    with pytest.raises(ValueError, match="r.sigmf is a SigMF archive; extract it"):
        sigmf_io.open_recording(archive, rate=1e6, fmt="cf32")  # not read as raw IQ, even with a rate and format


def test_rx_time_conversion_keeps_nanoseconds():
    secs, frac = sigmf_io.datetime_to_rx_time("2026-11-23T12:00:01.123456789Z")
    assert secs == 1795435201 and frac == pytest.approx(0.123456789, abs=1e-12)
    with pytest.raises(ValueError, match="ISO 8601"):
        sigmf_io.datetime_to_rx_time("yesterday")


def test_reads_the_shared_recordings_by_slices(shared_iq):
    for meta in sorted(shared_iq.glob("*.sigmf-meta")):
        rec = sigmf_io.read_meta(meta)
        x = sigmf_io.read_samples(rec, 0, 4096)
        assert len(x) == min(4096, rec.num_samples) and np.all(np.isfinite(x))
        assert np.max(np.abs(x)) <= np.sqrt(2) * 1.01 or rec.datatype == "cf32_le"


@pytest.mark.parametrize("datatype", ["cf32_le", "ci16_le"])
def test_read_samples_of_a_file_cut_short_since_read_meta_is_an_error(tmp_path, datatype):
    """audit 61: without the check read_samples returned np.empty garbage past the data's new end (1000 samples from
    a 10-sample file); training and eval read recordings this way."""
    meta = sigmf_io.write_recording(tmp_path / "r", np.full(1000, 0.5, np.complex64), 1e6, 100e6, datatype=datatype)
    rec = sigmf_io.read_meta(meta)
    os.truncate(rec.data_path, 10 * 2 * np.dtype(sigmf_io.DATATYPES[datatype][0]).itemsize)  # 10 samples left
    with pytest.raises(ValueError, match="the data ends at sample 10, not 1000 as when it was opened"):
        sigmf_io.read_samples(rec)
    with pytest.raises(ValueError, match="the data ends at sample 10, not 25 "):
        sigmf_io.read_samples(rec, 5, 20)
    np.testing.assert_array_equal(sigmf_io.read_samples(rec, 2, 8), np.full(8, 0.5, np.complex64))  # what is left reads


@pytest.mark.parametrize("datatype,raw,back", [
    ("ci8", [127, 64, -128, -13], [127 / 128 + 0.5j, -1 - 13j / 128]),
    ("ci16_le", [32767, 16384, -32768, -3277], [32767 / 32768 + 0.5j, -1 - 3277j / 32768]),
    ("cu8", [255, 191, 0, 115], [1 + 63.5j / 127.5, -1 - 12.5j / 127.5]),
])
def test_integer_writes_clip_out_of_range_samples_to_full_scale(tmp_path, datatype, raw, back):
    """audit 61: without the clip 1.5 and -2 wrapped around in the integer type (ci16 read back -0.5 and 0: spurs in a
    saturated synth recording); they saturate at full scale instead."""
    iq = np.array([1.5 + 0.5j, -2.0 - 0.1j], np.complex64)
    rec = sigmf_io.read_meta(sigmf_io.write_recording(tmp_path / "r", iq, 1e6, 100e6, datatype=datatype))
    assert np.fromfile(rec.data_path, sigmf_io.DATATYPES[datatype][0]).tolist() == raw
    np.testing.assert_allclose(sigmf_io.read_samples(rec), back, rtol=0, atol=1e-7)


def test_upper_case_sigmf_names_are_refused_not_read_as_raw(tmp_path):
    """REC.SIGMF-META given with --rate/--format was read as raw IQ, its JSON text analysed as samples (audit 69)."""
    meta = sigmf_io.write_recording(tmp_path / "r", np.zeros(64, np.complex64), 1e6, 915e6)
    upper = tmp_path / "R.SIGMF-META"
    os.rename(meta, upper)
    with pytest.raises(ValueError, match="SigMF names its files in lower case"):
        sigmf_io.open_recording(upper, rate=1e6, fmt="cu8")
    assert sigmf_io.open_recording(tmp_path / "r.sigmf-data", rate=1e6, fmt="cf32").num_samples == 64  # meta gone


def test_an_upper_case_archive_name_is_refused_as_an_archive(tmp_path):
    """R.SIGMF (a tar) was read as raw IQ, its headers and JSON analysed as samples (audit 76)."""
    archive = tmp_path / "R.SIGMF"
    archive.write_bytes(bytes(1024))
    with pytest.raises(ValueError, match="is a SigMF archive; extract it"):
        sigmf_io.open_recording(archive, rate=1e6, fmt="cu8")
