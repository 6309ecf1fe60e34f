"""The proof bundle: a typed, versioned JSON receipt of a proven inference.

A bundle is **untrusted input**: whoever hands it over may have written any
byte of it. This module is its one writer (:meth:`Bundle.to_json`) and its one
reader (:meth:`Bundle.parse`); the reader checks formats only (exact keys,
types, hex digests, id syntax, finite numbers) and never decides validity.
Every field is declared in :data:`FIELDS` as either **bound** — checked by
:mod:`zkml.verify` against the proof's public instances, a Poseidon preimage,
the verifier's own settings/vk/SRS, or a trusted artifact — or **metadata**,
which no verifier checks and no verdict repeats as a fact.

Instance layout (ezkl 23.0.5, measured): one column, the concatenation, in order, of
- the input's Poseidon hash when the input is hashed;
- the params' Poseidon hash when params are hashed;
- every quantized input element when the input is public;
- the output: every quantized element when public, its Poseidon hash when hashed.
Fixed and private parts add nothing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from zkml.errors import BundleError
from zkml.quant import BN254_R
from zkml.util import now_iso, printable, write_json_atomic  # noqa: F401 (now_iso re-exported)

FORMAT: Final = "zkml-proof-bundle"
VERSION: Final = 2

INPUT_VISIBILITIES: Final = ("public", "private", "hashed")
PARAM_VISIBILITIES: Final = ("fixed", "hashed", "private")
OUTPUT_VISIBILITIES: Final = ("public", "private", "hashed")
INPUT_DTYPES: Final = ("float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "uint16", "uint32",
                       "bool")

_DIGEST = re.compile(r"[0-9a-f]{64}")
_CIRCUIT_ID = re.compile(r"[0-9a-f]{20}")
_FELT = re.compile(r"[0-9a-f]{64}")
_PROOF = re.compile(r"0x(?:[0-9a-f]{2})+")
_NAME = re.compile(r"[A-Za-z0-9_.:/\-]{1,128}")

MAX_PROOFS: Final = 100_000
MAX_SAMPLES: Final = 10_000_000


# ---------------------------------------------------------------------------
# What each field is: bound (and by what) or metadata
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRule:
    """The status of one bundle field (``[]`` stands for any list index)."""

    path: str
    """Dotted path, e.g. ``proofs[].instances[][]``; a rule covers everything below it."""
    bound: bool
    """True: :func:`zkml.verify.verify_bundle` refuses the bundle if the field is changed."""
    checked_by: str
    """What checks it (bound) or why it is only metadata."""


FIELDS: Final[tuple[FieldRule, ...]] = (
    FieldRule("format", True, "the reader: must be zkml-proof-bundle"),
    FieldRule("version", True, "the reader: must be the supported version"),
    FieldRule("model.sha256", True,
              "a trusted circuit's model (the verifier's store built it), a reproduction from the verifier's ONNX, "
              "or the on-chain record; otherwise reported as NOT BOUND"),
    FieldRule("model.input_name", True, "the store's manifest of the circuit (reported unbound for a foreign circuit)"),
    FieldRule("model.sample_shape", True,
              "the shape of the revealed input, the number of input instances/felts, and the store's manifest"),
    FieldRule("model.inputs", True,
              "(present unless the model has one float32 input) each input's name, shape and dtype: the reader "
              "(the first is input_name/sample_shape), the store's manifest, the settings' input scales (int/bool "
              "inputs at scale 0), the revealed input's shapes and the number of input instances/felts"),
    FieldRule("circuit.id", True, "the verifier's store (the folder it names, format-checked); metadata for a foreign circuit"),
    FieldRule("circuit.settings_sha256", True, "sha256 of the settings the verifier uses"),
    FieldRule("circuit.vk_sha256", True, "sha256 of the verifying key the verifier uses"),
    FieldRule("circuit.compiled_sha256", True, "sha256 of the compiled circuit in the store / circuit folder"),
    FieldRule("circuit.logrows", True, "the settings and the SRS header"),
    FieldRule("circuit.batch_size", True, "the settings"),
    FieldRule("circuit.input_scale", True, "the settings"),
    FieldRule("circuit.output_scales", True, "the settings"),
    FieldRule("circuit.output_sizes", True, "the number of output instances/felts and the settings' instance shapes"),
    FieldRule("circuit.visibility", True, "the settings"),
    FieldRule("circuit.weights_commitment", True,
              "the params' Poseidon instance, and the trusted circuit's (or reproduced) commitment"),
    FieldRule("srs.sha256", True, "sha256 of the SRS the verifier uses"),
    FieldRule("srs.logrows", True, "the SRS header"),
    FieldRule("samples", True, "the proofs' coverage of the samples"),
    FieldRule("input.values", True, "quantized: equal to the public instances, or the preimage of the Poseidon instance"),
    FieldRule("input.sha256", True, "sha256 of the revealed input values (absent when nothing is revealed)"),
    FieldRule("outputs.values", True, "dequantized public output instances, or the Poseidon preimage of the output instance"),
    FieldRule("proofs[].first_sample", True, "coverage: proofs cover the samples in order"),
    FieldRule("proofs[].real_samples", True, "coverage and the number of revealed rows"),
    FieldRule("proofs[].instances", True, "the SNARK (ezkl.verify) and the claimed input, commitments and outputs"),
    FieldRule("proofs[].proof", True, "the SNARK (ezkl.verify)"),
    FieldRule("proofs[].input_felts", True, "quantized revealed input, and the Poseidon instance"),
    FieldRule("proofs[].output_felts", True, "the Poseidon output instance, and the reported outputs"),
    FieldRule("proofs[].timestamp", False, "ezkl's proof timestamp: written by the prover, checked by nothing"),
    FieldRule("proofs[].prove_seconds", False, "timing reported by the prover"),
    FieldRule("metadata", False,
              "written by the prover, checked by nothing: creation time, tool versions, timings, warnings, "
              "the prover's own SRS label, claimed on-chain receipts (check them with `zkml verify --onchain`), "
              "which node/process proved each proof (`provers`, written by zkml.scale)"),
)


def rule_for(path: str) -> FieldRule:
    """The rule covering a concrete leaf path such as ``proofs[0].instances[0][3]``.

    Raises:
        KeyError: no rule covers it (a field the format does not have).
    """
    generic = re.sub(r"\[\d+\]", "[]", path)
    best: FieldRule | None = None
    for r in FIELDS:
        if generic == r.path or generic.startswith(r.path + ".") or generic.startswith(r.path + "["):
            if best is None or len(r.path) > len(best.path):
                best = r
    if best is None:
        raise KeyError(path)
    return best


# ---------------------------------------------------------------------------
# The typed document
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Visibility:
    """What the proof reveals of each part (ezkl's run args, zkml's names)."""

    input: str
    """``public`` (instances), ``hashed`` (Poseidon commitment instance) or ``private``."""
    params: str
    """``fixed`` (baked into the vk), ``hashed`` (commitment instance) or ``private`` (any weights)."""
    output: str
    """``public``, ``hashed`` or ``private``."""

    def as_dict(self) -> dict[str, str]:
        return {"input": self.input, "params": self.params, "output": self.output}


@dataclass(frozen=True)
class InputPart:
    """One model input as the circuit takes it."""

    name: str
    """The ONNX input name."""
    shape: tuple[int, ...]
    """Shape of one sample of it (without the batch axis, when the model has one)."""
    dtype: str
    """``float32`` (quantized at the input scale), an integer type or ``bool`` (integers at scale 0)."""

    @property
    def kind(self) -> str:
        return "bool" if self.dtype == "bool" else "float" if self.dtype.startswith("float") else "int"

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class ModelPart:
    """The model the prover says it proved."""

    sha256: str
    """sha256 of the ONNX file (bound only by a trusted circuit, a reproduction, or a chain record)."""
    input_name: str
    """The first input's name ("" for a model without inputs)."""
    sample_shape: tuple[int, ...]
    """Shape of one sample of the first input (without the batch axis)."""
    inputs: tuple[InputPart, ...] | None = None
    """Every input, in graph order; None for the common case of one float32 input ``input_name``
    of ``sample_shape`` (then ``model.inputs`` is not written); ``()`` for a model without inputs."""

    @property
    def all_inputs(self) -> tuple[InputPart, ...]:
        """Every input, the one-float-input case spelled out."""
        if self.inputs is not None:
            return self.inputs
        return (InputPart(self.input_name, tuple(self.sample_shape), "float32"),)

    @staticmethod
    def describe(inputs: Sequence[InputPart]) -> tuple[InputPart, ...] | None:
        """What ``inputs`` is for these inputs: None for one float32 input."""
        t = tuple(inputs)
        return None if len(t) == 1 and t[0].dtype == "float32" else t


@dataclass(frozen=True)
class CircuitPart:
    """The circuit the proofs are for; every field is checked against the verifier's artifacts."""

    id: str
    """Store key prefix (20 hex chars); names a folder in the verifier's store."""
    settings_sha256: str
    """sha256 of settings.json."""
    vk_sha256: str
    """sha256 of vk.key."""
    compiled_sha256: str
    """sha256 of model.compiled."""
    logrows: int
    """2^logrows rows."""
    batch_size: int
    """Samples per proof."""
    input_scale: int
    """Fixed-point scale of the input."""
    output_scales: tuple[int, ...]
    """Fixed-point scale of each output."""
    output_sizes: tuple[int, ...]
    """Elements per sample of each output."""
    visibility: Visibility
    """What the instances reveal."""
    weights_commitment: tuple[str, ...] | None
    """Poseidon commitment of the weights (felts), when params are hashed."""


@dataclass(frozen=True)
class ProofEntry:
    """One SNARK inside a bundle, covering ``batch_size`` consecutive samples."""

    first_sample: int
    """Index (into the bundle's samples) of the first sample this proof covers."""
    real_samples: int
    """How many of its rows are real samples (the rest repeat the last one as padding)."""
    instances: list[list[str]]
    """Public instances as ezkl writes them (little-endian hex field elements)."""
    proof_hex: str
    """The proof bytes, 0x-prefixed hex."""
    input_felts: list[str] | None
    """Quantized input (hex felts), present when a hashed input is revealed."""
    output_felts: list[str] | None
    """Quantized outputs (hex felts), present when outputs are hashed."""
    timestamp: int | None = None
    """ezkl's proof timestamp (ms). Metadata."""
    prove_seconds: float = 0.0
    """Wall time of ``ezkl.prove`` for this proof. Metadata."""

    def to_ezkl(self, ezkl_version: str = "") -> dict[str, Any]:
        """The proof JSON ezkl's ``verify`` reads."""
        raw = bytes.fromhex(self.proof_hex.removeprefix("0x"))
        return {
            "protocol": None,
            "instances": self.instances,
            "proof": list(raw),
            "hex_proof": "0x" + raw.hex(),
            "split": None,
            "pretty_public_inputs": None,
            "timestamp": self.timestamp,
            "version": ezkl_version,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "first_sample": self.first_sample,
            "real_samples": self.real_samples,
            "instances": self.instances,
            "proof": self.proof_hex,
            "input_felts": self.input_felts,
            "output_felts": self.output_felts,
            "timestamp": self.timestamp,
            "prove_seconds": self.prove_seconds,
        }


@dataclass(frozen=True)
class Metadata:
    """What the prover reports about itself. Nothing here is checked; verdicts label it so."""

    created: str = ""
    """ISO time the bundle was written."""
    tools: Mapping[str, str] = field(default_factory=dict)
    """Tool versions on the prover's machine."""
    timings: Mapping[str, Any] = field(default_factory=dict)
    """Seconds spent per step."""
    warnings: tuple[str, ...] = ()
    """The prover's warnings (e.g. that it used a development SRS)."""
    prover_srs: Mapping[str, Any] = field(default_factory=dict)
    """The prover's own label of its SRS (``kind``, ``insecure``): never trusted; the verifier identifies the SRS."""
    onchain: tuple[Mapping[str, Any], ...] = ()
    """Claimed on-chain receipts: ask the chain (``zkml verify --onchain``)."""
    provers: tuple[Mapping[str, Any], ...] = ()
    """Where each proof was made (``proof`` index, ``node``, ``host``, ``pid``, ``backend``), when a pool,
    Ray or a prover service made them; absent for a plain local prove. Written by the prover, checked by nothing."""

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "created": self.created,
            "tools": dict(self.tools),
            "timings": dict(self.timings),
            "warnings": list(self.warnings),
            "prover_srs": dict(self.prover_srs),
            "onchain": [dict(r) for r in self.onchain],
        }
        if self.provers:
            d["provers"] = [dict(p) for p in self.provers]
        return d


@dataclass(frozen=True)
class Bundle:
    """A parsed proof bundle (format-checked, not verified)."""

    model: ModelPart
    """The model the prover names."""
    circuit: CircuitPart
    """The circuit facts."""
    srs_sha256: str
    """sha256 of the SRS the proofs were made with."""
    srs_logrows: int
    """k of that SRS."""
    samples: int
    """Number of samples proven."""
    input_values: list[Any] | None
    """The input samples as floats (nested per sample_shape), when revealed."""
    input_sha256: str | None
    """sha256 of the canonical JSON of ``input_values``, when revealed."""
    outputs: list[list[float]] | None
    """The outputs per sample (floats), when not private."""
    proofs: list[ProofEntry]
    """The SNARKs, in sample order."""
    meta: Metadata = field(default_factory=Metadata)
    """Unchecked prover metadata."""

    # Convenience accessors (stable API)
    @property
    def circuit_id(self) -> str:
        return self.circuit.id

    @property
    def model_sha256(self) -> str:
        return self.model.sha256

    @property
    def vk_sha256(self) -> str:
        return self.circuit.vk_sha256

    @property
    def settings_sha256(self) -> str:
        return self.circuit.settings_sha256

    @property
    def visibility(self) -> Visibility:
        return self.circuit.visibility

    @property
    def batch_size(self) -> int:
        return self.circuit.batch_size

    @property
    def output_sizes(self) -> list[int]:
        return list(self.circuit.output_sizes)

    @property
    def ezkl_version(self) -> str:
        return str(self.meta.tools.get("ezkl", ""))

    @property
    def timings(self) -> Mapping[str, Any]:
        return self.meta.timings

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.meta.warnings

    @property
    def onchain(self) -> tuple[Mapping[str, Any], ...]:
        return self.meta.onchain

    # Changes (return new bundles: the document is frozen)
    def with_receipt(self, receipt: Mapping[str, Any]) -> Bundle:
        """A copy with an on-chain receipt appended to the (unchecked) metadata."""
        return replace(self, meta=replace(self.meta, onchain=(*self.meta.onchain, dict(receipt))))

    def with_timings(self, **timings: Any) -> Bundle:
        """A copy with extra timing entries in the metadata."""
        return replace(self, meta=replace(self.meta, timings={**self.meta.timings, **timings}))

    # The one writer
    def to_json(self) -> dict[str, Any]:
        """The JSON document (see :data:`FIELDS` for what each field is)."""
        c = self.circuit
        return {
            "format": FORMAT,
            "version": VERSION,
            "model": {"sha256": self.model.sha256, "input_name": self.model.input_name,
                      "sample_shape": list(self.model.sample_shape),
                      **({} if self.model.inputs is None else {"inputs": [i.as_dict() for i in self.model.inputs]})},
            "circuit": {
                "id": c.id,
                "settings_sha256": c.settings_sha256,
                "vk_sha256": c.vk_sha256,
                "compiled_sha256": c.compiled_sha256,
                "logrows": c.logrows,
                "batch_size": c.batch_size,
                "input_scale": c.input_scale,
                "output_scales": list(c.output_scales),
                "output_sizes": list(c.output_sizes),
                "visibility": c.visibility.as_dict(),
                "weights_commitment": list(c.weights_commitment) if c.weights_commitment is not None else None,
            },
            "srs": {"sha256": self.srs_sha256, "logrows": self.srs_logrows},
            "samples": self.samples,
            "input": {"values": self.input_values, "sha256": self.input_sha256},
            "outputs": {"values": self.outputs},
            "proofs": [p.as_dict() for p in self.proofs],
            "metadata": self.meta.as_dict(),
        }

    def save(self, path: str | Path) -> None:
        """Write atomically."""
        write_json_atomic(path, self.to_json(), indent=1)

    # The one reader
    @classmethod
    def load(cls, path: str | Path) -> Bundle:
        """Read and format-check a bundle file.

        Raises:
            BundleError: unreadable, not JSON, not a bundle, unknown version, or a malformed field.
        """
        p = Path(path)
        if not p.is_file():
            raise BundleError(f"bundle not found: {p}")
        try:
            data = json.loads(p.read_bytes())
        except (ValueError, UnicodeDecodeError) as e:
            raise BundleError(f"{p}: not a JSON file ({e})") from None
        except OSError as e:
            raise BundleError(f"{p}: unreadable ({e.strerror})") from None
        return cls.parse(data, source=str(p))

    @classmethod
    def parse(cls, data: Any, source: str = "bundle") -> Bundle:
        """Format-check a bundle document; every field must be of its declared type and form.

        Raises:
            BundleError: naming the first malformed field.
        """
        r = _Reader(source)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BundleError(f"{source}: not a zkml proof bundle")
        if data.get("version") != VERSION or isinstance(data.get("version"), bool):
            raise BundleError(
                f"{source}: bundle format version {r.safe(data.get('version'))} is not supported (expected {VERSION}; "
                "re-prove with this zkml)"
            )
        d = r.obj(data, "", {"format", "version", "model", "circuit", "srs", "samples", "input", "outputs",
                             "proofs", "metadata"})
        m_keys = {"sha256", "input_name", "sample_shape"}
        if isinstance(d["model"], dict) and "inputs" in d["model"]:
            m_keys.add("inputs")  # written only when the model is not one float32 input
        m = r.obj(d["model"], "model", m_keys)
        inputs = tuple(r.input_part(x, f"model.inputs[{n}]") for n, x in enumerate(r.list(m.get("inputs", []), "model.inputs")))
        if len(inputs) > 64:
            raise r.fail("model.inputs", "has more than 64 inputs")
        model = ModelPart(
            sha256=r.digest(m["sha256"], "model.sha256"),
            input_name=m["input_name"] if m["input_name"] == "" and "inputs" in m and not inputs
            else r.name(m["input_name"], "model.input_name"),
            sample_shape=tuple(r.int_list(m["sample_shape"], "model.sample_shape", lo=1, hi=1 << 24, max_len=8,
                                          min_len=0)),
            inputs=inputs if "inputs" in m else None,
        )
        if "inputs" in m and ModelPart.describe(inputs) is None:
            raise r.fail("model.inputs", "is written only for a model that is not one float32 input")
        first = (inputs[0].name, inputs[0].shape) if inputs else ("", ())
        if inputs or "inputs" in m:
            if (model.input_name, model.sample_shape) != first:
                raise r.fail("model.inputs", "must start with input_name and sample_shape")
        elif not model.sample_shape:
            raise r.fail("model.sample_shape", "must have 1 to 8 entries")
        c = r.obj(d["circuit"], "circuit", {"id", "settings_sha256", "vk_sha256", "compiled_sha256", "logrows",
                                            "batch_size", "input_scale", "output_scales", "output_sizes",
                                            "visibility", "weights_commitment"})
        v = r.obj(c["visibility"], "circuit.visibility", {"input", "params", "output"})
        vis = Visibility(
            input=r.choice(v["input"], "circuit.visibility.input", INPUT_VISIBILITIES),
            params=r.choice(v["params"], "circuit.visibility.params", PARAM_VISIBILITIES),
            output=r.choice(v["output"], "circuit.visibility.output", OUTPUT_VISIBILITIES),
        )
        wc = c["weights_commitment"]
        circuit = CircuitPart(
            id=r.circuit_id(c["id"], "circuit.id"),
            settings_sha256=r.digest(c["settings_sha256"], "circuit.settings_sha256"),
            vk_sha256=r.digest(c["vk_sha256"], "circuit.vk_sha256"),
            compiled_sha256=r.digest(c["compiled_sha256"], "circuit.compiled_sha256"),
            logrows=r.int(c["logrows"], "circuit.logrows", 1, 28),
            batch_size=r.int(c["batch_size"], "circuit.batch_size", 1, 1 << 20),
            input_scale=r.int(c["input_scale"], "circuit.input_scale", 0, 64),
            output_scales=tuple(r.int_list(c["output_scales"], "circuit.output_scales", lo=0, hi=64, max_len=256)),
            output_sizes=tuple(r.int_list(c["output_sizes"], "circuit.output_sizes", lo=1, hi=1 << 24, max_len=256)),
            visibility=vis,
            weights_commitment=None if wc is None else tuple(r.felts(wc, "circuit.weights_commitment")),
        )
        s = r.obj(d["srs"], "srs", {"sha256", "logrows"})
        samples = r.int(d["samples"], "samples", 1, MAX_SAMPLES)
        i = r.obj(d["input"], "input", {"values", "sha256"})
        o = r.obj(d["outputs"], "outputs", {"values"})
        proofs_raw = d["proofs"]
        if not isinstance(proofs_raw, list) or not proofs_raw:
            raise BundleError(f"{source}: bundle has no proofs")
        if len(proofs_raw) > MAX_PROOFS:
            raise BundleError(f"{source}: too many proofs ({len(proofs_raw)})")
        proofs = [r.proof(p, f"proofs[{n}]") for n, p in enumerate(proofs_raw)]
        md_keys = {"created", "tools", "timings", "warnings", "prover_srs", "onchain"}
        if isinstance(d["metadata"], dict) and "provers" in d["metadata"]:
            md_keys.add("provers")  # optional: only bundles from a pool, Ray or a service carry it
        md = r.obj(d["metadata"], "metadata", md_keys)
        meta = Metadata(
            created=r.text(md["created"], "metadata.created"),
            tools={r.text(k, "metadata.tools"): r.text(val, "metadata.tools") for k, val in
                   r.obj(md["tools"], "metadata.tools", None).items()},
            timings=dict(r.obj(md["timings"], "metadata.timings", None)),
            warnings=tuple(r.text(w, "metadata.warnings") for w in r.list(md["warnings"], "metadata.warnings")),
            prover_srs=dict(r.obj(md["prover_srs"], "metadata.prover_srs", None)),
            onchain=tuple(dict(r.obj(x, "metadata.onchain[]", None)) for x in r.list(md["onchain"], "metadata.onchain")),
            provers=tuple(dict(r.obj(x, "metadata.provers[]", None)) for x in r.list(md.get("provers", []), "metadata.provers")),
        )
        return cls(
            model=model,
            circuit=circuit,
            srs_sha256=r.digest(s["sha256"], "srs.sha256"),
            srs_logrows=r.int(s["logrows"], "srs.logrows", 1, 28),
            samples=samples,
            input_values=None if i["values"] is None else r.floats_nested(i["values"], "input.values"),
            input_sha256=None if i["sha256"] is None else r.digest(i["sha256"], "input.sha256"),
            outputs=None if o["values"] is None else r.float_rows(o["values"], "outputs.values"),
            proofs=proofs,
            meta=meta,
        )


class _Reader:
    """Format checks for :meth:`Bundle.parse`; each raises :class:`BundleError` naming the field."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, what: str) -> BundleError:
        return BundleError(f"{self.source}: malformed bundle: {where or 'document'} {what}")

    @staticmethod
    def safe(value: Any) -> str:
        """A short, printable rendering of an untrusted value for an error message."""
        return printable(repr(value))[:40]

    def obj(self, value: Any, where: str, keys: set[str] | None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "must be an object")
        if keys is not None:
            missing, extra = keys - set(value), set(value) - keys
            if missing:
                raise self.fail(where, f"lacks {', '.join(sorted(missing))}")
            if extra:
                raise self.fail(where, f"has unknown field(s) {self.safe(sorted(map(str, extra)))}")
        return value

    def list(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, "must be a list")
        return value

    def int(self, value: Any, where: str, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(where, f"must be an integer in [{lo}, {hi}]")
        return value

    def int_list(self, value: Any, where: str, *, lo: int, hi: int, max_len: int, min_len: int = 1) -> list[int]:
        items = self.list(value, where)
        if not min_len <= len(items) <= max_len:
            raise self.fail(where, f"must have {min_len} to {max_len} entries")
        return [self.int(x, where, lo, hi) for x in items]

    def input_part(self, value: Any, where: str) -> InputPart:
        i = self.obj(value, where, {"name", "shape", "dtype"})
        return InputPart(
            name=self.name(i["name"], f"{where}.name"),
            shape=tuple(self.int_list(i["shape"], f"{where}.shape", lo=1, hi=1 << 24, max_len=8, min_len=0)),
            dtype=self.choice(i["dtype"], f"{where}.dtype", INPUT_DTYPES),
        )

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or len(value) > 4096:
            raise self.fail(where, "must be a string")
        return value

    def name(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not _NAME.fullmatch(value):
            raise self.fail(where, "must be a plain name")
        return value

    def choice(self, value: Any, where: str, options: Sequence[str]) -> str:
        if value not in options:
            raise self.fail(where, f"must be one of {', '.join(options)}")
        return str(value)

    def digest(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not _DIGEST.fullmatch(value):
            raise self.fail(where, "must be a sha256 hex digest (64 lowercase hex chars)")
        return value

    def circuit_id(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not _CIRCUIT_ID.fullmatch(value):
            raise self.fail(where, "must be a circuit id (20 lowercase hex chars)")
        return value

    def felts(self, value: Any, where: str) -> list[str]:
        items = self.list(value, where)
        for x in items:
            if not isinstance(x, str) or not _FELT.fullmatch(x) or int.from_bytes(bytes.fromhex(x), "little") >= BN254_R:
                raise self.fail(where, "must hold canonical BN254 field elements (64 lowercase hex chars, little-endian)")
        return [str(x) for x in items]

    def floats_nested(self, value: Any, where: str) -> list[Any]:
        items = self.list(value, where)

        def walk(v: Any) -> None:
            if isinstance(v, list):
                for x in v:
                    walk(x)
            elif isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise self.fail(where, "must hold finite numbers")

        walk(items)
        return items

    def float_rows(self, value: Any, where: str) -> list[list[float]]:
        rows = self.list(value, where)
        out: list[list[float]] = []
        for row in rows:
            if not isinstance(row, list):
                raise self.fail(where, "must be a list of rows")
            for x in row:
                if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
                    raise self.fail(where, "must hold finite numbers")
            out.append([float(x) for x in row])
        return out

    def proof(self, value: Any, where: str) -> ProofEntry:
        p = self.obj(value, where, {"first_sample", "real_samples", "instances", "proof", "input_felts",
                                    "output_felts", "timestamp", "prove_seconds"})
        cols = self.list(p["instances"], f"{where}.instances")
        instances = [self.felts(col, f"{where}.instances") for col in cols]
        proof_hex = p["proof"]
        if not isinstance(proof_hex, str) or not _PROOF.fullmatch(proof_hex):
            raise self.fail(f"{where}.proof", "must be 0x-prefixed lowercase hex bytes")
        ts = p["timestamp"]
        if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int)):
            raise self.fail(f"{where}.timestamp", "must be an integer or null")
        secs = p["prove_seconds"]
        if isinstance(secs, bool) or not isinstance(secs, int | float) or not math.isfinite(secs):
            raise self.fail(f"{where}.prove_seconds", "must be a number")
        return ProofEntry(
            first_sample=self.int(p["first_sample"], f"{where}.first_sample", 0, MAX_SAMPLES),
            real_samples=self.int(p["real_samples"], f"{where}.real_samples", 1, 1 << 20),
            instances=instances,
            proof_hex=proof_hex,
            input_felts=None if p["input_felts"] is None else self.felts(p["input_felts"], f"{where}.input_felts"),
            output_felts=None if p["output_felts"] is None else self.felts(p["output_felts"], f"{where}.output_felts"),
            timestamp=ts,
            prove_seconds=float(secs),
        )

