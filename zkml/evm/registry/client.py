"""Client for ``verifiers/ModelRegistry.sol``: register models, verify through the registry, update safely.

The registry maps a 32-byte model id to a :class:`ModelRecord` (verifier
address, ONNX sha256, weights commitment, VK digest, dataset Merkle root,
metadata URI, instance layout) with a version history. See the contract's
header for the rules; in short:

* ``verify`` / ``verify_and_record`` route a proof to the *active* version's
  verifier after checking the model is not paused, the proof carries the
  layout's instance count and (for hashed params) the registered weights
  commitment.
* updates are proposed with commitments to a test input and the predicted
  output, wait ``challenge_window`` seconds, then anyone may ``finalize``;
  meanwhile anyone may ``challenge`` with a proof that the proposed model
  gives a different output on that input.
* commitments are ``keccak256(abi.encodePacked(uint256[] slice))``
  (:func:`zkml.evm.chain.keccak_words`); a single-felt weights slice is
  compared as the value itself (ezkl's Poseidon hash of the params).
* signed writes: the model owner signs the record (EIP-712, spec in
  :mod:`zkml.evm.registry.signing`) and anyone submits it (``register_signed``,
  ``propose_update_signed``); the registry refuses a signature by another
  key, over another record, or for a version number already used.
* the dataset root is part of the (signed) record; a version registered
  without one may get it later, once, from its owner (``set_dataset_root``).
  ``verify_dataset_row`` has the registry recompute a row's leaf
  (:mod:`zkml.commitments.dataset` leaf encoding v1) and check it against that root.
* ids are namespaced by the registrant: ``model_id_of(owner, name)``; a
  bare name given to a client method means the client's own namespace,
  ``0xOWNER/name`` another's, ``0x`` + 64 hex digits an id as is.
* every record pins the verifier's and the deferred verifier's code hash and
  the challenge window of the next update; there is no setter for any of it
  (``complete`` fills the hashes from the chain and the window from the
  registry's minimum before a record is sent or signed).
* audit outcomes (:mod:`zkml.audit`) go on chain with ``record_audit``, pass
  or fail, as ``AuditRecorded`` events, only from an account that proved its
  VRF key (``register_auditor``), once per (key, challenge); ``audits`` reads
  them back filtered by auditor.
* ``verify_and_record`` records a proof once; a replay reverts
  (``ProofAlreadyRecorded``).

Every revert is re-raised as :class:`RegistryError` with a one-line message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from eth_utils import to_checksum_address

from zkml.evm.registry import signing as provenance
from zkml.errors import ChainError, ConfigError, InputError
from zkml.evm.chain import Chain, Contract, ContractRevert, Deployment, EventLog, TxReceipt
from zkml.evm.registry.errors import RegistryError, _friendly
from zkml.evm.registry.records import (
    ZERO32,
    InstanceLayout,
    ModelInfo,
    ModelRecord,
    PendingUpdate,
    commit,
    model_id_of,
    parse_model_ref,
    proposal_commitments,
    row_calldata,
    to_bytes32,
    to_model_id,
)
from zkml.evm.solc import DEFAULT_EVM_VERSION, CompiledContract, compile_file
from zkml.evm.verifier import read_proof

# Records, layouts and commitments live in zkml.evm.registry.records, revert messages in
# zkml.evm.registry.errors; re-exported here
__all__ = [
    "CONTRACTS_DIR_ENV", "DEFAULT_CHALLENGE_WINDOW", "REGISTRY_CONTRACT", "REGISTRY_SOURCE", "VERSION_STATUS", "ZERO32",
    "InstanceLayout", "ModelInfo", "ModelRecord", "PendingUpdate", "Registry", "RegistryError", 
    "code_hash", "commit", "compile_registry", "model_id_of", "parse_model_ref",
    "proposal_commitments", "registry_source", "row_calldata", "to_bytes32", "to_model_id",
]

#: Default minimum challenge window of a new registry (and the window records get by default): one day.
DEFAULT_CHALLENGE_WINDOW: Final[int] = 86_400
#: Source file and contract name.
REGISTRY_SOURCE: Final[str] = "ModelRegistry.sol"
REGISTRY_CONTRACT: Final[str] = "ModelRegistry"
#: Env var pointing at the directory holding our .sol files.
CONTRACTS_DIR_ENV: Final[str] = "ZKML_CONTRACTS_DIR"

VERSION_STATUS: Final[tuple[str, ...]] = ("none", "pending", "accepted", "rejected", "cancelled", "revoked")


def _signature_bytes(signature: bytes | str) -> bytes:
    """Raw signature bytes from 0x hex or bytes (the contract checks length and form)."""
    if isinstance(signature, bytes):
        return signature
    try:
        return bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        raise InputError("the signature is not hex") from None


def code_hash(chain: Chain, address: str) -> bytes:
    """``extcodehash(address)``: keccak256 of the code there (zero when there is none)."""
    from eth_utils import keccak

    code = chain.code_at(address)
    return keccak(code) if code else ZERO32


# The client


def registry_source() -> Path:
    """Path of ``ModelRegistry.sol``: ``$ZKML_CONTRACTS_DIR``, else the checkout's ``verifiers/``.

    Raises:
        ConfigError: not found.
    """
    env = os.environ.get(CONTRACTS_DIR_ENV)
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[2] / "verifiers", Path.cwd() / "verifiers"]
    for d in candidates:
        if (d / REGISTRY_SOURCE).is_file():
            return d / REGISTRY_SOURCE
    raise ConfigError(f"{REGISTRY_SOURCE} not found (set {CONTRACTS_DIR_ENV} to the verifiers/ directory)")


def compile_registry(*, evm_version: str = DEFAULT_EVM_VERSION, optimizer_runs: int = 200,
                     cache_dir: str | os.PathLike[str] | None = None) -> CompiledContract:
    """Compile ``ModelRegistry.sol`` (OpenZeppelin from node_modules).

    Raises:
        ToolError / SolcError / ConfigError: as :func:`zkml.evm.solc.compile_file`.
    """
    return compile_file(registry_source(), REGISTRY_CONTRACT, evm_version=evm_version,
                        optimizer_runs=optimizer_runs, cache_dir=cache_dir)


class Registry:
    """A deployed ModelRegistry, bound to a chain and its signing account."""

    def __init__(self, contract: Contract, deployment: Deployment | None = None):
        self.contract: Final[Contract] = contract
        """The bound contract."""
        self.deployment: Final[Deployment | None] = deployment
        """The creation, when this client deployed it."""

    def __repr__(self) -> str:
        return f"Registry({self.address} on chain {self.contract.chain.chain_id})"

    @property
    def address(self) -> str:
        """Checksummed registry address."""
        return self.contract.address

    @property
    def chain(self) -> Chain:
        """The chain it lives on."""
        return self.contract.chain

    @classmethod
    def deploy(
        cls,
        chain: Chain,
        *,
        challenge_window: int = DEFAULT_CHALLENGE_WINDOW,
        admin: str | None = None,
        emergency: str | None = None,
        vrf_verifier: str | None = None,
        compiled: CompiledContract | None = None,
        evm_version: str = DEFAULT_EVM_VERSION,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> Registry:
        """Deploy a new registry.

        ``challenge_window`` is its minimum window (fixed forever; every
        record carries its own window, at least this). ``admin`` (default: the
        sender) may only grant and revoke roles; ``emergency`` (default: nobody)
        may pause, unpause and roll back; the two must differ. ``vrf_verifier``
        (default: a VRFVerifier deployed here) checks auditors' key proofs.

        Raises:
            ChainError / ContractRevert: the deployment failed (e.g. admin == emergency).
            ToolError / SolcError: compiling failed.
        """
        compiled = compiled or compile_registry(evm_version=evm_version, cache_dir=cache_dir)
        owner = admin or chain.sender
        if owner is None:
            raise ChainError("deploying a registry needs a signing key")
        if vrf_verifier is None:
            from zkml.evm import vrf_onchain

            vrf_verifier = chain.deploy(vrf_onchain.compile_verifier(evm_version=evm_version,
                                                                     cache_dir=cache_dir)).address
        zero = "0x" + "00" * 20
        try:
            dep = chain.deploy(compiled, to_checksum_address(owner),
                               to_checksum_address(emergency) if emergency else zero, int(challenge_window),
                               to_checksum_address(vrf_verifier))
        except ContractRevert as e:
            raise _friendly(e) from None
        return cls(chain.at(compiled, dep.address, REGISTRY_CONTRACT), dep)

    @classmethod
    def at(cls, chain: Chain, address: str, compiled: CompiledContract | None = None) -> Registry:
        """Attach to a deployed registry.

        Raises:
            ChainError: no contract at ``address`` ("registry not deployed").
        """
        chain.require_code(address, "registry")
        compiled = compiled or compile_registry()
        return cls(chain.at(compiled, address, "registry"))

    # Low-level

    def _call(self, fn: str, *args: Any) -> Any:
        try:
            return self.contract.call(fn, *args)
        except ContractRevert as e:
            raise _friendly(e) from None

    def _send(self, fn: str, *args: Any) -> TxReceipt:
        try:
            return self.contract.transact(fn, *args)
        except ContractRevert as e:
            raise _friendly(e) from None

    def events(self, receipt: TxReceipt) -> list[tuple[str, dict[str, Any]]]:
        """Registry events emitted by a transaction."""
        return self.contract.events(receipt)

    def model_id(self, model: str | bytes, owner: str | None = None) -> bytes:
        """The id of ``model``: an id as is, ``0xOWNER/name``, or a name in ``owner``'s namespace
        (default: this client's sender) -- see :func:`parse_model_ref`.

        Raises:
            ConfigError: a bare name and no owner / sender.
        """
        if owner is not None and isinstance(model, str) and not (model.startswith("0x") and len(model) == 66):
            return model_id_of(owner, model)
        return parse_model_ref(model, self.chain.sender)

    def min_challenge_window(self) -> int:
        """The shortest window a record may carry on this registry (fixed at deployment)."""
        return int(self._call("minChallengeWindow"))

    def complete(self, record: ModelRecord) -> ModelRecord:
        """``record`` with its code hashes read from the chain and its window defaulted to the minimum.

        Hashes already set are kept (the registry refuses them if the code differs).
        """
        from dataclasses import replace

        changes: dict[str, Any] = {}
        if record.verifier_code_hash == ZERO32:
            changes["verifier_code_hash"] = code_hash(self.chain, record.verifier)
        if record.deferred_verifier and record.deferred_code_hash == ZERO32:
            changes["deferred_code_hash"] = code_hash(self.chain, record.deferred_verifier)
        if record.challenge_window is None:
            changes["challenge_window"] = self.min_challenge_window()
        return replace(record, **changes) if changes else record

    # Writes

    def register(self, name: str | bytes, record: ModelRecord) -> TxReceipt:
        """Register ``name`` in the sender's namespace; the sender owns it; version 1 is active at once.

        The id is ``model_id_of(sender, name)`` (:meth:`model_id`).

        Raises:
            RegistryError: already registered, no verifier code, code hash or window refused, bad layout, ...
        """
        return self._send("register", to_model_id(name), self.complete(record).as_tuple())

    def propose_update(self, model_id: str | bytes, record: ModelRecord, test_input_commitment: bytes,
                       predicted_output_commitment: bytes) -> tuple[int, int, TxReceipt]:
        """Propose a new version; returns ``(version, deadline, receipt)``.

        Raises:
            RegistryError: not the owner, update already pending, bad record, ...
        """
        receipt = self._send("proposeUpdate", self.model_id(model_id), self.complete(record).as_tuple(),
                             to_bytes32(test_input_commitment), to_bytes32(predicted_output_commitment))
        for name, args in self.events(receipt):
            if name == "UpdateProposed":
                return int(args["version"]), int(args["deadline"]), receipt
        raise ChainError(f"proposeUpdate {receipt.tx_hash} emitted no UpdateProposed event")

    # Signed writes (EIP-712; the owner signs, anyone submits)

    def sign_registration(self, name: str | bytes, record: ModelRecord,
                          key: provenance.SigningKey | bytes | str) -> str:
        """The owner's signature of ``record`` as version 1 of ``name`` in the key's namespace on this
        registry and chain (0x hex).

        Raises:
            ConfigError: malformed key.
        """
        signer = key if isinstance(key, provenance.SigningKey) else provenance.SigningKey.from_secret(key)
        mid = model_id_of(signer.address, name)
        return provenance.sign_record(self.complete(record).signable(mid, 1), signer, self.chain.chain_id,
                                      self.address)

    def register_signed(
        self,
        name: str | bytes,
        record: ModelRecord,
        key: provenance.SigningKey | None = None,
        *,
        signature: bytes | str | None = None,
        owner: str | None = None,
    ) -> TxReceipt:
        """Register ``name`` in the owner's namespace under the owner's signature; the signer, not the
        sender, becomes the owner.

        Pass the owner's ``key`` to sign here, or a ``signature`` made
        elsewhere together with the ``owner`` address (a relayer needs no key
        of the owner's).

        Raises:
            ConfigError: neither a key nor signature + owner given.
            RegistryError: the signature is not the owner's over exactly this
                record (``SignerNotOwner``), or the record is refused as in :meth:`register`.
        """
        record = self.complete(record)
        if key is not None:
            signature = self.sign_registration(name, record, key)
            owner = key.address
        if signature is None or owner is None:
            raise ConfigError("register_signed needs the owner's key, or a signature and the owner's address")
        return self._send("registerSigned", to_model_id(name), record.as_tuple(), to_checksum_address(owner),
                          _signature_bytes(signature))

    def sign_update(self, model_id: str | bytes, version: int, record: ModelRecord, test_input_commitment: bytes,
                    predicted_output_commitment: bytes, key: provenance.SigningKey | bytes | str) -> str:
        """The owner's signature of an update proposal (``record`` as ``version``, with its test commitments).

        Raises:
            ConfigError: malformed key.
        """
        update = provenance.ModelUpdate(self.complete(record).signable(self.model_id(model_id), version),
                                        to_bytes32(test_input_commitment),
                                        to_bytes32(predicted_output_commitment))
        return provenance.sign_record(update, key, self.chain.chain_id, self.address)

    def propose_update_signed(
        self,
        model_id: str | bytes,
        record: ModelRecord,
        test_input_commitment: bytes,
        predicted_output_commitment: bytes,
        key: provenance.SigningKey | None = None,
        *,
        version: int | None = None,
        signature: bytes | str | None = None,
    ) -> tuple[int, int, TxReceipt]:
        """Propose an update under the current owner's signature; returns ``(version, deadline, receipt)``.

        With ``key``, signs for the next version (or ``version``); otherwise
        submits ``signature`` made for ``version``.

        Raises:
            ConfigError: neither a key nor signature + version given.
            RegistryError: signature not the current owner's over exactly this
                update (``SignerNotOwner``), ``version`` is not the next one
                (``WrongVersion``: replayed or stale), or refused as in :meth:`propose_update`.
        """
        if key is not None:
            version = version if version is not None else self.latest_version(model_id) + 1
            signature = self.sign_update(model_id, version, record, test_input_commitment,
                                         predicted_output_commitment, key)
        if signature is None or version is None:
            raise ConfigError("propose_update_signed needs the owner's key, or a signature and its version")
        record = self.complete(record)
        receipt = self._send("proposeUpdateSigned", self.model_id(model_id), int(version), record.as_tuple(),
                             to_bytes32(test_input_commitment), to_bytes32(predicted_output_commitment),
                             _signature_bytes(signature))
        for name, args in self.events(receipt):
            if name == "UpdateProposed":
                return int(args["version"]), int(args["deadline"]), receipt
        raise ChainError(f"proposeUpdateSigned {receipt.tx_hash} emitted no UpdateProposed event")

    def set_dataset_root(self, model_id: str | bytes, root: bytes | str) -> TxReceipt:
        """Record the dataset Merkle root of the active version, which must have none yet (owner only).

        Raises:
            RegistryError: not the owner, zero root, or a root is already set.
        """
        return self._send("setDatasetRoot", self.model_id(model_id), to_bytes32(root, "dataset root"))

    def finalize(self, model_id: str | bytes) -> TxReceipt:
        """Activate the pending update after its window (anyone may call).

        Raises:
            RegistryError: no pending update, or the window is still open.
        """
        return self._send("finalize", self.model_id(model_id))

    def challenge(self, model_id: str | bytes, proof_json: str | os.PathLike[str] | Mapping[str, Any]) -> TxReceipt:
        """Submit a fraud proof against the pending update; success rejects it.

        Raises:
            RegistryError: window closed, input not the committed test input,
                output matches the prediction (unsuccessful challenge), invalid proof, ...
        """
        proof, instances = read_proof(proof_json)
        return self._send("challenge", self.model_id(model_id), proof, instances)

    def challenge_deferred(self, model_id: str | bytes,
                           proof_json: str | os.PathLike[str] | Mapping[str, Any]) -> TxReceipt:
        """Fraud proof against the pending update's deferred verifier: any proof (valid or garbage) on
        which the proposed verifier and deferred verifier disagree. Success rejects the update.

        Raises:
            RegistryError: window closed, no deferred verifier proposed, or they agree (``DeferredAgrees``).
        """
        proof, instances = read_proof(proof_json)
        return self._send("challengeDeferred", self.model_id(model_id), proof, instances)

    def cancel_update(self, model_id: str | bytes) -> TxReceipt:
        """Withdraw the pending update (owner or emergency role)."""
        return self._send("cancelUpdate", self.model_id(model_id))

    def transfer_ownership(self, model_id: str | bytes, new_owner: str) -> TxReceipt:
        """Hand a model to ``new_owner`` (owner only)."""
        return self._send("transferModelOwnership", self.model_id(model_id), to_checksum_address(new_owner))

    def register_auditor(self, vrf_secret: bytes) -> TxReceipt:
        """Bind the sender to the VRF key ``vrf_secret`` (secp256k1) on this registry: a VRF proof of
        ``auditorKeyAlpha(sender)``, checked on chain. Needed once before :meth:`record_audit`.

        Raises:
            ConfigError: no signing key.
            RegistryError: the proof is refused, or the registry has no VRF verifier.
        """
        from zkml import vrf
        from zkml.evm import vrf_onchain

        sender = self.chain.sender
        if sender is None:
            raise ConfigError("registering an auditor key needs a signing key")
        alpha = bytes(self._call("auditorKeyAlpha", to_checksum_address(sender)))
        pk = vrf.public_key(vrf.SECP256K1, vrf_secret)
        pi = vrf.prove(vrf.SECP256K1, vrf_secret, alpha)
        return self._send("registerAuditor", *self._auditor_args(vrf_onchain.verify_args(pk, alpha, pi)))

    @staticmethod
    def _auditor_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
        pk, _alpha, pi, u, s_h, c_gamma = args
        return pk, pi, u, s_h, c_gamma

    def auditor_key(self, account: str) -> bytes:
        """keccak256 of the VRF public key ``account`` proved it holds (zero: not an auditor)."""
        return bytes(self._call("auditorKey", to_checksum_address(account)))

    def record_audit(
        self,
        model_id: str | bytes,
        version: int,
        challenge_digest: bytes | str,
        beta: bytes | str,
        report_digest: bytes | str,
        sampled: int,
        correct: int,
        passed: bool,
    ) -> TxReceipt:
        """Record an audit outcome (pass or fail) for ``version`` of ``model_id``; the sender is the auditor.

        Emits ``AuditRecorded`` naming the sender and the hash of its registered VRF key; accepted only
        from a registered auditor (:meth:`register_auditor`), once per (key, challenge digest).

        Raises:
            ConfigError: a digest is not 32 bytes.
            RegistryError: unknown model or version, ``correct > sampled``, not an auditor, already recorded.
        """
        return self._send("recordAudit", self.model_id(model_id), int(version),
                          to_bytes32(challenge_digest, "challenge digest"), to_bytes32(beta, "beta"),
                          to_bytes32(report_digest, "report digest"), int(sampled), int(correct), bool(passed))

    def audits(self, model_id: str | bytes, auditor: str | None = None, from_block: int = 0) -> list[EventLog]:
        """The ``AuditRecorded`` events of ``model_id`` (oldest first), only ``auditor``'s when given."""
        topics: list[Any] = ["0x" + self.model_id(model_id).hex(), None]
        if auditor is not None:
            topics.append("0x" + bytes.fromhex(to_checksum_address(auditor)[2:]).rjust(32, b"\0").hex())
        return self.contract.history("AuditRecorded", topics=topics, from_block=from_block)

    def pause(self, model_id: str | bytes) -> TxReceipt:
        """Emergency: make verification through this model revert."""
        return self._send("pause", self.model_id(model_id))

    def unpause(self, model_id: str | bytes) -> TxReceipt:
        """Emergency: lift a pause."""
        return self._send("unpause", self.model_id(model_id))

    def rollback(self, model_id: str | bytes) -> TxReceipt:
        """Emergency: revoke the active version, reactivate the previous accepted one."""
        return self._send("rollback", self.model_id(model_id))

    def grant_emergency_role(self, account: str) -> TxReceipt:
        """Admin: give ``account`` the emergency role (refused for an admin: ``RolesNotSeparate``)."""
        role = self._call("EMERGENCY_ROLE")
        return self._send("grantRole", role, to_checksum_address(account))

    def has_role(self, role: str, account: str) -> bool:
        """Whether ``account`` holds ``role`` (``admin`` or ``emergency``)."""
        rid = ZERO32 if role == "admin" else self._call("EMERGENCY_ROLE")
        return bool(self._call("hasRole", rid, to_checksum_address(account)))

    # Verification

    def verify(self, model_id: str | bytes, proof_json: str | os.PathLike[str] | Mapping[str, Any]) -> bool:
        """Check a proof against the model's active version (``eth_call``, no gas spent).

        Returns False when the verifier rejects the proof.

        Raises:
            RegistryError: unknown or paused model, or the proof does not fit
                the model (instance count, weights commitment).
            ProofError: malformed proof JSON.
        """
        proof, instances = read_proof(proof_json)
        return bool(self._call("verify", self.model_id(model_id), proof, instances))

    def verify_gas(self, model_id: str | bytes, proof_json: str | os.PathLike[str] | Mapping[str, Any]) -> int:
        """Gas a ``verifyAndRecord`` transaction would use.

        Raises:
            RegistryError: it would revert (including an invalid proof).
        """
        proof, instances = read_proof(proof_json)
        try:
            return self.contract.estimate_gas("verifyAndRecord", self.model_id(model_id), proof, instances)
        except ContractRevert as e:
            raise _friendly(e) from None

    def verify_and_record(self, model_id: str | bytes,
                          proof_json: str | os.PathLike[str] | Mapping[str, Any]) -> TxReceipt:
        """Verify in a transaction that emits ``ProofVerified`` (the on-chain record).

        Raises:
            RegistryError: as :meth:`verify`, plus ``InvalidProof`` for a rejected proof.
        """
        proof, instances = read_proof(proof_json)
        return self._send("verifyAndRecord", self.model_id(model_id), proof, instances)

    def recorded_by(self, model_id: str | bytes,
                    proof_json: str | os.PathLike[str] | Mapping[str, Any]) -> str | None:
        """Who first recorded this proof with ``verifyAndRecord`` (None: nobody yet)."""
        proof, instances = read_proof(proof_json)
        key = self._call("proofKey", self.model_id(model_id), proof, instances)
        who = str(self._call("recordedBy", key))
        return None if int(who, 16) == 0 else who

    def verify_batch(self, model_id: str | bytes,
                     proofs: Sequence[str | os.PathLike[str] | Mapping[str, Any]]) -> tuple[bool, int | None]:
        """Check several proofs of the active version with one pairing (``eth_call``); gas when valid.

        An invalid proof is a verdict (False, None), like :meth:`verify`.

        Raises:
            RegistryError: unknown or paused model, no deferred verifier, or a proof that does not fit
                the model (instance count, weights commitment).
            ProofError: malformed proof JSON.
        """
        parsed = [read_proof(p) for p in proofs]
        args = (self.model_id(model_id), [p for p, _ in parsed], [list(i) for _, i in parsed])
        try:
            self.contract.call("verifyBatch", *args)
        except ContractRevert as e:
            if e.error_name in ("BatchProofInvalid", "BatchPairingFailed") or e.error_name is None:
                return False, None
            raise _friendly(e) from None
        return True, self.contract.estimate_gas("verifyBatch", *args)

    def verify_dataset_member(self, model_id: str | bytes, proof: Sequence[bytes], leaf: bytes) -> bool:
        """Whether ``leaf`` is in the active version's dataset Merkle tree.

        Raises:
            RegistryError: unknown model or no dataset root.
        """
        return bool(self._call("verifyDatasetMember", self.model_id(model_id), [to_bytes32(p) for p in proof],
                               to_bytes32(leaf)))

    def verify_dataset_row(self, model_id: str | bytes, index: int, features: Any, label: float | None,
                           proof: Sequence[bytes]) -> bool:
        """Whether row ``index`` with these values (and label) is in the active version's dataset.

        The registry recomputes the leaf from the row itself (leaf encoding v1).

        Raises:
            RegistryError: unknown model or no dataset root.
            InputError: NaN or infinite values.
        """
        feature_bytes, label_bytes = row_calldata(features, label)
        return bool(self._call("verifyDatasetRow", self.model_id(model_id), [to_bytes32(p) for p in proof],
                               int(index), feature_bytes, label_bytes))

    # Committee (verifiers/ModelCommittee.sol; zkml.evm.registry.committee)

    def committee_of(self, model_id: str | bytes) -> str | None:
        """The committee contract that may pause, unpause, roll back and hotfix the model (None: none)."""
        who = str(self._call("committeeOf", self.model_id(model_id)))
        return None if int(who, 16) == 0 else who

    def set_committee(self, model_id: str | bytes, committee: str) -> TxReceipt:
        """Name the model's committee (the owner while none is set; afterwards only the committee).

        Raises:
            RegistryError: ``NotCommittee``, unknown model.
        """
        return self._send("setCommittee", self.model_id(model_id), to_checksum_address(committee))

    # Validation gate (verifiers/ValidationGate.sol; zkml.evm.registry.gate)

    def gate_of(self, model_id: str | bytes) -> str | None:
        """The validation gate whose approval ``finalize`` needs (None: none)."""
        who = str(self._call("gateOf", self.model_id(model_id)))
        return None if int(who, 16) == 0 else who

    def set_gate(self, model_id: str | bytes, gate: str) -> TxReceipt:
        """Name the model's validation gate (owner only, once; it never changes).

        Raises:
            RegistryError: not the owner, or a gate is already set (``GateRefused``).
        """
        return self._send("setGate", self.model_id(model_id), to_checksum_address(gate))

    # Reads

    def latest_version(self, model_id: str | bytes) -> int:
        """Highest version number used by ``model_id`` (0: not registered)."""
        try:
            return self.model(model_id).latest_version
        except RegistryError as e:
            if e.error_name == "UnknownModel":
                return 0
            raise

    def domain_separator(self) -> bytes:
        """The registry's EIP-712 domain separator, as the contract computes it."""
        return bytes(self._call("DOMAIN_SEPARATOR"))

    def onchain_record_digest(self, model_id: str | bytes, version: int, record: ModelRecord) -> bytes:
        """The EIP-712 digest of ``record`` as ``version`` of ``model_id``, computed by the contract."""
        return bytes(self._call("hashRecord", self.model_id(model_id), int(version), self.complete(record).as_tuple()))

    def onchain_update_digest(self, model_id: str | bytes, version: int, record: ModelRecord,
                              test_input_commitment: bytes, predicted_output_commitment: bytes) -> bytes:
        """The EIP-712 digest of an update proposal, computed by the contract."""
        return bytes(self._call("hashUpdate", self.model_id(model_id), int(version), self.complete(record).as_tuple(),
                                to_bytes32(test_input_commitment), to_bytes32(predicted_output_commitment)))

    def model(self, model_id: str | bytes) -> ModelInfo:
        """Current state of a model.

        Raises:
            RegistryError: unknown model.
        """
        mid = self.model_id(model_id)
        owner, current, latest, paused, pending = self._call("getModel", mid)
        p = None
        if int(pending["version"]) != 0:
            p = PendingUpdate(int(pending["version"]), int(pending["deadline"]),
                              bytes(pending["testInputCommitment"]), bytes(pending["predictedOutputCommitment"]))
        return ModelInfo(mid, str(owner), int(current), int(latest), bool(paused), p,
                         self.record(mid, int(current)))

    def record(self, model_id: str | bytes, version: int) -> ModelRecord:
        """A stored version.

        Raises:
            RegistryError: unknown version.
        """
        return ModelRecord.from_abi(self._call("getRecord", self.model_id(model_id), int(version)))

    def version_status(self, model_id: str | bytes, version: int) -> str:
        """``none``, ``pending``, ``accepted``, ``rejected``, ``cancelled`` or ``revoked``."""
        return VERSION_STATUS[int(self._call("versionStatus", self.model_id(model_id), int(version)))]

    def history(self, model_id: str | bytes, from_block: int = 0) -> list[EventLog]:
        """The model's audit trail, read from the registry's events (oldest first)."""
        mid = self.model_id(model_id)
        return self.contract.history(topics=["0x" + mid.hex()], from_block=from_block)
