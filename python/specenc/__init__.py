#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""gr-specenc: learned spectrum awareness for GNU Radio.

Blocks load lazily, so `gnuradio.specenc.model`, `.dsp`, `.synth` and the training code import
no GNU Radio and run on machines without it.
"""

import importlib
import sys
import types

# Public name -> module that defines it. The C++ blocks come from the pybind11 module.
_LAZY = {
    "psd": ".specenc_python",
    "sigmf_source": ".sigmf_source",
    "spectrum_encoder": ".spectrum_encoder",
    "anomaly_detector": ".anomaly_detector",
    "alert_sink": ".alert_sink",
    "iq_to_alerts": ".iq_to_alerts",
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gnuradio.specenc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


class _Package(types.ModuleType):
    """Importing submodule `x` sets this package's attribute `x` to the module, hiding the block class `x`
    (then GRC's `specenc.spectrum_encoder(...)` calls a module). Keep the class under that name instead;
    the module stays reachable through sys.modules and `from gnuradio.specenc.x import ...`."""

    def __setattr__(self, name, value):
        if name in _LAZY and isinstance(value, types.ModuleType) and hasattr(value, name):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
