"""ABI encoding and decoding for the EVM client: calldata, results, events, reverts.

Pure functions over a contract's JSON ABI (no RPC): :func:`encode_call` /
:func:`decode_result` for functions, :func:`decode_log` for events, and
:func:`decode_revert`, which turns revert data into a :class:`ContractRevert`
with the custom error, ``Error(string)`` or ``Panic(uint256)`` decoded.
:mod:`zkml.evm.chain` uses them and re-exports every public name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import eth_abi
from eth_utils import (
    abi_to_signature,
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
    get_abi_input_types,
    get_abi_output_types,
    keccak,
    to_checksum_address,
)

from zkml.errors import ChainError, ConfigError

_ERROR_SELECTOR: Final[bytes] = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR: Final[bytes] = bytes.fromhex("4e487b71")  # Panic(uint256)
_PANIC_CODES: Final[dict[int, str]] = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x22: "corrupt storage byte array",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialized function",
}


class ContractRevert(ChainError):
    """A call or transaction reverted; the reason is decoded where the ABI allows."""

    def __init__(self, message: str, *, error_name: str | None = None, error_args: Mapping[str, Any] | None = None,
                 data: bytes = b""):
        super().__init__(message)
        self.error_name: Final[str | None] = error_name
        """Custom error name (``Error`` / ``Panic`` for the built-ins), None if undecodable."""
        self.error_args: Final[dict[str, Any]] = dict(error_args or {})
        """Decoded error arguments by name."""
        self.data: Final[bytes] = data
        """Raw revert data."""


# ABI helpers


def _selector_table(abi: Sequence[Mapping[str, Any]]) -> dict[bytes, Mapping[str, Any]]:
    return {function_abi_to_4byte_selector(e): e for e in abi if e.get("type") == "error"}


def _named(params: Sequence[Mapping[str, Any]], values: Sequence[Any]) -> dict[str, Any]:
    """Turn decoded ABI values into dicts by parameter name (recursing into structs)."""
    out: dict[str, Any] = {}
    for i, (p, v) in enumerate(zip(params, values, strict=True)):
        out[p.get("name") or f"arg{i}"] = _shape(p, v)
    return out


def _shape(param: Mapping[str, Any], value: Any) -> Any:
    typ = str(param["type"])
    if typ.startswith("tuple"):
        comps = param.get("components", [])
        if typ == "tuple":
            return _named(comps, value)
        inner = {**param, "type": typ[: typ.rindex("[")]}
        return [_shape(inner, v) for v in value]
    if typ == "address":
        return to_checksum_address(value)
    if isinstance(value, (list, tuple)) and typ.endswith("]"):
        inner = {**param, "type": typ[: typ.rindex("[")]}
        return [_shape(inner, v) for v in value]
    return value


def _fmt_arg(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def decode_revert(data: bytes, abis: Sequence[Sequence[Mapping[str, Any]]] = ()) -> ContractRevert:
    """Decode revert ``data`` into a :class:`ContractRevert` with a one-line message.

    Custom errors are looked up in ``abis``; ``Error(string)`` and
    ``Panic(uint256)`` are always understood.
    """
    if not data:
        return ContractRevert("execution reverted without a reason", data=data)
    sel, body = data[:4], data[4:]
    try:
        if sel == _ERROR_SELECTOR:
            (reason,) = eth_abi.decode(["string"], body)
            return ContractRevert(f"execution reverted: {reason}", error_name="Error",
                                  error_args={"reason": reason}, data=data)
        if sel == _PANIC_SELECTOR:
            (code,) = eth_abi.decode(["uint256"], body)
            what = _PANIC_CODES.get(code, "unknown panic")
            return ContractRevert(f"execution reverted: panic 0x{code:02x} ({what})", error_name="Panic",
                                  error_args={"code": code}, data=data)
        for abi in abis:
            entry = _selector_table(abi).get(sel)
            if entry is None:
                continue
            values = eth_abi.decode(get_abi_input_types(entry), body)
            args = _named(entry.get("inputs", []), values)
            shown = ", ".join(f"{k}={_fmt_arg(v)}" for k, v in args.items())
            return ContractRevert(f"execution reverted: {entry['name']}({shown})", error_name=str(entry["name"]),
                                  error_args=args, data=data)
    except (eth_abi.exceptions.DecodingError, ValueError):
        pass
    return ContractRevert(f"execution reverted with undecoded data 0x{data[:36].hex()}", data=data)


def _find_function(abi: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    """Look a function up by name, or by full signature when overloaded."""
    fns = [e for e in abi if e.get("type") == "function"]
    if "(" in name:
        hits = [e for e in fns if abi_to_signature(e) == name]
    else:
        hits = [e for e in fns if e.get("name") == name]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise ConfigError(f"the contract ABI has no function {name}")
    sigs = ", ".join(abi_to_signature(e) for e in hits)
    raise ConfigError(f"function {name} is overloaded ({sigs}): pass the full signature")


def encode_call(abi: Sequence[Mapping[str, Any]], fn_name: str, *args: Any) -> bytes:
    """Calldata for ``fn_name(*args)`` (structs as tuples).

    Raises:
        ConfigError: unknown function or arguments that do not fit its types.
    """
    entry = _find_function(abi, fn_name)
    try:
        return function_abi_to_4byte_selector(entry) + eth_abi.encode(get_abi_input_types(entry), list(args))
    except (eth_abi.exceptions.EncodingError, TypeError, ValueError) as e:
        raise ConfigError(f"arguments do not fit {abi_to_signature(entry)}: {e}") from None


def decode_result(abi: Sequence[Mapping[str, Any]], fn_name: str, data: bytes) -> Any:
    """Decode return ``data`` of ``fn_name``: None, the single value, or a tuple (structs as dicts).

    Raises:
        ChainError: the data does not decode (wrong contract at that address?).
    """
    entry = _find_function(abi, fn_name)
    outputs = entry.get("outputs", [])
    if not outputs:
        return None
    try:
        values = eth_abi.decode(get_abi_output_types(entry), data)
    except (eth_abi.exceptions.DecodingError, ValueError) as e:
        raise ChainError(f"cannot decode the result of {fn_name} ({e}): is this the right contract?") from None
    shaped = [_shape(p, v) for p, v in zip(outputs, values, strict=True)]
    return shaped[0] if len(shaped) == 1 else tuple(shaped)


def decode_log(abi: Sequence[Mapping[str, Any]], log_entry: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """Decode one raw log against the events of ``abi``: ``(event name, args)`` or None if unknown.

    Indexed dynamic values (strings, arrays, structs) come back as their 32-byte topic hash.
    """
    topics = [_hex_bytes(t) for t in log_entry.get("topics", [])]
    if not topics:
        return None
    for entry in abi:
        if entry.get("type") != "event" or entry.get("anonymous"):
            continue
        if event_abi_to_log_topic(entry) != topics[0]:  # type: ignore[arg-type]
            continue
        inputs = entry.get("inputs", [])
        indexed = [p for p in inputs if p.get("indexed")]
        plain = [p for p in inputs if not p.get("indexed")]
        plain_values = eth_abi.decode(get_abi_input_types({"type": "function", "inputs": plain}),
                                      _hex_bytes(log_entry.get("data", "0x")))
        by_plain = dict(zip((id(p) for p in plain), plain_values, strict=True))
        idx_topics = dict(zip((id(p) for p in indexed), topics[1:], strict=True))
        args: dict[str, Any] = {}
        for i, p in enumerate(inputs):
            name = p.get("name") or f"arg{i}"
            if p.get("indexed"):
                typ = str(p["type"])
                raw = idx_topics[id(p)]
                dynamic = typ in ("string", "bytes") or typ.endswith("]") or typ.startswith("tuple")
                args[name] = raw if dynamic else _shape(p, eth_abi.decode([typ], raw)[0])
            else:
                args[name] = _shape(p, by_plain[id(p)])
        return str(entry["name"]), args
    return None


def _hex_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return bytes.fromhex(str(value).removeprefix("0x"))


def _rpc_error_data(err: Mapping[str, Any]) -> bytes | None:
    data = err.get("data")
    if isinstance(data, Mapping):
        data = data.get("data") or data.get("result")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


def keccak_words(values: Sequence[int]) -> bytes:
    """``keccak256(abi.encodePacked(uint256[] values))``: the registry's commitment encoding."""
    return keccak(b"".join(int(v).to_bytes(32, "big") for v in values))
