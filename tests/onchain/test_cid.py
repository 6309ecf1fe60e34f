"""Content ids (``zkml cid``), the CIDs a deployment records, ``zkml registry show`` / ``check`` on a real anvil."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from zkml.circuit import Circuit
from zkml.commitments.cid import (
    IPFS_CHUNK,
    cid_of_bytes,
    cid_of_file,
    metadata_uri,
    parse_cid,
    parse_metadata_uri,
)
from zkml.errors import InputError
from zkml.evm.anvil import Anvil, free_port
from zkml.evm.chain import Chain
from zkml.store import Store
from zkml_cli.main import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
EMPTY_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"  # `ipfs add --cid-version 1 --raw-leaves` of b""


def spec_cid(data: bytes) -> str:
    """CIDv1 straight from the specs: varint version 1, raw codec 0x55, multihash sha2-256 (0x12, 32 bytes),
    multibase 'b' = RFC 4648 base32, lower case, no padding."""
    raw = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


@pytest.mark.parametrize(("data", "expected"), [
    (b"", EMPTY_CID),
    (b"hello\n", "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"),
    (b"zkml", spec_cid(b"zkml")),
    (b"\x00" * IPFS_CHUNK, spec_cid(b"\x00" * IPFS_CHUNK)),
])
def test_raw_leaf_cids(data: bytes, expected: str) -> None:
    c = cid_of_bytes(data)
    assert c.cid == expected == spec_cid(data)
    assert c.kind == "ipfs-raw-leaf" and c.matches_ipfs_add and c.cid.startswith("bafkrei")


def test_over_one_chunk_is_named_raw_sha256(tmp_path: Path) -> None:
    data = b"\x01" * (IPFS_CHUNK + 1)
    p = tmp_path / "big.bin"
    p.write_bytes(data)
    c = cid_of_file(p)
    assert c.kind == "raw-sha256" and not c.matches_ipfs_add and c.cid == spec_cid(data) and c.size == IPFS_CHUNK + 1


def test_file_equals_bytes(tmp_path: Path) -> None:
    p = tmp_path / "x"
    p.write_bytes(b"hello\n")
    assert cid_of_file(p) == cid_of_bytes(b"hello\n")
    with pytest.raises(InputError):
        cid_of_file(tmp_path / "missing")
    with pytest.raises(InputError):
        cid_of_file(tmp_path)


@pytest.mark.parametrize("text", ["", "hello", "bafkrei", "Qm" + "1" * 44, EMPTY_CID[:-1] + "!"])
def test_parse_cid_refuses(text: str) -> None:
    with pytest.raises(InputError):
        parse_cid(text)


def test_metadata_round_trip() -> None:
    cids = {"vk": spec_cid(b"vk"), "onnx": spec_cid(b"onnx"), "dataset": spec_cid(b"d")}
    uri = metadata_uri("c0ffee", cids)
    assert uri == f"zkml:circuit:c0ffee;onnx={cids['onnx']};vk={cids['vk']};dataset={cids['dataset']}"
    meta = parse_metadata_uri(uri)
    assert meta.circuit_id == "c0ffee" and meta.cids == cids
    with pytest.raises(InputError):
        metadata_uri("c", {"weights": EMPTY_CID})


@pytest.mark.parametrize(("uri", "circuit_id", "cids"), [
    ("", None, {}),
    ("ipfs://zkml-test/a", None, {}),
    ("zkml:circuit:abc", "abc", {}),
    (f"zkml:circuit:abc;vk={EMPTY_CID};vk={spec_cid(b'x')}", "abc", {"vk": EMPTY_CID}),  # first one wins
    (f"zkml:circuit:abc;evil={EMPTY_CID};onnx=notacid;settings", "abc", {}),
    (f"zkml:circuit:../../etc;vk={EMPTY_CID}", None, {"vk": EMPTY_CID}),
])
def test_parse_metadata_tolerates(uri: str, circuit_id: str | None, cids: dict[str, str]) -> None:
    meta = parse_metadata_uri(uri)
    assert meta.circuit_id == circuit_id and meta.cids == cids


def test_cli_cid(tmp_path: Path) -> None:
    (tmp_path / "e").write_bytes(b"")
    r = runner.invoke(app, ["cid", str(tmp_path / "e"), "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["files"][0] == {"path": str(tmp_path / "e"), "cid": EMPTY_CID, "kind": "ipfs-raw-leaf",
                                                "size": 0, "sha256": hashlib.sha256(b"").hexdigest(),
                                                "matches_ipfs_add": True}
    r = runner.invoke(app, ["cid", str(tmp_path / "nope")])
    assert r.exit_code == 2 and r.stderr.strip() == f"error: {tmp_path / 'nope'}: not a file"


# On chain: deploy records the CIDs; show prints them; check confirms files


@pytest.fixture(scope="module")
def node(anvil: Anvil, module_chain: Chain) -> Anvil:
    """The shared anvil, reverted when the module is done (its deployments vanish with it)."""
    return anvil


@pytest.fixture(scope="module")
def own_store(store: Store, mlp_circuit: Circuit, tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Deployment records are per chain id and the module's deployments are reverted: keep them out of the session store."""
    from support import store_of_its_own

    return store_of_its_own(store, mlp_circuit, tmp_path_factory.mktemp("cid-store"))[0]


@pytest.fixture(scope="module")
def deployed(node: Anvil, own_store: Store, mlp_circuit: Circuit) -> dict[str, Any]:
    """The digits MLP deployed with --dataset, over a failover list whose first endpoint is dead."""
    urls = f"http://127.0.0.1:{free_port()},{node.rpc_url}"
    r = runner.invoke(app, ["deploy", mlp_circuit.circuit_id, "--dataset", str(REPO / "models" / "digits_test.npz"),
                            "--rpc-url", urls, "--store", str(own_store.root), "--json"])
    assert r.exit_code == 0, r.stderr
    return {"urls": urls, **json.loads(r.stdout)}


def _cli(store: Store, deployed: dict[str, Any], *args: str) -> Any:
    return runner.invoke(app, [*args, "--rpc-url", deployed["urls"], "--store", str(store.root)])


def test_deploy_records_cids(deployed: dict[str, Any], mlp_circuit: Circuit, own_store: Store) -> None:
    cids = deployed["registration"]["cids"]
    assert set(cids) == {"onnx", "settings", "vk", "verifier", "dataset"}
    assert cids["vk"]["cid"] == cid_of_file(mlp_circuit.vk).cid
    assert cids["onnx"]["cid"] == cid_of_file(REPO / "models" / "digits_mlp.onnx").cid
    assert cids["dataset"]["cid"] == cid_of_file(REPO / "models" / "digits_test.npz").cid
    uri = deployed["registration"]["metadata_uri"]
    assert uri.startswith(f"zkml:circuit:{mlp_circuit.circuit_id};onnx=bafk")
    r = _cli(own_store, deployed, "registry", "show", "digits_mlp", "--json")
    assert r.exit_code == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["record"]["metadata_uri"] == uri  # the chain's record, not the store's
    assert shown["cids"] == {k: v["cid"] for k, v in cids.items()}
    r = _cli(own_store, deployed, "registry", "show", "digits_mlp")
    assert f"cid vk             {cids['vk']['cid']}" in r.stdout
    assert f"(via {deployed['urls'].split(',')[1]})" in r.stdout


def test_registry_check(deployed: dict[str, Any], mlp_circuit: Circuit, own_store: Store, tmp_path: Path) -> None:
    onnx = REPO / "models" / "digits_mlp.onnx"
    r = _cli(own_store, deployed, "registry", "check", "digits_mlp", str(onnx), str(mlp_circuit.vk),
             str(mlp_circuit.settings_path), str(REPO / "models" / "digits_test.npz"), "--json")
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["ok"] and [f["matches"] for f in res["files"]] == [["onnx"], ["vk"], ["settings"], ["dataset"]]
    # One flipped byte: that file matches nothing, exit 1
    bad = tmp_path / "digits_mlp.onnx"
    data = bytearray(onnx.read_bytes())
    data[-1] ^= 1
    bad.write_bytes(bytes(data))
    r = _cli(own_store, deployed, "registry", "check", "digits_mlp", str(onnx), str(bad))
    assert r.exit_code == 1
    assert "matches the registered onnx" in r.stdout and "MATCHES NO REGISTERED CID" in r.stdout


def test_registry_check_refuses_cleanly(deployed: dict[str, Any], own_store: Store, tmp_path: Path) -> None:
    r = _cli(own_store, deployed, "registry", "check", "digits_mlp", str(tmp_path / "missing.onnx"))
    assert r.exit_code == 2 and r.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'missing.onnx'}: not a file"
    r = _cli(own_store, deployed, "registry", "check", "no-such-model", str(REPO / "models" / "digits_mlp.onnx"))
    assert r.exit_code == 2 and "is not registered" in r.stderr and "Traceback" not in r.stderr
