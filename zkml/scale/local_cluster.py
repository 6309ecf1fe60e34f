"""A real Ray cluster on this machine's loopback (head + extra nodes), for tests, benchmarks and trying ``--ray``.

Every node is a real ``ray start`` process tree on 127.0.0.1; :meth:`LocalCluster.stop`
(also on ``with`` exit) runs ``ray stop`` so nothing is left behind.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from zkml.errors import ToolError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalCluster:
    """``nodes`` Ray nodes of ``cpus`` CPUs each on 127.0.0.1."""

    def __init__(self, nodes: int = 2, cpus: int = 1, object_store_mb: int = 200):
        self.nodes = nodes
        self.cpus = cpus
        self.object_store = object_store_mb * 1024 * 1024
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp = Path(tempfile.mkdtemp(prefix="zr"))  # short: Ray's socket paths have a length limit
        self.ray = str(Path(os.sys.executable).with_name("ray"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
        self.env["RAY_USAGE_STATS_ENABLED"] = "0"

    def _ray(self, *args: str, timeout: float = 120) -> None:
        r = subprocess.run([self.ray, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise ToolError(f"ray {args[0]} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")

    def start(self) -> LocalCluster:
        """Start the head, then the other nodes; wait until all are alive."""
        common = ["--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus}",
                  f"--object-store-memory={self.object_store}", "--disable-usage-stats"]
        try:
            self._ray("start", "--head", f"--port={self.port}", "--include-dashboard=false",
                      f"--temp-dir={self.temp}", *common)
            for _ in range(self.nodes - 1):
                self._ray("start", f"--address={self.address}", *common)
            self.wait_nodes(self.nodes)
        except BaseException:
            self.stop()
            raise
        return self

    def alive_nodes(self) -> list[dict[str, Any]]:
        """Live nodes as the GCS sees them (queried in a subprocess: the caller's ray driver stays its own)."""
        import json

        code = ("import ray,json;ray.init(address=%r,logging_level='ERROR',log_to_driver=False);"
                "print(json.dumps([{'node':n['NodeID'],'cpus':n['Resources'].get('CPU',0)} for n in ray.nodes() if n['Alive']]))"
                % self.address)
        r = subprocess.run([os.sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=120)
        try:
            return list(json.loads(r.stdout.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            return []

    def wait_nodes(self, n: int, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.alive_nodes()) >= n:
                return
            time.sleep(1)
        raise ToolError(f"the local Ray cluster did not reach {n} live nodes in {timeout:.0f}s")

    def stop(self) -> None:
        """``ray stop --force`` and remove the temp dir."""
        try:
            subprocess.run([self.ray, "stop", "--force"], env=self.env, capture_output=True, timeout=120)
        finally:
            shutil.rmtree(self.temp, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
