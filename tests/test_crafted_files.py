"""Crafted model files and metadata (audit 86): a config of absurd sizes allocates nothing, a calibration record is
bounded, JSON nested too deep is one clear error, an ONNX graph's inputs and outputs are checked against its metadata,
and a recording of thousands of captures plays every retune tag once, in order."""

import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys

import numpy as np
import pmt
import pytest

from gnuradio.specenc import sigmf_io
from gnuradio.specenc.model import DEFAULT_WEIGHTS, load_model
from gnuradio.specenc.model.checkpoint import json_path_for

DEEP = "[" * 100_000  # json's C decoder recurses once per level: RecursionError, no JSONDecodeError


@pytest.fixture
def shipped_copy(tmp_path):
    """(weights path, its JSON as a dict, write(info)) of a copy of the shipped model in tmp_path."""
    weights = tmp_path / "m.safetensors"
    shutil.copy(DEFAULT_WEIGHTS, weights)
    info = json.loads(open(json_path_for(DEFAULT_WEIGHTS)).read())

    def write(changed):
        (tmp_path / "m.json").write_text(json.dumps(changed))
        return str(weights)

    write(info)
    return str(weights), info, write


@contextlib.contextmanager
def address_space_headroom(extra=768 << 20):
    """At most `extra` more bytes of address space while inside: a regression that allocates the crafted config's
    ~0.5 TB network fails at its first big tensor instead of swapping the machine."""
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = vm + extra if hard == resource.RLIM_INFINITY else min(vm + extra, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# --- load_weights: the header and shapes are checked before anything is allocated -------------------------------


def test_a_config_of_absurd_sizes_is_refused_before_anything_is_allocated(shipped_copy):
    """Audit 86: a model JSON edited to d_model 16384, n_layers 64 beside the shipped weights made load_model build the
    whole network first (~550 GB of float32: a MemoryError, or the machine swapping) only to find the weights did not
    fit it. The network is now built on torch's meta device and the file's header config compared first: one
    ValueError naming the fields, within a few hundred MB of address space."""
    weights, info, write = shipped_copy
    write({**info, "config": {**info["config"], "d_model": 16384, "n_layers": 64}})
    with address_space_headroom(), pytest.raises(ValueError) as caught:
        load_model(weights)
    message = str(caught.value)
    assert "saved with another config" in message and "d_model, n_layers" in message and weights in message


def test_weights_without_a_header_config_are_checked_by_their_shapes_before_allocation(shipped_copy, tmp_path):
    """Audit 86, the same crafted config beside weights written before the header recorded a config: the tensor shapes,
    read from the header alone, are compared with the meta network's, and the error names the first tensor that
    differs."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    weights, info, write = shipped_copy
    with safe_open(weights, "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, weights)  # no metadata
    write({**info, "config": {**info["config"], "d_model": 16384, "n_layers": 64}})
    with address_space_headroom(), pytest.raises(ValueError, match=r"do not match the config|has shape .* the config "
                                                                   r"needs"):
        load_model(weights)


@pytest.mark.parametrize("header", ["[1, 2]", '"sdpa"', "17", DEEP])
def test_a_weights_header_config_that_is_no_json_object_is_a_clear_error(shipped_copy, header):
    """Audit 86: a safetensors whose header 'config' is JSON but not an object raised AttributeError ('list' object has
    no attribute 'items'), one nested too deep a RecursionError: neither names the file. Now a ValueError that does."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    weights, _, _ = shipped_copy
    with safe_open(weights, "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, weights, metadata={"config": header})
    with pytest.raises(ValueError, match=r"model weights .*m\.safetensors: the config in its header (must be a JSON "
                                         r"object|is not JSON)"):
        load_model(weights)


def test_the_shipped_weights_still_load_and_predict(shipped_copy):
    """Audit 86's checks before allocation must pass a good file: the copy loads and gives the shipped model's
    scores."""
    weights, _, _ = shipped_copy
    spectra = np.random.default_rng(2).normal(-90, 3, (4, 1024)).astype(np.float32)
    got, want = load_model(weights).predict(spectra), load_model().predict(spectra)
    assert got.labels == want.labels
    np.testing.assert_allclose(got.anomaly_score, want.anomaly_score, atol=1e-6)


# --- check_fields: the calibration record -------------------------------------------------------------------------


@pytest.mark.parametrize("change,field", [
    (lambda m: m.update(calibration={"integrate": 1e30}), r"calibration integrate=1e\+30"),
    (lambda m: m.update(calibration={"integrate": 16.5}), r"calibration integrate=16\.5"),
    (lambda m: m.update(calibration={"integrate": True}), r"calibration integrate=True"),
    (lambda m: m.update(calibration={"integrate": 0}), r"calibration integrate=0 "),
    (lambda m: m.update(calibration={"integrate": 100_001}), r"calibration integrate=100001 "),
    (lambda m: m.update(calibration={"integrate": "16"}), r"calibration integrate='16'"),
    (lambda m: m.update(calibration=[16]), r"a calibration record must be a JSON object"),
    (lambda m: m.update(calibration="integrate 16"), r"a calibration record must be a JSON object"),
    (lambda m: m["training"]["calibration"].update(average=2 ** 24 + 1), r"calibration average=16777217 "),
    (lambda m: m["training"]["calibration"].update(integrate=-3), r"calibration integrate=-3 "),
    (lambda m: m["training"].update(calibration=[1]), r"a calibration record must be a JSON object"),
    (lambda m: m["training"].update(calibration=None), r"a calibration record must be a JSON object"),
    (lambda m: m.update(training="yes"), r"metadata \(and its training record\) must be a JSON object"),
])
def test_a_crafted_calibration_record_is_refused_at_load_naming_the_field(shipped_copy, change, field):
    """Audit 86: the calibration record (metadata.calibration, or metadata.training.calibration) sets how many scores
    the detector averages; {"integrate": 1e30} loaded, then killed the encoder's thread and hung the flowgraph, [16] or
    "training": "yes" loaded and gave a traceback later. Refused at load, the error naming the file and the field."""
    weights, info, write = shipped_copy
    change(info["metadata"])
    write(info)
    with pytest.raises(ValueError, match=r"model config .*m\.json: " + field):
        load_model(weights)


def test_a_calibration_record_within_bounds_loads_and_is_used(shipped_copy):
    """Audit 86's bounds refuse nothing a calibration writes: integrate 16 and average 4 (whole numbers in range) load,
    and the model's integration is the record's."""
    from gnuradio.specenc.training.calibrate import model_integrate

    weights, info, write = shipped_copy
    info["metadata"]["calibration"] = {"integrate": 16, "average": 4, "threshold": 0.9}
    write(info)
    assert model_integrate(load_model(weights)) == 16
    info["metadata"]["calibration"] = {"integrate": 100_000, "average": 2 ** 24}
    write(info)
    assert model_integrate(load_model(weights)) == 100_000


# --- JSON nested too deep --------------------------------------------------------------------------------------------


def test_a_sigmf_meta_nested_too_deep_is_not_valid_json(tmp_path):
    """Audit 86: '[' * 100000 as a .sigmf-meta raised RecursionError out of read_meta (and out of write_annotations
    adding to it); now a ValueError naming the file. read_global, which only peeks, gives {}."""
    meta = tmp_path / "deep.sigmf-meta"
    meta.write_text(DEEP)
    with pytest.raises(ValueError, match=r"deep\.sigmf-meta: not valid JSON"):
        sigmf_io.read_meta(str(meta))
    with pytest.raises(ValueError, match=r"deep\.sigmf-meta: not valid JSON"):
        sigmf_io.write_annotations(str(meta), [{"core:sample_start": 0, "core:sample_count": 10}])
    assert sigmf_io.read_global(str(meta)) == {}
    assert meta.read_text() == DEEP  # left as it was


def test_a_model_json_nested_too_deep_is_not_valid_json(shipped_copy, tmp_path):
    """Audit 86: the model's JSON nested too deep raised RecursionError from load_model; now the ValueError every
    other broken model JSON gives."""
    weights, _, _ = shipped_copy
    (tmp_path / "m.json").write_text(DEEP)
    with pytest.raises(ValueError, match=r"model config .*m\.json is not valid JSON"):
        load_model(weights)


def test_a_capture_families_file_nested_too_deep_is_not_valid_json(tmp_path):
    """Audit 86: `specenc eval --capture-families` with a file nested too deep ended in a RecursionError traceback."""
    from gnuradio.specenc.training.eval_cli import load_capture_families

    path = tmp_path / "families.json"
    path.write_text(DEEP)
    with pytest.raises(ValueError, match=r"families\.json: not valid JSON"):
        load_capture_families(str(path), {"rec"})


def test_a_training_config_nested_too_deep_is_not_valid_json(tmp_path):
    """Audit 86: `specenc train --config` with a file nested too deep ended in a RecursionError traceback."""
    from gnuradio.specenc.training.config import TrainConfig

    path = tmp_path / "train.json"
    path.write_text(DEEP)
    with pytest.raises(ValueError, match=r"train\.json: not valid JSON"):
        TrainConfig.load(str(path))


def test_an_alerts_file_nested_too_deep_is_not_taken_for_an_earlier_runs_alerts(tmp_path):
    """Review of audit 86's mend: the alert sink's check that an existing JSONL path holds an earlier run's alerts (not
    someone's data) caught ValueError only, so a first line of '[' * 5000 raised RecursionError out of the block (a
    traceback, exit 1 from `specenc run`). It is no alerts file: refused like any other."""
    from gnuradio.specenc.alert_sink import alert_sink

    path = tmp_path / "alerts.jsonl"
    path.write_text("[" * 5000 + "\n")
    with pytest.raises(ValueError, match="alerts.jsonl"):
        alert_sink(jsonl_path=str(path), stdout=False)
    assert path.read_text() == "[" * 5000 + "\n"  # left as it was


def test_specenc_run_on_a_meta_nested_too_deep_says_so_in_one_line_and_exits_2(tmp_path):
    """Audit 86: `specenc run deep.sigmf-meta` printed a RecursionError traceback and exited 1; now one line naming the
    file on stderr, status 2 as for any bad input."""
    meta = tmp_path / "deep.sigmf-meta"
    meta.write_text(DEEP)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-m", "gnuradio.specenc.cli", "run", str(meta), "--out",
                           str(tmp_path / "out.sigmf-meta")], capture_output=True, text=True, env=env, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("specenc run: error: ") and "not valid JSON" in lines[0]
    assert str(meta) in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "out.sigmf-meta").exists()


def _small_recording(folder):
    return sigmf_io.write_recording(str(folder / "r.sigmf-meta"), np.zeros(4096, np.complex64), 1e6, 1e8,
                                    datetime="2024-01-01T00:00:00Z")


def test_a_meta_whose_core_dataset_is_no_name_is_a_clear_error(tmp_path):
    """Audit 86's crafted metas: core:dataset a number raised TypeError from os.path.join (a traceback from `specenc
    run`); now a ValueError naming the file and the field."""
    doc = json.loads(open(_small_recording(tmp_path)).read())
    doc["global"]["core:dataset"] = 5
    bad = tmp_path / "dataset.sigmf-meta"
    bad.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"dataset\.sigmf-meta: core:dataset=5 must be the data file's name"):
        sigmf_io.read_meta(str(bad))


def test_a_capture_whose_global_index_runs_past_any_date_is_a_clear_error(tmp_path):
    """Audit 86's crafted metas: a core:global_index that puts a capture past the year 9999 raised OverflowError while
    the source was made; now a ValueError naming the file and the capture."""
    meta = _small_recording(tmp_path)
    doc = json.loads(open(meta).read())
    doc["captures"] = [{"core:sample_start": 0, "core:frequency": 1e8, "core:global_index": 0,
                        "core:datetime": "2024-01-01T00:00:00Z"},
                       {"core:sample_start": 2048, "core:frequency": 1e8, "core:global_index": 10 ** 30}]
    (tmp_path / "index.sigmf-meta").write_text(json.dumps(doc))
    shutil.copy(sigmf_io.data_path_for(meta), tmp_path / "index.sigmf-data")
    rec = sigmf_io.read_meta(str(tmp_path / "index.sigmf-meta"))
    with pytest.raises(ValueError, match=r"index\.sigmf-meta: capture 1: core:global_index 10+ puts it past any date"):
        sigmf_io.capture_changes(rec)


# --- ONNX: inputs and outputs checked against the metadata --------------------------------------------------------


@pytest.fixture(scope="module")
def shipped_onnx(tmp_path_factory):
    """The shipped model exported to ONNX (0.4 s)."""
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed: the ONNX checks are untested")
    pytest.importorskip("onnx", reason="onnx not installed: crafted ONNX files cannot be made")
    from gnuradio.specenc.model.export import export_onnx

    return export_onnx(load_model(), str(tmp_path_factory.mktemp("onnx") / "shipped.onnx"))


def _cut_output(proto, name, columns):
    """Rename the node output `name` and add a Slice keeping its first `columns` columns under the old name."""
    import onnx
    from onnx import helper

    full = f"{name}_full"
    for node in proto.graph.node:
        node.output[:] = [full if o == name else o for o in node.output]
        node.input[:] = [full if i == name else i for i in node.input]
    for const, value in ((f"{name}_starts", 0), (f"{name}_ends", columns), (f"{name}_axes", 1)):
        proto.graph.initializer.append(onnx.numpy_helper.from_array(np.array([value], np.int64), const))
    proto.graph.node.append(helper.make_node("Slice", [full, f"{name}_starts", f"{name}_ends", f"{name}_axes"], [name]))
    (out,) = [o for o in proto.graph.output if o.name == name]
    out.type.tensor_type.shape.dim[1].dim_value = columns


def test_an_onnx_graph_whose_family_head_is_cut_to_3_columns_is_refused(shipped_onnx, tmp_path):
    """Audit 86: an .onnx whose family_logits gives 3 columns (not the metadata's 9 families) loaded, and named every
    spectrum from the wrong list (argmax over 3 of 9). Every output's shape and kind is now checked on one probe row
    against the network the metadata describes: a ValueError naming family_logits."""
    import onnx

    from gnuradio.specenc.model.runtime_onnx import load_onnx_model

    proto = onnx.load(shipped_onnx)
    _cut_output(proto, "family_logits", 3)
    bad = tmp_path / "cut.onnx"
    onnx.save(proto, str(bad))
    import onnxruntime  # the crafted graph itself runs: only the check refuses it

    session = onnxruntime.InferenceSession(str(bad), providers=["CPUExecutionProvider"])
    out = session.run(["family_logits"], {"spectra": np.zeros((1, 1024), np.float32), "band": np.zeros(1, np.int64)})
    assert out[0].shape == (1, 3)
    with pytest.raises(ValueError, match=r"cut\.onnx: output family_logits is float32 \(1, 3\) for one spectrum, but "
                                         r"its metadata describes floats \(1, 9\)"):
        load_onnx_model(str(bad))
    assert load_onnx_model(shipped_onnx).nfft == 1024  # the uncut export loads


def test_an_onnx_graph_with_a_symbolic_or_misnamed_input_is_refused(shipped_onnx, tmp_path):
    """Audit 86: the input check compared the spectra width only when it was a number: a graph taking spectra of a
    symbolic width loaded (onnxruntime then fails, or worse runs, on the first spectrum of another width). Now the
    inputs must be spectra float [batch, nfft] and band int64 [batch], as `specenc export` writes them."""
    import onnx

    from gnuradio.specenc.model.runtime_onnx import load_onnx_model

    proto = onnx.load(shipped_onnx)
    (spectra,) = [i for i in proto.graph.input if i.name == "spectra"]
    spectra.type.tensor_type.shape.dim[1].dim_param = "width"
    bad = tmp_path / "width.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(ValueError, match=r"width\.onnx: its graph takes spectra tensor\(float\) \['batch', 'width'\]"):
        load_onnx_model(str(bad))


def test_an_onnx_export_of_a_flash_model_still_loads(shipped_onnx, tmp_path):
    """Audit 90: a flash model exports as SDPA's maths but its metadata keeps backend flash; the output check built
    that network (flash-attn on the meta device, which fails everywhere) and refused every such file."""
    import onnx

    from gnuradio.specenc.model.runtime_onnx import load_onnx_model

    proto = onnx.load(shipped_onnx)
    (entry,) = [e for e in proto.metadata_props if e.key == "specenc"]
    meta = json.loads(entry.value)
    entry.value = json.dumps({**meta, "config": {**meta["config"], "backend": "flash"}})
    path = tmp_path / "flash.onnx"
    onnx.save(proto, str(path))
    model = load_onnx_model(str(path))
    assert model.config.backend == "flash" and model.predict(np.full((2, 1024), -90, np.float32)).labels == ["noise"] * 2


def test_calibrate_refuses_an_integration_no_model_file_may_hold(shipped_copy):
    """Audit 90: `specenc calibrate --integrate 100001` scored to the end and wrote a model file that load_model then
    refused (a record's integrate is bounded at 100000); refused before scoring."""
    from gnuradio.specenc.training.calibrate_cli import recalibrate

    weights, _, _ = shipped_copy
    with pytest.raises(ValueError, match=r"integrate=100001 must be in 1\.\.100000"):
        recalibrate(load_model(weights), "no-such-recording.sigmf-meta", 1e-3, integrate=100_001)


def test_an_onnx_graph_fixed_at_one_row_is_refused(shipped_onnx, tmp_path):
    """Review of audit 86's mend: a graph exported without a dynamic batch loaded (the check row is one spectrum), then
    failed every batch of a flowgraph, and `specenc run` exited 0 reporting nothing. Refused at load."""
    import onnx

    from gnuradio.specenc.model.runtime_onnx import load_onnx_model

    proto = onnx.load(shipped_onnx)
    for graph_input in proto.graph.input:
        graph_input.type.tensor_type.shape.dim[0].dim_value = 1  # replaces the dim_param "batch"
    bad = tmp_path / "batch1.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(ValueError, match=r"batch1\.onnx: its graph takes spectra tensor\(float\) \[1, 1024\].*any batch"):
        load_onnx_model(str(bad))


def test_an_onnx_files_calibration_record_and_deep_metadata_are_checked(shipped_onnx, tmp_path):
    """An exported model carries the checkpoint's metadata: the same calibration bounds hold for it (audit 86), and
    its metadata nested too deep is the ValueError any broken metadata gives (it was a RecursionError)."""
    import onnx

    from gnuradio.specenc.model.runtime_onnx import load_onnx_model

    proto = onnx.load(shipped_onnx)
    (entry,) = [e for e in proto.metadata_props if e.key == "specenc"]
    meta = json.loads(entry.value)
    entry.value = json.dumps({**meta, "metadata": {**meta.get("metadata", {}), "calibration": {"integrate": 1e30}}})
    bad = tmp_path / "cal.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(ValueError, match=r"cal\.onnx.*calibration integrate=1e\+30 must be a whole number"):
        load_onnx_model(str(bad))
    entry.value = DEEP
    onnx.save(proto, str(bad))
    with pytest.raises(ValueError, match=r"cal\.onnx: its 'specenc' metadata is not valid JSON"):
        load_onnx_model(str(bad))


# --- sigmf_source: thousands of captures, each retune tagged once ------------------------------------------------


def _scanning_recording(folder, captures=3000, spacing=16):
    """A cf32 recording of `captures` captures `spacing` samples apart, each at another frequency; every 500th has a
    core:datetime of its own (the first the recording's start). Returns (meta path, [(sample, Hz)], [(sample, rx_time
    seconds)])."""
    n = captures * spacing
    iq = (np.arange(n) % 1000).astype(np.float32).astype(np.complex64)  # sample i holds i % 1000
    meta = sigmf_io.write_recording(str(folder / "scan.sigmf-meta"), iq, 1e6, 1e8, datetime="2024-01-01T00:00:00Z")
    doc = json.loads(open(meta).read())
    doc["captures"] = []
    times = []
    for i in range(captures):
        cap = {"core:sample_start": i * spacing, "core:frequency": 1e8 + 1e3 * i}
        if i == 0:
            cap["core:datetime"] = "2024-01-01T00:00:00Z"
        elif i % 500 == 0:
            cap["core:datetime"] = f"2024-01-01T00:01:{i // 500:02d}Z"
            times.append((i * spacing, sigmf_io.datetime_to_rx_time(cap["core:datetime"])))
        doc["captures"].append(cap)
    open(meta, "w").write(json.dumps(doc))
    return meta, [(i * spacing, 1e8 + 1e3 * i) for i in range(captures)], times


def _play(meta, items, repeat=False, chunk=100):
    from gnuradio import blocks, gr

    from gnuradio.specenc.sigmf_source import sigmf_source

    tb = gr.top_block()
    src = sigmf_source(meta, repeat=repeat)
    src.set_max_noutput_items(chunk)  # many work() calls, tags on and between their edges
    head = blocks.head(gr.sizeof_gr_complex, items)
    sink = blocks.vector_sink_c()
    tb.connect(src, head, sink)
    tb.run()
    found = {}
    for t in sorted(sink.tags(), key=lambda t: t.offset):
        found.setdefault(pmt.symbol_to_string(t.key), []).append((t.offset, pmt.to_python(t.value)))
    return np.array(sink.data()), found


@pytest.mark.parametrize("repeat", [False, True])
def test_a_recording_of_3000_retunes_tags_every_retune_once_in_order(specenc_cpp, tmp_path, repeat):
    """Audit 86: sigmf_source looked through every capture's tag on each work() call (a long scanning recording of
    thousands of captures played slower than real time); it now finds each call's tags by bisection. What it tags must
    not change: every rx_freq on its capture's first sample exactly once and in order (with repeat, again on the second
    pass, which tags no rx_rate or rx_time), each capture's own rx_time where it has one, the samples unchanged."""
    meta, retunes, times = _scanning_recording(tmp_path)
    n = 3000 * 16
    passes = 2 if repeat else 1
    data, found = _play(meta, passes * n, repeat)
    assert len(data) == passes * n
    np.testing.assert_array_equal(data.real, np.tile(np.arange(n) % 1000, passes))
    want_freq = [(p * n + s, f) for p in range(passes) for s, f in retunes]
    assert found["rx_freq"] == want_freq
    assert found["rx_rate"] == [(0, 1e6)]
    start = sigmf_io.datetime_to_rx_time("2024-01-01T00:00:00Z")
    assert [(o, tuple(v)) for o, v in found["rx_time"]] == [(0, start)] + [(s, when) for s, when in times]
    assert set(found) == {"rx_freq", "rx_rate", "rx_time"}


@pytest.mark.parametrize("text", [json.dumps({"files": [1]}), "\udcff", DEEP, "[" + "9" * 5000 + "]"])
def test_an_earlier_export_report_that_is_no_report_is_a_clear_error(tmp_path, text):
    """Audits 90-92: `specenc export --out DIR` reads DIR/export.json first; a report nested too deep, one whose files
    are a list (AttributeError traceback), a binary file or a 5000-digit number (errors naming no file) stop it with
    one error naming the file, before anything is written."""
    from gnuradio.specenc.model.export_cli import _earlier_files

    path = tmp_path / "export.json"
    path.write_bytes(b"\xff\xfe" if text == "\udcff" else text.encode())
    with pytest.raises(ValueError, match=r"export\.json: not an export report"):
        _earlier_files(tmp_path)
