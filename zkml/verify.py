"""Verify a proof bundle under zkml's trust model.

**The trust model.** A bundle, and every file that travels with it (circuit
folders, manifests, settings, vk, SRS), is attacker-controlled input. A
verdict may rest only on:

- circuits the verifier's **own store built** (the id is format-checked and
  resolved inside the store; every file digest-checked against a manifest
  whose key digest names the folder);
- artifacts it **reproduces** from an ONNX file the verifier holds
  (:mod:`zkml.reproduce`: recompile with the circuit's settings, regenerate
  the vk with the same SRS, compare digests);
- records it reads from a **chain** (``zkml verify --onchain``);
- SRS files identified by a **pinned digest** or named **trusted** by the
  user (:func:`zkml.srs.identify`); anything else is "unknown origin".

A bundle is **valid** only if all of these hold:

1. the settings, vk and SRS used have exactly the digests the bundle names,
   and (when known) so does the compiled circuit;
2. the bundle's circuit facts (batch, scales, visibility, logrows, output
   sizes) match the settings and the SRS header; for a store circuit, the
   model facts (digest, input name, sample shape) match its manifest;
3. each proof's public instances are exactly what the bundle claims: the
   quantized revealed input (public) or the Poseidon hash of its quantized
   preimage (hashed), the weights commitment (hashed params; equal to the
   trusted circuit's), and the outputs whose dequantized values the bundle
   reports (public, or the Poseidon preimage when hashed); nothing is revealed
   for a private part;
4. the proofs cover the bundle's samples in order;
5. ``ezkl.verify`` accepts every proof against the vk and SRS.

A valid verdict then lists each **claim** as bound (with what bound it) or
not: the model is bound only by a store circuit, a reproduction, or a chain
record; a foreign circuit's model digest is reported as NOT BOUND. Metadata
(times, tool versions, warnings, receipts, the prover's SRS label) is never
repeated as a fact.

A failed check is a verdict (``valid=False`` with the reason), not an
exception; missing or unreadable artifacts raise, because then nothing was
checked.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from zkml.bundle import Bundle, ProofEntry
from zkml.circuit import Artifacts, artifacts_from_dir, artifacts_from_store, named_artifacts, visibility_name
from zkml.errors import ConfigError, StoreError, ZkmlError
from zkml.quant import felts_to_floats, int_to_felt, quantize
from zkml.srs import SRSOrigin, identify, identify_digest, read_header
from zkml.store import Store
from zkml.reproduce import ReproductionMismatch, reproduce_for_bundle
from zkml.util import native_output_captured, sha256_file, sha256_json

__all__ = ["Artifacts", "Claim", "Verdict", "artifacts_from_dir", "artifacts_from_store", "verify",
           "verify_bundle", "visibility_name"]


@dataclass(frozen=True)
class Claim:
    """One thing a verdict says, and whether anything checked it."""

    name: str
    """What the claim is about (model, input, outputs, weights, circuit, srs)."""
    value: Any
    """The value claimed (JSON-friendly)."""
    bound: bool
    """True: checked against the proof's instances, a preimage of one, or a trusted artifact."""
    basis: str
    """What bound it, or why it is not bound."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "bound": self.bound, "basis": self.basis}


@dataclass(frozen=True)
class Verdict:
    """Outcome of :func:`verify_bundle` / :func:`verify`."""

    valid: bool
    """True only if every check passed."""
    reason: str | None
    """The first failed check, in words."""
    checks: list[dict[str, Any]] = field(default_factory=list)
    """Each check: name, ok, detail."""
    seconds: float = 0.0
    """Wall time."""
    claims: tuple[Claim, ...] = ()
    """For a valid verdict: each claim, bound or not."""
    srs: SRSOrigin | None = None
    """Where the SRS comes from, as the verifier identified it."""

    @property
    def model_bound(self) -> bool:
        """True when the model digest is bound (store circuit, reproduction or chain record)."""
        return any(c.name == "model" and c.bound for c in self.claims)

    def claim(self, name: str) -> Claim | None:
        return next((c for c in self.claims if c.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "reason": self.reason,
            "checks": self.checks,
            "seconds": self.seconds,
            "claims": [c.as_dict() for c in self.claims],
            "bound": {c.name: c.bound for c in self.claims},
            "srs": self.srs.as_dict() if self.srs else None,
        }


class ClaimFailed(Exception):
    """A claim of the bundle disagrees with the proofs (caught inside this module and by zkml.compare; a
    verdict carries it as a failed check, never as an error)."""


# ---------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------


def _check(checks: list[dict[str, Any]], name: str, ok: bool, detail: str) -> None:
    checks.append({"name": name, "ok": ok, "detail": detail})
    if not ok:
        raise ClaimFailed(detail)


def _revealed(bundle: Bundle) -> list[np.ndarray]:
    """The revealed input, one array ``[samples, *shape]`` per model input, strictly of the bundle's shapes."""
    specs = bundle.model.all_inputs
    vals = bundle.input_values or []
    if len(specs) == 1:
        parts: list[Any] = [vals]
    else:
        if any(not isinstance(row, list) or len(row) != len(specs) for row in vals):
            raise ClaimFailed(f"each revealed sample must list the model's {len(specs)} inputs")
        parts = [[row[j] for row in vals] for j in range(len(specs))]
    out = []
    for spec, part in zip(specs, parts, strict=True):
        try:
            arr = np.asarray(part, dtype=np.float64)
        except ValueError:
            raise ClaimFailed("the revealed input does not have the bundle's sample shape") from None
        if arr.shape != (len(vals), *spec.shape):
            raise ClaimFailed("the revealed input does not have the bundle's sample shape")
        if spec.kind != "float" and not np.all(arr == np.round(arr)):
            raise ClaimFailed(f"the revealed input '{spec.name}' is {spec.dtype} but holds fractions")
        out.append(arr)
    return out


def _chunk(bundle: Bundle, entry: ProofEntry) -> list[np.ndarray] | None:
    """The revealed input rows one proof covers (per input), padded to the batch like the prover pads."""
    if bundle.input_values is None:
        return None
    B = bundle.batch_size
    out = []
    for arr in _revealed(bundle):
        rows = arr[entry.first_sample : entry.first_sample + entry.real_samples]
        if len(rows) != entry.real_samples:
            raise ClaimFailed("the bundle's input has fewer samples than its proofs cover")
        out.append(np.concatenate([rows, np.repeat(rows[-1:], B - len(rows), axis=0)], axis=0))
    return out


def _input_scales(bundle: Bundle, settings: dict[str, Any]) -> list[int]:
    """Each input's scale from the settings; float inputs at the input scale, int/bool ones at 0."""
    specs = bundle.model.all_inputs
    in_scale = int(settings["run_args"]["input_scale"])
    scales = [int(x) for x in settings.get("model_input_scales", [in_scale] * len(specs))]
    want = [in_scale if s.kind == "float" else 0 for s in specs]
    if scales != want:
        raise ClaimFailed("the bundle's inputs (count or dtypes) do not match the circuit's input scales")
    return scales


def expected_column(bundle: Bundle, entry: ProofEntry, settings: dict[str, Any], art: Artifacts) -> list[str | None]:
    """The instance column the bundle's claims imply (None: an output, decoded and compared by the caller)."""
    import ezkl

    vis = bundle.visibility
    B = bundle.batch_size
    scales = _input_scales(bundle, settings)
    n_in = B * sum(i.size for i in bundle.model.all_inputs)
    hashes: list[str | None] = []
    raw: list[str | None] = []
    # Input
    chunk = _chunk(bundle, entry)
    felts = ([int_to_felt(v) for part, sc in zip(chunk, scales, strict=True) for v in quantize(part, sc)]
             if chunk is not None else None)
    if felts is not None and len(felts) != n_in:
        raise ClaimFailed("the revealed input does not have the bundle's sample shape")
    if vis.input == "public":
        if entry.input_felts is not None:
            raise ClaimFailed("a public input carries no separate felts")
        raw += felts if felts is not None else [None] * n_in  # not revealed as floats: the instances are the input
    elif vis.input == "hashed":
        if felts is not None:
            if entry.input_felts is not None and entry.input_felts != felts:
                raise ClaimFailed("the revealed input does not match its quantized preimage")
            # ezkl commits to each input separately: one Poseidon hash per input, in graph order
            pos = 0
            for spec in bundle.model.all_inputs:
                n = B * spec.size
                hashes += list(ezkl.poseidon_hash(felts[pos : pos + n]))
                pos += n
        elif entry.input_felts is not None:
            raise ClaimFailed("the bundle carries input felts but not the input they quantize")
        else:
            hashes += [None] * len(bundle.model.all_inputs)  # the commitments (one per input): nothing to compare
    else:
        if felts is not None or entry.input_felts is not None:
            raise ClaimFailed("the input is private: the bundle reveals values nothing binds to the proof")
    # Params
    wc = bundle.circuit.weights_commitment
    if vis.params == "hashed":
        if not wc:
            raise ClaimFailed("params are hashed but the bundle names no weights commitment")
        if art.weights_commitment is not None and tuple(art.weights_commitment) != tuple(wc):
            raise ClaimFailed("the bundle's weights commitment is not the circuit's")
        hashes += list(wc)
    elif wc is not None:
        raise ClaimFailed(f"params are {vis.params} but the bundle names a weights commitment")
    # Output (after the raw input, whether raw or hashed)
    out: list[str | None] = []
    n_out = B * sum(bundle.circuit.output_sizes)
    if vis.output == "public":
        if entry.output_felts is not None:
            raise ClaimFailed("a public output carries no separate felts")
        out += [None] * n_out
    elif vis.output == "hashed":
        if entry.output_felts is None:
            raise ClaimFailed("outputs are hashed but the bundle does not reveal their preimage")
        if len(entry.output_felts) != n_out:
            raise ClaimFailed("the revealed output felts do not match the circuit's output shapes")
        pos = 0
        for size in bundle.circuit.output_sizes:  # one Poseidon hash per output
            out += list(ezkl.poseidon_hash(entry.output_felts[pos : pos + B * size]))
            pos += B * size
    elif entry.output_felts is not None:
        raise ClaimFailed("the output is private: the bundle reveals values nothing binds to the proof")
    return hashes + raw + out


def _decode_outputs(felts: list[str], settings: dict[str, Any], sizes: Sequence[int], B: int) -> np.ndarray:
    out_scales = [int(s) for s in settings["model_output_scales"]]
    if len(felts) != B * sum(sizes) or len(sizes) != len(out_scales):
        raise ClaimFailed("the output elements do not match the circuit's output shapes")
    parts, pos = [], 0
    for s, n in zip(out_scales, sizes, strict=True):
        parts.append(felts_to_floats(felts[pos : pos + B * n], s).reshape(B, n))
        pos += B * n
    return np.concatenate(parts, axis=1)


def _instance_shapes_ok(bundle: Bundle, settings: dict[str, Any]) -> bool:
    """Public input/output sizes appear, in order, among the settings' instance shapes."""
    shapes = settings.get("model_instance_shapes")
    if not isinstance(shapes, list):
        return True
    B = bundle.batch_size
    want: list[int] = []
    if bundle.visibility.input == "public":
        want += [B * i.size for i in bundle.model.all_inputs]
    if bundle.visibility.output == "public":
        want += [B * n for n in bundle.circuit.output_sizes]
    if not want:
        return True
    got = [int(np.prod(s)) for s in shapes]
    return any(got[i : i + len(want)] == want for i in range(len(got) - len(want) + 1))


def _digest_checks(bundle: Bundle, art: Artifacts, checks: list[dict[str, Any]]) -> None:
    c = bundle.circuit
    for label, path, claimed in (
        ("settings digest", art.settings, c.settings_sha256),
        ("vk digest", art.vk, c.vk_sha256),
        ("srs digest", art.srs, bundle.srs_sha256),
    ):
        if not path.is_file():
            raise StoreError(f"{label.split()[0]} file not found: {path}")
        actual = sha256_file(path)
        _check(checks, label, actual == claimed, f"{path.name} sha256 {actual[:16]}… vs bundle {claimed[:16]}…")
    if art.compiled is not None:
        actual = sha256_file(art.compiled)
        _check(checks, "compiled digest", actual == c.compiled_sha256,
               f"model.compiled sha256 {actual[:16]}… vs bundle {c.compiled_sha256[:16]}…")
    if art.circuit_id is not None:
        _check(checks, "circuit id", art.circuit_id == c.id, f"store circuit {art.circuit_id} vs bundle {c.id}")
    if art.model_sha256 is not None:
        _check(checks, "model digest", art.model_sha256 == bundle.model_sha256,
               f"circuit built from model {art.model_sha256[:16]}…, bundle names {bundle.model_sha256[:16]}…")
    if art.input_name is not None or art.sample_shape is not None or art.inputs is not None:
        ok = (art.input_name in (None, bundle.model.input_name)
              and (art.sample_shape is None or tuple(art.sample_shape) == tuple(bundle.model.sample_shape))
              and (art.inputs is None or [i.as_dict() for i in bundle.model.all_inputs] == list(art.inputs)))
        _check(checks, "model facts", ok, "input name and sample shape match the circuit's model")


def _facts_check(bundle: Bundle, art: Artifacts, settings: dict[str, Any], checks: list[dict[str, Any]]) -> None:
    ra = settings["run_args"]
    c = bundle.circuit
    vis_settings = {
        "input": visibility_name(ra["input_visibility"]),
        "params": visibility_name(ra["param_visibility"]),
        "output": visibility_name(ra["output_visibility"]),
    }
    srs_k = read_header(art.srs)
    facts_ok = (
        c.batch_size == int(dict(ra["variables"]).get("batch_size", 1))
        and c.input_scale == int(ra["input_scale"])
        and list(c.output_scales) == [int(s) for s in settings["model_output_scales"]]
        and len(c.output_sizes) == len(c.output_scales)
        and c.visibility.as_dict() == vis_settings
        and c.logrows == int(ra["logrows"]) == srs_k == bundle.srs_logrows
        and _instance_shapes_ok(bundle, settings)
    )
    _check(checks, "circuit facts", facts_ok, "batch, scales, visibility, shapes and logrows match the settings and SRS"
           if facts_ok else "the bundle's circuit facts (batch, scales, visibility, shapes or logrows) differ from the settings/SRS")


def verify_bundle(bundle: Bundle, art: Artifacts) -> Verdict:
    """Run every check on ``bundle`` against ``art`` (see the module docstring).

    The verdict's claims say what is bound; with untrusted artifacts the model is not.

    Raises:
        ZkmlError: artifacts missing or unreadable (nothing could be checked).
    """
    import ezkl

    t0 = time.perf_counter()
    checks: list[dict[str, Any]] = []
    try:
        # 1. Digests
        _digest_checks(bundle, art, checks)
        try:
            settings = json.loads(art.settings.read_text())
            settings["run_args"]["logrows"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise StoreError(f"{art.settings}: not an ezkl settings file ({type(e).__name__})") from None
        # 2. Circuit facts
        _facts_check(bundle, art, settings, checks)
        # 3./4. Instances and coverage
        B = bundle.batch_size
        sizes = bundle.circuit.output_sizes
        vis = bundle.visibility
        if bundle.input_values is not None:
            if len(bundle.input_values) != bundle.samples:
                raise ClaimFailed(f"the bundle reveals {len(bundle.input_values)} input samples for {bundle.samples} proven")
            _revealed(bundle)  # each input strictly of its shape and dtype
        elif bundle.input_sha256 is not None:
            raise ClaimFailed("the bundle names an input digest but reveals no input: nothing binds it")
        if vis.output == "private" and bundle.outputs is not None:
            raise ClaimFailed("the output is private: the bundle reports outputs nothing binds to the proof")
        expected_first = 0
        decoded: list[list[float]] = []
        for i, e in enumerate(bundle.proofs):
            if e.first_sample != expected_first or not 1 <= e.real_samples <= B:
                raise ClaimFailed(f"proof {i} covers samples out of order")
            expected_first += e.real_samples
            if len(e.instances) != 1:
                raise ClaimFailed(f"proof {i} has {len(e.instances)} instance columns, expected 1")
            col = e.instances[0]
            want = expected_column(bundle, e, settings, art)
            if len(col) != len(want):
                raise ClaimFailed(f"proof {i} has {len(col)} public instances, the circuit has {len(want)}")
            for j, (a, b) in enumerate(zip(col, want, strict=True)):
                if b is not None and a != b:
                    raise ClaimFailed(f"proof {i}: public instance {j} does not match the bundle's claimed input/commitments")
            if vis.output == "public":
                outs = _decode_outputs(col[len(col) - B * sum(sizes):], settings, sizes, B)
            elif vis.output == "hashed":
                outs = _decode_outputs(e.output_felts or [], settings, sizes, B)
            else:
                outs = None
            if outs is not None:
                decoded += outs[: e.real_samples].tolist()
        _check(checks, "sample coverage", expected_first == bundle.samples,
               f"{len(bundle.proofs)} proof(s) cover {expected_first} of {bundle.samples} samples")
        if vis.output != "private":
            _check(checks, "outputs", decoded == bundle.outputs,
                   "reported outputs equal the proof's public outputs" if decoded == bundle.outputs
                   else "reported outputs differ from the proof's public outputs")
        _check(checks, "instances", True, "public instances match the bundle's input, commitments and outputs")
        if bundle.input_values is not None:
            ok = bundle.input_sha256 == sha256_json(bundle.input_values)
            _check(checks, "input digest", ok, "input sha256 is the digest of the revealed input" if ok
                   else "the bundle's input sha256 is not the digest of its revealed input")
        # 5. SNARKs
        with tempfile.TemporaryDirectory(prefix="zkml-verify-") as tmp:
            for i, e in enumerate(bundle.proofs):
                p = Path(tmp) / f"proof{i}.json"
                p.write_text(json.dumps(e.to_ezkl(bundle.ezkl_version)))
                try:
                    with native_output_captured():
                        ok = bool(ezkl.verify(str(p), str(art.settings), str(art.vk), srs_path=str(art.srs)))
                except BaseException as err:  # ezkl raises RuntimeError, and a Rust panic (BaseException) on odd bytes
                    if isinstance(err, KeyboardInterrupt | SystemExit | GeneratorExit):
                        raise
                    ok = False
                    reason = str(err).splitlines()[0][:200] if str(err) else "ezkl.verify failed"
                else:
                    reason = "ezkl.verify returned false"
                _check(checks, f"snark {i}", ok, "proof verifies" if ok else f"proof {i} is invalid: {reason}")
    except ClaimFailed as f:
        return Verdict(False, str(f), checks, time.perf_counter() - t0)
    except ZkmlError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as e:
        return Verdict(False, f"malformed bundle content ({type(e).__name__})", checks, time.perf_counter() - t0)
    return Verdict(True, None, checks, time.perf_counter() - t0, claims=_claims(bundle, art))


def _claims(bundle: Bundle, art: Artifacts) -> tuple[Claim, ...]:
    """What a valid verdict may say, each claim with what bound it."""
    vis = bundle.visibility
    out: list[Claim] = []
    # The circuit (vk) and the model it speaks for
    if art.trusted:
        out.append(Claim("circuit", {"id": bundle.circuit_id, "vk_sha256": bundle.vk_sha256}, True,
                         art.model_basis or "trusted circuit"))
    else:
        out.append(Claim("circuit", {"vk_sha256": bundle.vk_sha256}, True,
                         f"the proofs verify under the vk you gave ({art.source}); nothing ties that vk to a model"))
    if vis.params == "private":
        out.append(Claim("model", bundle.model_sha256, False,
                         "params are private: the proof holds for any weights, so no model is bound"))
    elif art.trusted:
        out.append(Claim("model", bundle.model_sha256, True, art.model_basis or "trusted circuit"))
    else:
        out.append(Claim("model", bundle.model_sha256, False,
                         "NOT BOUND: the bundle names this model but nothing checked it "
                         "(pass --model MODEL.onnx to reproduce the circuit, or verify --onchain)"))
    if vis.params == "hashed":
        wc = list(bundle.circuit.weights_commitment or [])
        out.append(Claim("weights", wc, art.weights_commitment is not None,
                         "the params' Poseidon instance equals the trusted circuit's commitment"
                         if art.weights_commitment is not None
                         else "a Poseidon instance of the proof, but not compared with any trusted model's commitment"))
    # Input
    if vis.input == "public":
        out.append(Claim("input", {"samples": bundle.samples, "sha256": bundle.input_sha256}, True,
                         "quantized, equal to the proof's public instances" if bundle.input_values is not None
                         else "the proof's public instances (the float values are not in the bundle)"))
    elif vis.input == "hashed" and bundle.input_values is not None:
        out.append(Claim("input", {"samples": bundle.samples, "sha256": bundle.input_sha256}, True,
                         "quantized, the Poseidon preimage of the proof's input commitment"))
    elif vis.input == "hashed":
        commits = [e.instances[0][0] for e in bundle.proofs]
        out.append(Claim("input commitment", commits, True,
                         "Poseidon commitment(s) in the proof; the input itself is not revealed"))
    else:
        out.append(Claim("input", None, False, "private: not revealed and not bound by the proof"))
    # Outputs
    if vis.output == "public":
        out.append(Claim("outputs", bundle.outputs, True, "dequantized public instances of the proof"))
    elif vis.output == "hashed":
        out.append(Claim("outputs", bundle.outputs, True, "dequantized Poseidon preimage of the proof's output commitment"))
    else:
        out.append(Claim("outputs", None, False, "private: not revealed and not bound by the proof"))
    return tuple(out)


# ---------------------------------------------------------------------------
# The library entry point: choose artifacts, verify, reproduce, identify the SRS
# ---------------------------------------------------------------------------


def verify(
    bundle: Bundle,
    store: Store,
    *,
    circuit: str | Path | None = None,
    settings: Path | None = None,
    vk: Path | None = None,
    srs: Path | None = None,
    model: Path | None = None,
    trusted_srs: Sequence[str] = (),
    progress: Callable[[str], None] = lambda _: None,
) -> Verdict:
    """Verify ``bundle`` with the artifacts the caller names (what ``zkml verify`` does).

    - nothing named: the bundle's circuit from ``store`` (trusted);
    - ``circuit``: a circuit id in ``store`` (trusted) or a folder (untrusted);
    - ``settings`` + ``vk`` + ``srs``: files (untrusted);
    - ``model``: the verifier's ONNX; the circuit is reproduced from it (with the
      chosen artifacts' settings and SRS) and the model is bound only if the
      reproduced vk equals the one the proofs verify under. Without a store
      circuit, an untrusted circuit's model stays NOT BOUND.

    Raises:
        ConfigError: an inconsistent set of options.
        StoreError / ModelError / CircuitError: artifacts missing or unusable.
    """
    art = named_artifacts(store, circuit=circuit, settings=settings, vk=vk, srs=srs)
    if art is None:
        if srs is not None and model is None:
            raise ConfigError("--srs goes with --circuit DIR or --settings/--vk")
        try:
            art = artifacts_from_store(bundle, store)
        except StoreError:
            if model is None:
                raise
            art = None  # type: ignore[assignment]
    if model is not None:
        try:
            art = reproduce_for_bundle(bundle, Path(model), store, art, srs=srs, progress=progress)
        except ReproductionMismatch as e:
            detail = e.reproduction.detail()
            return Verdict(False, detail, [{"name": "reproduction", "ok": False, "detail": detail}],
                           e.reproduction.seconds)
    verdict = verify_bundle(bundle, art)
    origin = (identify_digest(bundle.srs_sha256, bundle.srs_logrows, store, trusted=trusted_srs) if verdict.valid
              else identify(art.srs, store, trusted=trusted_srs))  # valid: the file's digest is the bundle's
    claims = verdict.claims
    if verdict.valid:
        claims = (*claims, Claim("srs", {"sha256": origin.sha256, "kind": origin.kind}, origin.trusted, origin.label))
    return replace(verdict, claims=claims, srs=origin)


from zkml._entry import callable_module  # noqa: E402

callable_module(__name__, "verify")  # `zkml.verify(...)` is zkml.api.verify
