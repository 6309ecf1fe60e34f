"""Gather what the report shows: the model's public facts, read from the chain, as one typed document.

Where each fact comes from (the page labels every section with it):

1. **The registry's getters** (``getModel``, ``getRecord``, ``versionStatus``, ``committeeOf``) and
   ``extcodehash`` of each version's verifier: the chain's word, as of the block the report was made at.
2. **The registry's events** (:meth:`zkml.evm.registry.Registry.history`): the version history
   (registered, proposed, finalized, challenged, cancelled, rolled back), every ``ProofVerified`` (with
   the gas its transaction used, from the receipt) and every ``AuditRecorded``, pauses and unpauses.
3. **The committee's getters and events** (``members``, ``threshold``, ``CommitteeActionExecuted``) of
   every committee the model was ever handed to (``CommitteeSet``).
4. **Proof bundles the user names** (untrusted input). A bundle proof counts only when
   ``keccak256(abi.encodePacked(instances))`` equals the ``instancesHash`` of one of the model's
   ``ProofVerified`` events (as :mod:`zkml.monitor` matches them): this very proof when the registry's
   ``proofKey`` of its bytes and instances equals the event's, else another proof of the same public
   instances (the instances are then bound all the same); everything else is listed as not verified on chain. For matched proofs the inputs and outputs are cut from the instances with the
   *registered* layout of the version that verified them, de-quantized with the scales of a circuit of
   this store whose ONNX and vk digests equal that version's on-chain digests (the store built it: trusted),
   and compared with onnxruntime on that ONNX (the comparison of :mod:`zkml.compare`, and its plot).
   No field of the bundle other than its instances (and the proof count per sample) is used.

Nothing private is read: no weights, no private inputs, no keys.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zkml.errors import InputError, ZkmlError
from zkml.evm.chain import Chain, EventLog
from zkml.evm.registry import Registry, code_hash
from zkml.store import Store

#: Events of the registry that end (or change) a version's life, by the version argument they carry.
_OUTCOMES = {"UpdateFinalized": "finalized", "UpdateChallenged": "challenged", "DeferredChallenged":
             "challenged (deferred verifier)", "UpdateCancelled": "cancelled"}
#: Registry events shown as emergency actions.
EMERGENCY_EVENTS = ("ModelPaused", "ModelUnpaused", "RolledBack")


def _plain(value: Any) -> Any:
    """An event argument as JSON-safe data: bytes as 0x hex, structs and lists element by element."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return str(value)


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


# The document


@dataclass(frozen=True)
class Outcome:
    """One step of a version's life, from one registry event."""

    kind: str
    """``registered``, ``proposed``, ``finalized``, ``finalized (committee hotfix)``, ``challenged``,
    ``challenged (deferred verifier)``, ``cancelled``, ``revoked (rolled back)``, ``reactivated (rollback)``."""
    block: int
    """Block of the event."""
    tx: str
    """Its transaction."""
    by: str | None = None
    """Who acted, when the event names it (challenger, canceller, emergency holder or committee)."""


@dataclass(frozen=True)
class VersionRow:
    """One version of the model: its on-chain record (getter) and its history (events)."""

    version: int
    """Version number."""
    status: str
    """``versionStatus``: pending, accepted, rejected, cancelled or revoked."""
    active: bool
    """Whether it is the active version now."""
    verifier: str
    """Verifier contract of the record."""
    verifier_code_hash: str
    """The code hash pinned in the record."""
    verifier_code_matches: bool
    """Whether ``extcodehash(verifier)`` now equals the pinned hash (False: the registry refuses it)."""
    vk_digest: str
    """sha256 of the verification key, as registered."""
    onnx_sha256: str
    """sha256 of the ONNX file, as registered."""
    weights_commitment: str
    """Weights commitment, as registered (zero: the vk binds the weights)."""
    dataset_root: str
    """Dataset Merkle root, as registered (zero: none)."""
    metadata_uri: str
    """Metadata URI, as registered (written by the owner: shown as text, never followed)."""
    next_window: int
    """Seconds the next update must wait while this version is active (the record's window)."""
    deadline: int | None
    """End of this version's own challenge window (unix seconds; None: version 1, registered at once)."""
    window: int | None
    """This proposal's challenge window: deadline minus the proposal block's timestamp."""
    test_input_commitment: str | None
    """What the proposal committed to as its test input (None: version 1)."""
    predicted_output_commitment: str | None
    """What the proposal committed to as that input's output."""
    history: tuple[Outcome, ...]
    """Registered / proposed, then finalized, challenged, cancelled, revoked ... in chain order."""

    @property
    def proposed(self) -> Outcome | None:
        """The registration or proposal."""
        return next((o for o in self.history if o.kind in ("registered", "proposed")), None)

    @property
    def finalized(self) -> Outcome | None:
        """When it took effect (registration for version 1)."""
        return next((o for o in self.history if o.kind.startswith("finalized") or o.kind == "registered"), None)


@dataclass(frozen=True)
class ProofRow:
    """One ``ProofVerified`` event: a proof the registry checked and recorded."""

    version: int
    """Version whose verifier accepted it."""
    block: int
    """Block."""
    tx: str
    """Transaction (``verifyAndRecord``)."""
    gas_used: int
    """Gas that transaction used (its receipt)."""
    instances_hash: str
    """keccak256 of the proof's public instances."""
    submitter: str
    """Who sent the transaction (not a statement about who made the proof)."""
    proof_key: str
    """The registry's replay key of the proof."""


@dataclass(frozen=True)
class AuditRow:
    """One ``AuditRecorded`` event."""

    version: int
    """Version audited."""
    auditor: str
    """Account that recorded it (it proved its VRF key)."""
    auditor_key: str
    """Hash of the auditor's registered VRF public key."""
    challenge_digest: str
    """Digest of the audit challenge."""
    beta: str
    """VRF output that drew the sample."""
    sampled: int
    """Rows sampled."""
    correct: int
    """Of those, classified right."""
    passed: bool
    """The auditor's verdict."""
    report_digest: str
    """Digest of the auditor's report."""
    block: int
    """Block."""
    tx: str
    """Transaction."""


@dataclass(frozen=True)
class EmergencyRow:
    """A pause, unpause or rollback."""

    kind: str
    """``ModelPaused``, ``ModelUnpaused`` or ``RolledBack``."""
    by: str
    """Who sent it (an emergency holder, a MonitorGuard, or the committee)."""
    via_committee: bool
    """Whether ``by`` is one of the model's committees."""
    block: int
    """Block."""
    tx: str
    """Transaction."""
    detail: str = ""
    """``v3 -> v1`` for a rollback."""


@dataclass(frozen=True)
class CommitteeActionRow:
    """One ``CommitteeActionExecuted`` event."""

    action: str
    """pause, unpause, rollback, hotfix or set-committee."""
    version: int
    """Version it acted on."""
    nonce: int
    """The model's committee nonce it used."""
    signers: tuple[str, ...]
    """Members whose approvals carried it."""
    submitter: str
    """Who sent the transaction."""
    new_committee: str | None
    """For set-committee: the committee the model was handed to."""
    block: int
    """Block."""
    tx: str
    """Transaction."""


@dataclass(frozen=True)
class CommitteeInfo:
    """A committee the model was handed to (``CommitteeSet``)."""

    address: str
    """Committee contract."""
    current: bool
    """Whether it is the model's committee now (``committeeOf``)."""
    members: tuple[str, ...]
    """Members (getter)."""
    threshold: int
    """Approvals an action needs (getter)."""
    set_block: int | None
    """Block of the ``CommitteeSet`` that named it."""
    actions: tuple[CommitteeActionRow, ...]
    """Its executed actions on this model, oldest first."""


@dataclass(frozen=True)
class EventRow:
    """One registry event of the model, as decoded (the full trail)."""

    name: str
    """Event name."""
    block: int
    """Block."""
    tx: str
    """Transaction."""
    log_index: int
    """Position in the block."""
    args: dict[str, Any] = field(compare=False)
    """Decoded arguments (bytes as 0x hex)."""


@dataclass(frozen=True)
class BundleProof:
    """One proof of a user-supplied bundle, and whether the chain verified it."""

    index: int
    """Position in the bundle."""
    instances_hash: str | None
    """keccak256 of its public instances (None: not one instance column, cannot match)."""
    onchain: ProofRow | None
    """The ``ProofVerified`` event of this proof, else one with the same instances hash (None: neither)."""
    same_proof: bool = False
    """Whether :attr:`onchain` recorded this very proof (its ``proofKey`` equals the registry's key of
    these proof bytes and instances), not only another proof of the same public instances."""


@dataclass(frozen=True)
class ComparisonSummary:
    """Float (onnxruntime) vs circuit (the proven outputs) over a bundle's proofs verified on chain."""

    version: int
    """Version that verified the proofs (its layout cut the instances)."""
    circuit_id: str
    """The store's circuit whose ONNX and vk digests equal that version's on-chain digests."""
    samples: int
    """Samples compared."""
    max_abs_error: float
    """max |circuit - float| over every output element."""
    mean_abs_error: float
    """Mean |circuit - float|."""
    argmax_agreement: float | None
    """Share of samples whose circuit argmax equals the float argmax (None: one output element)."""
    tolerance: float
    """The tolerance zkml compare derives for this circuit on these inputs."""
    within: bool
    """Whether ``max_abs_error`` is within it."""
    plot_png: bytes = field(repr=False, compare=False)
    """The comparison figure of :func:`zkml.compare.plot`."""


@dataclass(frozen=True)
class BundleReport:
    """A proof bundle named with ``--bundle``: untrusted; only its matched instances are used."""

    source: str
    """The file, as given."""
    claimed_circuit: str
    """The circuit id the bundle names (its claim, not checked here)."""
    proofs: tuple[BundleProof, ...]
    """Its proofs, each matched against the chain or not."""
    comparison: ComparisonSummary | None
    """The float-vs-circuit comparison of its matched proofs (None: see :attr:`note`)."""
    note: str = ""
    """Why there is no comparison, when there is none."""

    @property
    def verified(self) -> int:
        """How many of its proofs the chain verified."""
        return sum(1 for p in self.proofs if p.onchain is not None)


@dataclass(frozen=True)
class ReportData:
    """Everything the report page shows, each part read from the chain or labelled as not."""

    chain_id: int
    """Chain id the RPC answered."""
    rpc_url: str
    """Endpoint that answered."""
    block: int
    """Latest block when the report was made (the getters' state)."""
    block_timestamp: int
    """Its timestamp."""
    registry: str
    """Registry address."""
    model_id: str
    """0x model id."""
    owner: str
    """Model owner (``getModel``)."""
    current_version: int
    """Active version."""
    latest_version: int
    """Highest version number used."""
    paused: bool
    """Whether verification through the model reverts now."""
    pending_version: int | None
    """Version of the pending update (None: none)."""
    versions: tuple[VersionRow, ...]
    """Every version, oldest first."""
    proofs: tuple[ProofRow, ...]
    """Every ``ProofVerified`` of the model, oldest first."""
    audits: tuple[AuditRow, ...]
    """Every ``AuditRecorded`` of the model, oldest first."""
    emergency: tuple[EmergencyRow, ...]
    """Pauses, unpauses and rollbacks, oldest first."""
    committees: tuple[CommitteeInfo, ...]
    """Every committee the model was handed to, in order."""
    events: tuple[EventRow, ...]
    """The full event trail of the model in the registry."""
    bundles: tuple[BundleReport, ...]
    """The bundles named by the user (untrusted), matched against ``proofs``."""

    def to_json(self) -> dict[str, Any]:
        """The document as JSON-safe data (plots are only in the HTML: their size is given)."""
        from dataclasses import asdict

        def clean(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: (f"<{len(x)} bytes of PNG, in the HTML>" if isinstance(x, bytes) else clean(x))
                        for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [clean(x) for x in v]
            return v

        return clean(asdict(self))  # type: ignore[no-any-return]


# Reading the chain


def _versions(registry: Registry, mid: bytes, current: int, latest: int, events: Sequence[EventLog],
              hotfix_txs: set[str]) -> tuple[VersionRow, ...]:
    chain = registry.chain
    history: dict[int, list[Outcome]] = {v: [] for v in range(1, latest + 1)}
    proposals: dict[int, EventLog] = {}
    for e in events:
        a = e.args
        if e.name == "ModelRegistered":
            history.setdefault(int(a["version"]), []).append(Outcome("registered", e.block, e.tx_hash, str(a["owner"])))
        elif e.name == "UpdateProposed":
            proposals[int(a["version"])] = e
            history.setdefault(int(a["version"]), []).append(Outcome("proposed", e.block, e.tx_hash))
        elif e.name in _OUTCOMES:
            kind = _OUTCOMES[e.name]
            if e.name == "UpdateFinalized" and e.tx_hash in hotfix_txs:
                kind = "finalized (committee hotfix)"
            by = a.get("challenger") or a.get("by")
            history.setdefault(int(a["version"]), []).append(Outcome(kind, e.block, e.tx_hash,
                                                                     None if by is None else str(by)))
        elif e.name == "RolledBack":
            history.setdefault(int(a["fromVersion"]), []).append(Outcome("revoked (rolled back)", e.block, e.tx_hash,
                                                                         str(a["by"])))
            history.setdefault(int(a["toVersion"]), []).append(Outcome("reactivated (rollback)", e.block, e.tx_hash,
                                                                       str(a["by"])))
    hashes: dict[str, bytes] = {}
    rows = []
    for v in range(1, latest + 1):
        rec = registry.record(mid, v)
        if rec.verifier not in hashes:
            hashes[rec.verifier] = code_hash(chain, rec.verifier)
        p = proposals.get(v)
        deadline = window = None
        if p is not None:
            deadline = int(p.args["deadline"])
            block = chain.rpc("eth_getBlockByNumber", [hex(p.block), False])
            window = deadline - int(block["timestamp"], 16) if block else None
        rows.append(VersionRow(
            version=v, status=registry.version_status(mid, v), active=v == current, verifier=rec.verifier,
            verifier_code_hash=_hex(rec.verifier_code_hash),
            verifier_code_matches=hashes[rec.verifier] == rec.verifier_code_hash,
            vk_digest=_hex(rec.vk_digest), onnx_sha256=_hex(rec.onnx_sha256),
            weights_commitment=_hex(rec.weights_commitment), dataset_root=_hex(rec.dataset_root),
            metadata_uri=rec.metadata_uri, next_window=int(rec.challenge_window or 0), deadline=deadline,
            window=window,
            test_input_commitment=None if p is None else _hex(p.args["testInputCommitment"]),
            predicted_output_commitment=None if p is None else _hex(p.args["predictedOutputCommitment"]),
            history=tuple(history.get(v, ())),
        ))
    return tuple(rows)


def _committees(registry: Registry, store: Store, mid: bytes, events: Sequence[EventLog]) -> tuple[CommitteeInfo, ...]:
    from zkml.evm.registry.committee import ACTIONS, ZERO_ADDRESS, Committee, compile_committee

    chain = registry.chain
    current = registry.committee_of(mid)
    named: dict[str, int | None] = {}
    for e in events:
        if e.name == "CommitteeSet":
            named.setdefault(str(e.args["committee"]), e.block)
    if current is not None:
        named.setdefault(current, None)
    if not named:
        return ()
    chain.remember_abi(registry.contract.abi)  # the registry's events inside a committee's transactions
    compiled = compile_committee(cache_dir=store.solc_cache)
    out = []
    for address, set_block in named.items():
        c = Committee.at(chain, address, compiled)
        actions = []
        for e in c.history(mid):
            a = e.args
            code = int(a["action"])
            new = str(a["newCommittee"])
            actions.append(CommitteeActionRow(
                action=ACTIONS[code] if code < len(ACTIONS) else f"action {code}", version=int(a["version"]),
                nonce=int(a["nonce"]), signers=tuple(str(s) for s in a["signers"]), submitter=str(a["submitter"]),
                new_committee=None if int(new, 16) == int(ZERO_ADDRESS, 16) else new, block=e.block, tx=e.tx_hash))
        out.append(CommitteeInfo(address, address == current, tuple(c.members()), c.threshold(), set_block,
                                 tuple(actions)))
    return tuple(out)


def _proofs(chain: Chain, events: Sequence[EventLog]) -> tuple[ProofRow, ...]:
    rows = []
    for e in events:
        if e.name != "ProofVerified":
            continue
        receipt = chain.rpc("eth_getTransactionReceipt", [e.tx_hash])
        a = e.args
        rows.append(ProofRow(int(a["version"]), e.block, e.tx_hash, int(receipt["gasUsed"], 16) if receipt else 0,
                             _hex(a["instancesHash"]), str(a["submitter"]), _hex(a["proofKey"])))
    return tuple(rows)


def _audits(registry: Registry, mid: bytes) -> tuple[AuditRow, ...]:
    return tuple(AuditRow(int(a["version"]), str(a["auditor"]), _hex(a["auditorKey"]), _hex(a["challengeDigest"]),
                          _hex(a["beta"]), int(a["sampled"]), int(a["correct"]), bool(a["passed"]),
                          _hex(a["reportDigest"]), e.block, e.tx_hash)
                 for e in registry.audits(mid) for a in (e.args,))


# Bundles (untrusted)


def _instances_hash(instances: Sequence[Any]) -> tuple[list[int], str]:
    from eth_utils import keccak

    from zkml.evm.verifier import felt_to_int

    ints = [felt_to_int(x) for x in instances]
    return ints, _hex(keccak(b"".join(i.to_bytes(32, "big") for i in ints)))


def _proof_key(mid: bytes, proof: bytes, instances_hash: str) -> str:
    """``ModelRegistry.proofKey``: keccak256(abi.encode(modelId, keccak256(proof), instancesHash))."""
    from eth_utils import keccak

    return _hex(keccak(mid + keccak(proof) + bytes.fromhex(instances_hash[2:])))


def _trusted_circuit(store: Store, row: VersionRow) -> Any:
    """This store's circuit whose ONNX and vk files hash to the version's on-chain digests (None: none)."""
    from zkml.targets import model_circuits
    from zkml.util import sha256_file

    onnx, vk = row.onnx_sha256.removeprefix("0x"), row.vk_digest.removeprefix("0x")
    try:
        candidates = model_circuits(store, onnx)
    except ZkmlError:
        return None
    for c in candidates:
        try:
            if sha256_file(c.onnx) == onnx and sha256_file(c.vk) == vk:
                return c
        except OSError:
            continue
    return None


def _compare(store: Store, registry: Registry, mid: bytes, row: VersionRow,
             matched: Sequence[tuple[list[int], int]]) -> tuple[ComparisonSummary | None, str]:
    """Float vs circuit over the matched proofs (instances, claimed real samples) of version ``row``."""
    import tempfile

    import numpy as np

    from zkml.compare import REFERENCE, Comparison, plot
    from zkml.compare.run import rows_for, tolerances_for  # the comparison zkml compare makes, on bound values
    from zkml.compare.tolerance import emulate_fixed_point
    from zkml.compare.runtimes import run_onnxruntime
    from zkml.monitor import signed_felt
    from zkml.onnx_check import load_model

    layout = registry.record(mid, row.version).layout
    if not layout.input_len or not layout.output_len:
        return None, "the circuit's inputs or outputs are not public instances: no float-vs-circuit comparison"
    circuit = _trusted_circuit(store, row)
    if circuit is None:
        return None, (f"no circuit in this store has version {row.version}'s on-chain ONNX and vk digests: "
                      "no float reference (compile the model here to compare)")
    settings = circuit.settings
    in_scale = int(settings["model_input_scales"][0])
    out_scales = [int(s) for s in settings["model_output_scales"]]
    param_scale = int(settings["run_args"]["param_scale"])
    batch, shape = circuit.batch_size, tuple(circuit.sample_shape)
    per_sample = int(np.prod(shape))
    xs, ys = [], []
    for ints, real in matched:
        raw_in = [signed_felt(v) for v in layout.inputs(ints)]
        raw_out = [signed_felt(v) for v in layout.outputs(ints)]
        if len(raw_in) != batch * per_sample or len(raw_out) % batch or len(out_scales) != 1:
            return None, "the registered layout does not fit the store's circuit: no comparison"
        n = min(max(real, 1), batch)
        xs.append(np.asarray(raw_in, dtype=np.float64).reshape(batch, *shape)[:n] / 2.0 ** in_scale)
        ys.append(np.asarray(raw_out, dtype=np.float64).reshape(batch, -1)[:n] / 2.0 ** out_scales[0])
    samples, circ = np.concatenate(xs), np.concatenate(ys)
    info = load_model(circuit.onnx, check_ops=False)
    ref, outputs = run_onnxruntime(Path(circuit.onnx), info, samples)
    if ref.shape != circ.shape:
        return None, f"the proven outputs have shape {list(circ.shape)}, the model gives {list(ref.shape)}"
    emulated = emulate_fixed_point(Path(circuit.onnx), info, samples, in_scale, param_scale)
    tols = tolerances_for(outputs, ref, emulated, out_scales, None)
    rows = rows_for("circuit", circ, ref, outputs, [t.value for t in tols])
    comparison = Comparison(mode="bundle", model_path=str(circuit.onnx), model_sha256=info.sha256,
                            circuit_id=circuit.circuit_id, samples=len(samples), outputs=outputs, rows=rows,
                            checks=[], tolerances=tols, values={REFERENCE: ref, "circuit": circ})
    with tempfile.TemporaryDirectory() as d:
        png = plot(comparison, Path(d) / "compare.png").read_bytes()
    err = np.abs(circ - ref)
    agree = float(np.mean(circ.argmax(axis=1) == ref.argmax(axis=1))) if circ.shape[1] > 1 else None
    tol = max(t.value for t in tols)
    return ComparisonSummary(row.version, circuit.circuit_id, len(samples), float(err.max()), float(err.mean()),
                             agree, tol, bool(err.max() <= tol), png), ""


def _bundle(path: Path, store: Store, registry: Registry, mid: bytes, proofs: Sequence[ProofRow],
            versions: Sequence[VersionRow]) -> BundleReport:
    from zkml.bundle import Bundle

    if not path.is_file():
        raise InputError(f"bundle {path} not found")
    from zkml.evm.verifier import read_proof

    bundle = Bundle.load(path)
    by_hash: dict[str, ProofRow] = {}
    by_key = {p.proof_key: p for p in proofs}
    for p in proofs:
        by_hash.setdefault(p.instances_hash, p)
    rows, matched = [], []
    for i, entry in enumerate(bundle.proofs):
        if len(entry.instances) != 1:
            rows.append(BundleProof(i, None, None))
            continue
        try:
            ints, h = _instances_hash(entry.instances[0])
            proof_bytes, _ = read_proof(entry.to_ezkl(bundle.ezkl_version))
        except (ValueError, TypeError, ZkmlError):
            rows.append(BundleProof(i, None, None))
            continue
        exact = by_key.get(_proof_key(mid, bytes(proof_bytes), h))
        hit = exact or by_hash.get(h)
        rows.append(BundleProof(i, h, hit, exact is not None))
        if hit is not None:
            matched.append((hit.version, ints, int(entry.real_samples)))
    comparison, note = None, ""
    if not matched:
        note = "no proof of this bundle was verified on chain for this model: nothing of it is shown as fact"
    else:
        version = matched[0][0]
        same = [(ints, real) for v, ints, real in matched if v == version]
        row = next(r for r in versions if r.version == version)
        comparison, note = _compare(store, registry, mid, row, same)
        if len(same) < len(matched) and comparison is not None:
            note = f"only the proofs verified by version {version} are compared"
    return BundleReport(str(path), bundle.circuit_id, tuple(rows), comparison, note)


# One call


def collect_report(store: Store, chain: Chain, model: str, *, bundles: Sequence[str | os.PathLike[str]] = (),
                   progress: Callable[[str], None] = lambda _: None) -> ReportData:
    """Read the model's record, history, committee, proofs and audits from ``chain``, and match ``bundles``.

    ``model`` is resolved as ``zkml registry show`` does (a name this store registered, ``0xOWNER/name``,
    or a 0x id), in the registry this store recorded for the chain.

    Raises:
        ChainError: no registry recorded for this chain, or RPC failure.
        RegistryError: unknown model.
        InputError / BundleError: a bundle file is missing or not a bundle.
    """
    from zkml.evm.deploy import ensure_existing_registry, resolve_model

    registry = ensure_existing_registry(store, chain)
    mid = resolve_model(store, chain, registry, model)
    progress(f"reading model 0x{mid.hex()[:16]}… from registry {registry.address}")
    head = chain.rpc("eth_getBlockByNumber", ["latest", False])
    info = registry.model(mid)
    events = registry.history(mid)
    committees = _committees(registry, store, mid, events)
    hotfix_txs = {a.tx for c in committees for a in c.actions if a.action == "hotfix"}
    committee_addrs = {c.address for c in committees}
    versions = _versions(registry, mid, info.current_version, info.latest_version, events, hotfix_txs)
    progress("reading the receipts of verified proofs")
    proofs = _proofs(chain, events)
    emergency = tuple(
        EmergencyRow(e.name, str(e.args["by"]), str(e.args["by"]) in committee_addrs, e.block, e.tx_hash,
                     f"v{e.args['fromVersion']} -> v{e.args['toVersion']}" if e.name == "RolledBack" else "")
        for e in events if e.name in EMERGENCY_EVENTS)
    reports = []
    for b in bundles:
        progress(f"matching bundle {b} against the chain")
        reports.append(_bundle(Path(b), store, registry, mid, proofs, versions))
    return ReportData(
        chain_id=chain.chain_id, rpc_url=chain.rpc_url, block=int(head["number"], 16),
        block_timestamp=int(head["timestamp"], 16), registry=registry.address, model_id=_hex(mid), owner=info.owner,
        current_version=info.current_version, latest_version=info.latest_version, paused=info.paused,
        pending_version=None if info.pending is None else info.pending.version, versions=versions, proofs=proofs,
        audits=_audits(registry, mid), emergency=emergency, committees=committees,
        events=tuple(EventRow(e.name, e.block, e.tx_hash, e.log_index, _plain(e.args)) for e in events),
        bundles=tuple(reports),
    )
