"""The block ymls match the Python blocks: make() keywords, callbacks, message port ids, category."""

import inspect
import pathlib
import re

import pmt
import pytest
import yaml

from gnuradio.specenc import spectrum_tags as T

GRC = pathlib.Path(__file__).resolve().parents[1] / "grc"
BLOCKS = ["spectrum_encoder", "anomaly_detector", "alert_sink", "iq_to_alerts"]


def load(name):
    return yaml.safe_load((GRC / f"specenc_{name}.block.yml").read_text())


def block_class(name):
    import importlib

    return getattr(importlib.import_module(f"gnuradio.specenc.{name}"), name)


@pytest.mark.parametrize("name", BLOCKS)
def test_yml_matches_the_class(name):
    doc = load(name)
    cls = block_class(name)
    assert doc["id"] == f"specenc_{name}" and doc["category"] == "[Spectrum Encoder]"
    make = doc["templates"]["make"]
    assert f"specenc.{name}(" in make
    keywords = re.findall(r"(\w+)=\$\{", make)
    params = inspect.signature(cls.__init__).parameters
    assert keywords and all(k in params for k in keywords), (keywords, list(params))
    assert {p["id"] for p in doc["parameters"]} == set(keywords)  # every parameter reaches the constructor
    for callback in doc["templates"].get("callbacks", []):
        method = callback.split("(")[0]
        assert callable(getattr(cls, method, None)), f"{name}.yml calls {method}() which {name} lacks"
    for section in ("Inputs:", "Outputs:", "Parameters:"):
        assert section in doc["documentation"]
    assert doc["asserts"] or name == "alert_sink"


def test_message_port_ids_are_the_module_constants():
    ids = {name: [p["id"] for p in load(name).get("outputs", []) + load(name).get("inputs", [])
                  if p.get("domain") == "message"] for name in BLOCKS}
    detections, alerts = pmt.symbol_to_string(T.DETECTIONS_PORT), pmt.symbol_to_string(T.ALERTS_PORT)
    assert ids == {"spectrum_encoder": [detections], "anomaly_detector": [alerts], "alert_sink": [alerts],
                   "iq_to_alerts": [alerts, detections]}


@pytest.mark.parametrize("name", ["spectrum_encoder", "anomaly_detector"])
def test_a_python_blocks_stream_outputs_are_not_optional(name):
    # A Python block's io signature is fixed: an unconnected output fails the flowgraph at start, so GRC must
    # flag it before. iq_to_alerts (a hier block) feeds its detector to a null sink too, so its outputs may be.
    optional = [p.get("label") for p in load(name)["outputs"] if p["domain"] == "stream" and p.get("optional")]
    assert optional == []


def failed_asserts(name, **values):
    """The asserts of a block's yml that fail for these parameter values (others: plain numeric defaults)."""
    namespace = {"samp_rate": 1e6}
    for p in load(name)["parameters"]:
        if p["dtype"] in ("int", "float", "real", "raw") and p["id"] not in values:
            try:
                namespace[p["id"]] = eval(str(p.get("default", "0")), {}, dict(namespace))  # noqa: S307 - our ymls
            except (NameError, SyntaxError):
                namespace[p["id"]] = None
        elif p["dtype"] in ("string", "file_open", "file_save"):
            namespace[p["id"]] = str(p.get("default", ""))
    namespace.update(values)
    return [a for a in load(name)["asserts"] if not eval(a.strip()[2:-1], {}, namespace)]  # noqa: S307


@pytest.mark.parametrize("name", ["spectrum_encoder", "iq_to_alerts", "psd", "sigmf_source"])
def test_yml_asserts_refuse_what_the_blocks_refuse_at_play_time(name):
    """Values grcc compiled and the blocks then refused with a traceback at play time (audit 31): rates and centre
    frequencies that are no finite numbers, and spans over the psd's 2^24 samples (encoder and chain); a SigMF
    Source without a file (audit 54)."""
    given = {"path": "a.sigmf-meta"} if name == "sigmf_source" else {}
    assert failed_asserts(name, **given) == []  # the defaults pass
    rate, freq = ("rate", "freq") if name == "sigmf_source" else ("sample_rate", "center_freq")
    assert failed_asserts(name, **given, **{rate: float("inf")})
    assert failed_asserts(name, **given, **{rate: float("nan")})
    if name != "psd":
        assert failed_asserts(name, **given, **{freq: float("nan")})
        assert failed_asserts(name, **given, **{freq: float("inf")})
    if name != "sigmf_source":
        assert failed_asserts(name, nfft=65536, average=1024, overlap=0.0)
    else:
        assert failed_asserts(name) == ["${ len(path) > 0 }"]  # dropped without a file: red until one is chosen
