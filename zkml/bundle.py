"""The proof bundle: a portable, versioned JSON receipt of a proven inference.

A bundle names every digest it depends on (model, settings, vk, SRS), carries
the decoded outputs (and the input when it is public), and one or more ezkl
proofs with their public instances. ``zkml verify`` needs only the bundle and
the circuit's public artifacts.

Instance layout (ezkl 23.0.5, measured): one column, the concatenation, in order, of
- the input's Poseidon hash when the input is hashed;
- the params' Poseidon hash when params are hashed;
- every quantized input element when the input is public;
- the output: every quantized element when public, its Poseidon hash when hashed.
Fixed and private parts add nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zkml.errors import BundleError
from zkml.util import write_json_atomic

FORMAT = "zkml-proof-bundle"
VERSION = 1


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
    """Quantized input (hex felts), present when the input is revealed but committed (hashed)."""
    output_felts: list[str] | None
    """Quantized outputs (hex felts), present when outputs are hashed but revealed."""
    timestamp: int | None
    """ezkl's proof timestamp (ms)."""
    prove_seconds: float
    """Wall time of ``ezkl.prove`` for this proof."""

    def to_ezkl(self, ezkl_version: str) -> dict[str, Any]:
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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProofEntry:
        return cls(
            first_sample=int(d["first_sample"]),
            real_samples=int(d["real_samples"]),
            instances=[[str(x) for x in col] for col in d["instances"]],
            proof_hex=str(d["proof"]),
            input_felts=d.get("input_felts"),
            output_felts=d.get("output_felts"),
            timestamp=d.get("timestamp"),
            prove_seconds=float(d.get("prove_seconds", 0.0)),
        )


@dataclass(frozen=True)
class Bundle:
    """A parsed proof bundle (see the module docstring for the format)."""

    data: dict[str, Any]
    """The whole JSON document."""

    # Access
    @property
    def circuit_id(self) -> str:
        return str(self.data["circuit"]["id"])

    @property
    def model_sha256(self) -> str:
        return str(self.data["model"]["sha256"])

    @property
    def proofs(self) -> list[ProofEntry]:
        return [ProofEntry.from_dict(p) for p in self.data["proofs"]]

    @property
    def outputs(self) -> list[list[float]] | None:
        return self.data["outputs"]["values"]

    @property
    def samples(self) -> int:
        return int(self.data["samples"])

    def save(self, path: str | Path) -> None:
        """Write atomically."""
        write_json_atomic(path, self.data, indent=1)

    @classmethod
    def load(cls, path: str | Path) -> Bundle:
        """Read and structurally check a bundle.

        Raises:
            BundleError: not JSON, not a bundle, unknown version, missing fields.
        """
        p = Path(path)
        if not p.is_file():
            raise BundleError(f"bundle not found: {p}")
        try:
            data = json.loads(p.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise BundleError(f"{p}: not a JSON file ({e})") from None
        return cls.parse(data, source=str(p))

    @classmethod
    def parse(cls, data: Any, source: str = "bundle") -> Bundle:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BundleError(f"{source}: not a zkml proof bundle")
        if data.get("version") != VERSION:
            raise BundleError(f"{source}: bundle format version {data.get('version')!r} is not supported (expected {VERSION})")
        try:
            for k in ("model", "circuit", "srs", "proofs", "outputs", "input", "samples"):
                data[k]
            for k in ("id", "settings_sha256", "vk_sha256", "visibility"):
                data["circuit"][k]
            if not isinstance(data["proofs"], list) or not data["proofs"]:
                raise BundleError(f"{source}: bundle has no proofs")
            for p in data["proofs"]:
                ProofEntry.from_dict(p)
        except (KeyError, TypeError, ValueError) as e:
            raise BundleError(f"{source}: malformed bundle (missing or bad field {e})") from None
        return cls(data)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
