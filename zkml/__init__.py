"""zkml: zero-knowledge verifiable ML inference on ezkl.

The library does the work (one module per pipeline stage); ``zkml_cli`` is a
thin command line over it. The entry points (:mod:`zkml.api`) load lazily, so
``import zkml`` stays cheap::

    import zkml
    circuit = zkml.compile("model.onnx", calibration="cal.json")
    bundle = zkml.prove(circuit, "input.json")
    verdict = zkml.verify(bundle)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = {"compile", "prove", "verify", "reproduce", "deploy"}
_TYPES = {
    "Bundle": "zkml.bundle",
    "Circuit": "zkml.circuit",
    "CircuitOptions": "zkml.calibrate",
    "Store": "zkml.store",
    "Verdict": "zkml.verify",
    "ZkmlError": "zkml.errors",
}

__all__ = sorted(_API | set(_TYPES) | {"__version__"})


def __getattr__(name: str) -> Any:
    import importlib

    if name in _API:
        return getattr(importlib.import_module("zkml.api"), name)
    if name in _TYPES:
        return getattr(importlib.import_module(_TYPES[name]), name)
    raise AttributeError(f"module 'zkml' has no attribute {name!r}")
