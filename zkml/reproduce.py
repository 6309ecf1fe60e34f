"""Reproduction: does this verifying key really belong to this ONNX file?

With fixed (baked-in) params the weights live only in the vk, so someone
holding the ONNX — and nothing else — can check that a proof speaks for it by
rebuilding the circuit: compile the ONNX with the circuit's public settings,
regenerate the keys with the same SRS, and compare the vk's digest with the
one the proofs verify under. Measured on ezkl 23.0.5: two independent builds
of one ONNX with the same settings and SRS give a byte-identical ``vk.key``,
while ``model.compiled`` differs, so only the vk is compared.

With hashed params the vk does not carry the weights; their Poseidon
commitment is recomputed from the rebuilt circuit instead (one witness of a
zero input: the commitment does not depend on the input). With private
params nothing binds the weights, and reproduction says so.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from zkml.errors import CircuitError, ConfigError, ModelError, StoreError
from zkml.util import native_output_captured, sha256_file


@dataclass(frozen=True)
class Reproduction:
    """The outcome of rebuilding a circuit's vk from an ONNX file."""

    onnx: str
    """The ONNX file rebuilt from."""
    onnx_sha256: str
    """Its digest."""
    vk_sha256: str | None
    """Digest of the vk rebuilt from it (None: the ONNX does not even compile under these settings)."""
    expected_vk_sha256: str
    """Digest of the vk being checked."""
    params: str
    """``fixed``, ``hashed`` or ``private`` (from the settings)."""
    weights_commitment: tuple[str, ...] | None
    """The rebuilt circuit's Poseidon weights commitment (hashed params)."""
    seconds: float
    """Wall time of the rebuild."""
    error: str | None = None
    """Why the rebuild failed, when it did (a mismatch too)."""
    graph: str | None = None
    """Which graph matched: ``as given`` or ``preprocessed`` (the ONNX after :mod:`zkml.preprocess`)."""

    @property
    def vk_match(self) -> bool:
        """True when the rebuilt vk is byte-identical (by digest) to the expected one."""
        return self.vk_sha256 == self.expected_vk_sha256

    @property
    def binds_model(self) -> bool:
        """True when a match ties the proofs to this ONNX (not with private params)."""
        return self.vk_match and self.params != "private"

    def detail(self) -> str:
        name = Path(self.onnx).name
        if self.vk_sha256 is None:
            return f"{name} does not compile under the circuit's settings ({self.error}): the proofs do not speak for {name}"
        if not self.vk_match:
            return (f"the vk ({self.expected_vk_sha256[:16]}…) is NOT the one {name} compiles to under these settings "
                    f"and SRS ({self.vk_sha256[:16]}…): the proofs do not speak for {name}")
        if self.params == "private":
            return f"the vk matches {name}'s circuit, but params are private: the proofs hold for any weights"
        via = " after zkml's deterministic preprocessing" if self.graph == "preprocessed" else ""
        return f"the vk is reproduced from {name} (sha256 {self.onnx_sha256[:16]}…){via} with the same settings and SRS"

    def as_dict(self) -> dict[str, Any]:
        return {"onnx": self.onnx, "onnx_sha256": self.onnx_sha256, "vk_sha256": self.vk_sha256,
                "expected_vk_sha256": self.expected_vk_sha256, "vk_match": self.vk_match, "params": self.params,
                "binds_model": self.binds_model,
                "weights_commitment": list(self.weights_commitment) if self.weights_commitment else None,
                "seconds": self.seconds, "error": self.error, "graph": self.graph, "detail": self.detail()}


def _param_visibility(settings: dict[str, Any]) -> str:
    from zkml.circuit import visibility_name

    return visibility_name(settings["run_args"]["param_visibility"])


def reproduce(
    onnx_path: Path, settings_path: Path, srs_path: Path, expected_vk: Path | str,
    *, progress: Callable[[str], None] = lambda _: None,
) -> Reproduction:
    """Rebuild the vk of ``onnx_path`` under ``settings_path`` and ``srs_path``; compare with ``expected_vk``.

    ``expected_vk`` is a vk file or its sha256.

    Raises:
        ModelError: the ONNX is unreadable.
        StoreError: settings or SRS unreadable.
        CircuitError: key generation failed.
    (An ONNX that does not compile under the settings is a mismatch, not an error.)
    """
    import ezkl

    from zkml.onnx_check import load_model

    t0 = time.perf_counter()
    info = load_model(onnx_path, check_ops=False)
    try:
        settings = json.loads(Path(settings_path).read_text())
        params = _param_visibility(settings)
        batch = int(dict(settings["run_args"]["variables"]).get("batch_size", 1))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StoreError(f"{settings_path}: not an ezkl settings file ({type(e).__name__})") from None
    if not Path(srs_path).is_file():
        raise StoreError(f"SRS file not found: {srs_path}")
    want = expected_vk if isinstance(expected_vk, str) else sha256_file(expected_vk)
    with tempfile.TemporaryDirectory(prefix="zkml-reproduce-") as tmp:
        work = Path(tmp)
        # The graph as given first; then, as the build does when ezkl refuses a graph, its deterministic
        # preprocessing (zkml.preprocess): either is a function of the verifier's own ONNX
        candidates: list[tuple[str, Path]] = [("as given", Path(onnx_path))]
        got, error, how = None, None, ""
        for attempt in range(2):
            label, graph = candidates[attempt] if attempt < len(candidates) else (None, None)
            if graph is None:
                break
            compiled, vk, pk = work / f"model{attempt}.compiled", work / f"vk{attempt}.key", work / f"pk{attempt}.key"
            progress(f"reproducing the circuit from {Path(onnx_path).name} ({label}): compile")
            try:
                with native_output_captured():
                    ezkl.compile_circuit(str(graph), str(compiled), str(settings_path))
            except RuntimeError as e:
                error = (str(e).splitlines() or ["ezkl compile failed"])[0][:200]
            else:
                progress("reproducing the circuit: keys")
                try:
                    with native_output_captured():
                        ok = ezkl.setup(str(compiled), str(vk), str(pk), srs_path=str(srs_path))
                except RuntimeError as e:  # e.g. a graph ezkl compiles but cannot lay out: try it preprocessed
                    ok, error = False, f"ezkl setup failed: {(str(e).splitlines() or ['?'])[0][:160]}"
                if ok:
                    got, how = sha256_file(vk), label
                    if got == want:
                        break
            if attempt == 0:
                candidates.append(("preprocessed", _preprocessed(Path(onnx_path), work)))
        if got is None:
            return Reproduction(onnx=str(onnx_path), onnx_sha256=info.sha256, vk_sha256=None, expected_vk_sha256=want,
                                params=params, weights_commitment=None, seconds=time.perf_counter() - t0,
                                error=error)
        wc = (_weights_commitment(work, compiled, vk, srs_path, info, batch)
              if params == "hashed" and got == want else None)
    return Reproduction(onnx=str(onnx_path), onnx_sha256=info.sha256, vk_sha256=got, expected_vk_sha256=want,
                        params=params, weights_commitment=wc, seconds=time.perf_counter() - t0,
                        graph=how if got == want else None)


def _preprocessed(onnx_path: Path, work: Path) -> Path:
    from zkml.preprocess import preprocess

    out = work / "model.prep.onnx"
    try:
        data, _ = preprocess(onnx_path.read_bytes())
    except ModelError:
        return onnx_path
    out.write_bytes(data)
    return out


def _weights_commitment(work: Path, compiled: Path, vk: Path, srs: Path, info: Any, batch: int) -> tuple[str, ...]:
    import ezkl

    from zkml.inputs import to_ezkl_json

    data, wit = work / "input.json", work / "witness.json"
    zeros = {s.name: np.zeros((batch if info.batched else 1, *s.shape), dtype=np.dtype(s.dtype)) for s in info.inputs}
    data.write_text(json.dumps(to_ezkl_json(zeros, info.inputs)))
    try:
        with native_output_captured():
            ezkl.gen_witness(str(data), str(compiled), str(wit), vk_path=str(vk), srs_path=str(srs))
        return tuple(str(x) for x in json.loads(wit.read_text())["processed_params"]["poseidon_hash"])
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        raise CircuitError(f"could not recompute the weights commitment: {e}") from e


def reproduce_for_bundle(
    bundle: Any, model: Path, store: Any, art: Any, *, srs: Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> Any:
    """Return ``art`` bound to ``model`` when the reproduction matches (what ``verify --model`` uses).

    On a mismatch the returned artifacts name the reproduced model, so the
    verdict refuses the bundle (its vk or model digest no longer fits) —
    and :func:`zkml.verify.verify` reports the reproduction's detail.

    Raises:
        ConfigError: no settings/SRS to reproduce with (the circuit is neither in the store nor given).
        ReproductionMismatch: the vk is not the model's.
    """
    if art is None:
        raise ConfigError(
            f"circuit {bundle.circuit_id} is not in this store: to reproduce it from {model.name}, pass its public "
            "settings and SRS too (--circuit DIR, or --settings/--vk/--srs)"
        )
    if not model.is_file():
        raise ModelError(f"model not found: {model}")
    rep = reproduce(model, art.settings, art.srs, art.vk, progress=progress)
    if not rep.vk_match:
        raise ReproductionMismatch(rep)
    if rep.params == "private":
        return replace(art, model_sha256=None, model_basis=None)
    return replace(
        art, model_sha256=rep.onnx_sha256, model_basis=rep.detail(),
        weights_commitment=rep.weights_commitment if rep.params == "hashed" else art.weights_commitment,
    )


class ReproductionMismatch(CircuitError):
    """The vk a bundle verifies under is not the one the verifier's ONNX compiles to."""

    exit_code = 1

    def __init__(self, reproduction: Reproduction):
        super().__init__(reproduction.detail())
        self.reproduction = reproduction


def reproduce_named(
    model: Path, store: Any, *, bundle: Any = None, circuit: str | Path | None = None,
    settings: Path | None = None, vk: Path | None = None, srs: Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> Reproduction:
    """``zkml reproduce``: does the vk of a bundle's circuit, a circuit folder/id, or given files belong to ``model``?

    Raises:
        ConfigError: nothing (or too much) named to reproduce against.
        StoreError / ModelError / CircuitError: artifacts unusable.
    """
    from zkml.circuit import artifacts_from_store, named_artifacts

    if sum(x is not None for x in (bundle, circuit, settings or vk)) != 1:
        raise ConfigError("name exactly one of: a proof bundle, --circuit DIR|ID, or --settings/--vk/--srs")
    art = named_artifacts(store, circuit=circuit, settings=settings, vk=vk, srs=srs) or artifacts_from_store(bundle, store)
    s, v, r = art.settings, art.vk, art.srs
    if not Path(model).is_file():
        raise ModelError(f"model not found: {model}")
    return reproduce(Path(model), s, r, v, progress=progress)


from zkml._entry import callable_module  # noqa: E402

callable_module(__name__, "reproduce")  # `zkml.reproduce(...)` is zkml.api.reproduce
