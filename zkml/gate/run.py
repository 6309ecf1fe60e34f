"""Running the gate: sample, prove, verify locally and on chain, judge thresholds, write the report."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zkml import keys, sampling, vrf
from zkml.errors import ConfigError, ZkmlError
from zkml.gate.config import (
    EIP170,
    GateConfig,
    ModelSpec,
    SampleSpec,
    Thresholds,
)
from zkml.gate.report import GateCheck, GateReport, ModelReport, write_report
from zkml.keys import VrfKey
from zkml.util import sha256_file


ALPHA_DOMAIN = b"zkml-gate/v1"
SK_ENV = keys.VRF_SK_ENV
KEY_FILE_FORMAT = keys.VRF_KEY_FORMAT
REPLAY_NOTE = ("replay: sample.alpha is pinned by the config (sample.replay = true), so this run re-draws a recorded "
               "sample; it is not a fresh draw, and whoever chose that alpha could have ground it")


# Sampling


def _vrf_key(spec: SampleSpec) -> VrfKey:
    """The VRF key: ``sample.key_file``, else ``$ZKML_VRF_SK``, else an ephemeral one (``source`` says which).

    Raises:
        ConfigError: the key file or env value is not a usable key, or its suite is not ``sample.suite``.
    """
    key = keys.load_vrf_key(spec.key_file, spec.suite, required=False)
    return key if key is not None else VrfKey.generate(spec.suite)


def derive_alpha(model_sha256: str, circuit_id: str, test_set_sha256: str) -> bytes:
    """Default VRF input: binds the sample to the exact model, circuit and test set."""
    return hashlib.sha256(
        ALPHA_DOMAIN + bytes.fromhex(model_sha256) + circuit_id.encode() + bytes.fromhex(test_set_sha256)
    ).digest()


def _key_kind(key: VrfKey) -> str:
    return "ephemeral" if key.source == "ephemeral" else "env" if key.source.startswith("$") else "file"


def vrf_sample(spec: SampleSpec, n: int, alpha: bytes, key: VrfKey) -> tuple[list[int], dict[str, Any]]:
    """Indices to prove and the evidence an auditor re-checks.

    Raises:
        ConfigError: a sample larger than the test set.
    """
    k = spec.size
    if k is not None and k > n:
        raise ConfigError(f"sample.size {k} is larger than the test set ({n} rows)")
    pi = vrf.prove(key.suite, key.sk, alpha)
    beta = vrf.verify(key.suite, key.pk, alpha, pi)
    if beta is None:
        raise ZkmlError("internal error: a fresh VRF proof does not verify")
    indices = sampling.sample_indices(beta, n, k if k is not None else n)
    evidence = {"suite": key.suite.short_name, "key": _key_kind(key), "pk": key.pk.hex(), "alpha": alpha.hex(),
                "alpha_source": "replay (pinned by sample.alpha)" if spec.replay else "derived",
                "pi": pi.hex(), "beta": beta.hex(), "rule": "zkml.sampling.sample_indices(beta, population, size)"}
    return indices, evidence


# Running


@dataclass
class _Chain:
    """The chain the gate verifies on: started lazily, shared by every model."""

    rpc_url: str | None
    stack: ExitStack
    chain: Any = None

    def get(self, store: Any) -> Any:
        if self.chain is None:
            from zkml.evm.anvil import Anvil
            from zkml.evm.chain import connect
            from zkml.evm.deploy import open_chain

            if self.rpc_url is None:
                # A scratch anvil, not the store's embedded chain: the gate judges a model before it is
                # deployed, so its verdict neither depends on nor leaves state in the store's chain
                node = self.stack.enter_context(Anvil.start())
                self.chain = connect(node.rpc_url, allow_dev_key=True)
            else:
                self.chain = open_chain(store, self.rpc_url)  # as `zkml deploy --rpc-url` (key, failover list)
        return self.chain


def run_gate(
    config: GateConfig,
    *,
    store: Any,
    out_dir: str | Path,
    rpc_url: str | None = None,
    route: Any = None,
    progress: Callable[[str], None] = lambda _: None,
) -> GateReport:
    """Run every check of ``config`` and write ``report.json``/``report.md`` and the bundles to ``out_dir``.

    Raises:
        ConfigError: the config does not fit the data (test set digest or
            shape, sample size, VRF key).
        ToolError / ChainError: solc-js or the chain is not usable (nothing
            could be judged on chain).
    """
    from zkml.store import tool_versions

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Test set
    ts_sha = sha256_file(config.test_set)
    if config.test_set_sha256 is not None and ts_sha != config.test_set_sha256:
        raise ConfigError(f"{config.test_set.name} has sha256 {ts_sha[:16]}…, the config pins {config.test_set_sha256[:16]}…")
    x, y = _load_test_set(config.test_set)
    if config.sample.size is not None and config.sample.size > len(x):
        raise ConfigError(f"sample.size {config.sample.size} is larger than the test set ({len(x)} rows)")
    key = _vrf_key(config.sample)
    notes: list[str] = []
    if key.source == "ephemeral" and config.sample.size is not None:
        notes.append(f"ephemeral VRF key: the sample cannot be reproduced; set ${SK_ENV} (a CI secret) or sample.key_file")
    if config.sample.replay and config.sample.size is not None:
        notes.append(REPLAY_NOTE)
    reports: list[ModelReport] = []
    with ExitStack() as stack:
        chain = _Chain(rpc_url, stack)
        for spec in config.models:
            progress(f"[{spec.name}] gating {spec.path.name}")
            reports.append(_gate_model(spec, config, x, y, ts_sha, key, store, out, chain, route, progress))
    if any(m.circuit.get("srs_insecure") for m in reports):
        from zkml.srs import DEV_WARNING

        notes.append(DEV_WARNING)
    report = GateReport(
        config=str(config.path), test_set={"path": _rel(config.test_set, config.path.parent), "sha256": ts_sha, "rows": int(len(x))},
        models=reports, seconds=time.perf_counter() - t0, tools=tool_versions(), notes=notes,
    )
    write_report(report, out)
    return report


def _load_test_set(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z or "y" not in z:
                raise ConfigError(f"{path.name}: a test set needs arrays x (samples) and y (labels); it has {sorted(z.keys())}")
            x, y = np.asarray(z["x"], dtype=np.float32), np.asarray(z["y"]).reshape(-1)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path.name}: not a readable .npz test set ({e})") from None
    if len(x) != len(y) or len(x) == 0:
        raise ConfigError(f"{path.name}: {len(x)} samples but {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"{path.name}: labels y must be integers, not {y.dtype}")
    return x, y.astype(np.int64)


def _gate_model(
    spec: ModelSpec, config: GateConfig, x: np.ndarray, y: np.ndarray, ts_sha: str, key: VrfKey,
    store: Any, out: Path, chain: _Chain, route: Any, progress: Callable[[str], None],
) -> ModelReport:
    from zkml.errors import CircuitError, ModelError
    from zkml.inputs import to_samples
    from zkml.targets import resolve_circuit
    from zkml.recipe import load_recipe
    from zkml.scale.route import ProveRoute

    route = route or ProveRoute()
    th = spec.thresholds
    rep = ModelReport(spec.name, _rel(spec.path, config.path.parent), thresholds=th.as_dict())
    checks = rep.checks

    def skipped(*names: str, why: str) -> None:
        for n in names:
            checks.append(GateCheck(n, None, None, None, why))

    later = ("accuracy", "error", "runtimes", "verify_local", "verifier_bytes", "verify_onchain", "gas")
    # Compile (cached)
    t = time.perf_counter()
    try:
        circuit, hit = resolve_circuit(str(spec.path), store, calibration=spec.calibration, progress=progress)
    except (CircuitError, ModelError) as e:
        checks.append(GateCheck("compile", False, None, None, f"the model does not compile: {e.message}"))
        skipped("prove", *later, why="not run: the model did not compile")
        return rep
    rep.seconds["compile"] = time.perf_counter() - t
    rep.model_sha256 = circuit.model_sha256
    rep.onnx = _rel(spec.path if spec.path.suffix == ".onnx" else load_recipe(spec.path).model, config.path.parent)
    s = circuit.summary()
    rep.circuit = {"id": circuit.circuit_id, "logrows": circuit.logrows, "batch_size": circuit.batch_size,
                   "input_scale": s["input_scale"], "cache_hit": hit, "srs": s["srs"]["kind"],
                   "srs_insecure": bool(circuit.srs.insecure), "folder": str(circuit.folder)}
    how = "cached" if hit else f"built in {rep.seconds['compile']:.1f}s"
    checks.append(GateCheck("compile", True, circuit.circuit_id, None,
                            f"circuit {circuit.circuit_id}: logrows {circuit.logrows}, batch {circuit.batch_size} ({how})"))
    # Sample
    samples_all = to_samples(x, circuit.sample_shape, source=config.test_set.name)
    alpha = config.sample.alpha or derive_alpha(circuit.model_sha256, circuit.circuit_id, ts_sha)
    if config.sample.size is None:
        indices = list(range(len(x)))
        evidence = None
    else:
        indices, evidence = vrf_sample(config.sample, len(x), alpha, key)
    rep.sample = {"population": int(len(x)), "size": len(indices), "indices": indices, "vrf": evidence,
                  "replay": config.sample.replay}
    samples, labels = samples_all[indices], y[indices]
    # Prove
    t = time.perf_counter()
    progress(f"[{spec.name}] proving {len(indices)} sample(s) (batch {circuit.batch_size})")
    try:
        bundle = route.prove(circuit, samples, progress=progress)
    except ConfigError:
        raise
    except ZkmlError as e:  # ProofError, ProveTimeout, InputError (a row beyond the circuit's range)
        checks.append(GateCheck("prove", False, None, None, f"proving failed: {e.message}"))
        skipped(*later, why="not run: proving failed")
        return rep
    rep.seconds["prove"] = time.perf_counter() - t
    path = out / f"{_slug(spec.name)}.proof.json"
    bundle.save(path)
    rep.bundle, rep.proofs = str(path), len(bundle.proofs)
    checks.append(GateCheck("prove", True, len(bundle.proofs), None,
                            f"{len(indices)} sample(s) in {len(bundle.proofs)} proof(s), {float(bundle.timings.get('prove_seconds', 0.0)):.1f}s proving"))
    _accuracy_and_error(spec, circuit, bundle, samples_all, labels, y, rep, progress)
    _verify_local(th, bundle, circuit, rep, progress)
    _onchain(spec, circuit, bundle, store, chain, rep, progress)
    return rep


def _rel(p: Path, base: Path) -> str:
    """``p`` relative to the config's folder when it lies inside it (reports stay readable and portable)."""
    try:
        return str(p.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(p)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name)


def _accuracy_and_error(
    spec: ModelSpec, circuit: Any, bundle: Any, samples_all: np.ndarray, labels: np.ndarray, y: np.ndarray,
    rep: ModelReport, progress: Callable[[str], None],
) -> None:
    from zkml.calibrate import float_outputs
    from zkml.compare import REFERENCE, compare_bundle
    from zkml.onnx_check import load_model
    from zkml.recipe import load_recipe

    th = spec.thresholds
    onnx_path = spec.path if spec.path.suffix == ".onnx" else load_recipe(spec.path).model
    t = time.perf_counter()
    progress(f"[{spec.name}] comparing proven outputs with onnxruntime, tract")
    cmp = compare_bundle(bundle, onnx_path=onnx_path, circuit=circuit, labels=labels, tolerance=th.max_error,
                         verify=False, progress=progress)
    # Accuracy: the proven outputs' argmax against the labels
    acc_c = cmp.accuracy("circuit")
    acc_f = cmp.accuracy(REFERENCE)
    info = load_model(onnx_path, check_ops=False)
    full = float_outputs(onnx_path, info, samples_all, int(info.batch_dim) if not info.batch_symbolic else len(samples_all))
    n0 = cmp.outputs[0][1]
    acc_full = float(np.mean(full[:, :n0].argmax(axis=1) == y))
    correct = int(round((acc_c or 0.0) * len(labels)))
    rep.accuracy = {"circuit_sample": acc_c, "float_sample": acc_f, "float_full_set": acc_full,
                    "correct": correct, "samples": int(len(labels))}
    ok = None if th.min_accuracy is None else bool(acc_c is not None and acc_c >= th.min_accuracy)
    detail = (f"proven accuracy {100 * (acc_c or 0):.1f}% ({correct}/{len(labels)})"
              + ("" if th.min_accuracy is None else f" {'>=' if ok else '<'} {100 * th.min_accuracy:.1f}%")
              + f"; float {100 * (acc_f or 0):.1f}% on the sample, {100 * acc_full:.1f}% on all {len(y)} rows")
    rep.checks.append(GateCheck("accuracy", ok, acc_c, th.min_accuracy, detail))
    # Error: proven outputs vs onnxruntime
    circ_rows = [r for r in cmp.rows if r.runtime == "circuit"]
    worst = max(circ_rows, key=lambda r: (r.max_abs_error if r.max_abs_error is not None else math.inf))
    tol = min(tl.value for tl in cmp.tolerances)
    ok = all(r.within for r in circ_rows)
    source = "auto" if th.max_error is None else "max_error"
    rep.errors = {"max_abs_error": worst.max_abs_error, "max_rel_error": worst.max_rel_error,
                  "mean_abs_error": worst.mean_abs_error, "argmax_agreement": worst.argmax_agreement,
                  "tolerance": tol, "tolerance_source": source, "tolerances": [tl.as_dict() for tl in cmp.tolerances],
                  "calibration_max_abs_error": cmp.calibration_error, "rows": [r.as_dict() for r in cmp.rows]}
    rep.checks.append(GateCheck(
        "error", ok, worst.max_abs_error, tol,
        f"max |float - circuit| {_fmt(worst.max_abs_error)} {'<=' if ok else '>'} {tol:.4g} ({source})"
        + (f", argmax agreement {100 * worst.argmax_agreement:.1f}%" if worst.argmax_agreement is not None else ""),
    ))
    # Other runtimes and the model digest
    others = [c.detail for c in cmp.checks if c.ok is False]
    others += [f for name in ("tract", "torch") for f in cmp.row_failures(name)]
    ran = sorted({r.runtime for r in cmp.rows if r.runtime != "circuit" and r.status == "ok"})
    missing = sorted({f"{r.runtime} {r.status}" for r in cmp.rows if r.runtime != "circuit" and r.status not in ("ok", "not given")})
    rep.checks.append(GateCheck(
        "runtimes", not others, ", ".join(ran) or None, None,
        (others[0] if others else
         f"{' and '.join(ran)} {'agrees' if len(ran) == 1 else 'agree'} with onnxruntime; model digest matches" if ran
         else "no second runtime ran; model digest matches")
        + (f" ({'; '.join(missing)})" if missing else ""),
    ))
    rep.seconds["compare"] = time.perf_counter() - t


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.4g}"


def _verify_local(th: Thresholds, bundle: Any, circuit: Any, rep: ModelReport, progress: Callable[[str], None]) -> None:
    from zkml.verify import verify_bundle

    if not th.verify_local:
        rep.checks.append(GateCheck("verify_local", None, None, None, "skipped (verify_local = false)"))
        return
    t = time.perf_counter()
    progress(f"[{rep.name}] verifying {len(bundle.proofs)} proof(s) locally")
    v = verify_bundle(bundle, circuit.artifacts())  # the circuit this store built and proved with
    rep.seconds["verify_local"] = time.perf_counter() - t
    rep.checks.append(GateCheck("verify_local", v.valid, v.valid, True,
                                f"{len(bundle.proofs)} proof(s) verify ({v.seconds:.2f}s)" if v.valid else f"invalid: {v.reason}"))


def _verifier(flavour: str, circuit: Any, store: Any, progress: Callable[[str], None]) -> tuple[Any, str]:
    """Generate and compile the verifier of ``flavour`` (auto: per-circuit unless it is over EIP-170).

    Sources are rendered into ``<store>/verifiers/<circuit id>/``; solc-js output
    is cached in ``<store>/solc-cache`` by source digest.
    """
    from zkml.evm.verifier import compile_verifier, generate_verifier

    folder = store.verifier_dir(circuit.circuit_id)
    cache = store.solc_cache
    note = ""
    if flavour in ("auto", "per-circuit"):
        progress(f"generating and compiling the per-circuit Solidity verifier of {circuit.circuit_id}")
        art = generate_verifier(circuit.vk, circuit.settings_path, circuit.srs.path, folder)
        compiled = compile_verifier(art, cache_dir=cache, check_size=False)
        if flavour == "per-circuit" or compiled.deployed_size <= EIP170:
            return compiled, "per-circuit verifier"
        note = f" (the per-circuit verifier is {compiled.deployed_size:,} bytes, over EIP-170)"
    progress(f"generating and compiling the reusable Solidity verifier and VK artifact of {circuit.circuit_id}")
    art = generate_verifier(circuit.vk, circuit.settings_path, circuit.srs.path, folder, reusable=True)
    return compile_verifier(art, cache_dir=cache, check_size=False), "reusable verifier" + note


def _onchain(
    spec: ModelSpec, circuit: Any, bundle: Any, store: Any, chain: _Chain, rep: ModelReport, progress: Callable[[str], None]
) -> None:
    from zkml.evm.verifier import deploy_verifier, verify_onchain

    th = spec.thresholds
    # Verifier
    t = time.perf_counter()
    compiled, what = _verifier(spec.verifier, circuit, store, lambda m: progress(f"[{rep.name}] {m}"))
    size = compiled.deployed_size
    rep.seconds["verifier"] = time.perf_counter() - t
    size_ok = size <= th.max_verifier_bytes
    rep.onchain = {"verifier_kind": "reusable" if compiled.artifact.reusable else "per-circuit", "verifier_bytes": size,
                   "sol_sha256": compiled.artifact.sol_sha256, "solc": compiled.contract.solc_version}
    rep.checks.append(GateCheck("verifier_bytes", size_ok, size, th.max_verifier_bytes,
                                f"{what}: {size:,} bytes deployed {'<=' if size_ok else '>'} {th.max_verifier_bytes:,}"
                                + (" (EIP-170)" if th.max_verifier_bytes == EIP170 else "")))
    if not th.verify_onchain:
        rep.checks.append(GateCheck("verify_onchain", None, None, None, "skipped (verify_onchain = false)"))
        rep.checks.append(GateCheck("gas", None, None, th.max_verify_gas, "skipped (verify_onchain = false)"))
        return
    if size > EIP170:
        rep.checks.append(GateCheck("verify_onchain", False, None, True, f"cannot deploy: {size:,} bytes exceed EIP-170 ({EIP170:,})"))
        rep.checks.append(GateCheck("gas", None, None, th.max_verify_gas, "not run: the verifier cannot be deployed"))
        return
    # Deploy and verify every proof
    t = time.perf_counter()
    progress(f"[{rep.name}] deploying the verifier and verifying {len(bundle.proofs)} proof(s) on chain")
    ch = chain.get(store)
    dep = deploy_verifier(ch, compiled)
    version = bundle.ezkl_version
    results = [verify_onchain(ch, dep, e.to_ezkl(version)) for e in bundle.proofs]
    rep.seconds["onchain"] = time.perf_counter() - t
    gas = [r.gas for r in results]
    accepted = sum(1 for r in results if r.ok)
    rep.onchain.update({"chain_id": ch.chain_id, "rpc_url": ch.rpc_url if chain.rpc_url else "embedded anvil",
                        "verifier": dep.address, "vka": dep.vka_address, "deploy_gas": dep.deploy_gas, "gas": gas})
    ok = accepted == len(results)
    rep.checks.append(GateCheck("verify_onchain", ok, accepted, len(results),
                                f"{accepted}/{len(results)} proof(s) accepted by the verifier at {dep.address} (chain {ch.chain_id})"))
    measured = [g for g in gas if g is not None]
    if not measured:
        rep.checks.append(GateCheck("gas", False if th.max_verify_gas else None, None, th.max_verify_gas, "no proof was accepted: no gas figure"))
        return
    mx = max(measured)
    gok = None if th.max_verify_gas is None else mx <= th.max_verify_gas
    rep.checks.append(GateCheck(
        "gas", gok, mx, th.max_verify_gas,
        f"verify gas max {mx:,} (mean {sum(measured) // len(measured):,})"
        + ("" if th.max_verify_gas is None else f" {'<=' if gok else '>'} {th.max_verify_gas:,}"),
    ))
