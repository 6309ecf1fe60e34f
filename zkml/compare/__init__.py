"""Cross-runtime comparison: the same input through independent runtimes.

A model may have any number of inputs (float inputs are quantized by the
circuit, int and bool inputs are passed as integers, as ``zkml prove`` does)
and any number of outputs: every runtime gets the same named feed, and every
output is judged in its own row against its own tolerance.

Runtimes, each compared against onnxruntime (the float reference):

- ``circuit``: the quantized circuit. For a model, ezkl's witness of the
  compiled circuit, dequantized; for a proof bundle, the *proven* outputs
  (checked against the proofs with :func:`zkml.verify.verify_bundle` when the
  circuit's public artifacts are at hand).
- ``tract``: a second, independent ONNX runtime (PyPI ``tract``), when installed.
- ``torch``: the source module, when ``MODULE.py:FACTORY`` (and optionally a
  state_dict) is given; only for a model with one input (the module is called
  with its batch).

For every runtime and every model output we report the max absolute error,
the max relative error (the max absolute error divided by the largest
reference magnitude of that output, so near-zero logits do not blow it up),
the mean absolute error, argmax agreement per sample, and a verdict.

Tolerance for the circuit (per output, overridable with ``tolerance=``)::

    tol = MARGIN * e_fx + FLOOR_LSB * 2^-s_out

``e_fx`` is the max |fixed-point emulation - float| over the compared inputs:
the ONNX is re-run in onnxruntime with every float weight rounded to the
circuit's param-scale grid (2^-s_param) and the inputs rounded to its
input-scale grid (2^-s_in), i.e. the error that representing these inputs and
weights at the circuit's scale causes *on these inputs*. What the emulation
leaves out is the rounding of intermediate values when the circuit rescales a
product back to scale s (at most half an output LSB per rescale, amplified by
later layers); ``FLOOR_LSB`` LSBs of the output scale ``s_out`` and the
``MARGIN`` factor bound that part. Measured on the bundled digits models at
scale 6 over the whole 360-row test set: circuit-vs-emulation differs by at
most 3.5 LSB (MLP) and 6 LSB (CNN); the per-sample ratio of circuit error to
emulated error is at most 1.44, so ``2 * e_fx + 4 LSB`` holds every sample
with room (MLP: observed max 0.224, tolerance >= 0.49 over the set).

Why not the error recorded at calibration (``calibration.json``)? It is
reported as context, but the tolerance is computed only from things the
checker trusts: the ONNX it re-executes, the inputs, and the scales (bound to
the verifying key by the settings digest). A forged circuit folder could
claim any calibration error; it cannot change what the emulation computes.

Float runtimes (tract, torch) must agree with onnxruntime to
``FLOAT_RTOL * max(1, max |reference|)``: they compute the same float32
graph, so anything more is a different model (for example an ONNX exported
from other weights than the torch module's).
"""

from zkml.compare.plot import plot
from zkml.compare.result import Check, Comparison, OutputTolerance, Row
from zkml.compare.run import (
    LABEL_KEYS,
    compare_bundle,
    compare_model,
    input_commitment,
    input_feed,
    load_input,
    load_labels,
)
from zkml.compare.runtimes import REFERENCE, as_feed, run_onnxruntime, run_torch, run_tract
from zkml.compare.tolerance import (
    FLOAT_RTOL,
    FLOOR_LSB,
    MARGIN,
    check_tolerance,
    derive_tolerance,
    emulate_fixed_point,
    float_tolerance,
    within,
)

__all__ = [
    "FLOAT_RTOL", "FLOOR_LSB", "LABEL_KEYS", "MARGIN", "REFERENCE", "as_feed",
    "Check", "Comparison", "OutputTolerance", "Row",
    "check_tolerance", "compare_bundle", "compare_model", "derive_tolerance", "emulate_fixed_point", "float_tolerance",
    "input_commitment", "input_feed", "load_input", "load_labels", "plot", "run_onnxruntime", "run_torch", "run_tract", "within",
]
