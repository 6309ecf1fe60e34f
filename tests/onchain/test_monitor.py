"""Drift monitor + MonitorGuard circuit breaker on a real anvil with real digits-MLP proofs.

A clean stream (held-out digits) stays green; an inverted stream (1 - x) crosses the threshold, the monitor
pauses the model through MonitorGuard, on-chain verification then reverts, and the monitor cannot unpause.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from zkml.circuit import Circuit
from zkml.evm.anvil import ANVIL_DEV_KEY, Anvil
from zkml.evm.chain import Chain, connect
from zkml.evm.deploy import deploy_circuit, ensure_existing_registry
from zkml.evm.registry import Registry, RegistryError
from zkml.monitor import deploy_guard, open_guard, save_guard, trip
from zkml.prove import prove
from zkml.store import Store
from zkml_cli.main import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "models" / "digits_test.npz"
CHAIN_ID = 31_338  # its own chain id, so its store records never meet another test module's anvil
# anvil's public dev accounts #2 (the monitor) and #5 (the human emergency holder)
MONITOR_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
EMERGENCY_KEY = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"
N = 8  # proofs per stream = blocks per window


@pytest.fixture(scope="module")
def node() -> Iterator[Anvil]:
    a = Anvil.start(chain_id=CHAIN_ID)
    yield a
    a.stop()


def _as(chain: Chain, key: str) -> Chain:
    return connect(chain.rpc_url, key)


def _stream(circuit: Circuit, registry: Registry, mid: bytes, xs: np.ndarray, out: Path) -> list[int]:
    """Prove each sample, save its bundle, verifyAndRecord it; the blocks it landed in."""
    out.mkdir(parents=True, exist_ok=True)
    blocks = []
    for i, x in enumerate(xs):
        b = prove(circuit, x[None, :])
        b.save(out / f"{out.name}_{i}.json")
        receipt = registry.verify_and_record(mid, b.proofs[0].to_ezkl(b.ezkl_version))
        blocks.append(receipt.block)
    return blocks


@pytest.fixture(scope="module")
def world(node: Anvil, store: Store, mlp_circuit: Circuit, test_set: Any,
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    admin = connect(node.rpc_url, ANVIL_DEV_KEY)
    emergency = _as(admin, EMERGENCY_KEY).sender
    r = deploy_circuit(mlp_circuit, store, admin, model_id="digits_monitor", emergency=emergency)
    registry = ensure_existing_registry(store, admin)
    mid = bytes.fromhex(r.model_id_hex[2:])
    guard = deploy_guard(registry, [_as(admin, MONITOR_KEY).sender], cache_dir=store.solc_cache)
    save_guard(store, admin, guard.address)
    bundles = tmp_path_factory.mktemp("monitor-bundles")
    x = test_set[0]
    rng = np.random.default_rng(7)
    clean = _stream(mlp_circuit, registry, mid, x[rng.choice(len(x), N, replace=False)], bundles / "clean")
    shifted = _stream(mlp_circuit, registry, mid, 1.0 - x[rng.choice(len(x), N, replace=False)], bundles / "shifted")
    return {"admin": admin, "registry": registry, "mid": mid, "guard": guard, "bundles": bundles,
            "clean": clean, "shifted": shifted}


def _monitor(store: Store, node: Anvil, out: Path, *args: str, key: str = MONITOR_KEY) -> Any:
    return runner.invoke(app, ["monitor", "digits_monitor", "--reference", str(REFERENCE), "--window", str(N),
                               "--out", str(out), "--rpc-url", node.rpc_url, "--store", str(store.root), "--json",
                               *args], env={"ZKML_PRIVATE_KEY": key})


def test_clean_stream_stays_green(world: dict[str, Any], store: Store, node: Anvil, tmp_path: Path) -> None:
    clean = world["clean"]
    assert clean == list(range(clean[0], clean[0] + N))  # one proof per block
    r = _monitor(store, node, tmp_path, "--bundles", str(world["bundles"] / "clean"), "--from-block", str(clean[0]))
    assert r.exit_code == 0, r.stderr + r.stdout
    rep = json.loads(r.stdout)
    w = rep["windows"][0]
    print("clean", {k: w[k] for k in ("input_ks_mean", "input_ks_max", "argmax_psi", "argmax_hist", "gas_ratio")})
    assert w["proofs"] == N and w["matched"] == N and w["alerts"] == [] and rep["alert"] is None
    # the shifted proofs are on chain but have no bundle here: they count for gas only
    assert rep["unmatched"] == N and rep["windows"][1]["matched"] == 0
    assert (tmp_path / "monitor.png").stat().st_size > 10_000 and (tmp_path / "monitor.json").is_file()


def test_shifted_stream_trips_the_breaker(world: dict[str, Any], store: Store, node: Anvil, tmp_path: Path,
                                          mlp_bundle: Any) -> None:
    registry, mid = world["registry"], world["mid"]
    snap = world["admin"].snapshot()
    try:
        r = _monitor(store, node, tmp_path, "--bundles", str(world["bundles"]), "--from-block", str(world["clean"][0]),
                     "--pause-on-alert")
        assert r.exit_code == 1, r.stderr + r.stdout
        rep = json.loads(r.stdout)
        clean, shifted = rep["windows"]
        print("clean", {k: clean[k] for k in ("input_ks_mean", "input_ks_max", "argmax_psi", "gas_ratio")})
        print("shifted", {k: shifted[k] for k in ("input_ks_mean", "input_ks_max", "argmax_psi", "argmax_hist",
                                                   "gas_ratio")})
        assert clean["alerts"] == [] and "input_ks_mean" in shifted["alerts"]
        assert shifted["input_ks_mean"] > 2 * clean["input_ks_mean"]
        assert rep["alert"] == {"window": 1, "statistic": "input_ks_mean", "value": shifted["input_ks_mean"]}
        paused = rep["paused"]
        assert paused["statistic"] == "input_ks_mean"
        assert registry.model(mid).paused
        # the event carries the statistic
        events = world["guard"].history("CircuitBreakerTripped")
        assert [(e.args["statistic"], e.args["value"]) for e in events] == [
            ("input_ks_mean", round(shifted["input_ks_mean"] * 1_000_000))]
        # on-chain verification now reverts
        with pytest.raises(RegistryError, match="paused"):
            registry.verify(mid, mlp_bundle.proofs[0].to_ezkl(mlp_bundle.ezkl_version))
        # the monitor can only pause: no unpause through the guard, none directly, no second trip
        monitor_chain = _as(world["admin"], MONITOR_KEY)
        mon_reg = Registry(monitor_chain.at(registry.contract.abi, registry.address, "registry"))
        with pytest.raises(RegistryError):
            mon_reg.unpause(mid)
        assert not any(e.get("name") == "unpause" for e in world["guard"].abi)
        with pytest.raises(RegistryError, match="ModelIsPaused|paused"):
            trip(open_guard(store, monitor_chain), mid, "input_ks_mean", 1.0)
        # a stranger cannot trip
        stranger = _as(world["admin"], EMERGENCY_KEY)
        with pytest.raises(RegistryError, match="NotMonitor"):
            trip(open_guard(store, stranger), mid, "x", 1.0)
        # the human emergency holder can unpause; then verification works again
        Registry(stranger.at(registry.contract.abi, registry.address, "registry")).unpause(mid)
        assert registry.verify(mid, mlp_bundle.proofs[0].to_ezkl(mlp_bundle.ezkl_version))
    finally:
        world["admin"].revert(snap)


def test_bad_input_is_one_line(world: dict[str, Any], store: Store, node: Anvil, tmp_path: Path) -> None:
    r = runner.invoke(app, ["monitor", "digits_monitor", "--reference", str(tmp_path / "nope.npz"), "--rpc-url",
                            node.rpc_url, "--store", str(store.root)])
    assert r.exit_code == 2 and r.stderr.strip().splitlines()[-1].startswith("error:") and "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.startswith("error")]) == 1
    r = runner.invoke(app, ["monitor", "digits_monitor", "--reference", str(REFERENCE), "--window", "0",
                            "--rpc-url", node.rpc_url, "--store", str(store.root)])
    assert r.exit_code == 2 and "--window must be at least 1" in r.stderr
