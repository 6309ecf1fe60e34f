"""k-of-n committee actions (``verifiers/ModelCommittee.sol``): members sign offline, anyone executes.

Why our own contract and not a Safe: a Safe approves an arbitrary call, so what the members signed
would be calldata they must decode to know which record a hotfix activates. Here a member signs a
typed ``CommitteeAction`` (EIP-712, domain "zkml ModelCommittee" / "1" / chain / committee address)
naming the action, the model, the version it acts on, the registry's own EIP-712 digest of that
version's record (so a hotfix names the exact verifier + code hash, VK digest, ONNX digest and weights
commitment) and the model's committee nonce; the contract re-derives all of it from the registry at
execution, so an approval for another record, model, chain, version or an earlier execution is refused.

Flow::

    a = approve(committee, "hotfix", model_id, member_key)   # one member, no transaction
    a.write("approval1.json")
    execute(committee, [Approval.read(p) for p in paths])    # anyone, one transaction

The registry trusts the committee through ``registry.committeeOf(modelId)`` (set by the model owner
while none is set, later only by the committee itself: action ``set-committee``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

from zkml.errors import ChainError, InputError
from zkml.evm.chain import Chain, Contract, ContractRevert, TxReceipt
from zkml.evm.registry.errors import _friendly
from zkml.evm.registry.records import to_bytes32
from zkml.evm.solc import DEFAULT_EVM_VERSION, CompiledContract, compile_file
from zkml.keys import SigningKey

COMMITTEE_SOURCE: Final[str] = "ModelCommittee.sol"
COMMITTEE_CONTRACT: Final[str] = "ModelCommittee"
#: Action names, in the contract's enum order.
ACTIONS: Final[tuple[str, ...]] = ("pause", "unpause", "rollback", "hotfix", "set-committee")
#: The ``format`` field of an approval file.
APPROVAL_FORMAT: Final[str] = "zkml-committee-approval/1"
ZERO_ADDRESS: Final[str] = "0x" + "00" * 20

_ACTION_TYPE: Final[list[dict[str, str]]] = [
    {"name": "action", "type": "uint8"}, {"name": "modelId", "type": "bytes32"},
    {"name": "version", "type": "uint64"}, {"name": "recordHash", "type": "bytes32"},
    {"name": "newCommittee", "type": "address"}, {"name": "nonce", "type": "uint64"},
]


def action_code(name: str) -> int:
    """The enum value of an action name.

    Raises:
        InputError: unknown action.
    """
    try:
        return ACTIONS.index(name)
    except ValueError:
        raise InputError(f"unknown committee action {name!r}: one of {', '.join(ACTIONS)}") from None


@dataclass(frozen=True)
class CommitteeAction:
    """What members approve (the contract's ``CommitteeAction`` struct)."""

    action: str
    """One of :data:`ACTIONS`."""
    model_id: bytes
    """32-byte model id."""
    version: int
    """The model's active version (hotfix: its pending version) when executed."""
    record_hash: bytes
    """``registry.hashRecord(model_id, version, record)`` of that version's record."""
    nonce: int
    """The model's committee nonce when executed (an approval is used once)."""
    new_committee: str = ZERO_ADDRESS
    """Only for ``set-committee``: the committee the model is handed to."""

    def as_tuple(self) -> tuple[Any, ...]:
        """ABI tuple for ``execute`` / ``hashAction``."""
        return (action_code(self.action), self.model_id, self.version, self.record_hash,
                to_checksum_address(self.new_committee), self.nonce)

    def typed_data(self, chain_id: int, committee: str) -> dict[str, Any]:
        """EIP-712 typed data (what a member's wallet shows and signs)."""
        return {
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                 {"name": "chainId", "type": "uint256"},
                                 {"name": "verifyingContract", "type": "address"}],
                "CommitteeAction": _ACTION_TYPE,
            },
            "primaryType": "CommitteeAction",
            "domain": {"name": "zkml ModelCommittee", "version": "1", "chainId": int(chain_id),
                       "verifyingContract": to_checksum_address(committee)},
            "message": {"action": action_code(self.action), "modelId": self.model_id, "version": self.version,
                        "recordHash": self.record_hash, "newCommittee": to_checksum_address(self.new_committee),
                        "nonce": self.nonce},
        }

    def digest(self, chain_id: int, committee: str) -> bytes:
        """The 32-byte EIP-712 digest (equal to the contract's ``hashAction``)."""
        msg = encode_typed_data(full_message=self.typed_data(chain_id, committee))
        return keccak(b"\x19" + msg.version + msg.header + msg.body)


@dataclass(frozen=True)
class Approval:
    """One member's signature over one action on one chain's committee (an ``approval.json``)."""

    chain_id: int
    """Chain the approval is for (EIP-712 domain)."""
    committee: str
    """Committee contract (EIP-712 verifying contract)."""
    action: CommitteeAction
    """What was approved."""
    signer: str
    """The member's address (what the signature recovers to)."""
    signature: str
    """65-byte ``r ‖ s ‖ v`` as 0x hex."""

    def to_json(self) -> dict[str, Any]:
        """The file form."""
        a = self.action
        return {"format": APPROVAL_FORMAT, "chain_id": self.chain_id, "committee": self.committee,
                "action": a.action, "model_id": "0x" + a.model_id.hex(), "version": a.version,
                "record_hash": "0x" + a.record_hash.hex(), "nonce": a.nonce, "new_committee": a.new_committee,
                "signer": self.signer, "signature": self.signature}

    @classmethod
    def from_json(cls, doc: Any, source: str = "approval") -> Approval:
        """Parse and check an approval document (the signature must recover to ``signer``).

        Raises:
            InputError: not an approval, malformed fields, or a signature that is not the signer's.
        """
        if not isinstance(doc, dict) or doc.get("format") != APPROVAL_FORMAT:
            raise InputError(f"{source} is not a committee approval ({APPROVAL_FORMAT})")
        try:
            action = CommitteeAction(str(doc["action"]), to_bytes32(doc["model_id"]), int(doc["version"]),
                                     to_bytes32(doc["record_hash"]), int(doc["nonce"]),
                                     to_checksum_address(doc.get("new_committee") or ZERO_ADDRESS))
            action_code(action.action)
            approval = cls(int(doc["chain_id"]), to_checksum_address(doc["committee"]), action,
                           to_checksum_address(doc["signer"]), str(doc["signature"]))
            signer = Account._recover_hash(action.digest(approval.chain_id, approval.committee),
                                           signature=bytes.fromhex(approval.signature.removeprefix("0x")))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{source} is malformed ({e})") from None
        if signer != approval.signer:
            raise InputError(f"{source}: the signature recovers to {signer}, not the named signer {approval.signer}")
        return approval

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the approval file (no secret in it)."""
        p = Path(path)
        p.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return p

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Approval:
        """Read and check an approval file.

        Raises:
            InputError: unreadable or invalid.
        """
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read approval {path}: {e}") from None
        return cls.from_json(doc, source=f"approval {path}")


def compile_committee(*, evm_version: str = DEFAULT_EVM_VERSION,
                      cache_dir: str | os.PathLike[str] | None = None) -> CompiledContract:
    """Compile ``ModelCommittee.sol`` next to the registry source."""
    from zkml.evm.registry.client import registry_source

    return compile_file(registry_source().parent / COMMITTEE_SOURCE, COMMITTEE_CONTRACT, evm_version=evm_version,
                        cache_dir=cache_dir)


class Committee:
    """A deployed ModelCommittee, bound to a chain (and its sending account)."""

    def __init__(self, contract: Contract):
        self.contract: Final[Contract] = contract
        """The bound contract."""

    @property
    def address(self) -> str:
        """Checksummed committee address."""
        return self.contract.address

    @property
    def chain(self) -> Chain:
        """The chain it lives on."""
        return self.contract.chain

    @classmethod
    def deploy(cls, chain: Chain, registry: str, members: Sequence[str], threshold: int, *,
               compiled: CompiledContract | None = None, cache_dir: str | os.PathLike[str] | None = None,
               registry_abi: Sequence[Any] | None = None) -> Committee:
        """Deploy a committee of ``members`` needing ``threshold`` approvals for the models of ``registry``.

        Raises:
            RegistryError: ``BadCommittee`` (threshold 0 or above n, a zero or repeated member).
        """
        compiled = compiled or compile_committee(cache_dir=cache_dir)
        try:
            dep = chain.deploy(compiled, to_checksum_address(registry),
                               [to_checksum_address(m) for m in members], int(threshold))
        except ContractRevert as e:
            raise _friendly(e) from None
        if registry_abi is not None:
            chain.remember_abi(registry_abi)
        return cls(chain.at(compiled, dep.address, "committee"))

    @classmethod
    def at(cls, chain: Chain, address: str, compiled: CompiledContract | None = None) -> Committee:
        """Attach to a deployed committee.

        Raises:
            ChainError: no contract there.
        """
        chain.require_code(address, "committee")
        return cls(chain.at(compiled or compile_committee(), address, "committee"))

    def _call(self, fn: str, *args: Any) -> Any:
        try:
            return self.contract.call(fn, *args)
        except ContractRevert as e:
            raise _friendly(e) from None

    def members(self) -> list[str]:
        """Member addresses."""
        return [str(m) for m in self._call("members")]

    def threshold(self) -> int:
        """Approvals an action needs (k)."""
        return int(self._call("threshold"))

    def nonce(self, model_id: bytes) -> int:
        """Executions so far for ``model_id``."""
        return int(self._call("nonces", model_id))

    def current_action(self, action: str, model_id: bytes, new_committee: str | None = None) -> CommitteeAction:
        """The action as it must be approved now (version, record digest and nonce read from the chain).

        Raises:
            RegistryError: unknown model.
            InputError: unknown action, or ``new_committee`` given / missing against the action.
        """
        code = action_code(action)
        if (action == "set-committee") != (new_committee is not None):
            raise InputError("set-committee needs the new committee's address (and only it does)")
        version, record_hash, nonce = self._call("expected", code, model_id)
        if int(version) == 0:
            what = "no pending update to hotfix" if action == "hotfix" else "no active version"
            raise InputError(f"model 0x{model_id.hex()} has {what}")
        return CommitteeAction(action, model_id, int(version), bytes(record_hash), int(nonce),
                               to_checksum_address(new_committee or ZERO_ADDRESS))

    def onchain_digest(self, action: CommitteeAction) -> bytes:
        """``hashAction`` computed by the contract."""
        return bytes(self._call("hashAction", action.as_tuple()))

    def sign(self, action: CommitteeAction, key: SigningKey) -> Approval:
        """One member's approval of ``action`` (no transaction)."""
        digest = action.digest(self.chain.chain_id, self.address)
        signed = Account.unsafe_sign_hash(digest, key.secret)
        return Approval(self.chain.chain_id, self.address, action, key.address, "0x" + bytes(signed.signature).hex())

    def execute_raw(self, action: CommitteeAction, signatures: Sequence[str | bytes]) -> TxReceipt:
        """Send ``execute(action, signatures)`` as given (no local checks: the contract decides).

        Raises:
            RegistryError: the committee or the registry refused.
        """
        sigs = [s if isinstance(s, bytes) else bytes.fromhex(s.removeprefix("0x")) for s in signatures]
        try:
            return self.contract.transact("execute", action.as_tuple(), sigs)
        except ContractRevert as e:
            raise _friendly(e) from None

    def events(self, receipt: TxReceipt) -> list[tuple[str, dict[str, Any]]]:
        """Committee events of a transaction."""
        return self.contract.events(receipt)

    def history(self, model_id: bytes | None = None) -> list[Any]:
        """Every ``CommitteeActionExecuted`` (for one model when given), oldest first."""
        topics = ["0x" + model_id.hex()] if model_id is not None else None
        return self.contract.history("CommitteeActionExecuted", topics=topics)


def approve(committee: Committee, action: str, model_id: bytes, key: SigningKey,
            new_committee: str | None = None) -> Approval:
    """A member's approval of ``action`` on ``model_id`` as the chain stands now.

    Raises:
        InputError: the key is not a member (nothing is signed), unknown action, nothing to hotfix.
        RegistryError: unknown model.
    """
    if key.address not in committee.members():
        raise InputError(f"{key.address} is not a member of committee {committee.address}")
    return committee.sign(committee.current_action(action, model_id, new_committee), key)


def execute(committee: Committee, approvals: Sequence[Approval]) -> TxReceipt:
    """Submit approvals that agree on one action for this committee and chain.

    Raises:
        InputError: no approvals, or approvals for different actions / chains / committees.
        RegistryError: the contract refused (too few, duplicate, non-member, stale ...).
    """
    if not approvals:
        raise InputError("no approvals given")
    first = approvals[0]
    for a in approvals[1:]:
        if (a.action, a.chain_id, a.committee) != (first.action, first.chain_id, first.committee):
            raise InputError(f"approval by {a.signer} is for another action, chain or committee than {first.signer}'s")
    if first.chain_id != committee.chain.chain_id or first.committee != committee.address:
        raise InputError(f"the approvals are for committee {first.committee} on chain {first.chain_id}, "
                         f"not {committee.address} on chain {committee.chain.chain_id}")
    receipt = committee.execute_raw(first.action, [a.signature for a in approvals])
    if not any(name == "CommitteeActionExecuted" for name, _ in committee.events(receipt)):
        raise ChainError(f"execute {receipt.tx_hash} emitted no CommitteeActionExecuted event")
    return receipt
