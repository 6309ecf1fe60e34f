"""Checking a response: the judged facts, the report, and recording the outcome on chain."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from eth_utils import keccak

from zkml import vrf
from zkml.audit.binding import Layout, Proven, proven_io
from zkml.audit.challenge import Challenge, ExpectedModel
from zkml.audit.common import FORMAT_VERSION, REPORT_FORMAT, AuditError, Progress, _quiet
from zkml.audit.onchain import OnChain, _block_hash, activation_block, published_commitment
from zkml.audit.respond import Response
from zkml.bundle import Bundle, now_iso
from zkml.commitments import hex32, row_leaf, verify_inclusion
from zkml.errors import InputError, StoreError, ZkmlError
from zkml.util import sha256_json, write_json_atomic

if TYPE_CHECKING:  # the chain side is imported only when an on-chain audit runs
    from zkml.circuit import Circuit
    from zkml.evm.chain import Chain, Contract
    from zkml.keys import VrfKey
    from zkml.store import Store
    from zkml.verify import Artifacts


# ---------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditCheck:
    """One judged fact."""

    name: str
    """challenge | vrf | block | commit | indices | rows | model | snark | inputs | outputs | accuracy |
    registry | vrf_onchain | rows_onchain | snark_onchain | record."""
    ok: bool | None
    """Passed, failed, or None when not run."""
    detail: str
    """One line, with numbers."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class AuditReport:
    """The verdict on one response."""

    checks: list[AuditCheck]
    """Every check, in order."""
    challenge: dict[str, Any]
    """What was challenged (digest, model, root, N, k, indices, VRF evidence, block)."""
    response: dict[str, Any]
    """What was answered (digest named, bundle model/circuit, proofs)."""
    accuracy: dict[str, Any]
    """correct, total, accuracy, min_accuracy, per-row predictions."""
    onchain: dict[str, Any]
    """Chain id, contracts, gas and transactions, when checked on chain."""
    seconds: float
    """Wall time of the check."""
    notes: list[str]
    """Caveats (dev SRS, hand-given block hash)."""
    created: str = field(default_factory=now_iso)
    """When the report was made."""

    @property
    def passed(self) -> bool:
        return all(c.ok is True for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def failures(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if c.ok is False]

    def check(self, name: str) -> AuditCheck:
        """The check called ``name``. Raises KeyError."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT, "version": FORMAT_VERSION, "created": self.created, "passed": self.passed,
            "exit_code": self.exit_code, "failures": self.failures(), "checks": [c.as_dict() for c in self.checks],
            "challenge": self.challenge, "response": self.response, "accuracy": self.accuracy,
            "onchain": self.onchain, "seconds": self.seconds, "notes": self.notes,
        }

    def verdict_digest(self) -> str:
        """sha256 of what was judged: the ``reportDigest`` an on-chain audit records.

        ``sha256_json({"challenge", "response", "accuracy", "checks"})`` of this
        report, leaving out the ``record`` check (written after the digest went
        on chain). Anyone holding the JSON report recomputes it with
        :func:`verdict_digest`.
        """
        return verdict_digest(self.as_dict())

    def summary(self) -> str:
        """Plain-text summary for the terminal."""
        mark = {True: "ok  ", False: "FAIL", None: "--  "}
        ch, acc = self.challenge, self.accuracy
        lines = [
            f"audit of model {ch['model_id']} (version {ch['model_version']}), dataset root {ch['dataset_root'][:18]}…",
            f"  challenge {ch['digest'][:16]}…: {ch['k']} of {ch['n']} rows {ch['indices']}",
        ]
        for c in self.checks:
            lines.append(f"  {mark[c.ok]} {c.name:<14} {c.detail}")
        if acc.get("total"):
            lines.append(f"  accuracy {acc['correct']}/{acc['total']} = {100 * acc['accuracy']:.1f}% "
                         f"(min {100 * acc['min_accuracy']:.1f}%)")
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(f"audit: {'PASS' if self.passed else 'FAIL'} in {self.seconds:.1f}s")
        return "\n".join(lines)

    def markdown(self) -> str:
        """The human summary written beside the JSON report."""
        icon = {True: "✅", False: "❌", None: "➖"}
        ch, acc = self.challenge, self.accuracy
        out = [f"# zkml audit: {'PASS ✅' if self.passed else 'FAIL ❌'}", "",
               f"- model `{ch['model_id']}` version {ch['model_version']}; expected ONNX sha256 "
               f"`{ch['model'].get('onnx_sha256')}`, vk sha256 `{ch['model'].get('vk_sha256')}`",
               f"- dataset root `{ch['dataset_root']}` ({ch['n']} rows); {ch['k']} sampled: `{ch['indices']}`",
               f"- challenge `{ch['digest']}` issued {ch['created']}; block {ch['block_number']} "
               f"`{ch['block_hash']}` on chain {ch['chain_id']} ({ch['block_source']})",
               f"- VRF {ch['suite']}: pk `{ch['pk']}`, beta `{ch['beta']}`"]
        if acc.get("total"):
            out.append(f"- accuracy {acc['correct']}/{acc['total']} = {100 * acc['accuracy']:.1f}% "
                       f"(min {100 * acc['min_accuracy']:.1f}%)")
        for n in self.notes:
            out += ["", f"> ⚠️ {n}"]
        out += ["", "| check | verdict | detail |", "|---|---|---|"]
        out += [f"| {c.name} | {icon[c.ok]} | {c.detail.replace('|', '/')} |" for c in self.checks]
        if acc.get("rows"):
            out += ["", "| row | label | predicted | correct |", "|---|---|---|---|"]
            out += [f"| {r['index']} | {r['label']:g} | {r['predicted']} | {'yes' if r['correct'] else 'no'} |"
                    for r in acc["rows"]]
        if self.onchain:
            out += ["", "On chain: " + ", ".join(f"{k} `{v}`" for k, v in self.onchain.items() if not isinstance(v, (list, dict)))]
        return "\n".join(out) + "\n"


def verdict_digest(report: Mapping[str, Any]) -> str:
    """The verdict digest of a report (an :meth:`AuditReport.as_dict`, e.g. a loaded JSON report)."""
    core = {k: report[k] for k in ("challenge", "response", "accuracy")}
    core["checks"] = [c for c in report["checks"] if c["name"] != "record"]
    return sha256_json(core)


def write_report(report: AuditReport, path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write the JSON report to ``path`` and the Markdown summary beside it (``.md``)."""
    p = Path(path)
    write_json_atomic(p, report.as_dict())
    md = p.with_suffix(".md")
    md.write_text(report.markdown())
    return p, md


def audited_circuit(expected: ExpectedModel, store: Store, hints: tuple[str, ...] = ()) -> Circuit:
    """The audited circuit, from ``store`` (which built it: every file digest-checked).

    Found by the expected circuit id, then the ``hints`` (e.g. a bundle's circuit id: only where to
    look first), else by the expected vk digest, else (no vk pinned) the circuit of the expected ONNX
    digest. Every candidate must have the expected vk and ONNX digests; ids that are no store id are
    ignored. Raises :class:`StoreError` when the store does not hold it.
    """
    from zkml.circuit import open_circuit
    from zkml.store import CIRCUIT_ID

    ids = [c for c in (expected.circuit_id, *hints) if c and CIRCUIT_ID.fullmatch(c)]
    candidates = [store.circuit_dir(c) for c in ids]
    candidates += ([m.folder for m in store.circuits_with_vk(expected.vk_sha256)] if expected.vk_sha256
                   else [m.folder for m in store.list_circuits()])
    for folder in candidates:
        manifest, _ = store.read_manifest(folder)
        if manifest is None:
            continue
        if expected.vk_sha256 is not None and manifest.files.get("vk.key") != expected.vk_sha256:
            continue
        circuit = open_circuit(folder, store)
        if expected.onnx_sha256 not in (None, circuit.model_sha256):
            continue
        return circuit
    want = f"vk sha256 {expected.vk_sha256[:16]}…" if expected.vk_sha256 else f"model {expected.onnx_sha256}"
    raise StoreError(
        f"the audited circuit ({want}) is not in store {store.root}: pass --circuit with its public artifacts"
    )


def audited_artifacts(expected: ExpectedModel, bundle: Bundle, store: Store) -> Artifacts:
    """Public artifacts of the audited circuit (:func:`audited_circuit`; the bundle's circuit id is a hint)."""
    return audited_circuit(expected, store, (bundle.circuit_id,)).artifacts()


def check_response(
    response: Response,
    expected: Challenge,
    *,
    store: Store,
    min_accuracy: float,
    artifacts: Artifacts | None = None,
    expected_model: ExpectedModel | None = None,
    replay_note: str | None = None,
    onchain: OnChain | None = None,
    record: bool = True,
    auditor_key: VrfKey | None = None,
    progress: Progress = _quiet,
) -> AuditReport:
    """Judge ``response`` against the challenge the auditor issued (``expected``).

    ``artifacts`` (:class:`zkml.verify.Artifacts`) are the audited circuit's
    public files; by default they are looked up in ``store``.
    ``expected_model`` overrides the challenge's pins (the CLI merges
    ``--model-digest``/``--circuit`` into them). ``replay_note`` explains,
    from the auditor's ledger, why the answered challenge is not the open one. With
    ``onchain``, the VRF, block, registry record, dataset membership and every
    proof are checked on chain too; with ``record`` (and a challenge naming a
    registry version), a passing audit's proofs are recorded with
    ``verifyAndRecord`` and the outcome, pass or fail, with ``recordAudit``
    (its transaction in ``report.onchain["audit_tx"]``). The registry accepts
    an outcome only from an account bound to the challenge's VRF key; with
    ``auditor_key`` (that key) an unbound account is bound first
    (``registerAuditor``).

    A failed check is a verdict in the report, not an exception.

    Raises:
        AuditError: ``min_accuracy`` outside [0, 1].
        StoreError: the audited circuit's artifacts are not available.
        ChainError: the chain is unreachable (nothing on chain could be judged).
    """
    if isinstance(min_accuracy, bool) or not isinstance(min_accuracy, (int, float)) or not 0.0 <= min_accuracy <= 1.0:
        raise AuditError(f"--min-accuracy must be between 0 and 1, got {min_accuracy!r}")
    t0 = time.perf_counter()
    checks: list[AuditCheck] = []
    notes = list(expected.notes)
    bundle = response.bundle
    f = expected.fields
    model = expected_model if expected_model is not None else expected.model

    def add(name: str, ok: bool | None, detail: str) -> bool:
        checks.append(AuditCheck(name, ok, detail))
        return ok is True

    # 1. The challenge answered is the one issued
    named, embedded = response.challenge_digest, response.challenge.digest
    if named != embedded:
        add("challenge", False, f"the response names challenge {named[:16]}… but embeds {embedded[:16]}…")
    elif named != expected.digest:
        add("challenge", False, f"the response answers challenge {named[:16]}…, not the one issued "
                                f"({expected.digest[:16]}…): " + (replay_note or "an old or foreign challenge"))
    else:
        add("challenge", True, f"answers challenge {expected.digest[:16]}… issued {expected.created}")
    # 2. VRF
    problem = expected.vrf_problem()
    add("vrf", problem is None, problem or f"{expected.suite} proof verifies; beta {expected.beta.hex()[:16]}…")
    # 3. Block (re-read on chain below when possible)
    if expected.block_source == "chain" and onchain is None:
        add("block", True, f"block {f.block_number} read from chain {f.chain_id} at issue (not re-read: no chain given)")
    elif expected.block_source != "chain":
        add("block", True, "block hash given by the auditor (local audit)")
    else:
        assert onchain is not None
        add("block", *_check_block(onchain, expected))
    # 3b. The nonce commitment: published before the block, opened by the nonce (on-chain challenges)
    if expected.block_source == "chain" or expected.commit is not None:
        add("commit", *_check_commit(onchain, expected))
    # 4. Indices
    claimed, sampled = [r.index for r in response.rows], list(expected.indices)
    add("indices", claimed == sampled,
        f"proves the sampled rows {sampled}" if claimed == sampled
        else f"proves rows {claimed}, but the sampled rows are {sampled}")
    # 5. Rows: the revealed rows with their labels are committed at the sampled indices
    add("rows", *_check_rows(response, expected))
    # 6. Model
    model_ok, model_detail = _check_model(bundle, model)
    add("model", model_ok, model_detail)
    # 7. SNARKs, against the audited circuit's artifacts
    from zkml.verify import verify_bundle

    art = artifacts if artifacts is not None else audited_artifacts(model, bundle, store)
    layout = Layout.from_settings(art.settings)  # raises for a private input or output: nothing to bind
    progress(f"verifying {len(bundle.proofs)} proof(s) against the audited circuit")
    verdict = verify_bundle(bundle, art)
    add("snark", verdict.valid, f"{len(bundle.proofs)} proof(s) verify under the audited circuit ({verdict.seconds:.2f}s)"
        if verdict.valid else f"invalid under the audited circuit: {verdict.reason}")
    if verdict.srs is not None and verdict.srs.kind == "dev":
        from zkml.srs import DEV_WARNING

        notes.append(DEV_WARNING)
    # 8. Inputs and outputs: only what the proofs' instances bind (never the bundle's own values)
    entries = bundle.proofs
    proven = proven_io([e.instances for e in entries], [e.output_felts for e in entries],
                       [np.asarray(r.features, dtype=np.float64) for r in response.rows], layout,
                       [r.index for r in response.rows])
    add("inputs", proven.inputs_ok, proven.inputs_detail)
    add("outputs", proven.outputs is not None, proven.outputs_detail)
    # 9. Accuracy: the proven predictions against the revealed (committed) labels
    acc = _accuracy(response, proven, min_accuracy)
    add("accuracy", acc["ok"], acc.pop("detail"))
    acc.pop("ok")
    # On chain
    onchain_info: dict[str, Any] = {}
    if onchain is not None:
        _check_onchain(onchain, response, expected, model, checks, onchain_info, progress)
    report = AuditReport(
        checks=checks,
        challenge={
            "digest": expected.digest, "created": expected.created, "model_id": hex32(f.model_id),
            "model_version": f.model_version, "dataset_root": hex32(f.dataset_root), "n": f.n_rows, "k": expected.k,
            "indices": list(expected.indices), "suite": expected.suite, "pk": expected.pk.hex(),
            "alpha": expected.alpha.hex(), "pi": expected.pi.hex(), "beta": expected.beta.hex(),
            "chain_id": f.chain_id, "block_number": f.block_number, "block_hash": hex32(f.block_hash),
            "block_source": expected.block_source, "model": model.to_json(), "posted": expected.posted,
            "commit": expected.commit.to_json() if expected.commit is not None else None,
        },
        response={
            "challenge_digest": response.challenge_digest, "created": response.created,
            "model_sha256": bundle.model_sha256, "circuit_id": bundle.circuit_id,
            "vk_sha256": bundle.vk_sha256, "proofs": len(bundle.proofs),
            "batch_size": bundle.batch_size, "timings": dict(response.timings),
        },
        accuracy=acc, onchain=onchain_info, seconds=time.perf_counter() - t0, notes=notes,
    )
    if onchain is not None:
        _record_onchain(onchain, report, response, expected, record, auditor_key, progress)
        report.seconds = time.perf_counter() - t0
    return report


def _check_block(onchain: OnChain, expected: Challenge) -> tuple[bool, str]:
    chain, f = onchain.chain, expected.fields
    if chain.chain_id != f.chain_id:
        return False, f"the challenge names chain {f.chain_id}, the RPC is chain {chain.chain_id}"
    try:
        actual = _block_hash(chain, f.block_number)
    except ZkmlError as e:
        return False, e.message
    if actual != f.block_hash:
        return False, f"block {f.block_number} has hash {hex32(actual)[:18]}…, the challenge says {hex32(f.block_hash)[:18]}…"
    active_since = activation_block(onchain.registry, f.model_id, f.model_version)
    if f.block_number <= active_since:
        return False, (f"block {f.block_number} is not after block {active_since}, where version "
                       f"{f.model_version} became active: the owner could have known it")
    return True, f"block {f.block_number} hash matches chain {f.chain_id}; after activation block {active_since}"


def _check_commit(onchain: OnChain | None, expected: Challenge) -> tuple[bool, str]:
    """The nonce commitment: opened by the challenge, published before the target block (re-read on chain)."""
    problem = expected.commit_problem()
    if problem:
        return False, problem
    c = expected.commit
    assert c is not None
    if onchain is None:
        return True, (f"the nonce opens commitment {hex32(c.commitment)[:18]}…, published in block {c.block} before "
                      f"block {c.target_block} (not re-read: no chain given)")
    try:
        published = published_commitment(onchain.chain, c.tx_hash)
    except ZkmlError as e:
        return False, e.message
    if published != (c.commitment, c.block):
        got = f"commitment {hex32(published[0])[:18]}… in block {published[1]}" if published[0] else "no commitment"
        return False, f"transaction {c.tx_hash[:12]}… carries {got}, not the challenge's commitment in block {c.block}"
    return True, (f"the nonce opens commitment {hex32(c.commitment)[:18]}…, published in tx {c.tx_hash[:12]}… at "
                  f"block {c.block}, before block {c.target_block} whose hash alpha mixes in")


def _check_rows(response: Response, expected: Challenge) -> tuple[bool, str]:
    rows = response.rows
    if len(rows) != expected.k:
        return False, f"{len(rows)} revealed rows for {expected.k} sampled rows"
    root = expected.fields.dataset_root
    bad: list[str] = []
    for index, row in zip(expected.indices, rows, strict=True):
        try:
            features = np.asarray(row.features, dtype=np.float64).reshape(-1)
            leaf = row_leaf(index, features, row.label)
            included = verify_inclusion(root, leaf, row.proof)
        except (InputError, ValueError, TypeError) as e:
            bad.append(f"row {index}: {e}")
            continue
        if not included:
            what = "its leaf differs from the revealed one" if leaf != row.leaf else "the leaf is not in the tree"
            bad.append(f"row {index}: the revealed row with label {row.label:g} is not committed at index {index} "
                       f"under the root ({what})")
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        return False, bad[0] + more
    return True, f"{expected.k} revealed rows with their labels are committed under root {hex32(root)[:18]}…"


def _check_model(bundle: Bundle, expected: ExpectedModel) -> tuple[bool, str]:
    sha, vk = bundle.model_sha256, bundle.vk_sha256
    if expected.onnx_sha256 is not None and sha != expected.onnx_sha256:
        return False, f"proofs are of model {sha[:16]}…, the audited model is {expected.onnx_sha256[:16]}…"
    if expected.vk_sha256 is not None and vk != expected.vk_sha256:
        return False, f"proofs are under vk {vk[:16]}…, the audited circuit's vk is {expected.vk_sha256[:16]}…"
    pinned = " and ".join(x for x, v in (("model", expected.onnx_sha256), ("vk", expected.vk_sha256)) if v)
    return True, f"{pinned} digest(s) match the audited model (circuit {bundle.circuit_id})"


def _accuracy(response: Response, proven: Proven, min_accuracy: float) -> dict[str, Any]:
    rows = []
    outs = proven.outputs
    for p, row in enumerate(response.rows):
        pred = int(np.argmax(outs[p])) if outs is not None and p < len(outs) and len(outs[p]) else None
        rows.append({"index": row.index, "label": row.label, "predicted": pred,
                     "correct": pred is not None and float(pred) == row.label})
    total = len(rows)
    correct = sum(r["correct"] for r in rows)
    value = correct / total if total else 0.0
    ok = total > 0 and outs is not None and value >= min_accuracy
    detail = (f"{correct}/{total} proven predictions match the committed labels ({100 * value:.1f}%) "
              f"{'>=' if ok else '<'} {100 * min_accuracy:.1f}%") if outs is not None \
        else "no proven outputs to judge (see the outputs check)"
    return {"ok": ok, "detail": detail, "correct": correct, "total": total, "accuracy": value,
            "min_accuracy": float(min_accuracy), "rows": rows}


def _check_onchain(
    onchain: OnChain, response: Response, expected: Challenge, model: ExpectedModel, checks: list[AuditCheck],
    info: dict[str, Any], progress: Progress,
) -> None:
    from zkml.evm import vrf_onchain
    from zkml.evm.chain import ContractRevert

    chain, registry, f = onchain.chain, onchain.registry, expected.fields
    version = response.bundle.ezkl_version
    info.update({"chain_id": chain.chain_id, "rpc_url": chain.rpc_url, "registry": registry.address})
    # Registry record: the challenged version is active and names the audited model and dataset
    try:
        m = registry.model(f.model_id)
        rec = m.record
        problems = []
        if m.current_version != f.model_version:
            problems.append(f"active version is {m.current_version}, the challenge audits {f.model_version}")
        if m.paused:
            problems.append("the model is paused")
        if rec.dataset_root != f.dataset_root:
            problems.append(f"registered root {hex32(rec.dataset_root)[:18]}… is not the challenged one")
        if model.onnx_sha256 not in (None, rec.onnx_sha256.hex()):
            problems.append("the registered ONNX digest is not the challenged one")
        if model.vk_sha256 not in (None, rec.vk_digest.hex()):
            problems.append("the registered vk digest is not the challenged one")
        checks.append(AuditCheck("registry", not problems, "; ".join(problems) or
                                 f"version {m.current_version} active at {registry.address} with the audited "
                                 "model, vk and dataset root"))
    except (ContractRevert, ZkmlError) as e:
        checks.append(AuditCheck("registry", False, e.message))
    # VRF and sampling on the Solidity verifier
    if expected.suite != vrf.SECP256K1.short_name:
        checks.append(AuditCheck("vrf_onchain", False, f"VRFVerifier checks secp256k1 proofs only, not {expected.suite}"))
    else:
        contract = onchain.vrf_verifier
        if contract is None and expected.posted and expected.posted.get("vrf_verifier"):
            contract = onchain.verifier_at(str(expected.posted["vrf_verifier"]))
        if contract is None:
            progress("deploying a VRFVerifier")
            contract = onchain.verifier()
        beta = vrf_onchain.verify_on_chain(contract, expected.pk, expected.alpha, expected.pi)
        gas = vrf_onchain.verify_gas(contract, expected.pk, expected.alpha, expected.pi) if beta else None
        drawn = vrf_onchain.sample_indices_on_chain(contract, beta, f.n_rows, expected.k) if beta else None
        info.update({"vrf_verifier": contract.address, "vrf_verify_gas": gas})
        posted_ok, posted_detail = _posted(chain, contract, expected)
        ok = beta == expected.beta and drawn == list(expected.indices) and posted_ok
        detail = (f"VRFVerifier at {contract.address} returns beta and sampleIndices = the challenge's "
                  f"(verify gas {gas:,}){posted_detail}") if ok else (
            "VRFVerifier refuses the proof" if beta is None else
            "on-chain beta differs" if beta != expected.beta else
            "on-chain sampleIndices differ from the challenge's" if drawn != list(expected.indices) else
            posted_detail.removeprefix("; "))
        checks.append(AuditCheck("vrf_onchain", ok, detail))
    # Dataset membership through the registry (the active version's root; the leaf is recomputed on chain)
    try:
        members = []
        for index, row in zip(expected.indices, response.rows, strict=False):
            features = np.asarray(row.features, dtype=np.float64).reshape(-1)
            members.append(bool(registry.verify_dataset_row(f.model_id, index, features, row.label, list(row.proof))))
        n_ok = sum(members)
        checks.append(AuditCheck("rows_onchain", n_ok == expected.k and len(members) == expected.k,
                                 f"registry.verifyDatasetRow (leaf recomputed on chain from the revealed row and "
                                 f"label) accepts {n_ok}/{expected.k} rows"))
    except (ContractRevert, InputError, ValueError) as e:
        checks.append(AuditCheck("rows_onchain", False, getattr(e, "message", str(e))))
    # Every proof through the registry (eth_call: no gas spent, nothing recorded yet)
    proofs = [e.to_ezkl(version) for e in response.bundle.proofs]
    try:
        accepted = sum(bool(registry.verify(f.model_id, p)) for p in proofs)
        checks.append(AuditCheck("snark_onchain", accepted == len(proofs),
                                 f"registry.verify accepts {accepted}/{len(proofs)} proof(s) for model "
                                 f"{hex32(f.model_id)[:18]}…"))
    except (ContractRevert, ZkmlError) as e:
        checks.append(AuditCheck("snark_onchain", False, f"registry refuses the proofs: {e.message}"))


def _bind_auditor(onchain: OnChain, expected: Challenge, auditor_key: VrfKey | None,
                  progress: Progress) -> str | None:
    """Make sure the sender is the registry's auditor for the challenge's VRF key; why not, if it cannot be."""
    from zkml.evm.chain import ContractRevert

    registry, sender = onchain.registry, onchain.chain.sender
    if sender is None:
        return "no signing key to record with"
    want = keccak(expected.pk)
    if registry.auditor_key(sender) == want:
        return None
    if auditor_key is None or auditor_key.pk != expected.pk:
        return (f"{sender} is not bound to the challenge's VRF key in the registry: pass the auditor's VRF key "
                "(--vrf-key or $ZKML_VRF_SK) to bind it")
    progress(f"binding {sender} to the challenge's VRF key (registerAuditor)")
    try:
        registry.register_auditor(auditor_key.sk)
    except (ContractRevert, ZkmlError) as e:
        return f"registerAuditor failed: {e.message}"
    return None if registry.auditor_key(sender) == want else "registerAuditor did not bind the key"


def _record_onchain(onchain: OnChain, report: AuditReport, response: Response, expected: Challenge, record: bool,
                    auditor_key: VrfKey | None, progress: Progress) -> None:
    """Record the outcome: a passing audit's proofs (verifyAndRecord), then the verdict (recordAudit, pass or fail).

    Appends the ``record`` check and puts the transactions in ``report.onchain``.
    A challenge of version 0 (a local audit) names no registry version, so nothing is recorded.
    """
    from zkml.errors import ChainError
    from zkml.evm.chain import ContractRevert

    registry, f, checks, info = onchain.registry, expected.fields, report.checks, report.onchain
    if not record:
        checks.append(AuditCheck("record", True, "not recorded (--no-record)"))
        return
    if f.model_version == 0:
        checks.append(AuditCheck("record", None, "nothing recorded: the challenge names no registry version "
                                                 "(a local audit)"))
        return
    unbound = _bind_auditor(onchain, expected, auditor_key, progress)
    if unbound is not None:
        checks.append(AuditCheck("record", False, f"nothing recorded: {unbound}"))
        return
    passed = report.passed
    # A passing audit: every proof through verifyAndRecord (ProofVerified events)
    txs: list[dict[str, Any]] = []
    failure = None
    if passed:
        version = response.bundle.ezkl_version
        progress(f"recording {len(response.bundle.proofs)} proof(s) with registry.verifyAndRecord")
        try:
            for entry in response.bundle.proofs:
                receipt = registry.verify_and_record(f.model_id, entry.to_ezkl(version))
                txs.append({"tx_hash": receipt.tx_hash, "block": receipt.block, "gas_used": receipt.gas_used,
                            "events": [name for name, _ in registry.events(receipt)]})
        except (ContractRevert, ChainError) as e:
            failure = f"verifyAndRecord failed: {e.message}"
        info["records"] = txs
    # The verdict: recordAudit, pass or fail (AuditRecorded)
    outcome = passed and failure is None
    digest = report.verdict_digest()
    beta = expected.beta if len(expected.beta) == 32 else keccak(expected.beta)
    progress(f"recording the audit outcome ({'pass' if outcome else 'fail'}) with registry.recordAudit")
    try:
        receipt = registry.record_audit(f.model_id, f.model_version, bytes.fromhex(expected.digest), beta,
                                        bytes.fromhex(digest), expected.k, int(report.accuracy.get("correct", 0)),
                                        outcome)
    except (ContractRevert, ChainError) as e:
        checks.append(AuditCheck("record", False, failure or f"recordAudit failed: {e.message}"))
        return
    info["audit_tx"] = receipt.tx_hash
    info["audit_record"] = {"tx_hash": receipt.tx_hash, "block": receipt.block, "gas_used": receipt.gas_used,
                            "auditor": onchain.chain.sender, "passed": outcome, "report_digest": digest,
                            "events": [name for name, _ in registry.events(receipt)]}
    verdict = f"AuditRecorded ({'pass' if outcome else 'fail'}) in tx {receipt.tx_hash[:12]}… (gas {receipt.gas_used:,})"
    if failure is not None:
        checks.append(AuditCheck("record", False, f"{failure}; {verdict}"))
    elif not passed:
        checks.append(AuditCheck("record", None, f"the audit failed; {verdict}"))
    else:
        gas = [t["gas_used"] for t in txs]
        checks.append(AuditCheck("record", True, f"{len(txs)} ProofVerified event(s) in tx "
                                                 f"{', '.join(t['tx_hash'][:12] + '…' for t in txs[:3])}"
                                                 f"{' …' if len(txs) > 3 else ''} (gas {min(gas):,}–{max(gas):,}); "
                                                 + verdict))


def _posted(chain: Chain, contract: Contract, expected: Challenge) -> tuple[bool, str]:
    """Whether the challenge's posting transaction is on chain with exactly this challenge's calldata."""
    from zkml.evm import vrf_onchain
    from zkml.evm.chain import encode_call

    posted = expected.posted
    if not posted:
        return True, ""
    tx = chain.rpc("eth_getTransactionByHash", [posted.get("tx_hash")])
    if not isinstance(tx, Mapping):
        return False, f"; the posting transaction {posted.get('tx_hash')} is not on this chain"
    data = encode_call(contract.abi, "verify", *vrf_onchain.verify_args(expected.pk, expected.alpha, expected.pi))
    sent = bytes.fromhex(str(tx.get("input", "")).removeprefix("0x"))
    to = str(tx.get("to") or "").lower()
    if sent != data or to != str(posted.get("vrf_verifier", "")).lower():
        return False, f"; transaction {posted.get('tx_hash')} does not carry this challenge"
    block = int(str(tx.get("blockNumber") or "0x0"), 16)
    return True, f"; posted in tx {str(posted['tx_hash'])[:12]}… at block {block}"

