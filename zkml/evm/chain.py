"""Talk to an EVM chain: connect, deploy, transact, call, read events.

Transactions are signed locally with one private key and sent raw, so the
same code works against the embedded anvil and any remote node. Every RPC
goes through :meth:`Chain.rpc`, which turns transport failures into
``ChainError("cannot reach RPC at URL")`` and node errors into
:class:`ContractRevert` (with the custom error, ``Error(string)`` or
``Panic(uint256)`` decoded against the ABI we know) or ``ChainError``.

RPC failover: ``connect`` takes one URL or an ordered comma-separated list
(``--rpc-url`` / ``$ZKML_RPC_URL``). Every endpoint that answers must report
the same chain id (a mismatch is refused: one line naming both). A request
goes to the endpoint that answered last and, on a transport failure (refused
connection, timeout, HTTP error, malformed reply), to the next one in order;
a JSON-RPC error (a revert, a node refusal) is an answer and never fails
over. A transaction starts on the *first* healthy endpoint in the list (so
writes return to the primary once it is back); its signed bytes are
resubmitted unchanged if the endpoint dies while sending (same hash: at most
one of them is mined). ``Chain.rpc_url`` is the endpoint that answered last;
a reporter callback (:meth:`Chain.set_reporter`) hears every failover.

Keys: ``--key-file`` or ``$ZKML_PRIVATE_KEY``; for the embedded anvil chain
only, anvil's public first dev key. A key is held only inside the
``eth_account`` signer; neither :class:`Chain`'s repr nor any message we
raise contains it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
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
from zkml.evm.anvil import ANVIL_CHAIN_ID, ANVIL_DEV_KEY
from zkml.evm.keys import PRIVATE_KEY_ENV, _normalize_key, load_private_key
from zkml.evm.solc import CompiledContract

# ABI encoding / revert decoding live in zkml.evm.abi, key loading in zkml.evm.keys; re-exported here
__all__ = [
    "DEFAULT_RECEIPT_TIMEOUT", "DEFAULT_RPC_TIMEOUT", "EIP170_LIMIT", "PRIVATE_KEY_ENV",
    "Chain", "Contract", "ContractRevert", "Deployment", "EventLog", "InsufficientFunds", "TxReceipt",
    "connect", "decode_log", "decode_result", "decode_revert", "encode_call",
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


class _Unreachable(Exception):
    """One endpoint did not answer (transport failure); the request may go to the next one."""

    def __init__(self, url: str, reason: str):
        super().__init__(reason)
        self.url = url
        self.reason = reason


@dataclass
class _Endpoint:
    """One JSON-RPC endpoint of a chain."""

    url: str
    """Its URL, as configured."""
    w3: Web3
    """web3 over an HTTPProvider without retries (we fail over instead)."""
    chain_id: int | None = None
    """Chain id it reported (None: not asked yet, it was down)."""


def parse_rpc_urls(value: str | Sequence[str]) -> list[str]:
    """The ordered endpoints of ``--rpc-url``: a comma-separated list (or a list), duplicates dropped.

    Raises:
        ConfigError: empty, or an entry that is not an http(s) URL.
    """
    parts = value.split(",") if isinstance(value, str) else list(value)
    urls: list[str] = []
    for raw in parts:
        url = raw.strip()
        if not url:
            continue
        if not re.match(r"^https?://[^\s/]+", url):
            raise ConfigError(f"--rpc-url: {url[:80]!r} is not an http(s) URL")
        if url not in urls:
            urls.append(url)
    if not urls:
        raise ConfigError("--rpc-url: no endpoint given")
    return urls


class Chain:
    """A connection to one EVM chain over one or more RPC endpoints, optionally with a signing account.

    Build it with :func:`connect`; ``repr()`` shows the endpoint that
    answered last, the chain id and sender address, never the key.
    """

    def __init__(self, endpoints: Sequence[str], chain_id: int, account: LocalAccount | None,
                 receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT, timeout: float = DEFAULT_RPC_TIMEOUT):
        self._endpoints: list[_Endpoint] = [
            _Endpoint(url, Web3(HTTPProvider(url, request_kwargs={"timeout": timeout},
                                             exception_retry_configuration=None)))
            for url in endpoints
        ]
        self._active = 0
        self.chain_id: Final[int] = chain_id
        """EIP-155 chain id reported by the node(s)."""
        self.__account = account
        self._receipt_timeout = receipt_timeout
        self._known_abis: list[Sequence[Mapping[str, Any]]] = []
        self._report: Callable[[str], None] = lambda _: None

    @property
    def rpc_url(self) -> str:
        """The endpoint that answered last (the first configured one before any request)."""
        return self._endpoints[self._active].url

    @property
    def rpc_urls(self) -> tuple[str, ...]:
        """Every configured endpoint, in failover order."""
        return tuple(e.url for e in self._endpoints)

    @property
    def w3(self) -> Web3:
        """web3 on the endpoint that answered last (for advanced use)."""
        return self._endpoints[self._active].w3

    def set_reporter(self, report: Callable[[str], None]) -> None:
        """Call ``report(message)`` on every failover (e.g. the CLI's progress line)."""
        self._report = report

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
        """One JSON-RPC request (failing over between endpoints); returns ``result``.

        Raises:
            ChainError: no endpoint answers ("cannot reach RPC at URL"), an
                endpoint reports another chain id, or the node answers with an error.
            ContractRevert: the error carries revert data (decoded with ``abis``
                and every ABI this chain has seen).
        """
        reply = self._request(method, list(params or []), start=self._active)
        return self._result(method, reply, abis)

    def _send_once(self, ep: _Endpoint, method: str, params: list[Any]) -> Mapping[str, Any]:
        """``method`` on one endpoint. Raises _Unreachable on any transport failure."""
        try:
            reply = ep.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        except requests.exceptions.HTTPError as e:
            status = e.response.status_code if e.response is not None else "error"
            raise _Unreachable(ep.url, f"answered HTTP {status}") from e
        except requests.exceptions.Timeout as e:
            raise _Unreachable(ep.url, "timed out") from e
        except (requests.exceptions.RequestException, OSError) as e:
            raise _Unreachable(ep.url, "unreachable") from e
        except ValueError as e:  # a non-JSON body
            raise _Unreachable(ep.url, f"returned a malformed reply to {method}") from e
        if not isinstance(reply, Mapping):
            raise _Unreachable(ep.url, f"returned a malformed reply to {method}")
        return reply

    def _check_id(self, ep: _Endpoint) -> None:
        """Ask ``ep`` its chain id once; refuse it when it is another chain."""
        if ep.chain_id is not None:
            return
        raw = self._send_once(ep, "eth_chainId", []).get("result")
        try:
            cid = int(str(raw), 16)
        except ValueError:
            raise _Unreachable(ep.url, "returned a malformed chain id") from None
        if cid != self.chain_id:
            raise ChainError(f"RPC endpoints disagree: {ep.url} is chain {cid}, "
                             f"{self.rpc_url} is chain {self.chain_id}")
        ep.chain_id = cid

    def _request(self, method: str, params: list[Any], *, start: int) -> Mapping[str, Any]:
        """Try the endpoints from ``start`` on (wrapping around) until one answers."""
        n = len(self._endpoints)
        failures: list[_Unreachable] = []
        for k in range(n):
            i = (start + k) % n
            ep = self._endpoints[i]
            try:
                self._check_id(ep)
                reply = self._send_once(ep, method, params)
            except _Unreachable as e:
                failures.append(e)
                if n > 1:
                    log.info("rpc %s: %s %s", method, e.url, e.reason)
                continue
            if i != self._active:  # a switch: say why
                why = ", ".join(f"{f.url} {f.reason}" for f in failures) or f"{ep.url} is healthy again"
                self._report(f"rpc: {why}; {ep.url} answered {method}")
            self._active = i
            return reply
        if n == 1:
            f = failures[0]
            text = f"cannot reach RPC at {f.url}" if f.reason in ("unreachable", "timed out") else f"RPC at {f.url} {f.reason}"
            if f.reason == "timed out":
                text += " (timed out)"
            raise ChainError(text) from failures[0]
        raise ChainError(f"cannot reach RPC at any of {n} endpoints: "
                         + ", ".join(f"{f.url} {f.reason}" for f in failures)) from failures[-1]

    def _use_first_healthy(self) -> None:
        """Point at the first endpoint in the configured order that answers (before a transaction)."""
        self._request("eth_chainId", [], start=0)

    def _result(self, method: str, reply: Mapping[str, Any], abis: Sequence[Sequence[Mapping[str, Any]]]) -> Any:
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
        if len(self._endpoints) > 1:
            self._use_first_healthy()
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
        # The same signed bytes on every endpoint tried: one transaction hash, mined at most once.
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
    rpc_url: str | Sequence[str],
    private_key: str | None = None,
    *,
    expected_chain_id: int | None = None,
    allow_dev_key: bool = False,
    timeout: float = DEFAULT_RPC_TIMEOUT,
    receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT,
    report: Callable[[str], None] | None = None,
) -> Chain:
    """Connect to ``rpc_url`` -- one URL or an ordered comma-separated list -- and check it answers.

    Every endpoint is asked its chain id; those that answer must agree (and
    match ``expected_chain_id``); those that do not are tried again when the
    others fail. ``private_key`` signs transactions (see
    :func:`load_private_key`). With ``allow_dev_key`` and no key, anvil's
    public dev key is used -- but only if the chain id is anvil's 31337 and
    every URL is on loopback, so a real network never receives transactions
    from it. ``report`` hears which endpoint answered and every failover.

    Raises:
        ChainError: "cannot reach RPC at URL" (no endpoint answers), endpoints
            disagree on the chain id, or "wrong chain id".
        ConfigError: the key is malformed or a URL is not http(s).
    """
    urls = parse_rpc_urls(rpc_url)
    say = report or (lambda _: None)
    probe = Chain(urls, 0, None, receipt_timeout, timeout)
    # Ask every endpoint its chain id; the dead ones are asked again when first used
    ids: dict[str, int] = {}
    failures: list[_Unreachable] = []
    for ep in probe._endpoints:
        try:
            raw = probe._send_once(ep, "eth_chainId", []).get("result")
            ids[ep.url] = int(str(raw), 16)
        except _Unreachable as e:
            failures.append(e)
        except ValueError:
            failures.append(_Unreachable(ep.url, "returned a malformed chain id"))
    if not ids:
        if len(urls) == 1:
            f = failures[0]
            if f.reason in ("unreachable", "timed out"):
                raise ChainError(f"cannot reach RPC at {f.url}" + (" (timed out)" if f.reason == "timed out" else ""))
            raise ChainError(f"RPC at {f.url} {f.reason}")
        raise ChainError(f"cannot reach RPC at any of {len(urls)} endpoints: "
                         + ", ".join(f"{f.url} {f.reason}" for f in failures))
    distinct = sorted(set(ids.values()))
    if len(distinct) > 1:
        raise ChainError("RPC endpoints disagree on the chain: "
                         + ", ".join(f"{u} is chain {c}" for u, c in ids.items()))
    chain_id = distinct[0]
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise ChainError(f"wrong chain id: {', '.join(ids)} is chain {chain_id}, expected {expected_chain_id}")
    key = _normalize_key(private_key, "the caller") if private_key is not None else None
    if key is None and allow_dev_key and chain_id == ANVIL_CHAIN_ID and all(_is_loopback(u) for u in urls):
        key = ANVIL_DEV_KEY
    account = Account.from_key(key) if key is not None else None
    chain = Chain(urls, chain_id, account, receipt_timeout, timeout)
    for ep in chain._endpoints:
        ep.chain_id = ids.get(ep.url)
    chain._active = next(i for i, ep in enumerate(chain._endpoints) if ep.chain_id is not None)
    if report is not None:
        chain.set_reporter(report)
        down = "".join(f"; {f.url} {f.reason}" for f in failures)
        say(f"rpc: {chain.rpc_url} answered (chain {chain_id}){down}")
    return chain


def _is_loopback(url: str) -> bool:
    host = re.sub(r"^[a-z]+://", "", url).split("/")[0].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")
