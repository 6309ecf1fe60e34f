"""zkml.scale on real proofs: the warm pool (incl. a worker killed mid-proof), the node cache,
and Ray tasks on a real 2-node loopback cluster (incl. a Ray worker killed mid-run)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from zkml.bundle import Bundle
from zkml.errors import ConfigError, StoreError
from zkml.scale import ProverPool, prove_many
from zkml.scale.artifacts import NodeCache
from zkml.util import sha256_bytes
from zkml.verify import verify

REPO = Path(__file__).resolve().parent.parent
ZKML = [sys.executable, "-m", "zkml_cli.main"]


def _valid(b: Bundle, store) -> bool:
    return verify(Bundle.parse(b.to_json()), store).valid


# ---------------------------------------------------------------------------
# Local pool
# ---------------------------------------------------------------------------


def test_pool_bundle_in_order_and_valid(mlp_circuit, store, test_set, mlp_bundle):
    x = test_set[0][:3]
    b = prove_many(mlp_circuit, x, workers=2)
    assert [e.first_sample for e in b.proofs] == [0, 1, 2]
    assert b.outputs[0] == mlp_bundle.outputs[0]  # same circuit, same sample: same outputs as the plain prove
    assert _valid(b, store)
    pids = {p["pid"] for p in b.meta.provers}
    assert len(b.meta.provers) == 3 and len(pids) == 2
    assert all(p["backend"] == "pool" and p["threads"] == max(1, (os.cpu_count() or 1) // 2) for p in b.meta.provers)


def test_pool_worker_killed_mid_proof_is_retried(mlp_circuit, store, test_set):
    with ProverPool(1, retries=1) as pool:
        pool.warm()
        victim = pool.pids()[0]
        killed = threading.Event()

        def kill_when_busy() -> None:
            p = psutil.Process(victim)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and p.cpu_times().user < 0.5:  # busy proving
                time.sleep(0.05)
            os.kill(victim, signal.SIGKILL)
            killed.set()

        t = threading.Thread(target=kill_when_busy)
        t.start()
        from zkml.prove import prove

        b = prove(mlp_circuit, test_set[0][:1], executor=pool)
        t.join()
    assert killed.is_set()
    assert b.meta.provers[0]["attempt"] == 2 and b.meta.provers[0]["pid"] != victim
    assert _valid(b, store)


def test_pool_no_leftover_processes(mlp_circuit, test_set):
    with ProverPool(2) as pool:
        pool.warm()
        pids = pool.pids()
        assert len(pids) == 2
    time.sleep(0.2)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)


def test_pool_refuses_zero_workers():
    with pytest.raises(ConfigError, match="at least 1"):
        ProverPool(0)


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers must be at least 1"),
    (["--server", "ftp://x"], "expected an http:// or https:// URL"),
])
def test_cli_bad_scale_flags_one_line(mlp_circuit, store, tmp_path, args, message):
    inp = tmp_path / "in.json"
    inp.write_text("[" + ",".join(["0.1"] * 64) + "]")
    r = subprocess.run([*ZKML, "prove", mlp_circuit.circuit_id, "-i", str(inp), "-o", str(tmp_path / "p.json"),
                        "--store", str(store.root), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------------------
# Digest-addressed node cache
# ---------------------------------------------------------------------------


def test_node_cache_refuses_wrong_digest_and_refetches_corruption(tmp_path):
    cache = NodeCache(tmp_path)
    data = b"proving key bytes"
    good = sha256_bytes(data)
    with pytest.raises(StoreError, match="different digest"):
        cache.put(good, b"tampered bytes")
    assert not cache.valid(good)
    cache.put(good, data)
    assert cache.valid(good)
    cache.path(good).write_bytes(b"corrupted on disk")  # changed after the check: size/mtime differ
    assert not cache.valid(good) and not cache.path(good).exists()
    with pytest.raises(StoreError):
        cache.path("../../etc/passwd")


# ---------------------------------------------------------------------------
# Ray on a real 2-node loopback cluster
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    from zkml.scale.local_cluster import LocalCluster

    c = LocalCluster(nodes=2, cpus=1)
    try:
        c.start()
        yield c
    finally:
        c.stop()  # ray stop: nothing left behind


@pytest.fixture()
def node_cache(tmp_path, monkeypatch):
    d = tmp_path / "node-cache"
    monkeypatch.setenv("ZKML_NODE_CACHE", str(d))
    return d


def test_ray_two_nodes_artifacts_once_per_node(cluster, mlp_circuit, store, test_set, node_cache):
    from zkml.scale.ray_tasks import RayProver

    rp = RayProver(cluster.address, cache_root=str(node_cache))
    try:
        from zkml.prove import prove

        b = prove(mlp_circuit, test_set[0][:6], executor=rp)
    finally:
        rp.close()
    assert _valid(b, store)
    nodes = {p["node"] for p in b.meta.provers}
    assert len(nodes) == 2  # both nodes proved
    for n in nodes:  # each node fetched each artifact exactly once
        fetched = [f for p in b.meta.provers if p["node"] == n for f in p["fetched"]]
        assert sorted(fetched) == ["model.compiled", "pk.key", "settings.json", "srs"]
    assert len(list(node_cache.glob("node-*"))) == 2


@pytest.mark.slow
def test_ray_worker_killed_mid_run_is_retried(cluster, mlp_circuit, store, test_set, node_cache):
    victims: list[int] = []

    def kill_one() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not victims:
            for p in psutil.process_iter(["pid", "cmdline"]):
                cmd = " ".join(p.info["cmdline"] or [])
                if cmd.startswith("ray::_task_body"):
                    try:
                        if p.cpu_times().user > 0.5:  # mid-proof
                            p.kill()
                            victims.append(p.pid)
                            return
                    except psutil.Error:
                        continue
            time.sleep(0.1)

    t = threading.Thread(target=kill_one)
    t.start()
    b = prove_many(mlp_circuit, test_set[0][:6], ray=cluster.address)
    t.join()
    assert victims, "no Ray worker was caught mid-proof"
    assert len(b.proofs) == 6 and [e.first_sample for e in b.proofs] == list(range(6))
    assert victims[0] not in {p["pid"] for p in b.meta.provers}
    assert _valid(b, store)


def test_ray_unreachable_cluster_one_line(mlp_circuit, store, tmp_path):
    from zkml.scale.local_cluster import free_port

    inp = tmp_path / "in.json"
    inp.write_text("[" + ",".join(["0.1"] * 64) + "]")
    r = subprocess.run([*ZKML, "prove", mlp_circuit.circuit_id, "-i", str(inp), "-o", str(tmp_path / "p.json"),
                        "--store", str(store.root), "--ray", f"127.0.0.1:{free_port()}"],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: ")
