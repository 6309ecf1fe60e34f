"""Shared on-chain test fixtures: tiny real circuits, proofs, one anvil, compiled contracts.

Expensive artifacts are built once per test process (module-level caches
behind session fixtures, so two test modules importing these fixtures still
share one anvil and one set of circuits). Each test runs between
``evm_snapshot`` and ``evm_revert``.

Circuits are built with ezkl directly (gen_settings -> compile_circuit ->
gen_srs -> setup -> gen_witness -> prove) at logrows 11; the lead may later
switch these to ``zkml.circuit`` / ``zkml.prove``.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from zkml.evm.anvil import Anvil
from zkml.evm.chain import Chain, connect
from zkml.evm.registry import InstanceLayout, ModelRecord, Registry
from zkml.evm.verifier import (
    CompiledVerifier,
    VerifierDeployment,
    compile_verifier,
    deploy_verifier,
    generate_verifier,
)
from zkml.util import sha256_file

LOGROWS = 11
#: The input every test proof uses (so proofs of different models share the test input).
TEST_INPUT = [0.5, -0.25, 0.75, 0.125]
OTHER_INPUT = [0.1, 0.2, -0.3, 0.4]

_lock = threading.Lock()
_cache: dict[str, Any] = {}


@dataclass(frozen=True)
class Circuit:
    """One tiny real circuit with its keys and a couple of proofs."""

    name: str
    dir: Path
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


def _export(seed: int, path: Path) -> None:
    import torch

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    model.eval()
    x = torch.zeros(1, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is what we want here
        torch.onnx.export(model, x, str(path), opset_version=17, dynamo=False, input_names=["input"],
                          output_names=["output"])


def _prove(c_dir: Path, compiled: Path, pk: Path, vk: Path, srs: Path, values: list[float], tag: str) -> Path:
    import ezkl

    data = c_dir / f"input_{tag}.json"
    data.write_text(json.dumps({"input_data": [values]}))
    witness = c_dir / f"witness_{tag}.json"
    ezkl.gen_witness(str(data), str(compiled), str(witness), str(vk), str(srs))
    proof = c_dir / f"proof_{tag}.json"
    ezkl.prove(str(witness), str(compiled), str(pk), str(proof), str(srs))
    return proof


def build_circuit(root: Path, name: str, seed: int, srs: Path, *, param_visibility: str = "fixed") -> Circuit:
    """Export a seeded Linear(4,3)+ReLU and run the ezkl pipeline on it (~2 s)."""
    import ezkl

    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    onnx_path = d / "model.onnx"
    _export(seed, onnx_path)
    ra = ezkl.PyRunArgs()
    ra.logrows = LOGROWS
    ra.input_scale = 7
    ra.param_scale = 7
    ra.decomp_base = 128
    ra.input_visibility = "public"
    ra.output_visibility = "public"
    ra.param_visibility = param_visibility
    settings = d / "settings.json"
    assert ezkl.gen_settings(str(onnx_path), str(settings), ra)
    assert json.loads(settings.read_text())["run_args"]["logrows"] == LOGROWS
    compiled = d / "model.ezkl"
    assert ezkl.compile_circuit(str(onnx_path), str(compiled), str(settings))
    vk, pk = d / "vk.key", d / "pk.key"
    assert ezkl.setup(str(compiled), str(vk), str(pk), str(srs), None, False)
    proof = _prove(d, compiled, pk, vk, srs, TEST_INPUT, "test")
    other = _prove(d, compiled, pk, vk, srs, OTHER_INPUT, "other")
    return Circuit(name, d, onnx_path, settings, compiled, vk, pk, srs, proof, other)


def _circuits(root: Path) -> dict[str, Circuit]:
    import ezkl

    with _lock:
        if "circuits" not in _cache:
            root.mkdir(parents=True, exist_ok=True)
            srs = root / f"kzg{LOGROWS}.srs"
            ezkl.gen_srs(str(srs), LOGROWS)
            _cache["circuits"] = {
                "a": build_circuit(root, "a", 0, srs),
                "b": build_circuit(root, "b", 1, srs),
                "h": build_circuit(root, "h", 0, srs, param_visibility="hashed"),
            }
        return _cache["circuits"]  # type: ignore[no-any-return]


def _verifiers(root: Path, circuits: dict[str, Circuit]) -> dict[str, CompiledVerifier]:
    with _lock:
        if "verifiers" not in _cache:
            cache_dir = root / "solc-cache"
            out: dict[str, CompiledVerifier] = {}
            for key, c in circuits.items():
                art = generate_verifier(c.vk, c.settings, c.srs, c.dir / "verifier")
                out[key] = compile_verifier(art, cache_dir=cache_dir)
            art = generate_verifier(circuits["a"].vk, circuits["a"].settings, circuits["a"].srs,
                                    circuits["a"].dir / "verifier-reusable", reusable=True)
            out["a_reusable"] = compile_verifier(art, cache_dir=cache_dir)
            _cache["verifiers"] = out
        return _cache["verifiers"]  # type: ignore[no-any-return]


def _anvil() -> Anvil:
    with _lock:
        if "anvil" not in _cache:
            _cache["anvil"] = Anvil.start()
        return _cache["anvil"]  # type: ignore[no-any-return]


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


def _world(root: Path) -> World:
    circuits = _circuits(root / "circuits")
    verifiers = _verifiers(root, circuits)
    anvil = _anvil()
    with _lock:
        if "world" not in _cache:
            chain = connect(anvil.rpc_url, allow_dev_key=True)
            deps = {key: deploy_verifier(chain, cv) for key, cv in verifiers.items()}
            emergency = connect(anvil.rpc_url, EMERGENCY_KEY, allow_dev_key=True).sender
            registry = Registry.deploy(chain, challenge_window=CHALLENGE_WINDOW, emergency=emergency,
                                       cache_dir=root / "solc-cache")
            registry.register("model-a", record_for(circuits["a"], deps["a"]))
            registry.register("model-b", record_for(circuits["b"], deps["b"]))
            registry.register("model-h", record_for(circuits["h"], deps["h"]))
            _cache["world"] = World(chain, registry, circuits, verifiers, deps, CHALLENGE_WINDOW)
        return _cache["world"]  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def evm_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with _lock:
        if "root" not in _cache:
            _cache["root"] = tmp_path_factory.mktemp("evm")
        return _cache["root"]  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def circuits(evm_root: Path) -> dict[str, Circuit]:
    return _circuits(evm_root / "circuits")


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    node = _anvil()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def world(evm_root: Path, anvil: Anvil) -> World:
    return _world(evm_root)


@pytest.fixture
def chain(world: World) -> Iterator[Chain]:
    """The shared chain, reverted to its state before the test afterwards."""
    snap = world.chain.snapshot()
    try:
        yield world.chain
    finally:
        world.chain.revert(snap)


@pytest.fixture
def registry(world: World, chain: Chain) -> Registry:
    return world.registry


__all__ = [
    "CHALLENGE_WINDOW",
    "EMERGENCY_KEY",
    "STRANGER_KEY",
    "as_key",
    "Circuit",
    "OTHER_INPUT",
    "TEST_INPUT",
    "World",
    "anvil",
    "build_circuit",
    "chain",
    "circuits",
    "evm_root",
    "record_for",
    "registry",
    "world",
]
