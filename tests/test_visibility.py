"""Hashed visibility through the whole core path, on a tiny model (Poseidon is costly)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from support import export_tiny_mlp
from zkml.bundle import Bundle
from zkml.calibrate import CircuitOptions
from zkml.circuit import Circuit, compile_model
from zkml.prove import prove
from zkml.store import Store
from zkml.verify import artifacts_from_store, verify_bundle


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_mlp(tmp_path_factory.mktemp("tiny") / "tiny.onnx", (4, 3, 2), seed=7)


CAL = np.random.default_rng(1).uniform(-1, 1, size=(16, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def hashed_circuit(tiny_onnx: Path, store: Store) -> Circuit:
    opts = CircuitOptions(input_visibility="hashed", param_visibility="hashed", output_visibility="public", min_agreement=0.9)
    c, _ = compile_model(tiny_onnx, CAL, opts, store=store)
    return c


def _verify(d: dict, store: Store) -> tuple[bool, str | None]:
    b = Bundle.parse(copy.deepcopy(d))
    v = verify_bundle(b, artifacts_from_store(b, store))
    return v.valid, v.reason


def test_hashed_input_and_params(hashed_circuit: Circuit, store: Store) -> None:
    wc = hashed_circuit.manifest["weights_commitment"]
    assert isinstance(wc, list) and len(wc) == 1
    b = prove(hashed_circuit, CAL[:1])
    assert b.to_json()["input"]["values"] is None  # a hashed input is not revealed by default
    assert b.to_json()["circuit"]["weights_commitment"] == wc
    col = b.proofs[0].instances[0]
    assert len(col) == 2 + 2  # input hash, params hash, then the two public outputs
    assert col[1] == wc[0]
    assert _verify(b.to_json(), store)[0]


def test_revealed_hashed_input_is_checked_against_its_commitment(hashed_circuit: Circuit, store: Store) -> None:
    b = prove(hashed_circuit, CAL[1:2], reveal_input=True)
    assert _verify(b.to_json(), store)[0]
    d = copy.deepcopy(b.to_json())
    d["input"]["values"][0][0] += 0.25
    valid, reason = _verify(d, store)
    assert not valid and "preimage" in (reason or "")


def test_other_weights_commitment_is_refused(hashed_circuit: Circuit, store: Store) -> None:
    b = prove(hashed_circuit, CAL[2:3])
    d = copy.deepcopy(b.to_json())
    d["circuit"]["weights_commitment"] = [d["proofs"][0]["instances"][0][0]]
    valid, reason = _verify(d, store)
    assert not valid and "weights commitment" in (reason or "")


def test_public_input_hashed_output(tiny_onnx: Path, store: Store) -> None:
    """ezkl puts a hashed output after the raw public input; the bundle reveals its preimage."""
    c, _ = compile_model(tiny_onnx, CAL, CircuitOptions(output_visibility="hashed", min_agreement=0.9), store=store)
    b = prove(c, CAL[3:4])
    col = b.proofs[0].instances[0]
    assert len(col) == 4 + 1
    assert _verify(b.to_json(), store)[0]
    d = copy.deepcopy(b.to_json())
    d["outputs"]["values"][0][0] += 0.5
    valid, reason = _verify(d, store)
    assert not valid and "outputs differ" in (reason or "")
