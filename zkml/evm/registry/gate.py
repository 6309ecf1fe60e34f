"""The validation gate and SLA bond (``verifiers/ValidationGate.sol``) from Python.

A model owner configures the gate (:class:`GateConfig`: the accuracy an update
must show on an on-chain audit, an SLA accuracy, the share of the bond a breach
pays, the sample size, the dataset's row count, the input scale, how long an
audit may stay open, the bond's notice period), names it in the registry
(:meth:`zkml.evm.registry.Registry.set_gate`, once) and deposits a bond.
Auditors then open and submit audits of the *pending* version
(:mod:`zkml.audit.gate` builds the calls from a challenge and a response);
the registry's ``finalize`` asks the gate's :meth:`ValidationGate.approves`.

Every revert is re-raised as :class:`zkml.evm.registry.RegistryError` with a one-line message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Final

from eth_utils import to_checksum_address

from zkml.errors import InputError
from zkml.evm.chain import Chain, Contract, ContractRevert, TxReceipt
from zkml.evm.registry.errors import _friendly
from zkml.evm.registry.records import to_bytes32
from zkml.evm.solc import DEFAULT_EVM_VERSION, CompiledContract, compile_file

GATE_SOURCE: Final[str] = "ValidationGate.sol"
GATE_CONTRACT: Final[str] = "ValidationGate"
BPS: Final[int] = 10_000
WEI_PER_ETH: Final[int] = 10**18


def to_bps(fraction: float, what: str) -> int:
    """A fraction in [0, 1] as basis points (rounded up, so a threshold is never lowered by rounding).

    Raises:
        InputError: outside [0, 1].
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction <= 1.0:
        raise InputError(f"{what} must be between 0 and 1, got {fraction!r}")
    import math

    return min(BPS, math.ceil(round(fraction * BPS, 6)))


@dataclass(frozen=True)
class GateConfig:
    """A model's gate and SLA (the contract's ``Config``)."""

    require_bps: int
    """Accuracy (basis points) an update must show on an audit's sample; 0: no gate."""
    sla_bps: int
    """Accuracy below which an audit is an SLA breach; 0: no SLA."""
    slash_bps: int
    """Share of the bond the first breach of a version pays its auditor."""
    k: int
    """Rows an audit samples."""
    n_rows: int
    """Rows under the dataset root (the sampling population)."""
    input_scale: int
    """Fixed-point bits of the audited circuits' input quantization."""
    audit_ttl: int
    """Seconds an opened audit may stay open."""
    notice_period: int
    """Seconds between a withdrawal request and the withdrawal."""

    def as_tuple(self) -> tuple[int, ...]:
        return (self.require_bps, self.sla_bps, self.slash_bps, self.k, self.n_rows, self.input_scale,
                self.audit_ttl, self.notice_period)

    @classmethod
    def from_abi(cls, t: Any) -> GateConfig:
        vals = list(t.values()) if isinstance(t, dict) else list(t)
        return cls(*(int(v) for v in vals))

    def to_json(self) -> dict[str, Any]:
        return {"require_accuracy": self.require_bps / BPS, "sla_accuracy": self.sla_bps / BPS,
                "slash_share": self.slash_bps / BPS, "k": self.k, "n_rows": self.n_rows,
                "input_scale": self.input_scale, "audit_ttl": self.audit_ttl, "notice_period": self.notice_period}


@dataclass(frozen=True)
class Tally:
    """Audits of one version (or, for the bond, of the whole model)."""

    passes: int
    """Passing audits."""
    open: int
    """Opened and not submitted (they stop counting at ``last_expiry``)."""
    last_expiry: int
    """Latest expiry of an opened audit (unix time)."""
    failed: bool
    """A failing audit: the version never finalizes."""
    slashed: bool
    """The version's breach was paid out."""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def compile_gate(*, evm_version: str = DEFAULT_EVM_VERSION,
                 cache_dir: str | os.PathLike[str] | None = None) -> CompiledContract:
    """Compile ``ValidationGate.sol`` next to the registry source."""
    from zkml.evm.registry.client import registry_source

    return compile_file(registry_source().parent / GATE_SOURCE, GATE_CONTRACT, evm_version=evm_version,
                        cache_dir=cache_dir)


class ValidationGate:
    """A deployed ValidationGate, bound to a chain and its sending account."""

    def __init__(self, contract: Contract):
        self.contract: Final[Contract] = contract
        """The bound contract."""

    @property
    def address(self) -> str:
        return self.contract.address

    @property
    def chain(self) -> Chain:
        return self.contract.chain

    @classmethod
    def deploy(cls, chain: Chain, registry: str, *, compiled: CompiledContract | None = None,
               cache_dir: str | os.PathLike[str] | None = None) -> ValidationGate:
        """Deploy a gate for the models of ``registry``."""
        compiled = compiled or compile_gate(cache_dir=cache_dir)
        dep = chain.deploy(compiled, to_checksum_address(registry))
        return cls(chain.at(compiled, dep.address, "gate"))

    @classmethod
    def at(cls, chain: Chain, address: str, compiled: CompiledContract | None = None,
           cache_dir: str | os.PathLike[str] | None = None) -> ValidationGate:
        """Attach to a deployed gate. Raises ChainError when there is no code."""
        chain.require_code(address, "validation gate")
        return cls(chain.at(compiled or compile_gate(cache_dir=cache_dir), address, "gate"))

    def with_chain(self, chain: Chain) -> ValidationGate:
        """The same gate, sending from ``chain``'s account."""
        return ValidationGate(chain.at(self.contract.abi, self.address, "gate"))

    def _call(self, fn: str, *args: Any) -> Any:
        try:
            return self.contract.call(fn, *args)
        except ContractRevert as e:
            raise _friendly(e) from None

    def _send(self, fn: str, *args: Any, value: int = 0) -> TxReceipt:
        try:
            return self.contract.transact(fn, *args, value=value)
        except ContractRevert as e:
            raise _friendly(e) from None

    def events(self, receipt: TxReceipt) -> list[tuple[str, dict[str, Any]]]:
        return self.contract.events(receipt)

    # Owner

    def configure(self, model_id: bytes, config: GateConfig) -> TxReceipt:
        """Set the gate and SLA (owner, no update pending; thresholds, k and notice only go up)."""
        return self._send("configure", to_bytes32(model_id), config.as_tuple())

    def deposit_bond(self, model_id: bytes, wei: int) -> TxReceipt:
        """Add ``wei`` to the model's bond (owner)."""
        return self._send("depositBond", to_bytes32(model_id), value=int(wei))

    def request_withdrawal(self, model_id: bytes) -> TxReceipt:
        """Start the notice period (owner)."""
        return self._send("requestWithdrawal", to_bytes32(model_id))

    def withdraw_bond(self, model_id: bytes) -> TxReceipt:
        """Withdraw the whole bond after the notice period, no update pending, no audit open (owner)."""
        return self._send("withdrawBond", to_bytes32(model_id))

    # Auditors

    def open_audit(self, model_id: bytes, commitment: bytes) -> TxReceipt:
        """Open an audit of the pending version with a nonce commitment (registered auditor)."""
        return self._send("openAudit", to_bytes32(model_id), to_bytes32(commitment))

    def submit_audit(self, model_id: bytes, version: int, nonce: bytes, target_block: int,
                     vrf_proof: tuple[Any, ...], rows: list[tuple[Any, ...]]) -> TxReceipt:
        """Reveal and judge an opened audit (its opener). ``vrf_proof`` = (pk, pi, u, sH, cGamma)."""
        return self._send("submitAudit", to_bytes32(model_id), int(version), to_bytes32(nonce), int(target_block),
                          vrf_proof, rows)

    # Reads

    def config(self, model_id: bytes) -> GateConfig:
        return GateConfig.from_abi(self._call("configOf", to_bytes32(model_id)))

    def bond(self, model_id: bytes) -> tuple[int, int]:
        """``(wei, withdraw_after)``; withdraw_after 0: no withdrawal requested."""
        amount, after = self._call("bondOf", to_bytes32(model_id))
        return int(amount), int(after)

    def tally(self, model_id: bytes, version: int | None = None) -> Tally:
        """Audits of ``version`` (None: the model's open audits, for the bond)."""
        raw = self._call("modelTally", to_bytes32(model_id)) if version is None \
            else self._call("tallyOf", to_bytes32(model_id), int(version))
        vals = list(raw.values()) if isinstance(raw, dict) else list(raw)
        return Tally(int(vals[0]), int(vals[1]), int(vals[2]), bool(vals[3]), bool(vals[4]))

    def approves(self, model_id: bytes, version: int) -> bool:
        return bool(self._call("approves", to_bytes32(model_id), int(version)))

    def state(self, model_id: bytes, version: int | None = None) -> dict[str, Any]:
        """Config, bond and tallies as JSON (what ``zkml registry show`` prints)."""
        amount, after = self.bond(model_id)
        out: dict[str, Any] = {"gate": self.address, "config": self.config(model_id).to_json(),
                               "bond_wei": amount, "withdraw_after": after,
                               "open_audits": self.tally(model_id).to_json()}
        if version is not None:
            out["version"] = version
            out["tally"] = self.tally(model_id, version).to_json()
            out["approves"] = self.approves(model_id, version)
        return out


# The store's gate and the owner's actions (what `zkml registry gate` / `withdraw-bond` call)


def ensure_gate(store: Any, chain: Chain, registry: Any, progress: Any = lambda _: None) -> ValidationGate:
    """The ValidationGate this store uses with ``registry`` on ``chain``, deployed (and recorded) if missing."""
    from zkml.evm.deploy import load_records, save_records

    rec = load_records(store, chain)
    known = rec.get("gate") or {}
    if known.get("address") and known.get("registry") == registry.address and chain.code_at(known["address"]):
        return ValidationGate.at(chain, known["address"], cache_dir=store.solc_cache)
    progress("deploying ValidationGate")
    gate = ValidationGate.deploy(chain, registry.address, cache_dir=store.solc_cache)
    rec["gate"] = {"address": gate.address, "registry": registry.address}
    save_records(store, chain, rec)
    return gate


def store_gate(store: Any, chain: Chain, registry: Any, model_id: bytes) -> ValidationGate | None:
    """The gate the registry names for ``model_id`` (None: none)."""
    address = registry.gate_of(model_id)
    return None if address is None else ValidationGate.at(chain, address, cache_dir=store.solc_cache)


def setup_gate(store: Any, chain: Chain, model: str, config: GateConfig, bond_wei: int = 0,
               progress: Any = lambda _: None) -> dict[str, Any]:
    """Configure ``model``'s gate and SLA, name the gate in the registry if it has none, deposit ``bond_wei``.

    Raises:
        RegistryError: not the owner, an update pending, a lowered or bad config, another gate already named.
    """
    from zkml.evm.deploy import ensure_existing_registry, resolve_model

    registry = ensure_existing_registry(store, chain)
    mid = resolve_model(store, chain, registry, model)
    gate = store_gate(store, chain, registry, mid) or ensure_gate(store, chain, registry, progress)
    txs = {}
    progress(f"configuring the gate {gate.address}")
    txs["configure"] = gate.configure(mid, config).tx_hash
    if registry.gate_of(mid) is None:
        progress("naming the gate in the registry (setGate, once)")
        txs["set_gate"] = registry.set_gate(mid, gate.address).tx_hash
    if bond_wei:
        progress(f"depositing a bond of {bond_wei} wei")
        txs["deposit"] = gate.deposit_bond(mid, bond_wei).tx_hash
    return {"model_id": "0x" + mid.hex(), "txs": txs, **gate.state(mid)}


def withdraw_bond(store: Any, chain: Chain, model: str, progress: Any = lambda _: None) -> dict[str, Any]:
    """Request the bond's withdrawal, or withdraw it once the notice period is over.

    Raises:
        ChainError: the model has no gate.
        RegistryError: no bond, notice not over, an update pending, an audit open.
    """
    from zkml.errors import ChainError
    from zkml.evm.deploy import ensure_existing_registry, resolve_model

    registry = ensure_existing_registry(store, chain)
    mid = resolve_model(store, chain, registry, model)
    gate = store_gate(store, chain, registry, mid)
    if gate is None:
        raise ChainError(f"model {model!r} has no validation gate")
    amount, after = gate.bond(mid)
    if after == 0:
        progress("requesting the withdrawal (the notice period starts)")
        receipt = gate.request_withdrawal(mid)
        return {"model_id": "0x" + mid.hex(), "action": "requested", "tx": receipt.tx_hash,
                "bond_wei": amount, "withdraw_after": gate.bond(mid)[1]}
    receipt = gate.withdraw_bond(mid)
    return {"model_id": "0x" + mid.hex(), "action": "withdrawn", "tx": receipt.tx_hash, "bond_wei": amount,
            "gas": receipt.gas_used}
