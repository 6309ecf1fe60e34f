"""The audit protocol: challenge (VRF over alpha) -> respond (batched proofs + Merkle evidence) -> check.

Real components throughout: the bundled digits test set committed with
zkml.commitments.dataset, real secp256k1 ECVRF proofs, real ezkl proofs through the session
MLP circuit (batch 1, about 1 s per row), and a real anvil for the on-chain
half. One honest response (4 rows) is proven per module; each cheat is made
from it the way a dishonest owner would, by editing the response file or
splicing in other real proofs, and must be caught by the check named in the
test.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import eth_abi
import numpy as np
import pytest
from eth_utils import keccak
from typer.testing import CliRunner

from support import MLP, REPO, TEST_SET
from zkml import audit, sampling, vrf
from zkml.audit import AuditError, BlockRef, Challenge, ExpectedModel, Ledger, Response
from zkml.keys import VrfKey
from zkml.bundle import Bundle
from zkml.circuit import Circuit
from zkml.commitments import CommittedDataset, build_commitment, hex32, row_leaf, write_commitment
from zkml.prove import prove
from zkml.scale.route import ProveRoute
from zkml.store import Store
from zkml.util import sha256_json
from zkml_cli.main import app

runner = CliRunner()

#: The auditor's fixed VRF key (secp256k1), so every run draws the same rows.
AUDITOR_SK = bytes.fromhex("3f1c0a1e5b2d4c3a9e8f7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928")
AUDITOR = VrfKey(vrf.SECP256K1, AUDITOR_SK)
MODEL_NAME = "digits_mlp"
BLOCK = BlockRef(chain_id=0, number=0, hash=keccak(text="a block the auditor names"), source="auditor")
K = 4


# Fixtures


@pytest.fixture(scope="module")
def committed() -> CommittedDataset:
    """The digits test set (360 rows, labels) committed with zkml.commitments.dataset."""
    return build_commitment(TEST_SET)


@pytest.fixture(scope="module")
def float_wrong(test_set: tuple[np.ndarray, np.ndarray]) -> set[int]:
    """Rows the float MLP misclassifies (onnxruntime), to pick a sample that is not all-correct."""
    import onnxruntime as ort

    x, y = test_set
    sess = ort.InferenceSession(str(MLP), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]
    return {int(i) for i in np.flatnonzero(logits.argmax(axis=1) != y)}


def expected_mlp(circuit: Circuit) -> ExpectedModel:
    return ExpectedModel(circuit.model_sha256, circuit.files["vk.key"], circuit.circuit_id)


def local_challenge(circuit: Circuit, committed: CommittedDataset, nonce: bytes, k: int = K) -> Challenge:
    c = committed.commitment
    return audit.issue_challenge(
        key=AUDITOR, model_id=audit.parse_model_id(MODEL_NAME), dataset_root=c.root,
        n_rows=c.n_rows, k=k, model=expected_mlp(circuit), block=BLOCK, nonce=nonce,
    )


@pytest.fixture(scope="module")
def challenge(mlp_circuit: Circuit, committed: CommittedDataset, float_wrong: set[int]) -> Challenge:
    """A local challenge whose k rows include exactly one row the float model gets wrong.

    The nonce is the first counter value giving such a sample (deterministic for this model
    and key), so the accuracy threshold can be tested in both directions.
    """
    for counter in range(1000):
        ch = local_challenge(mlp_circuit, committed, counter.to_bytes(32, "big"))
        if len(float_wrong & set(ch.indices)) == 1:
            return ch
    raise AssertionError("no nonce below 1000 gives a sample with one misclassified row")


@pytest.fixture(scope="module")
def honest(challenge: Challenge, mlp_circuit: Circuit) -> Response:
    """The honest owner's response: the k sampled rows proven in one bundle (k proofs at batch 1), on a pool of 2."""
    return audit.respond(challenge, TEST_SET, mlp_circuit, route=ProveRoute(workers=2))


@pytest.fixture(scope="module")
def other_row(challenge: Challenge, test_set: tuple[np.ndarray, np.ndarray], mlp_circuit: Circuit) -> tuple[int, Bundle]:
    """A row that was not sampled, and a real proof of it."""
    j = next(i for i in range(len(test_set[0])) if i not in challenge.indices)
    return j, prove(mlp_circuit, test_set[0][j : j + 1], reveal_input=True)


def check(response: Response, expected: Challenge, store: Store, **kw: Any) -> audit.AuditReport:
    kw.setdefault("min_accuracy", 0.5)
    return audit.check_response(response, expected, store=store, **kw)


def edited(response: Response, change: Any) -> Response:
    """The response file a cheater writes: the honest JSON, edited by ``change(doc)``."""
    doc = copy.deepcopy(response.to_json())
    change(doc)
    return Response.from_json(json.loads(json.dumps(doc)))


def failed(report: audit.AuditReport) -> set[str]:
    return {c.name for c in report.checks if c.ok is False}


# Alpha, challenge file, VRF key


def test_alpha_is_the_documented_abi_encoding(challenge: Challenge) -> None:
    f = challenge.fields
    want = eth_abi.encode(
        ["bytes32", "uint256", "bytes32", "uint256", "bytes32", "uint256", "bytes32", "uint256", "bytes32"],
        [keccak(text="zkml-audit-challenge/v1"), f.chain_id, f.model_id, f.model_version, f.dataset_root,
         f.n_rows, f.nonce, f.block_number, f.block_hash],
    )
    assert challenge.alpha == want and len(want) == 288
    assert f.model_id == keccak(text=MODEL_NAME)
    # The sample follows from the VRF output alone
    beta = vrf.verify("secp256k1", challenge.pk, want, challenge.pi)
    assert beta == challenge.beta
    assert list(challenge.indices) == sampling.sample_indices(beta, 360, K)
    assert challenge.notes == (audit.LOCAL_BLOCK_NOTE,)


def test_challenge_file_roundtrip(challenge: Challenge, tmp_path: Path) -> None:
    path = tmp_path / "challenge.json"
    challenge.save(path)
    doc = json.loads(path.read_text())
    for key in ("suite", "pk", "alpha_fields", "pi", "beta", "indices", "k", "n", "created", "digest"):
        assert key in doc
    assert doc["n"] == 360 and doc["k"] == K and doc["suite"] == "secp256k1"
    back = Challenge.load(path)
    assert back == challenge and back.digest == challenge.digest == doc["digest"]
    assert AUDITOR_SK.hex() not in path.read_text()


def _set(path: str, value: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = doc
        for p in parents:
            node = node[p]
        node[last] = value(node[last]) if callable(value) else value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("indices", lambda v: [v[1], v[0], *v[2:]]), "indices are not sample_indices"),
        (_set("k", lambda v: v + 1), "indices are not sample_indices"),
        (_set("beta", "00" * 32), "beta is not the VRF output"),
        (_set("pi", lambda v: v[:-2] + ("00" if v[-2:] != "00" else "01")), "VRF proof does not verify"),
        (_set("alpha_fields.nonce", "0x" + "11" * 32), "alpha does not match its fields"),
        (_set("alpha_fields.domain", "other"), "unknown alpha domain"),
        (_set("model.onnx_sha256", "ab" * 32), "digest does not match"),
        (_set("created", "2000-01-01T00:00:00Z"), "digest does not match"),
        (_set("format", "zkml-proof-bundle"), "not a zkml audit challenge"),
        (_set("suite", "ed25519"), "unknown VRF suite"),
        (_set("alpha_fields.n_rows", 0), "n_rows must be at least 1"),
    ],
)
def test_malformed_or_edited_challenge_is_refused(challenge: Challenge, change: Any, message: str) -> None:
    doc = copy.deepcopy(challenge.to_json())
    change(doc)
    with pytest.raises(AuditError, match=message):
        Challenge.from_json(doc)


# The honest audit


def test_honest_audit_passes(honest: Response, challenge: Challenge, store: Store, mlp_circuit: Circuit,
                             test_set: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    b = honest.bundle
    assert [r.index for r in honest.rows] == list(challenge.indices)
    assert len(b.proofs) == K and b.circuit_id == mlp_circuit.circuit_id  # batch 1: one proof per row
    assert {p["backend"] for p in b.meta.provers} == {"pool"} and len({p["pid"] for p in b.meta.provers}) == 2
    # The proven inputs are the sampled rows, bit for bit, and the labels are the committed ones
    x, y = test_set
    assert np.array_equal(np.asarray(b.to_json()["input"]["values"]).reshape(K, -1), x[list(challenge.indices)].astype(np.float64))
    assert [r.label for r in honest.rows] == [float(y[i]) for i in challenge.indices]
    report = check(honest, challenge, store)
    assert report.passed and report.exit_code == 0, report.failures()
    assert [c.name for c in report.checks] == ["challenge", "vrf", "block", "indices", "rows", "model", "snark", "inputs",
                                               "outputs", "accuracy"]
    assert "equal the proofs' public input instances" in report.check("inputs").detail
    assert "public output instances" in report.check("outputs").detail
    # Accuracy: the proven outputs' argmax against the committed labels
    predicted = [int(np.argmax(o)) for o in b.outputs]
    correct = sum(p == y[i] for p, i in zip(predicted, challenge.indices, strict=True))
    assert report.accuracy["correct"] == correct and report.accuracy["total"] == K
    assert [r["predicted"] for r in report.accuracy["rows"]] == predicted
    assert correct == K - 1, "the fixture's sample holds exactly one misclassified row"
    assert audit.LOCAL_BLOCK_NOTE in report.notes
    # The report: JSON + a human summary
    json_path, md_path = audit.write_report(report, tmp_path / "report.json")
    doc = json.loads(json_path.read_text())
    assert doc["format"] == "zkml-audit-report" and doc["passed"] and doc["challenge"]["digest"] == challenge.digest
    assert "PASS" in md_path.read_text() and "audit: PASS" in report.summary()


def test_accuracy_threshold_is_applied(honest: Response, challenge: Challenge, store: Store) -> None:
    measured = (K - 1) / K
    assert check(honest, challenge, store, min_accuracy=measured).passed
    report = check(honest, challenge, store, min_accuracy=1.0)
    assert not report.passed and failed(report) == {"accuracy"}
    assert "3/4" in report.check("accuracy").detail
    with pytest.raises(AuditError, match="between 0 and 1"):
        check(honest, challenge, store, min_accuracy=1.5)


def test_response_file_roundtrip(honest: Response, challenge: Challenge, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "response.json"
    honest.save(path)
    back = Response.load(path)
    assert back.challenge_digest == challenge.digest and back.rows == honest.rows
    assert check(back, challenge, store).passed


# Cheats, each caught by its own check


@pytest.mark.parametrize("claims", ["sampled index", "its own index"])
def test_proving_a_different_row_is_caught(
    claims: str, honest: Response, challenge: Challenge, store: Store, committed: CommittedDataset,
    other_row: tuple[int, Bundle],
) -> None:
    """The owner proves row j (not sampled) in place of the first sampled row i."""
    j, proof_j = other_row

    def splice(doc: dict[str, Any]) -> None:
        b = doc["bundle"]
        b["input"]["values"][0] = proof_j.to_json()["input"]["values"][0]
        b["input"]["sha256"] = sha256_json(b["input"]["values"])
        b["outputs"]["values"][0] = proof_j.to_json()["outputs"]["values"][0]
        b["proofs"][0] = proof_j.to_json()["proofs"][0]
        if claims == "its own index":  # row j's honest Merkle evidence, under its own index
            with np.load(TEST_SET) as z:
                label, features = float(z["y"][j]), [float(v) for v in z["x"][j]]
            doc["rows"][0] = {"index": j, "features": features, "label": label, "leaf": hex32(committed.leaf(j)),
                              "proof": [hex32(p) for p in committed.proof(j)]}

    report = check(edited(honest, splice), challenge, store)
    assert not report.passed
    assert report.check("snark").ok is True  # every proof is valid: only the row binding catches it
    if claims == "sampled index":  # the revealed row is the committed one, but not the proven one
        assert report.check("rows").ok is True and report.check("inputs").ok is False
        assert f"row {challenge.indices[0]} is not proof 0's public input" in report.check("inputs").detail
    else:  # the revealed row is the proven one, but not the sampled one
        assert report.check("inputs").ok is True and report.check("rows").ok is False
        assert f"row {challenge.indices[0]}:" in report.check("rows").detail
        assert report.check("indices").ok is False
        assert f"proves rows [{j}," in report.check("indices").detail


@pytest.mark.parametrize("recompute_leaf", [False, True])
def test_swapped_label_is_caught(recompute_leaf: bool, honest: Response, challenge: Challenge, store: Store) -> None:
    """The owner reveals the model's prediction as the label of the misclassified row."""
    p = next(p for p, r in enumerate(honest.rows) if int(np.argmax(honest.bundle.outputs[p])) != r.label)
    fake = float(np.argmax(honest.bundle.outputs[p]))

    def swap(doc: dict[str, Any]) -> None:
        row = doc["rows"][p]
        row["label"] = fake
        if recompute_leaf:
            row["leaf"] = hex32(row_leaf(row["index"], np.asarray(row["features"], dtype=np.float64), fake))

    report = check(edited(honest, swap), challenge, store)
    assert report.check("rows").ok is False
    assert f"label {fake:g} is not committed at index {challenge.indices[p]}" in report.check("rows").detail
    assert report.check("snark").ok is True and report.check("indices").ok is True
    assert report.accuracy["correct"] == K  # the lie would have made the accuracy perfect


def test_reused_old_challenge_is_caught(honest: Response, challenge: Challenge, store: Store, mlp_circuit: Circuit,
                                        committed: CommittedDataset, tmp_path: Path) -> None:
    """A response to an earlier challenge, handed in for the auditor's new one."""
    ledger = Ledger(tmp_path / "ledger.json")
    ledger.record_issued(challenge)
    assert ledger.expected(challenge.digest)[1] == "open"
    new = local_challenge(mlp_circuit, committed, keccak(text="the next audit"))
    assert ledger.record_issued(new) == [challenge.digest]
    # The ledger no longer accepts the old challenge, and names the open one
    expected, status = ledger.expected(honest.challenge_digest)
    assert expected is None and status.startswith("superseded by challenge " + new.digest[:16])
    latest = ledger.latest(new.fields.model_id, new.fields.dataset_root)
    assert latest is not None and latest.digest == new.digest
    report = check(honest, latest, store, replay_note=f"the answered challenge was {status}")
    assert report.check("challenge").ok is False
    assert "superseded" in report.check("challenge").detail
    # The old sample is not the new one: its rows are committed, but not at the newly sampled indices
    assert failed(report) == {"challenge", "indices", "rows", "accuracy"} - ({"accuracy"} if report.accuracy["correct"] >= 2 else set())
    assert report.check("snark").ok is True and report.check("model").ok is True
    # Relabelling the old response with the new challenge does not help either
    relabelled = edited(honest, lambda d: d.update(challenge=new.to_json(), challenge_digest=new.digest))
    report = check(relabelled, new, store)
    assert report.check("challenge").ok is True and failed(report) >= {"indices", "rows"}
    # Naming the new digest while embedding the old challenge is caught as such
    report = check(edited(honest, lambda d: d.update(challenge_digest=new.digest)), new, store)
    assert "names challenge" in report.check("challenge").detail


def test_never_issued_challenge_is_caught(honest: Response, challenge: Challenge, store: Store, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.json")
    assert ledger.expected(honest.challenge_digest) == (None, "never issued by this auditor")


def test_proof_of_another_model_is_caught(
    honest: Response, challenge: Challenge, store: Store, cnn_circuit: Circuit, test_set: tuple[np.ndarray, np.ndarray],
) -> None:
    """The owner proves the sampled rows, but with the digits CNN instead of the audited MLP."""
    # Honest tooling refuses to answer with the wrong circuit
    with pytest.raises(AuditError, match="the challenge audits model"):
        audit.respond(challenge, TEST_SET, cnn_circuit)
    rows = test_set[0][list(challenge.indices)].reshape(K, 1, 8, 8)
    cnn_bundle = prove(cnn_circuit, rows, reveal_input=True)
    report = check(edited(honest, lambda d: d.update(bundle=cnn_bundle.to_json())), challenge, store)
    assert report.check("model").ok is False
    assert "proofs are of model" in report.check("model").detail
    assert report.check("snark").ok is False and "invalid under the audited circuit" in report.check("snark").detail
    assert report.check("rows").ok is True  # the rows are the right ones: only the model pin catches it


# Bad input: one clear error


def test_bad_challenge_requests(mlp_circuit: Circuit, committed: CommittedDataset) -> None:
    with pytest.raises(AuditError, match="k=361 exceeds the dataset's 360 rows"):
        local_challenge(mlp_circuit, committed, bytes(32), k=361)
    with pytest.raises(AuditError, match="k must be a positive integer"):
        local_challenge(mlp_circuit, committed, bytes(32), k=0)
    with pytest.raises(AuditError, match="the audited model is unknown"):
        ExpectedModel(None, None)
    with pytest.raises(AuditError, match="challenge file not found"):
        Challenge.load("/nonexistent/challenge.json")


def test_respond_refuses_data_that_is_not_the_committed_set(challenge: Challenge, mlp_circuit: Circuit,
                                                            tmp_path: Path) -> None:
    with np.load(TEST_SET) as z:
        x, y = z["x"].copy(), z["y"].copy()
    y[0] = (y[0] + 1) % 10
    altered = tmp_path / "altered.npz"
    np.savez(altered, x=x, y=y)
    with pytest.raises(AuditError, match="has root 0x.*the challenge is for"):
        audit.respond(challenge, altered, mlp_circuit)
    unlabelled = tmp_path / "unlabelled.npz"
    np.savez(unlabelled, x=x)
    with pytest.raises(AuditError, match="has root"):
        audit.respond(challenge, unlabelled, mlp_circuit)
    with pytest.raises(AuditError, match="not a JSON response file"):
        Response.load(_write(tmp_path / "r.json", "{not json"))
    with pytest.raises(AuditError, match="not a zkml audit response"):
        Response.load(_write(tmp_path / "r.json", "[]"))


def test_respond_refuses_an_invalid_challenge(challenge: Challenge, mlp_circuit: Circuit) -> None:
    forged = Challenge(**{**challenge.__dict__, "indices": (0, 1, 2, 3)})
    with pytest.raises(AuditError, match="refusing to answer an invalid challenge"):
        audit.respond(forged, TEST_SET, mlp_circuit)


def test_the_challenged_circuit_is_found_by_id_then_by_vk(challenge: Challenge, mlp_circuit: Circuit,
                                                         cnn_circuit: Circuit, store: Store, tmp_path: Path) -> None:
    """`zkml audit respond` without --circuit: the challenged id, else the store's circuit with the challenged vk."""
    from zkml.audit.respond import challenged_circuit
    from zkml.errors import ConfigError

    assert challenged_circuit(challenge, store).circuit_id == mlp_circuit.circuit_id
    by_vk = replace(challenge, model=ExpectedModel(mlp_circuit.model_sha256, mlp_circuit.files["vk.key"], "f" * 20))
    assert challenged_circuit(by_vk, store).circuit_id == mlp_circuit.circuit_id
    bad_id = replace(challenge, model=ExpectedModel(mlp_circuit.model_sha256, mlp_circuit.files["vk.key"], "../x"))
    assert challenged_circuit(bad_id, store).circuit_id == mlp_circuit.circuit_id  # an id that is no id is ignored
    # --circuit wins (respond then refuses it if it is not the challenged model)
    assert challenged_circuit(challenge, store, cnn_circuit.circuit_id).circuit_id == cnn_circuit.circuit_id
    with pytest.raises(ConfigError, match="pass --circuit: the challenged circuit is not in this store"):
        challenged_circuit(by_vk, Store(tmp_path / "empty"))


def _errors(stderr: str) -> list[str]:
    """The error lines of a CLI run (progress lines start with "  ..", a local audit's warning with "WARNING: LOCAL")."""
    return [line for line in stderr.splitlines() if not line.startswith(("  .. ", "WARNING: LOCAL AUDIT"))]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# CLI


def _zkml(store: Store, *args: str, **env: str) -> Any:
    return runner.invoke(app, [*args, "--store", str(store.root)], env={"ZKML_VRF_SK": AUDITOR_SK.hex(), **env})


@pytest.fixture
def cli_files(tmp_path: Path, committed: CommittedDataset) -> dict[str, Path]:
    files = {"commitment": tmp_path / "test.commitment.json", "ledger": tmp_path / "ledger.json",
             "challenge": tmp_path / "challenge.json", "response": tmp_path / "response.json"}
    write_commitment(files["commitment"], committed)
    return files


def _issue(store: Store, f: dict[str, Path], mlp_circuit: Circuit, k: int, *extra: str) -> Any:
    return _zkml(store, "audit", "challenge", "--model", MODEL_NAME, "--commitment", str(f["commitment"]), "--k", str(k),
                 "--circuit", mlp_circuit.circuit_id, "--block-hash", hex32(BLOCK.hash), "-o", str(f["challenge"]),
                 "--ledger", str(f["ledger"]), *extra)


def test_cli_local_audit_and_replay(store: Store, mlp_circuit: Circuit, cli_files: dict[str, Path], tmp_path: Path) -> None:
    f = cli_files
    r = _issue(store, f, mlp_circuit, 2, "--json")
    assert r.exit_code == 0, r.stderr
    issued = json.loads(r.stdout)
    assert issued["k"] == 2 and issued["n"] == 360 and AUDITOR_SK.hex() not in r.stdout + r.stderr
    r = _zkml(store, "audit", "respond", str(f["challenge"]), "--data", str(TEST_SET), "-o", str(f["response"]))
    assert r.exit_code == 0, r.stderr
    assert f"proved rows {issued['indices']} in 2 proof(s)" in r.stdout
    # The auditor checks against its ledger (no --challenge): pass, min accuracy 0 for a 2-row sample
    r = _zkml(store, "audit", "check", str(f["response"]), "--ledger", str(f["ledger"]), "--min-accuracy", "0")
    assert r.exit_code == 0, r.stderr
    assert "audit: PASS" in r.stdout
    report = tmp_path / "response.report.json"
    assert json.loads(report.read_text())["passed"] and report.with_suffix(".md").is_file()
    ledger = json.loads(f["ledger"].read_text())
    assert ledger["entries"][0]["checks"][0]["passed"] is True
    # A new challenge supersedes it: the same response is now a replay (exit 1, one line)
    old = f["challenge"].read_text()
    r = _issue(store, f, mlp_circuit, 2)
    assert r.exit_code == 0 and "supersedes 1 earlier challenge" in r.stdout
    r = _zkml(store, "audit", "check", str(f["response"]), "--ledger", str(f["ledger"]), "--min-accuracy", "0")
    assert r.exit_code == 1
    (err,) = _errors(r.stderr)
    assert err.startswith("error: audit failed: challenge:") and "superseded" in err and "Traceback" not in r.stderr
    # With the old challenge file given explicitly the auditor can still re-check it
    _write(tmp_path / "old.json", old)
    r = _zkml(store, "audit", "check", str(f["response"]), "--challenge", str(tmp_path / "old.json"), "--min-accuracy", "0",
              "--json", "--report", str(tmp_path / "again.json"))
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["passed"] is True


def test_cli_tampered_response_fails_with_exit_1(store: Store, honest: Response, challenge: Challenge, tmp_path: Path) -> None:
    ch, resp = tmp_path / "challenge.json", tmp_path / "response.json"
    challenge.save(ch)
    doc = honest.to_json()
    doc["rows"][1]["label"] = (doc["rows"][1]["label"] + 1) % 10
    resp.write_text(json.dumps(doc))
    r = _zkml(store, "audit", "check", str(resp), "--challenge", str(ch), "--json")
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert out["passed"] is False and [c["name"] for c in out["checks"] if c["ok"] is False] == ["rows"]
    (err,) = _errors(r.stderr)
    assert err.startswith("error: audit failed: rows: row ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["challenge", "--model", "m", "--rows", "360", "--k", "400", "--model-digest", "ab" * 32,
          "--dataset-root", "0x" + "11" * 32, "--block-hash", "0x" + "22" * 32], "k=400 exceeds the dataset's 360 rows"),
        (["challenge", "--model", "m", "--rows", "360", "--k", "4", "--model-digest", "ab" * 32,
          "--dataset-root", "0x" + "11" * 32], "no block hash"),
        (["challenge", "--model", "m", "--k", "4", "--dataset-root", "0x" + "11" * 32, "--block-hash", "0x" + "22" * 32],
         "row count N is unknown"),
        (["challenge", "--model", "m", "--rows", "9", "--k", "4", "--dataset-root", "0x11", "--block-hash", "0x" + "22" * 32],
         "--dataset-root must be 32 bytes"),
        (["respond", "/nonexistent/challenge.json", "--data", str(TEST_SET)], "challenge file not found"),
        (["check", "/nonexistent/response.json"], "response file not found"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(store: Store, args: list[str], message: str) -> None:
    r = _zkml(store, "audit", *args)
    assert r.exit_code == 2, r.stdout + r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_cli_malformed_challenge_and_missing_key(store: Store, honest: Response, tmp_path: Path) -> None:
    bad = _write(tmp_path / "challenge.json", json.dumps({"format": "zkml-audit-challenge", "version": 2}))
    resp = tmp_path / "response.json"
    honest.save(resp)
    r = _zkml(store, "audit", "check", str(resp), "--challenge", str(bad))
    assert r.exit_code == 2 and "malformed challenge (missing 'suite')" in r.stderr
    r = _zkml(store, "audit", "respond", str(_write(tmp_path / "c2.json", "[1, 2")), "--data", str(TEST_SET))
    assert r.exit_code == 2 and "not a JSON challenge file" in r.stderr
    r = runner.invoke(app, ["audit", "challenge", "--model", "m", "--rows", "9", "--k", "1", "--model-digest", "ab" * 32,
                            "--dataset-root", "0x" + "11" * 32, "--block-hash", "0x" + "22" * 32,
                            "--store", str(store.root)], env={"ZKML_VRF_SK": ""})
    assert r.exit_code == 2 and "no VRF key" in r.stderr


def test_installed_zkml_audit_check(store: Store, honest: Response, challenge: Challenge, tmp_path: Path) -> None:
    ch, resp = tmp_path / "challenge.json", tmp_path / "response.json"
    challenge.save(ch)
    honest.save(resp)
    zkml = shutil.which("zkml", path=str(REPO / ".venv" / "bin")) or "zkml"
    env = {**os.environ, "ZKML_STORE": str(store.root)}
    proc = subprocess.run([zkml, "audit", "check", str(resp), "--challenge", str(ch), "--min-accuracy", "0.5", "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["passed"] is True


# On chain: a real anvil, the registry and VRFVerifier


@pytest.fixture(scope="module")
def onchain(store: Store, mlp_circuit: Circuit, committed: CommittedDataset,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[audit.OnChain]:
    """A private anvil with a ModelRegistry, the MLP's verifier registered as ``digits_mlp`` with the
    test set's root, and a VRFVerifier (deployed after the registration, so a later block exists)."""
    from zkml.evm import vrf_onchain
    from zkml.evm.anvil import Anvil
    from zkml.evm.chain import connect
    from zkml.evm.registry import InstanceLayout, ModelRecord, Registry
    from zkml.evm.verifier import compile_verifier, deploy_verifier, generate_verifier

    cache = store.root / "solc-cache"
    art = generate_verifier(mlp_circuit.vk, mlp_circuit.settings_path, mlp_circuit.srs.path,
                            tmp_path_factory.mktemp("audit-verifier"))
    compiled = compile_verifier(art, cache_dir=cache)
    with Anvil.start() as node:
        chain = connect(node.rpc_url, allow_dev_key=True)
        dep = deploy_verifier(chain, compiled)
        registry = Registry.deploy(chain, challenge_window=0, cache_dir=cache)
        record = ModelRecord.for_deployment(
            dep, onnx_sha256=mlp_circuit.model_sha256, vk_digest=mlp_circuit.files["vk.key"],
            layout=InstanceLayout.from_settings(mlp_circuit.settings_path), dataset_root=committed.commitment.root,
        )
        registry.register(MODEL_NAME, record)
        vrf_contract = vrf_onchain.deploy_verifier(chain, vrf_onchain.compile_verifier(cache_dir=cache))
        yield audit.OnChain(chain, registry, vrf_contract, cache)


@pytest.fixture
def fresh(onchain: audit.OnChain) -> Iterator[audit.OnChain]:
    """The on-chain world, reverted after the test."""
    snap = onchain.chain.snapshot()
    try:
        yield onchain
    finally:
        onchain.chain.revert(snap)


def test_onchain_audit_passes_and_is_recorded(fresh: audit.OnChain, store: Store, mlp_circuit: Circuit,
                                              committed: CommittedDataset) -> None:
    reg = fresh.registry
    ch = commit_and_reveal(fresh, mlp_circuit, committed, k=3)
    f = ch.fields
    contract = fresh.vrf_verifier
    assert f.chain_id == 31337 and f.model_version == 1 and f.dataset_root == committed.commitment.root
    assert ch.activation_block is not None and f.block_number > ch.activation_block
    assert ch.model.onnx_sha256 == mlp_circuit.model_sha256 and ch.block_source == "chain" and not ch.notes
    # Commit-reveal: the nonce was committed in an earlier block than the one whose hash alpha mixes in
    assert ch.commit is not None and ch.commit.block < ch.commit.target_block == f.block_number
    assert ch.commit_problem() is None
    assert ch.posted is not None and ch.posted["vrf_verifier"] == contract.address == fresh.vrf_verifier.address
    assert 0 < ch.posted["gas_used"] < 150_000
    response = audit.respond(ch, TEST_SET, mlp_circuit)
    before = len(reg.history(MODEL_NAME))
    # The registry records an outcome only from an account bound to the challenge's VRF key
    before_record = fresh.chain.snapshot()
    unbound = check(response, ch, store, min_accuracy=0.0, onchain=fresh)
    assert audit.verdict_digest(unbound.as_dict()) and failed(unbound) == {"record"}
    assert "is not bound to the challenge's VRF key" in unbound.check("record").detail
    report = check(response, ch, store, min_accuracy=0.0, onchain=fresh, auditor_key=AUDITOR)
    assert report.passed, report.failures()
    assert [c.name for c in report.checks][-5:] == ["registry", "vrf_onchain", "rows_onchain", "snark_onchain", "record"]
    assert "published in tx" in report.check("commit").detail
    assert "posted in tx" in report.check("vrf_onchain").detail
    assert 0 < report.onchain["vrf_verify_gas"] < 150_000
    records = report.onchain["records"]
    assert len(records) == 3 and all(r["events"] == ["ProofVerified"] for r in records)
    events = reg.history(MODEL_NAME)[before:]
    assert [e.name for e in events] == ["ProofVerified"] * 3 + ["AuditRecorded"]
    # The outcome is on chain: the auditor, the challenge, beta, the counts and the report's verdict digest
    rec = report.onchain["audit_record"]
    assert report.onchain["audit_tx"] == rec["tx_hash"] == events[-1].tx_hash and rec["events"] == ["AuditRecorded"]
    correct = report.accuracy["correct"]
    assert events[-1].args == {
        "modelId": f.model_id, "version": 1, "auditor": fresh.chain.sender, "auditorKey": keccak(ch.pk),
        "challengeDigest": bytes.fromhex(ch.digest),
        "beta": ch.beta, "sampled": 3, "correct": correct, "passed": True,
        "reportDigest": bytes.fromhex(report.verdict_digest()),
    }
    assert audit.verdict_digest(json.loads(json.dumps(report.as_dict()))) == rec["report_digest"]
    assert "AuditRecorded (pass)" in report.check("record").detail
    # One outcome per challenge and auditor key: a second record of the same challenge is refused
    swapped = edited(response, _set("rows", lambda rows: [{**rows[0], "label": (rows[0]["label"] + 1) % 10}, *rows[1:]]))
    again = check(swapped, ch, store, min_accuracy=0.0, onchain=fresh)
    assert again.check("record").ok is False and "already recorded" in again.check("record").detail
    # A failing check (had it come first) is recorded as a fail, and its proofs are not
    fresh.chain.revert(before_record)
    bad = check(swapped, ch, store, min_accuracy=0.0, onchain=fresh, auditor_key=AUDITOR)
    assert not bad.passed and bad.check("record").ok is None and "AuditRecorded (fail)" in bad.check("record").detail
    assert "records" not in bad.onchain
    [last] = reg.audits(MODEL_NAME)
    assert last.args["passed"] is False and last.tx_hash == bad.onchain["audit_tx"]
    assert last.args["reportDigest"] == bytes.fromhex(bad.verdict_digest()) != events[-1].args["reportDigest"]
    assert reg.audits(MODEL_NAME, auditor="0x" + "11" * 20) == []


def commit_and_reveal(onchain: audit.OnChain, circuit: Circuit, committed: CommittedDataset, k: int,
                      **kw: Any) -> Challenge:
    """Commit to a nonce, let the target block be mined (a dev chain mines on demand), reveal."""
    c = audit.commit_onchain_challenge(onchain, key=AUDITOR, model_id=onchain.registry.model_id(MODEL_NAME), k=k,
                                       n_rows=committed.commitment.n_rows, circuit=circuit, **kw)
    while onchain.chain.block_number() < c.commit.target_block:
        onchain.chain.rpc("evm_mine", [])
    ch, _ = audit.issue_onchain_challenge(onchain, c, key=AUDITOR)
    return ch


def test_onchain_commit_and_reveal_refusals(fresh: audit.OnChain, mlp_circuit: Circuit, committed: CommittedDataset,
                                            tmp_path: Path) -> None:
    model_id = fresh.registry.model_id(MODEL_NAME)
    with pytest.raises(AuditError, match="is not the registered root"):
        audit.commit_onchain_challenge(fresh, key=AUDITOR, model_id=model_id, k=2, n_rows=360, dataset_root=bytes(32))
    with pytest.raises(AuditError, match="--blocks-ahead must be at least 1"):
        audit.commit_onchain_challenge(fresh, key=AUDITOR, model_id=model_id, k=2, n_rows=360, blocks_ahead=0)
    c = audit.commit_onchain_challenge(fresh, key=AUDITOR, model_id=model_id, k=2, n_rows=360, blocks_ahead=2)
    assert c.commit.target_block == c.commit.block + 2
    # The commit file holds the nonce (0600) and is checked on load
    c.save(tmp_path / "commit.json")
    assert oct((tmp_path / "commit.json").stat().st_mode & 0o777) == "0o600"
    assert audit.AuditCommit.load(tmp_path / "commit.json") == c
    doc = json.loads((tmp_path / "commit.json").read_text())
    doc["k"] = 3
    with pytest.raises(AuditError, match="the nonce does not open the commitment"):
        audit.AuditCommit.from_json(doc)
    # Too early: the target block does not exist yet
    with pytest.raises(AuditError, match=f"block {c.commit.target_block} does not exist yet"):
        audit.issue_onchain_challenge(fresh, c, key=AUDITOR)
    fresh.chain.rpc("evm_mine", [])
    fresh.chain.rpc("evm_mine", [])
    # Another key cannot reveal it; p256 cannot be posted
    with pytest.raises(AuditError, match="not the one the commitment names"):
        audit.issue_onchain_challenge(fresh, c, key=VrfKey(vrf.SECP256K1, bytes(31) + b"\x07"))
    with pytest.raises(AuditError, match="secp256k1 proofs only"):
        p256 = VrfKey(vrf.P256, AUDITOR_SK)
        audit.issue_onchain_challenge(fresh, replace(c, suite="p256", pk=p256.pk), key=p256)
    ch, _ = audit.issue_onchain_challenge(fresh, c, key=AUDITOR, post=False)
    assert ch.commit == c.commit and ch.fields.nonce == c.nonce and ch.posted is None


def test_onchain_check_of_a_cheat_records_nothing(fresh: audit.OnChain, store: Store, mlp_circuit: Circuit,
                                                  committed: CommittedDataset) -> None:
    """A local challenge checked against the chain: the registry's root and model match, the label swap does not."""
    c = committed.commitment
    challenge = audit.issue_challenge(key=AUDITOR, model_id=fresh.registry.model_id(MODEL_NAME), dataset_root=c.root,
                                      n_rows=c.n_rows, k=2, model=expected_mlp(mlp_circuit), block=BLOCK)
    honest = audit.respond(challenge, TEST_SET, mlp_circuit)
    doc_change = _set("rows", lambda rows: [{**rows[0], "label": (rows[0]["label"] + 1) % 10}, *rows[1:]])
    before = len(fresh.registry.history(MODEL_NAME))
    report = check(edited(honest, doc_change), challenge, store, onchain=fresh, auditor_key=AUDITOR)
    assert report.check("rows").ok is False and report.check("rows_onchain").ok is False
    assert "1/2" in report.check("rows_onchain").detail
    assert audit.LOCAL_BLOCK_NOTE in report.notes and "commit" not in {x.name for x in report.checks}
    assert report.check("snark_onchain").ok is True and report.check("vrf_onchain").ok is True
    assert report.check("registry").ok is False  # a local challenge names version 0, the registry has version 1
    assert report.check("record").ok is None and len(fresh.registry.history(MODEL_NAME)) == before


def test_cli_onchain_audit(fresh: audit.OnChain, store: Store, mlp_circuit: Circuit, cli_files: dict[str, Path]) -> None:
    f = cli_files
    chain_args = ["--rpc-url", fresh.chain.rpc_url, "--registry", fresh.registry.address,
                  "--vrf-verifier", fresh.vrf_verifier.address]
    commit = f["challenge"].with_name("commit.json")
    # Without a commitment there is no on-chain challenge
    r = _zkml(store, "audit", "challenge", "--onchain", *chain_args, "-o", str(f["challenge"]))
    assert r.exit_code == 2 and "run `zkml audit commit" in r.stderr
    r = _zkml(store, "audit", "commit", "--model", MODEL_NAME, "--commitment", str(f["commitment"]), "--k", "2",
              *chain_args, "-o", str(commit), "--json")
    assert r.exit_code == 0, r.stderr
    published = json.loads(r.stdout)
    assert "nonce" not in published and published["commit"]["tx_hash"].startswith("0x")
    assert AUDITOR_SK.hex() not in r.stdout + r.stderr
    # The auditor cannot pick the block (or the nonce) at reveal time
    r = _zkml(store, "audit", "challenge", "--onchain", "--from-commit", str(commit), "--block-number", "1",
              *chain_args, "-o", str(f["challenge"]))
    assert r.exit_code == 2 and "--block-number is fixed by the commit file" in r.stderr
    fresh.chain.rpc("evm_mine", [])
    r = _zkml(store, "audit", "challenge", "--onchain", "--from-commit", str(commit), *chain_args,
              "-o", str(f["challenge"]), "--ledger", str(f["ledger"]), "--json")
    assert r.exit_code == 0, r.stderr
    issued = json.loads(r.stdout)
    assert issued["block_source"] == "chain" and issued["posted"]["tx_hash"].startswith("0x")
    assert issued["commit"]["target_block"] == issued["alpha_fields"]["block_number"] == published["commit"]["target_block"]
    assert "WARNING" not in r.stderr
    r = _zkml(store, "audit", "respond", str(f["challenge"]), "--data", str(TEST_SET), "-o", str(f["response"]))
    assert r.exit_code == 0, r.stderr
    r = _zkml(store, "audit", "check", str(f["response"]), "--ledger", str(f["ledger"]), "--min-accuracy", "0",
              "--onchain", *chain_args, "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["passed"] and len(out["onchain"]["records"]) == 2
    assert out["onchain"]["audit_tx"].startswith("0x") and out["onchain"]["audit_record"]["passed"] is True
