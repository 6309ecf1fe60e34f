"""Verify a proof bundle: digests, instance consistency, and every SNARK.

A bundle is valid only if all of these hold:
1. the settings, vk and SRS used have exactly the digests the bundle names
   (and, from the store, the circuit's manifest names the bundle's model);
2. the bundle's circuit facts (batch, scales, visibility) match the settings;
3. each proof's public instances are exactly what the bundle claims: the
   quantized input (or its Poseidon commitment), the weights commitment when
   params are hashed, and the outputs whose dequantized values the bundle reports;
4. the proofs cover the bundle's samples in order;
5. ``ezkl.verify`` accepts every proof against the vk and SRS.

A failed check is a verdict (``valid=False`` with the reason), not an
exception; missing or unreadable artifacts raise, because then nothing was
checked.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zkml.bundle import Bundle, ProofEntry
from zkml.circuit import open_circuit
from zkml.errors import StoreError, VerificationError, ZkmlError
from zkml.quant import felts_to_floats, int_to_felt, quantize
from zkml.srs import read_header
from zkml.store import Store
from zkml.util import native_output_captured, sha256_file


@dataclass(frozen=True)
class Artifacts:
    """The public artifacts a verifier needs."""

    settings: Path
    """ezkl settings JSON."""
    vk: Path
    """Verifying key."""
    srs: Path
    """KZG parameters."""
    model_sha256: str | None = None
    """The model the circuit was built from, when known (from a store manifest)."""
    weights_commitment: list[str] | None = None
    """The expected Poseidon commitment of the weights, when params are hashed and known."""


@dataclass(frozen=True)
class Verdict:
    """Outcome of :func:`verify_bundle`."""

    valid: bool
    """True only if every check passed."""
    reason: str | None
    """The first failed check, in words."""
    checks: list[dict[str, Any]] = field(default_factory=list)
    """Each check: name, ok, detail."""
    seconds: float = 0.0
    """Wall time."""

    def as_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "reason": self.reason, "checks": self.checks, "seconds": self.seconds}


class _Fail(Exception):
    pass


def artifacts_from_store(bundle: Bundle, store: Store) -> Artifacts:
    """Find the bundle's circuit in the store (its files digest-checked).

    Raises:
        StoreError: the circuit is not in this store, or is corrupt.
    """
    folder = store.circuit_dir(bundle.circuit_id)
    if not folder.is_dir():
        raise StoreError(
            f"circuit {bundle.circuit_id} is not in store {store.root}; "
            "pass --circuit DIR or --settings/--vk/--srs with its public artifacts"
        )
    c = open_circuit(folder, store)
    return Artifacts(
        settings=c.settings_path, vk=c.vk, srs=c.srs.path, model_sha256=c.model_sha256,
        weights_commitment=c.manifest.get("weights_commitment"),
    )


def artifacts_from_dir(folder: Path) -> Artifacts:
    """Public artifacts from a circuit folder (settings.json, vk.key, and an SRS path).

    Raises:
        StoreError: files missing.
    """
    man_path = folder / "manifest.json"
    man = json.loads(man_path.read_text()) if man_path.is_file() else {}
    srs = folder / "srs.srs"
    if not srs.is_file() and man.get("srs", {}).get("path"):
        srs = Path(man["srs"]["path"])
    for p in (folder / "settings.json", folder / "vk.key", srs):
        if not p.is_file():
            raise StoreError(f"{folder}: missing {p.name} (a circuit folder needs settings.json, vk.key and srs.srs)")
    return Artifacts(
        settings=folder / "settings.json", vk=folder / "vk.key", srs=srs,
        model_sha256=man.get("model", {}).get("sha256"), weights_commitment=man.get("weights_commitment"),
    )


def visibility_name(v: Any) -> str:
    """ezkl writes ``"Public"`` or ``{"Hashed": {"hash_is_public": true, ...}}``; zkml says ``public``/``hashed``."""
    if isinstance(v, dict):
        (name, body), = v.items()
        if name == "Hashed" and not body.get("hash_is_public", True):
            return "hashed-private"
        return str(name).lower()
    return str(v).lower()


def _check(checks: list[dict[str, Any]], name: str, ok: bool, detail: str) -> None:
    checks.append({"name": name, "ok": ok, "detail": detail})
    if not ok:
        raise _Fail(detail)


def _expected_column(
    bundle: Bundle, entry: ProofEntry, settings: dict[str, Any], art: Artifacts
) -> list[str | None]:
    """The instance column the bundle's claims imply (None: decoded and checked by the caller)."""
    import ezkl

    data = bundle.data
    vis = data["circuit"]["visibility"]
    B = int(data["circuit"]["batch_size"])
    in_scale = int(settings["run_args"]["input_scale"])
    n_in = B * int(np.prod(data["model"]["sample_shape"]))
    hashes: list[str | None] = []
    raw: list[str | None] = []
    # Input
    values = data["input"].get("values")
    chunk = None
    if values is not None:
        rows = values[entry.first_sample : entry.first_sample + entry.real_samples]
        if len(rows) != entry.real_samples:
            raise _Fail("the bundle's input has fewer samples than its proofs cover")
        chunk = np.asarray(rows + [rows[-1]] * (B - len(rows)), dtype=np.float64)
    if vis["input"] == "public":
        raw += [int_to_felt(v) for v in quantize(chunk, in_scale)] if chunk is not None else [None] * n_in
    elif vis["input"] == "hashed":
        if entry.input_felts is not None:
            if chunk is not None and [int_to_felt(v) for v in quantize(chunk, in_scale)] != entry.input_felts:
                raise _Fail("the revealed input does not match its quantized preimage")
            hashes += list(ezkl.poseidon_hash(entry.input_felts))
        else:
            hashes += [None]
    # Params
    if vis["params"] == "hashed":
        claimed = data["circuit"].get("weights_commitment")
        if not claimed:
            raise _Fail("params are hashed but the bundle names no weights commitment")
        if art.weights_commitment is not None and list(art.weights_commitment) != list(claimed):
            raise _Fail("the bundle's weights commitment is not the circuit's")
        hashes += list(claimed)
    # Output (after the raw input, whether raw or hashed)
    out: list[str | None] = []
    if vis["output"] == "public":
        out += [None] * (B * sum(output_sizes(bundle)))  # decoded from the instances and compared by the caller
    elif vis["output"] == "hashed":
        if entry.output_felts is None:
            raise _Fail("outputs are hashed but the bundle does not reveal their preimage")
        out += list(ezkl.poseidon_hash(entry.output_felts))
    return hashes + raw + out


def output_sizes(bundle: Bundle) -> list[int]:
    """Elements per sample of each model output, as the bundle records them."""
    return [int(n) for n in bundle.data["circuit"]["output_sizes"]]


def _decode_outputs(felts: list[str], settings: dict[str, Any], sizes: list[int], B: int) -> np.ndarray:
    out_scales = [int(s) for s in settings["model_output_scales"]]
    if len(felts) != B * sum(sizes) or len(sizes) != len(out_scales):
        raise _Fail("the output elements do not match the circuit's output shapes")
    parts, pos = [], 0
    for s, n in zip(out_scales, sizes, strict=True):
        parts.append(felts_to_floats(felts[pos : pos + B * n], s).reshape(B, n))
        pos += B * n
    return np.concatenate(parts, axis=1)


def verify_bundle(bundle: Bundle, art: Artifacts) -> Verdict:
    """Run every check on ``bundle`` against ``art``.

    Raises:
        ZkmlError: artifacts missing or unreadable (nothing could be checked).
    """
    import ezkl

    t0 = time.perf_counter()
    checks: list[dict[str, Any]] = []
    data = bundle.data
    try:
        # 1. Digests
        for label, path, claimed in (
            ("settings digest", art.settings, data["circuit"]["settings_sha256"]),
            ("vk digest", art.vk, data["circuit"]["vk_sha256"]),
            ("srs digest", art.srs, data["srs"]["sha256"]),
        ):
            if not path.is_file():
                raise StoreError(f"{label.split()[0]} file not found: {path}")
            actual = sha256_file(path)
            _check(checks, label, actual == claimed, f"{path.name} sha256 {actual[:16]}… vs bundle {str(claimed)[:16]}…")
        if art.model_sha256 is not None:
            _check(
                checks, "model digest", art.model_sha256 == bundle.model_sha256,
                f"circuit built from model {art.model_sha256[:16]}…, bundle names {bundle.model_sha256[:16]}…",
            )
        settings = json.loads(art.settings.read_text())
        ra = settings["run_args"]
        # 2. Circuit facts
        c = data["circuit"]
        vis_settings = {
            "input": visibility_name(ra["input_visibility"]),
            "params": visibility_name(ra["param_visibility"]),
            "output": visibility_name(ra["output_visibility"]),
        }
        facts_ok = (
            int(c["batch_size"]) == int(dict(ra["variables"]).get("batch_size", 1))
            and int(c["input_scale"]) == int(ra["input_scale"])
            and [int(s) for s in c["output_scales"]] == [int(s) for s in settings["model_output_scales"]]
            and {k: str(v).lower() for k, v in c["visibility"].items()} == vis_settings
            and int(c["logrows"]) == int(ra["logrows"]) == read_header(art.srs)
        )
        _check(checks, "circuit facts", facts_ok, "batch, scales, visibility and logrows match the settings")
        # 3./4. Instances and coverage
        B = int(c["batch_size"])
        entries = bundle.proofs
        expected_first = 0
        decoded: list[list[float]] = []
        for i, e in enumerate(entries):
            if e.first_sample != expected_first or not 1 <= e.real_samples <= B:
                raise _Fail(f"proof {i} covers samples out of order")
            expected_first += e.real_samples
            if len(e.instances) != 1:
                raise _Fail(f"proof {i} has {len(e.instances)} instance columns, expected 1")
            col = e.instances[0]
            want = _expected_column(bundle, e, settings, art)
            if len(col) != len(want):
                raise _Fail(f"proof {i} has {len(col)} public instances, the circuit has {len(want)}")
            for j, (a, b) in enumerate(zip(col, want, strict=True)):
                if b is not None and a != b:
                    raise _Fail(f"proof {i}: public instance {j} does not match the bundle's claimed input/commitments")
            sizes = output_sizes(bundle)
            if c["visibility"]["output"] == "public":
                n_out = B * sum(sizes)
                outs = _decode_outputs(col[len(col) - n_out :], settings, sizes, B)
            elif c["visibility"]["output"] == "hashed":
                outs = _decode_outputs(e.output_felts or [], settings, sizes, B)
            else:
                outs = None
            if outs is not None:
                decoded += outs[: e.real_samples].tolist()
        _check(checks, "sample coverage", expected_first == bundle.samples, f"{len(entries)} proof(s) cover {expected_first} of {bundle.samples} samples")
        if c["visibility"]["output"] != "private":
            _check(
                checks, "outputs", decoded == bundle.outputs,
                "reported outputs equal the proof's public outputs" if decoded == bundle.outputs
                else "reported outputs differ from the proof's public outputs",
            )
        _check(checks, "instances", True, "public instances match the bundle's input, commitments and outputs")
        # 5. SNARKs
        with tempfile.TemporaryDirectory(prefix="zkml-verify-") as tmp:
            for i, e in enumerate(entries):
                p = Path(tmp) / f"proof{i}.json"
                p.write_text(json.dumps(e.to_ezkl(str(data.get("tools", {}).get("ezkl", "")))))
                try:
                    with native_output_captured():
                        ok = bool(ezkl.verify(str(p), str(art.settings), str(art.vk), srs_path=str(art.srs)))
                except RuntimeError as err:
                    ok = False
                    reason = str(err).splitlines()[0]
                else:
                    reason = "ezkl.verify returned false"
                _check(checks, f"snark {i}", ok, "proof verifies" if ok else f"proof {i} is invalid: {reason}")
    except _Fail as f:
        return Verdict(False, str(f), checks, time.perf_counter() - t0)
    except ZkmlError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as e:
        return Verdict(False, f"malformed bundle content ({type(e).__name__}: {e})", checks, time.perf_counter() - t0)
    return Verdict(True, None, checks, time.perf_counter() - t0)


def require_valid(verdict: Verdict) -> None:
    """Raise :class:`VerificationError` (exit 1) for an invalid verdict."""
    if not verdict.valid:
        raise VerificationError(f"invalid: {verdict.reason}")
