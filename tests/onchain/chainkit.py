"""The on-chain tests' shared world: tiny real circuits built by zkml, proofs, compiled contracts.

The fixtures that hand these out live in ``tests/onchain/conftest.py`` (session scope: one
anvil, one set of circuits, one registry per run; every test that touches the shared chain
runs between ``evm_snapshot`` and ``evm_revert``). This module holds what tests import by
name: the circuit type, the test inputs and dev keys, and the record/key helpers.

Circuits are built the way a user's are: ``zkml.circuit.compile_model`` (calibration, compile,
dev SRS, setup) into a store of the on-chain tests' own, and proven through zkml's witness and
prover-subprocess path; the proofs are ezkl's own proof JSON files.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zkml.calibrate import CircuitOptions
from zkml.circuit import compile_model
from zkml.evm.chain import Chain, connect
from zkml.evm.registry import InstanceLayout, ModelRecord, Registry
from zkml.evm.verifier import (
    CompiledVerifier,
    VerifierDeployment,
    compile_verifier,
    deploy_verifier,
    generate_verifier,
)
from zkml.store import Store
from zkml.util import sha256_file

#: The input every test proof uses (so proofs of different models share the test input).
TEST_INPUT = [0.5, -0.25, 0.75, 0.125]
OTHER_INPUT = [0.1, 0.2, -0.3, 0.4]


@dataclass(frozen=True)
class Circuit:
    """One tiny real circuit (files of a store circuit) with a couple of proofs."""

    name: str
    dir: Path
    """Where this test world keeps the circuit's proofs, witnesses and verifiers."""
    onnx: Path
    settings: Path
    compiled: Path
    vk: Path
    pk: Path
    srs: Path
    proof: Path
    """Proof on TEST_INPUT."""
    other_proof: Path
    """Proof on OTHER_INPUT."""

    def layout(self) -> InstanceLayout:
        return InstanceLayout.from_settings(self.settings)

    def proof_json(self, which: str = "proof") -> dict[str, Any]:
        return json.loads((self.proof if which == "proof" else self.other_proof).read_text())


def export_linear(seed: int, path: Path) -> None:
    """A seeded Linear(4, 3) + ReLU exported to ONNX (batch 1): input ``input``, output ``output``."""
    import torch

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    model.eval()
    x = torch.zeros(1, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is what we want here
        torch.onnx.export(model, x, str(path), opset_version=17, dynamo=False, input_names=["input"],
                          output_names=["output"])


def build_circuit(store: Store, root: Path, name: str, seed: int, *, param_visibility: str = "fixed") -> Circuit:
    """Export a seeded Linear(4,3)+ReLU, compile it with zkml (public input and output) and prove the two test inputs."""
    from zkml.prove import check_samples, gen_witness, run_prover

    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    onnx_path = d / "model.onnx"
    export_linear(seed, onnx_path)
    cal = np.concatenate([np.asarray([TEST_INPUT, OTHER_INPUT], np.float32),
                          np.random.default_rng(seed).uniform(-1, 1, (14, 4)).astype(np.float32)])
    c, _ = compile_model(onnx_path, cal, CircuitOptions(param_visibility=param_visibility), store=store)
    proofs = []
    for tag, values in (("test", TEST_INPUT), ("other", OTHER_INPUT)):
        work = d / tag
        work.mkdir(exist_ok=True)
        witness, _ = gen_witness(c, check_samples(c, np.asarray([values], np.float32)), work)
        witness = witness.rename(d / f"witness_{tag}.json")
        proof = d / f"proof_{tag}.json"
        run_prover(c, witness, proof, timeout=300)
        proofs.append(proof)
    return Circuit(name, d, onnx_path, c.folder / "settings.json", c.compiled, c.vk, c.pk, c.srs.path, *proofs)


def build_circuits(store: Store, root: Path) -> dict[str, Circuit]:
    """``a`` and ``b`` (seeds 0 and 1, fixed params) and ``h`` (seed 0 with hashed params)."""
    return {
        "a": build_circuit(store, root, "a", 0),
        "b": build_circuit(store, root, "b", 1),
        "h": build_circuit(store, root, "h", 0, param_visibility="hashed"),
    }


def build_verifiers(root: Path, circuits: dict[str, Circuit]) -> dict[str, CompiledVerifier]:
    """One compiled verifier per circuit, plus ``a_reusable`` (a's verifier in the reusable layout)."""
    cache_dir = root / "solc-cache"
    out: dict[str, CompiledVerifier] = {}
    for key, c in circuits.items():
        art = generate_verifier(c.vk, c.settings, c.srs, c.dir / "verifier")
        out[key] = compile_verifier(art, cache_dir=cache_dir)
    a = circuits["a"]
    art = generate_verifier(a.vk, a.settings, a.srs, a.dir / "verifier-reusable", reusable=True)
    out["a_reusable"] = compile_verifier(art, cache_dir=cache_dir)
    return out


def record_for(circuit: Circuit, dep: VerifierDeployment, **overrides: Any) -> ModelRecord:
    """A registry record for ``circuit`` served by ``dep``."""
    layout = circuit.layout()
    weights = layout.weights_commitment(_instances(circuit))
    fields: dict[str, Any] = dict(
        onnx_sha256=sha256_file(circuit.onnx),
        vk_digest=sha256_file(circuit.vk),
        layout=layout,
        weights_commitment=weights,
        metadata_uri=f"ipfs://zkml-test/{circuit.name}",
    )
    extra = {k: overrides.pop(k) for k in ("verifier_code_hash", "deferred_code_hash") if k in overrides}
    fields.update(overrides)
    record = ModelRecord.for_deployment(dep, **fields)
    return dataclasses.replace(record, **extra) if extra else record


def _instances(circuit: Circuit) -> list[int]:
    from zkml.evm.verifier import read_proof

    return read_proof(circuit.proof)[1]


@dataclass(frozen=True)
class World:
    """Everything deployed once per session on the shared anvil."""

    chain: Chain
    registry: Registry
    circuits: dict[str, Circuit]
    verifiers: dict[str, CompiledVerifier]
    deployments: dict[str, VerifierDeployment]
    window: int


CHALLENGE_WINDOW = 3600
# anvil's dev accounts #1 and #5 (public test mnemonic): a stranger to every model, and the emergency role.
STRANGER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
EMERGENCY_KEY = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"


def as_key(registry: Registry, key: str) -> Registry:
    """The same registry, sending from another dev account."""
    chain = connect(registry.chain.rpc_url, key, allow_dev_key=True)
    return Registry(chain.at(registry.contract.abi, registry.address, "registry"))


def build_world(rpc_url: str, root: Path, circuits: dict[str, Circuit]) -> World:
    """Deploy the verifiers and a registry (models ``model-a``, ``model-b``, ``model-h``) on the node at ``rpc_url``."""
    verifiers = build_verifiers(root, circuits)
    chain = connect(rpc_url, allow_dev_key=True)
    deps = {key: deploy_verifier(chain, cv) for key, cv in verifiers.items()}
    emergency = connect(rpc_url, EMERGENCY_KEY, allow_dev_key=True).sender
    registry = Registry.deploy(chain, challenge_window=CHALLENGE_WINDOW, emergency=emergency,
                               cache_dir=root / "solc-cache")
    registry.register("model-a", record_for(circuits["a"], deps["a"]))
    registry.register("model-b", record_for(circuits["b"], deps["b"]))
    registry.register("model-h", record_for(circuits["h"], deps["h"]))
    return World(chain, registry, circuits, verifiers, deps, CHALLENGE_WINDOW)
