"""What the proofs themselves say: the proven inputs and outputs of an audit response, read from the instances.

An audit judges rows and predictions. The bundle that carries the proofs also
carries input values, output values and preimage felts, but those are the
owner's claims; the audit reads only what a verified proof binds, under the
**audited circuit's own settings** (from the auditor's store, never from the
bundle):

* **public input**: the quantized revealed row must equal the proof's input
  instances slot for slot;
* **hashed input**: the quantized revealed rows of the batch (padded the way
  the prover pads, by repeating the last row) must open the proof's Poseidon
  input commitment (``ezkl.poseidon_hash``);
* **public output**: the predictions are decoded from the proof's output
  instances;
* **hashed output**: the bundle's output felts are used only if they are the
  Poseidon preimage of the proof's output commitment;
* **private input or output**: nothing binds a revealed row or a prediction to
  the proof, so such a circuit cannot be audited (:class:`AuditError`).

Instance layout (ezkl, one column): input hash (hashed input), params hash
(hashed params), raw input (public input), then the output (raw or its hash).
Proof ``j`` covers rows ``j*B … min(k, (j+1)*B) - 1`` of the sample, in order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zkml.audit.common import AuditError
from zkml.quant import felts_to_floats, int_to_felt, quantize


def _visibility(v: Any) -> str:
    """ezkl's ``"Public"`` / ``{"Hashed": {"hash_is_public": …}}`` as public | hashed | hashed-private | private | …"""
    if isinstance(v, dict) and len(v) == 1:
        ((name, body),) = v.items()
        if name == "Hashed" and isinstance(body, dict) and not body.get("hash_is_public", True):
            return "hashed-private"
        return str(name).lower()
    return str(v).lower()


@dataclass(frozen=True)
class Layout:
    """The instance layout of the audited circuit, from its trusted settings."""

    batch_size: int
    """Rows per proof (B)."""
    input_scale: int
    """Fixed-point bits of the input quantization."""
    input: str
    """Input visibility: public | hashed."""
    params: str
    """Params visibility."""
    output: str
    """Output visibility: public | hashed."""
    output_scales: tuple[int, ...]
    """Fixed-point bits of each model output."""
    public_output_sizes: tuple[int, ...] | None
    """Elements per row of each output when public (from the settings' instance shapes)."""

    @classmethod
    def from_settings(cls, path: str | Path) -> Layout:
        """Read the audited circuit's ``settings.json``.

        Raises:
            AuditError: private input or output (nothing to bind), or settings that are not ezkl's.
        """
        try:
            s = json.loads(Path(path).read_text())
            ra = s["run_args"]
            batch = int(dict(ra.get("variables") or []).get("batch_size", 1))
            layout = cls(
                batch_size=batch, input_scale=int(ra["input_scale"]), input=_visibility(ra["input_visibility"]),
                params=_visibility(ra["param_visibility"]), output=_visibility(ra["output_visibility"]),
                output_scales=tuple(int(x) for x in s["model_output_scales"]), public_output_sizes=None,
            )
            shapes = [int(np.prod(sh)) for sh in s.get("model_instance_shapes") or []]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise AuditError(f"the audited circuit's settings are unreadable ({type(e).__name__})") from None
        # Inputs validation: only bound parts can be audited
        for part, vis in (("input", layout.input), ("output", layout.output)):
            if vis not in ("public", "hashed"):
                raise AuditError(f"the audited circuit keeps its {part} {vis}: nothing binds the revealed "
                                 f"{'rows' if part == 'input' else 'predictions'} to the proofs, so it cannot be audited "
                                 f"(use a circuit with public or hashed {part})")
        if layout.output == "public":
            n = len(layout.output_scales)
            if len(shapes) < n or any(x % batch for x in shapes[-n:]):
                raise AuditError("the audited circuit's settings do not describe its public outputs")
            layout = cls(**{**layout.__dict__, "public_output_sizes": tuple(x // batch for x in shapes[-n:])})
        elif len(layout.output_scales) != 1:
            raise AuditError("the audited circuit hashes several outputs: their split is not bound, so it cannot be audited")
        return layout

    def rows_of(self, proof: int, k: int) -> range:
        """Sample positions proof ``proof`` covers."""
        return range(proof * self.batch_size, min(k, (proof + 1) * self.batch_size))

    def proofs_for(self, k: int) -> int:
        """How many proofs a sample of ``k`` rows takes."""
        return -(-k // self.batch_size)


@dataclass(frozen=True)
class Proven:
    """What the proofs bind, per sampled row."""

    inputs_ok: bool
    """Every revealed row is the proven input (public) or opens the input commitment (hashed)."""
    inputs_detail: str
    """One line: what was compared, or the first mismatch."""
    outputs: list[list[float]] | None
    """Per row, the first model output as proven (None: the outputs are not bound)."""
    outputs_detail: str
    """One line: where the outputs came from, or why they are not bound."""


def _felts(features: np.ndarray, scale: int) -> list[str]:
    return [int_to_felt(v) for v in quantize(features, scale)]


def proven_io(instances: Sequence[Sequence[Sequence[str]]], output_felts: Sequence[Sequence[str] | None],
              features: Sequence[np.ndarray], layout: Layout, indices: Sequence[int] | None = None) -> Proven:
    """Compare the revealed rows with each proof's instances and read the proven outputs.

    ``instances[j]`` and ``output_felts[j]`` are proof ``j``'s public instances
    and (hashed output) claimed output preimage; ``features[p]`` is the revealed
    row ``p``, flat (``indices[p]`` its dataset index, for messages). Only the instances are trusted, and only once the SNARKs
    verify (the caller checks that separately).
    """
    import ezkl

    k, B = len(features), layout.batch_size
    name = list(indices) if indices is not None else list(range(k))
    if len(instances) != layout.proofs_for(k):
        why = f"{len(instances)} proof(s) for {k} rows at batch {B} (expected {layout.proofs_for(k)})"
        return Proven(False, why, None, why)
    n_in = {int(f.size) for f in features}
    if len(n_in) != 1:
        why = "the revealed rows do not all have the same number of features"
        return Proven(False, why, None, why)
    (n_in_row,) = n_in
    bad: list[str] = []
    outputs: list[list[float]] = []
    out_problem: str | None = None
    for j, cols in enumerate(instances):
        rows = layout.rows_of(j, k)
        if len(cols) != 1:
            bad.append(f"proof {j} has {len(cols)} instance columns, expected 1")
            out_problem = out_problem or bad[-1]
            continue
        col = list(cols[0])
        # The batch as the prover quantized it: real rows, then the last row repeated
        batch = [features[p] for p in rows]
        batch += [batch[-1]] * (B - len(batch))
        felts = [_felts(row, layout.input_scale) for row in batch]
        # Input part (front of the column)
        pos = 0
        if layout.input == "hashed":
            commitment = [str(h) for h in ezkl.poseidon_hash([f for row in felts for f in row])]
            if col[: len(commitment)] != commitment:
                bad.append(f"rows {[name[p] for p in rows]} do not open proof {j}'s Poseidon input commitment")
            pos = len(commitment)
        # Output part (back of the column)
        if layout.output == "public":
            assert layout.public_output_sizes is not None
            n_out = B * sum(layout.public_output_sizes)
            out_felts = col[len(col) - n_out:] if n_out <= len(col) else []
            sizes = layout.public_output_sizes
            source = "the proofs' public output instances"
        else:
            preimage = list(output_felts[j] or [])
            commitment = [str(h) for h in ezkl.poseidon_hash(preimage)] if preimage else []
            n_out = len(commitment)
            if not preimage or col[len(col) - n_out:] != commitment or len(preimage) % B:
                out_problem = out_problem or f"proof {j}'s output felts are not the preimage of its output commitment"
                out_felts, sizes = [], (0,)
            else:
                out_felts, sizes = preimage, (len(preimage) // B,)
            source = "the Poseidon preimages of the proofs' output commitments"
        # Raw input (after the input and params hashes, before the output)
        if layout.input == "public":
            start = len(col) - n_out - B * n_in_row
            has_params = layout.params == "hashed"
            if start < pos + (1 if has_params else 0) or (not has_params and start != pos):
                bad.append(f"proof {j} has {len(col)} public instances, which does not fit {B} row(s) of "
                           f"{n_in_row} features")
            else:
                for b, p in enumerate(rows):
                    if col[start + b * n_in_row: start + (b + 1) * n_in_row] != felts[b]:
                        bad.append(f"row {name[p]} is not proof {j}'s public input")
        # Decode the first output, per real row
        if out_felts and len(out_felts) == B * sum(sizes):
            n0 = sizes[0]
            first = felts_to_floats(out_felts[: B * n0], layout.output_scales[0]).reshape(B, n0)
            outputs += [first[b].tolist() for b in range(len(rows))]
        else:
            out_problem = out_problem or f"proof {j}'s output elements do not fit the circuit's outputs"
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        in_ok, in_detail = False, bad[0] + more
    else:
        how = "equal the proofs' public input instances" if layout.input == "public" \
            else "open the proofs' Poseidon input commitments"
        in_ok, in_detail = True, f"the {k} revealed rows, quantized at scale {layout.input_scale}, {how}"
    if out_problem is not None:
        return Proven(in_ok, in_detail, None, out_problem)
    return Proven(in_ok, in_detail, outputs, f"predictions read from {source}")
