"""Prove: witness + SNARK for one or more samples, in a worker with a timeout.

Samples are split into chunks of the circuit's batch size (the last chunk is
padded by repeating its final sample); each chunk is one proof. The witness is
computed in-process (milliseconds); ``ezkl.prove`` runs in a subprocess so a
hang (ezkl issue 1029) ends in a clear :class:`ProveTimeout`, and the proof
file is only ever read after the worker reported success.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zkml._prove_worker import prover_env
from zkml.bundle import Bundle, CircuitPart, InputPart, Metadata, ModelPart, ProofEntry, Visibility
from zkml.circuit import Circuit
from zkml.errors import InputError, ProofError, ProveTimeout
from zkml.inputs import Feed, feed_len, feed_slice, revealed_values, to_ezkl_json, to_feed
from zkml.quant import felts_to_floats
from zkml.srs import DEV_WARNING
from zkml.store import tool_versions
from zkml.util import native_output_captured, now_iso, sha256_json

DEFAULT_TIMEOUT_S = 600.0


def input_limit(settings: dict[str, Any]) -> float:
    """Largest |input| the circuit's range checks can represent at its input scale."""
    ra = settings["run_args"]
    span = int(ra["decomp_base"]) ** int(ra["decomp_legs"]) // 2
    return span / float(1 << int(ra["input_scale"]))


def check_samples(circuit: Circuit, raw: Any) -> Feed:
    """Shape, dtype, finiteness and range checks against the circuit; returns the feed.

    Raises:
        InputError: wrong shape, NaN/inf, a fraction for an int input, or beyond the quantization range.
    """
    feed = to_feed(raw, circuit.inputs, source="input")
    limit = input_limit(circuit.settings)
    for spec in circuit.inputs:
        if spec.kind != "float":
            continue
        peak = float(np.max(np.abs(feed[spec.name])))
        if peak >= limit:
            name = f" '{spec.name}'" if len(circuit.inputs) > 1 else ""
            raise InputError(
                f"input{name} value {peak:.6g} is beyond the circuit's quantization range (|x| < {limit:.6g} "
                f"at scale {circuit.settings['run_args']['input_scale']})"
            )
    return feed


def gen_witness(circuit: Circuit, chunk: Feed, workdir: Path) -> tuple[Path, dict[str, Any]]:
    """Witness for one chunk.

    Raises:
        InputError: ezkl refused the values (range/lookup overflow).
    """
    import ezkl

    data = workdir / "input.json"
    out = workdir / "witness.json"
    data.write_text(json.dumps(to_ezkl_json(chunk, circuit.inputs)))
    try:
        with native_output_captured():
            ezkl.gen_witness(str(data), str(circuit.compiled), str(out), vk_path=str(circuit.vk), srs_path=str(circuit.srs.path))
    except RuntimeError as e:
        raise InputError(f"the circuit cannot represent this input (outside its quantization range): {e}") from e
    return out, json.loads(out.read_text())


def run_prover(circuit: Circuit, witness: Path, proof: Path, timeout: float, *, threads: int | None = None) -> float:
    """Run ``ezkl.prove`` in a subprocess; return its seconds.

    ``threads``: ezkl's thread count in that process (default: ezkl's own, one per core).

    Raises:
        ProveTimeout: the worker did not finish in ``timeout`` seconds (killed).
        ProofError: the worker failed.
    """
    cmd = [sys.executable, "-m", "zkml._prove_worker", str(witness), str(circuit.compiled), str(circuit.pk), str(proof), str(circuit.srs.path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True, text=True,
                            env=prover_env(threads))
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise ProveTimeout(timeout) from None
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    try:
        res = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ProofError(f"prover worker died (exit code {proc.returncode})") from None
    if not res["ok"] or not proof.is_file():
        raise ProofError(f"proving failed: {res.get('error')}")
    return float(res["seconds"])


@dataclass(frozen=True)
class ChunkProof:
    """One chunk's proof as a prover backend (:data:`ProveChunks`) hands it back."""

    proof: dict[str, Any]
    """The proof JSON ``ezkl.prove`` wrote (``instances``, ``hex_proof``, ``timestamp`` ...)."""
    seconds: float
    """Wall time of ``ezkl.prove``."""
    prover: Mapping[str, Any] | None = None
    """Where it ran (node, host, pid, attempt): recorded as bundle metadata, checked by nothing."""


ProveChunks = Callable[[Circuit, Sequence[Path], float, Callable[[str], None]], list[ChunkProof]]
"""A prover backend: ``(circuit, witness files in chunk order, timeout, progress) -> proofs in the same order``.
The default proves one after another here; :mod:`zkml.scale` has a process pool and Ray tasks."""


def prove_chunks_local(circuit: Circuit, witnesses: Sequence[Path], timeout: float,
                       progress: Callable[[str], None] = lambda _: None, *,
                       run: Callable[[Circuit, Path, Path, float], float] = run_prover) -> list[ChunkProof]:
    """Prove each witness in turn here (the default backend).

    ``run(circuit, witness, proof, timeout) -> seconds`` proves one: by default a one-shot prover
    subprocess (:func:`run_prover`); :func:`zkml.scale.prove_many` passes an already-started warm one.
    """
    out = []
    for i, w in enumerate(witnesses):
        progress(f"proof {i + 1}/{len(witnesses)}: proving (2^{circuit.logrows} rows)")
        ppath = w.with_name("proof.json")
        secs = run(circuit, w, ppath, timeout)
        out.append(ChunkProof(proof=json.loads(ppath.read_text()), seconds=secs))
        ppath.unlink()
    return out


def _hash_part(processed: dict[str, Any] | None) -> list[str]:
    if not processed or not processed.get("poseidon_hash"):
        raise ProofError("witness lacks the Poseidon commitment its visibility requires")
    return [str(x) for x in processed["poseidon_hash"]]


def expected_instances(witness: dict[str, Any], vis: dict[str, str]) -> list[str]:
    """The instance column a proof of this witness must carry (see bundle docstring).

    Measured on ezkl 23.0.5: the input's Poseidon hash and the params' hash
    come first, then the raw public input, then the output (raw or its hash).
    """
    col: list[str] = []
    if vis["input"] == "hashed":
        col += _hash_part(witness.get("processed_inputs"))
    if vis["params"] == "hashed":
        col += _hash_part(witness.get("processed_params"))
    if vis["input"] == "public":
        col += [f for t in witness["inputs"] for f in t]
    if vis["output"] == "hashed":
        col += _hash_part(witness.get("processed_outputs"))
    elif vis["output"] == "public":
        col += [f for t in witness["outputs"] for f in t]
    return col


def prove(
    circuit: Circuit,
    raw_input: np.ndarray,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    reveal_input: bool | None = None,
    progress: Callable[[str], None] = lambda _: None,
    executor: ProveChunks | None = None,
) -> Bundle:
    """Prove ``raw_input`` (one sample or several) and return the bundle.

    ``executor``: the backend that turns the chunks' witnesses into proofs
    (default :func:`prove_chunks_local`); the bundle is the same whichever proved.

    ``reveal_input``: include the float input in the bundle (a hashed input is
    then revealed with its quantized preimage). Default: only when the input is
    public (it is in the instances anyway). A private input is never revealed.

    Raises:
        InputError: bad shape/values.
        ProveTimeout / ProofError: proving failed.
    """
    t_total = time.perf_counter()
    feed = check_samples(circuit, raw_input)
    n_samples = feed_len(feed)
    opts = circuit.options
    vis = {"input": opts.input_visibility, "params": opts.param_visibility, "output": opts.output_visibility}
    # A private input is never revealed: nothing would bind the values to the proof.
    reveal = vis["input"] != "private" and ((vis["input"] == "public") if reveal_input is None else reveal_input)
    settings = circuit.settings
    out_scales = settings["model_output_scales"]
    B = circuit.batch_size
    starts = list(range(0, n_samples, B))
    entries: list[ProofEntry] = []
    outputs: list[list[float]] = []
    weights_commitment: list[str] | None = None
    output_sizes: list[int] = []
    t_wit = 0.0
    provers: list[Mapping[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="zkml-prove-") as tmp:
        work = Path(tmp)
        # Witnesses first (milliseconds each), then all proofs through the backend
        wits: list[tuple[Path, dict[str, Any]]] = []
        for i, start in enumerate(starts):
            chunk = feed_slice(feed, start, start + B, B)
            real = min(B, n_samples - start)
            progress(f"proof {i + 1}/{len(starts)}: witness for {real} sample(s)")
            t = time.perf_counter()
            (work / f"chunk{i}").mkdir()
            wits.append(gen_witness(circuit, chunk, work / f"chunk{i}"))
            t_wit += time.perf_counter() - t
        proved = (executor or prove_chunks_local)(circuit, [w for w, _ in wits], timeout, progress)
        if len(proved) != len(starts):
            raise ProofError(f"the prover backend returned {len(proved)} proof(s) for {len(starts)} chunk(s)")
        for i, ((_, wit), cp) in enumerate(zip(wits, proved, strict=True)):
            real = min(B, n_samples - i * B)
            proof, secs = cp.proof, cp.seconds
            if cp.prover is not None:
                provers.append({"proof": i, **cp.prover})
            if proof["instances"] != [expected_instances(wit, vis)]:
                raise ProofError("the prover's public instances differ from the witness (internal inconsistency)")
            output_sizes = [len(o) // B for o in wit["outputs"]]
            rows = [felts_to_floats(o, out_scales[j]).reshape(B, -1) for j, o in enumerate(wit["outputs"])]
            outputs += np.concatenate(rows, axis=1)[:real].tolist()
            if vis["params"] == "hashed":
                weights_commitment = _hash_part(wit.get("processed_params"))
            entries.append(
                ProofEntry(
                    first_sample=i * B,
                    real_samples=real,
                    instances=proof["instances"],
                    proof_hex=proof["hex_proof"],
                    input_felts=[f for t in wit["inputs"] for f in t] if reveal and vis["input"] == "hashed" else None,
                    output_felts=[f for t in wit["outputs"] for f in t] if vis["output"] == "hashed" else None,
                    timestamp=proof.get("timestamp"),
                    prove_seconds=secs,
                )
            )
    warnings = (DEV_WARNING,) if circuit.srs.insecure else ()
    values = revealed_values(feed, circuit.inputs) if reveal and circuit.inputs else None
    c = CircuitPart(
        id=circuit.circuit_id,
        settings_sha256=circuit.files["settings.json"],
        vk_sha256=circuit.files["vk.key"],
        compiled_sha256=circuit.files["model.compiled"],
        logrows=circuit.logrows,
        batch_size=B,
        input_scale=int(settings["run_args"]["input_scale"]),
        output_scales=tuple(int(s) for s in out_scales),
        output_sizes=tuple(output_sizes),
        visibility=Visibility(**vis),
        weights_commitment=tuple(weights_commitment) if weights_commitment is not None else None,
    )
    return Bundle(
        model=ModelPart(sha256=circuit.model_sha256, input_name=circuit.input_name, sample_shape=tuple(circuit.sample_shape),
                        inputs=ModelPart.describe([InputPart(s.name, s.shape, s.dtype) for s in circuit.inputs])),
        circuit=c,
        srs_sha256=circuit.srs.sha256,
        srs_logrows=circuit.srs.logrows,
        samples=n_samples,
        input_values=values,
        input_sha256=sha256_json(values) if values is not None else None,
        outputs=outputs if vis["output"] != "private" else None,
        proofs=entries,
        meta=Metadata(
            created=now_iso(),
            tools=tool_versions(),
            timings={
                "witness_seconds": t_wit,
                "prove_seconds": sum(e.prove_seconds for e in entries),
                "total_seconds": time.perf_counter() - t_total,
            },
            warnings=warnings,
            prover_srs={"kind": circuit.srs.kind, "insecure": circuit.srs.insecure},
            provers=tuple(provers),
        ),
    )


from zkml._entry import callable_module  # noqa: E402

callable_module(__name__, "prove")  # `zkml.prove(...)` is zkml.api.prove
