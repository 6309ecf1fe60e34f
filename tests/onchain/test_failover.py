"""RPC failover (``--rpc-url A,B,…``) against real anvils on 127.0.0.1: a dead endpoint first, a node stopped
mid-command, endpoints on different chains."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from zkml.errors import ChainError, ConfigError
from zkml.evm.anvil import Anvil, free_port
from zkml.evm.chain import connect, parse_rpc_urls
from zkml_cli.main import app

runner = CliRunner()
SINK = "0x" + "11" * 20


@pytest.fixture
def two_anvils() -> Iterator[tuple[Anvil, Anvil]]:
    a, b = Anvil.start(), Anvil.start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def _closed_port() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(("value", "expected"), [
    ("http://127.0.0.1:1", ["http://127.0.0.1:1"]),
    ("http://127.0.0.1:1, http://127.0.0.1:2,", ["http://127.0.0.1:1", "http://127.0.0.1:2"]),
    ("http://127.0.0.1:1,http://127.0.0.1:1", ["http://127.0.0.1:1"]),
    (["https://127.0.0.1:3"], ["https://127.0.0.1:3"]),
])
def test_parse_rpc_urls(value: Any, expected: list[str]) -> None:
    assert parse_rpc_urls(value) == expected


@pytest.mark.parametrize("value", ["", " , ", "127.0.0.1:8545", "ftp://127.0.0.1:1", "http://a,file:///etc/passwd"])
def test_parse_rpc_urls_refuses(value: str) -> None:
    with pytest.raises(ConfigError):
        parse_rpc_urls(value)


def test_dead_endpoint_first(two_anvils: tuple[Anvil, Anvil]) -> None:
    a, _ = two_anvils
    dead = _closed_port()
    said: list[str] = []
    chain = connect(f"{dead},{a.rpc_url}", allow_dev_key=True, report=said.append)
    assert chain.rpc_url == a.rpc_url and chain.rpc_urls == (dead, a.rpc_url)
    assert said == [f"rpc: {a.rpc_url} answered (chain 31337); {dead} unreachable"]
    receipt = chain.send_raw(SINK, b"", value=1)
    assert receipt.block == 1 and chain.block_number() == 1 and chain.rpc_url == a.rpc_url


def test_all_dead_is_one_line() -> None:
    d1, d2 = _closed_port(), _closed_port()
    with pytest.raises(ChainError) as e:
        connect(f"{d1},{d2}")
    assert str(e.value) == f"cannot reach RPC at any of 2 endpoints: {d1} unreachable, {d2} unreachable"


def test_node_stopped_mid_transaction(two_anvils: tuple[Anvil, Anvil], monkeypatch: pytest.MonkeyPatch) -> None:
    """The primary dies after estimating gas: fees, nonce, the send and the receipt go to the second node."""
    a, b = two_anvils
    said: list[str] = []
    chain = connect(f"{a.rpc_url},{b.rpc_url}", allow_dev_key=True, report=said.append)
    answered: list[tuple[str, str]] = []
    real = chain._send_once

    def spy(ep: Any, method: str, params: list[Any]) -> Any:
        reply = real(ep, method, params)
        answered.append((ep.url, method))
        if method == "eth_estimateGas":
            a.stop()  # the node goes away in the middle of the command
        return reply

    monkeypatch.setattr(chain, "_send_once", spy)
    receipt = chain.send_raw(SINK, b"", value=1)
    assert not a.running()
    assert (a.rpc_url, "eth_estimateGas") in answered
    assert (b.rpc_url, "eth_sendRawTransaction") in answered and (a.rpc_url, "eth_sendRawTransaction") not in answered
    assert chain.rpc_url == b.rpc_url and receipt.block == 1
    assert connect(b.rpc_url).block_number() == 1
    assert any(s.startswith(f"rpc: {a.rpc_url} unreachable; {b.rpc_url} answered") for s in said)


def test_reads_fail_over_and_writes_return_to_the_primary(tmp_path: Path) -> None:
    """A read after the primary stops goes to the backup; once the primary is back, a transaction goes to it."""
    port = free_port()
    a = Anvil.start(port=port)
    b = Anvil.start()
    try:
        chain = connect(f"{a.rpc_url},{b.rpc_url}", allow_dev_key=True)
        assert chain.block_number() == 0 and chain.rpc_url == a.rpc_url
        a.stop()
        assert chain.block_number() == 0 and chain.rpc_url == b.rpc_url
        a = Anvil.start(port=port)
        receipt = chain.send_raw(SINK, b"", value=1)
        assert chain.rpc_url == a.rpc_url and receipt.block == 1
        assert connect(b.rpc_url).block_number() == 0
    finally:
        a.stop()
        b.stop()


def test_different_chain_ids_are_refused(tmp_path: Path) -> None:
    with Anvil.start() as a, Anvil.start(chain_id=4242) as b:
        with pytest.raises(ChainError) as e:
            connect(f"{a.rpc_url},{b.rpc_url}")
        assert str(e.value) == f"RPC endpoints disagree on the chain: {a.rpc_url} is chain 31337, {b.rpc_url} is chain 4242"
        r = runner.invoke(app, ["registry", "show", "m", "--store", str(tmp_path)],
                          env={"ZKML_RPC_URL": f"{a.rpc_url},{b.rpc_url}"})
        assert r.exit_code == 2 and "Traceback" not in r.stderr
        assert r.stderr.strip().splitlines()[-1].startswith("error: RPC endpoints disagree on the chain")
        assert len([ln for ln in r.stderr.splitlines() if ln.startswith("error")]) == 1


def test_endpoint_of_another_chain_found_at_failover(tmp_path: Path) -> None:
    """An endpoint down at connect and later up on another chain is refused when first used, never trusted."""
    port = free_port()
    with Anvil.start() as a:
        chain = connect(f"{a.rpc_url},http://127.0.0.1:{port}")
        with Anvil.start(port=port, chain_id=4242):
            a.stop()
            with pytest.raises(ChainError, match=f"RPC endpoints disagree: http://127.0.0.1:{port} is chain 4242"):
                chain.block_number()


def test_cli_says_which_endpoint_answered(two_anvils: tuple[Anvil, Anvil], tmp_path: Path) -> None:
    a, _ = two_anvils
    dead = _closed_port()
    r = runner.invoke(app, ["registry", "show", "m", "--rpc-url", f"{dead},{a.rpc_url}", "--store", str(tmp_path)])
    assert f"rpc: {a.rpc_url} answered (chain 31337); {dead} unreachable" in r.stderr
    assert r.exit_code == 2 and "no ModelRegistry recorded for chain 31337" in r.stderr
