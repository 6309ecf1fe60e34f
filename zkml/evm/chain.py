"""Talk to an EVM chain: connect, deploy, transact, call, read events.

Transactions are signed locally with one private key and sent raw, so the
same code works against the embedded anvil and any remote node. Every RPC
goes through :meth:`Chain.rpc`, which turns transport failures into
``ChainError("cannot reach RPC at URL")`` and node errors into
:class:`ContractRevert` (with the custom error, ``Error(string)`` or
``Panic(uint256)`` decoded against the ABI we know) or ``ChainError``.

Keys: ``--key-file`` or ``$ZKML_PRIVATE_KEY``; for the embedded anvil chain
only, anvil's public first dev key. A key is held only inside the
``eth_account`` signer; neither :class:`Chain`'s repr nor any message we
raise contains it.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import eth_abi
import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic, get_abi_input_types, to_checksum_address
from web3 import HTTPProvider, Web3

from zkml.errors import ChainError, ConfigError
from zkml.evm.abi import (
    ContractRevert,
    _hex_bytes,
    _rpc_error_data,
    decode_log,
    decode_result,
    decode_revert,
    encode_call,
    keccak_words,
)
from zkml.evm.anvil import ANVIL_CHAIN_ID, ANVIL_DEV_KEY, embedded_rpc_url
from zkml.evm.keys import PRIVATE_KEY_ENV, _normalize_key, load_private_key
from zkml.evm.solc import CompiledContract

# ABI encoding / revert decoding live in zkml.evm.abi, key loading in zkml.evm.keys; re-exported here
__all__ = [
    "DEFAULT_RECEIPT_TIMEOUT", "DEFAULT_RPC_TIMEOUT", "EIP170_LIMIT", "PRIVATE_KEY_ENV",
    "Chain", "Contract", "ContractRevert", "Deployment", "EventLog", "InsufficientFunds", "TxReceipt",
    "connect", "connect_embedded", "decode_log", "decode_result", "decode_revert", "encode_call",
    "keccak_words", "load_private_key",
]

log = logging.getLogger(__name__)

#: Seconds an RPC request may take.
DEFAULT_RPC_TIMEOUT: Final[float] = 10.0
#: Seconds to wait for a transaction receipt.
DEFAULT_RECEIPT_TIMEOUT: Final[float] = 120.0
#: EIP-170 limit on deployed (runtime) code size, in bytes.
EIP170_LIMIT: Final[int] = 24_576


class InsufficientFunds(ChainError):
    """The signing account cannot pay for gas (and value)."""

    def __init__(self, address: str, balance: int, needed: int):
        super().__init__(
            f"account {address} has insufficient funds: balance {balance} wei, needs about {needed} wei"
        )
        self.address: Final[str] = address
        self.balance: Final[int] = balance
        self.needed: Final[int] = needed


@dataclass(frozen=True)
class Deployment:
    """A contract creation that was mined."""

    address: str
    """Checksummed address of the new contract."""
    tx_hash: str
    """0x-prefixed transaction hash."""
    gas_used: int
    """Gas the creation consumed."""
    block: int
    """Block number it was mined in."""


@dataclass(frozen=True)
class TxReceipt:
    """A mined, successful transaction."""

    tx_hash: str
    """0x-prefixed transaction hash."""
    block: int
    """Block number."""
    gas_used: int
    """Gas consumed."""
    logs: list[dict[str, Any]] = field(compare=False, repr=False)
    """Raw logs (address, topics, data) as the node returned them."""
    contract_address: str | None = None
    """Created contract, for deployments."""


# The chain


class Chain:
    """A connection to one EVM chain, optionally with a signing account.

    Build it with :func:`connect`; ``repr()`` shows the URL, chain id and
    sender address, never the key.
    """

    def __init__(self, w3: Web3, rpc_url: str, chain_id: int, account: LocalAccount | None,
                 receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT):
        self.w3: Final[Web3] = w3
        """The underlying web3 instance (for advanced use)."""
        self.rpc_url: Final[str] = rpc_url
        """The JSON-RPC endpoint."""
        self.chain_id: Final[int] = chain_id
        """EIP-155 chain id reported by the node."""
        self.__account = account
        self._receipt_timeout = receipt_timeout
        self._known_abis: list[Sequence[Mapping[str, Any]]] = []

    def __repr__(self) -> str:
        return f"Chain(rpc_url={self.rpc_url!r}, chain_id={self.chain_id}, sender={self.sender!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Chain holds a signing key and cannot be pickled")

    @property
    def sender(self) -> str | None:
        """Checksummed address of the signing account, or None for a read-only connection."""
        return self.__account.address if self.__account is not None else None

    def _account(self) -> LocalAccount:
        if self.__account is None:
            raise ChainError(f"no private key to sign with: set ${PRIVATE_KEY_ENV} or pass --key-file")
        return self.__account

    def remember_abi(self, abi: Sequence[Mapping[str, Any]]) -> None:
        """Make the custom errors of ``abi`` decodable in every later revert."""
        if abi not in self._known_abis:
            self._known_abis.append(abi)

    # Raw RPC

    def rpc(self, method: str, params: Sequence[Any] | None = None,
            abis: Sequence[Sequence[Mapping[str, Any]]] = ()) -> Any:
        """One JSON-RPC request; returns ``result``.

        Raises:
            ChainError: the node is unreachable ("cannot reach RPC at URL") or
                answers with an error.
            ContractRevert: the error carries revert data (decoded with ``abis``
                and every ABI this chain has seen).
        """
        try:
            reply = self.w3.provider.make_request(method, list(params or []))  # type: ignore[arg-type]
        except requests.exceptions.HTTPError as e:
            status = e.response.status_code if e.response is not None else "error"
            raise ChainError(f"RPC at {self.rpc_url} answered HTTP {status}") from e
        except (requests.exceptions.RequestException, OSError) as e:
            raise ChainError(f"cannot reach RPC at {self.rpc_url}") from e
        except ValueError as e:  # a non-JSON body
            raise ChainError(f"RPC at {self.rpc_url} returned a malformed reply to {method}") from e
        if not isinstance(reply, Mapping):
            raise ChainError(f"RPC at {self.rpc_url} returned a malformed reply to {method}")
        err = reply.get("error")
        if err:
            if not isinstance(err, Mapping):
                raise ChainError(f"RPC {method} failed: {err}")
            message = str(err.get("message", "unknown error"))
            data = _rpc_error_data(err)
            if data is not None or "revert" in message.lower():
                rev = decode_revert(data or b"", [*abis, *self._known_abis])
                if data is None and message.lower() != "execution reverted":
                    rev = ContractRevert(message, data=b"")
                raise rev
            if "insufficient funds" in message.lower():
                addr = self.sender or "?"
                raise ChainError(f"account {addr} has insufficient funds ({message})")
            raise ChainError(f"RPC {method} failed: {message}")
        return reply.get("result")

    # Reads

    def block_number(self) -> int:
        """Latest block number."""
        return int(self.rpc("eth_blockNumber"), 16)

    def balance(self, address: str | None = None) -> int:
        """Balance in wei of ``address`` (default: the sender)."""
        addr = address or self._account().address
        return int(self.rpc("eth_getBalance", [addr, "latest"]), 16)

    def code_at(self, address: str) -> bytes:
        """Runtime code at ``address`` (empty for an account without code)."""
        return _hex_bytes(self.rpc("eth_getCode", [to_checksum_address(address), "latest"]))

    def require_code(self, address: str, what: str = "contract") -> None:
        """Raises ChainError unless ``address`` holds code on this chain."""
        try:
            addr = to_checksum_address(address)
        except ValueError:
            raise ConfigError(f"{address!r} is not an address") from None
        if not self.code_at(addr):
            raise ChainError(
                f"{what} not deployed: no code at {addr} on chain {self.chain_id} ({self.rpc_url})"
            )

    def call_raw(self, to: str, data: bytes, *, block: str = "latest",
                 abis: Sequence[Sequence[Mapping[str, Any]]] = ()) -> bytes:
        """``eth_call`` with raw calldata; returns the raw return data.

        Raises:
            ContractRevert: the call reverted.
        """
        tx: dict[str, Any] = {"to": to_checksum_address(to), "data": "0x" + data.hex()}
        if self.sender is not None:
            tx["from"] = self.sender
        return _hex_bytes(self.rpc("eth_call", [tx, block], abis))

    def estimate_gas_raw(self, to: str | None, data: bytes, *, value: int = 0,
                         abis: Sequence[Sequence[Mapping[str, Any]]] = ()) -> int:
        """``eth_estimateGas`` for a transaction (includes the 21,000 base and calldata cost).

        Raises:
            ContractRevert: the transaction would revert.
        """
        tx: dict[str, Any] = {"data": "0x" + data.hex(), "value": hex(value)}
        if to is not None:
            tx["to"] = to_checksum_address(to)
        if self.sender is not None:
            tx["from"] = self.sender
        return int(self.rpc("eth_estimateGas", [tx], abis), 16)

    def get_logs(self, address: str, topics: Sequence[Any] | None = None, from_block: int = 0,
                 to_block: int | str = "latest") -> list[dict[str, Any]]:
        """Raw logs of ``address`` (``eth_getLogs``)."""
        flt: dict[str, Any] = {
            "address": to_checksum_address(address),
            "fromBlock": hex(from_block),
            "toBlock": hex(to_block) if isinstance(to_block, int) else to_block,
        }
        if topics:
            flt["topics"] = list(topics)
        return list(self.rpc("eth_getLogs", [flt]))

    # Writes

    def _fees(self) -> dict[str, int]:
        block = self.rpc("eth_getBlockByNumber", ["latest", False])
        base = block.get("baseFeePerGas") if isinstance(block, Mapping) else None
        if base is None:
            return {"gasPrice": int(self.rpc("eth_gasPrice"), 16)}
        try:
            tip = int(self.rpc("eth_maxPriorityFeePerGas"), 16)
        except ChainError:
            tip = 10**9
        return {"maxFeePerGas": 2 * int(base, 16) + tip, "maxPriorityFeePerGas": tip}

    def send_raw(self, to: str | None, data: bytes, *, value: int = 0, gas: int | None = None,
                 abis: Sequence[Sequence[Mapping[str, Any]]] = ()) -> TxReceipt:
        """Sign and send a transaction, wait for it to be mined.

        Gas is estimated first (which surfaces a revert with its decoded
        reason before anything is sent); the balance is checked against the
        worst-case fee.

        Raises:
            ChainError: no key, RPC failure, or no receipt in time.
            InsufficientFunds: the sender cannot pay gas * fee + value.
            ContractRevert: the transaction reverts (before or after mining).
        """
        acct = self._account()
        limit = gas if gas is not None else self.estimate_gas_raw(to, data, value=value, abis=abis)
        if gas is None:
            limit = limit + limit // 5 + 10_000
        fees = self._fees()
        price = fees.get("maxFeePerGas", fees.get("gasPrice", 0))
        needed = limit * price + value
        balance = self.balance(acct.address)
        if balance < needed:
            raise InsufficientFunds(acct.address, balance, needed)
        tx: dict[str, Any] = {
            "chainId": self.chain_id,
            "nonce": int(self.rpc("eth_getTransactionCount", [acct.address, "pending"]), 16),
            "gas": limit,
            "value": value,
            "data": data,
            **fees,
        }
        if to is not None:
            tx["to"] = to_checksum_address(to)
        signed = acct.sign_transaction(tx)
        tx_hash = str(self.rpc("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()], abis))
        log.debug("sent %s from %s", tx_hash, acct.address)
        receipt = self._wait_receipt(tx_hash)
        status = int(receipt.get("status", "0x1"), 16)
        block = int(receipt["blockNumber"], 16)
        if status != 1:
            # Replay at the parent block to learn the reason.
            replay: dict[str, Any] = {"from": acct.address, "data": "0x" + data.hex(), "value": hex(value),
                                      "gas": hex(limit)}
            if to is not None:
                replay["to"] = to_checksum_address(to)
            try:
                self.rpc("eth_call", [replay, hex(max(block - 1, 0))], abis)
            except ContractRevert as e:
                raise ContractRevert(f"transaction {tx_hash} reverted: {e.message.removeprefix('execution reverted: ')}",
                                     error_name=e.error_name, error_args=e.error_args, data=e.data) from None
            except ChainError as e:
                raise ContractRevert(f"transaction {tx_hash} failed: {e.message.removeprefix('RPC eth_call failed: ')}") from None
            raise ContractRevert(f"transaction {tx_hash} reverted (out of gas or no reason given)")
        created = receipt.get("contractAddress")
        return TxReceipt(
            tx_hash=tx_hash,
            block=block,
            gas_used=int(receipt["gasUsed"], 16),
            logs=list(receipt.get("logs", [])),
            contract_address=to_checksum_address(created) if created else None,
        )

    def _wait_receipt(self, tx_hash: str) -> dict[str, Any]:
        deadline = time.monotonic() + self._receipt_timeout
        delay = 0.05
        while True:
            receipt = self.rpc("eth_getTransactionReceipt", [tx_hash])
            if receipt:
                return dict(receipt)
            if time.monotonic() > deadline:
                raise ChainError(f"transaction {tx_hash} was not mined within {self._receipt_timeout:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def deploy(self, compiled: CompiledContract, *args: Any, gas: int | None = None) -> Deployment:
        """Deploy ``compiled`` with constructor ``args``.

        Raises:
            ChainError: the runtime code exceeds EIP-170 (checked before
                sending), or as :meth:`send_raw`.
            InsufficientFunds / ContractRevert: as :meth:`send_raw`.
        """
        if compiled.deployed_size > EIP170_LIMIT:
            raise ChainError(
                f"{compiled.name} runtime code is {compiled.deployed_size:,} bytes, over the EIP-170 limit of "
                f"{EIP170_LIMIT:,}: no EVM chain will accept it"
            )
        self.remember_abi(compiled.abi)
        ctor = next((e for e in compiled.abi if e.get("type") == "constructor"), None)
        encoded = b""
        if ctor is not None:
            try:
                encoded = eth_abi.encode(get_abi_input_types(ctor), list(args))
            except (eth_abi.exceptions.EncodingError, TypeError, ValueError) as e:
                raise ConfigError(f"constructor arguments do not fit {compiled.name}: {e}") from None
        elif args:
            raise ConfigError(f"{compiled.name} has no constructor arguments")
        receipt = self.send_raw(None, compiled.bytecode + encoded, gas=gas, abis=[compiled.abi])
        if receipt.contract_address is None:
            raise ChainError(f"deployment of {compiled.name} ({receipt.tx_hash}) created no contract")
        return Deployment(receipt.contract_address, receipt.tx_hash, receipt.gas_used, receipt.block)

    def deploy_code(self, runtime: bytes) -> Deployment:
        """Deploy raw ``runtime`` bytes as a contract's code (a data contract, e.g. a VK artifact).

        The init code is a 12-byte CODECOPY/RETURN prelude; the runtime must
        stay within EIP-170. Start ``runtime`` with a 0x00 (STOP) byte so the
        data can never run as code.
        """
        n = len(runtime)
        if n > 0xFFFF:
            raise ConfigError(f"data contract of {n} bytes is too large")
        # PUSH2 n; DUP1; PUSH1 12; PUSH1 0; CODECOPY; PUSH1 0; RETURN  -> returns code[12:12+n]
        prelude = bytes([0x61, n >> 8, n & 0xFF, 0x80, 0x60, 0x0C, 0x60, 0x00, 0x39, 0x60, 0x00, 0xF3])
        receipt = self.send_raw(None, prelude + runtime)
        if receipt.contract_address is None:
            raise ChainError(f"data contract deployment ({receipt.tx_hash}) created no contract")
        return Deployment(receipt.contract_address, receipt.tx_hash, receipt.gas_used, receipt.block)

    def at(self, compiled_or_abi: CompiledContract | Sequence[Mapping[str, Any]], address: str,
           name: str | None = None) -> Contract:
        """A handle on the deployed contract at ``address``.

        Raises:
            ChainError: there is no code at ``address`` ("… not deployed").
        """
        if isinstance(compiled_or_abi, CompiledContract):
            abi: Sequence[Mapping[str, Any]] = compiled_or_abi.abi
            label = name or compiled_or_abi.name
        else:
            abi = compiled_or_abi
            label = name or "contract"
        self.require_code(address, label)
        self.remember_abi(abi)
        return Contract(self, to_checksum_address(address), abi, label)

    # Dev-chain helpers (anvil / hardhat methods)

    def snapshot(self) -> str:
        """``evm_snapshot``: an id to :meth:`revert` to (dev chains only)."""
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot_id: str) -> None:
        """``evm_revert`` to ``snapshot_id`` (consumes it; dev chains only).

        Raises:
            ChainError: the node refused (unknown or already used id).
        """
        if not self.rpc("evm_revert", [snapshot_id]):
            raise ChainError(f"evm_revert to snapshot {snapshot_id} failed")

    def increase_time(self, seconds: int) -> None:
        """Move the dev chain's clock forward and mine a block (``evm_increaseTime`` + ``evm_mine``)."""
        self.rpc("evm_increaseTime", [int(seconds)])
        self.rpc("evm_mine")

    def timestamp(self) -> int:
        """Timestamp of the latest block."""
        return int(self.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


class Contract:
    """A deployed contract bound to a :class:`Chain` (made by :meth:`Chain.at`)."""

    def __init__(self, chain: Chain, address: str, abi: Sequence[Mapping[str, Any]], name: str):
        self.chain: Final[Chain] = chain
        self.address: Final[str] = address
        """Checksummed address."""
        self.abi: Final[Sequence[Mapping[str, Any]]] = abi
        self.name: Final[str] = name

    def __repr__(self) -> str:
        return f"Contract({self.name} at {self.address} on chain {self.chain.chain_id})"

    def call(self, fn_name: str, *args: Any, block: str = "latest") -> Any:
        """``eth_call`` ``fn_name(*args)``; decoded result.

        Raises:
            ContractRevert: the call reverted (custom errors decoded).
            ChainError: RPC failure or undecodable result.
        """
        data = self.chain.call_raw(self.address, encode_call(self.abi, fn_name, *args), block=block,
                                   abis=[self.abi])
        return decode_result(self.abi, fn_name, data)

    def estimate_gas(self, fn_name: str, *args: Any) -> int:
        """Gas a transaction calling ``fn_name(*args)`` would use (``eth_estimateGas``).

        Raises:
            ContractRevert: it would revert.
        """
        return self.chain.estimate_gas_raw(self.address, encode_call(self.abi, fn_name, *args), abis=[self.abi])

    def transact(self, fn_name: str, *args: Any, value: int = 0, gas: int | None = None) -> TxReceipt:
        """Send a transaction calling ``fn_name(*args)`` and wait for it.

        Raises:
            ContractRevert / InsufficientFunds / ChainError: as :meth:`Chain.send_raw`.
        """
        return self.chain.send_raw(self.address, encode_call(self.abi, fn_name, *args), value=value, gas=gas,
                                   abis=[self.abi])

    def events(self, receipt_or_logs: TxReceipt | Sequence[Mapping[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        """Decode this contract's events from a receipt (or raw logs), in order."""
        logs = receipt_or_logs.logs if isinstance(receipt_or_logs, TxReceipt) else receipt_or_logs
        out = []
        for entry in logs:
            if to_checksum_address(str(entry.get("address"))) != self.address:
                continue
            decoded = decode_log(self.abi, entry)
            if decoded is not None:
                out.append(decoded)
        return out

    def history(self, event_name: str | None = None, topics: Sequence[Any] | None = None,
                from_block: int = 0) -> list[EventLog]:
        """All past events of this contract from ``from_block`` (optionally one event type), in chain order.

        ``topics`` filter the indexed arguments after the event signature
        (e.g. ``["0x<model id>"]``); ``None`` matches anything.

        Raises:
            ConfigError: ``event_name`` is not in the ABI.
            ChainError: RPC failure.
        """
        flt: list[Any] = []
        if event_name is not None:
            entry = next((e for e in self.abi if e.get("type") == "event" and e.get("name") == event_name), None)
            if entry is None:
                raise ConfigError(f"{self.name} has no event {event_name}")
            flt = ["0x" + event_abi_to_log_topic(entry).hex(), *(topics or [])]  # type: ignore[arg-type]
        elif topics:
            flt = [None, *topics]
        out = []
        for entry in self.chain.get_logs(self.address, flt, from_block):
            decoded = decode_log(self.abi, entry)
            if decoded is not None:
                out.append(EventLog(name=decoded[0], args=decoded[1], block=int(entry["blockNumber"], 16),
                                    tx_hash=str(entry.get("transactionHash")),
                                    log_index=int(entry.get("logIndex", "0x0"), 16)))
        return out


@dataclass(frozen=True)
class EventLog:
    """One decoded event from the chain."""

    name: str
    """Event name."""
    args: dict[str, Any] = field(compare=False)
    """Decoded arguments by name (structs as dicts)."""
    block: int
    """Block number."""
    tx_hash: str
    """Transaction that emitted it."""
    log_index: int
    """Position in the block."""


# Connecting


def connect(
    rpc_url: str,
    private_key: str | None = None,
    *,
    expected_chain_id: int | None = None,
    allow_dev_key: bool = False,
    timeout: float = DEFAULT_RPC_TIMEOUT,
    receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT,
) -> Chain:
    """Connect to ``rpc_url`` and check it answers (and is the expected chain).

    ``private_key`` signs transactions (see :func:`load_private_key`). With
    ``allow_dev_key`` and no key, anvil's public dev key is used — but only if
    the node reports anvil's chain id 31337 and the URL is on loopback, so a
    real network never receives transactions from it.

    Raises:
        ChainError: "cannot reach RPC at URL", or "wrong chain id".
        ConfigError: the key is malformed.
    """
    provider = HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
    w3 = Web3(provider)
    probe = Chain(w3, rpc_url, 0, None, receipt_timeout)
    raw_id = probe.rpc("eth_chainId")
    try:
        chain_id = int(raw_id, 16)
    except (TypeError, ValueError):
        raise ChainError(f"RPC at {rpc_url} returned a malformed chain id") from None
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise ChainError(f"wrong chain id: {rpc_url} is chain {chain_id}, expected {expected_chain_id}")
    key = _normalize_key(private_key, "the caller") if private_key is not None else None
    if key is None and allow_dev_key and chain_id == ANVIL_CHAIN_ID and _is_loopback(rpc_url):
        key = ANVIL_DEV_KEY
    account = Account.from_key(key) if key is not None else None
    return Chain(w3, rpc_url, chain_id, account, receipt_timeout)


def _is_loopback(url: str) -> bool:
    host = re.sub(r"^[a-z]+://", "", url).split("/")[0].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def connect_embedded(store_dir: str | os.PathLike[str], private_key: str | None = None, **kwargs: Any) -> Chain:
    """Connect to the store's running embedded chain (``zkml chain up``), dev key by default.

    Raises:
        ChainError: the embedded chain is not running.
    """
    url = embedded_rpc_url(store_dir)
    if url is None:
        raise ChainError("the embedded chain is not running: start it with `zkml chain up` or pass --rpc-url")
    return connect(url, private_key, allow_dev_key=True, expected_chain_id=ANVIL_CHAIN_ID, **kwargs)
