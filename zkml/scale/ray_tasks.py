"""Proofs as Ray tasks on an existing Ray cluster (``zkml prove --ray ADDRESS|auto``).

Ray schedules, retries and moves data; zkml only says what a task is:
- the circuit's artifacts are put in Ray's object store once per driver and
  passed to tasks *by reference inside a list*, so Ray does not ship them with
  every task; a task fetches a blob only when its node's digest cache
  (:class:`zkml.scale.artifacts.NodeCache`) lacks it, checks the digest, and
  keeps it: each node receives each artifact once;
- a task proves one witness in its (warm) Ray worker process and returns the
  proof with the node id, host and pid that made it (bundle metadata);
- a killed worker or a lost node is retried by Ray (``max_retries``); a proof
  that exceeds the timeout is cancelled (its worker killed) and reported.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zkml.errors import ConfigError, ProofError, ProveTimeout
from zkml.scale.artifacts import Blob, NodeCache, circuit_digests, default_cache

MAX_RETRIES = 3


def _task_body(witness: bytes, blobs: list[Blob], cache_root: str | None) -> dict[str, Any]:
    """What runs on the node: artifacts from the node cache (fetched once), then ``ezkl.prove``."""
    import ezkl
    import ray

    from zkml.util import native_output_captured

    t0 = time.perf_counter()
    node = ray.get_runtime_context().get_node_id()
    # One cache per Ray node (several nodes may share a host, as on a loopback test cluster)
    cache = NodeCache((Path(cache_root) if cache_root else default_cache()) / f"node-{node[:16]}")
    paths, fetched = cache.materialize(blobs, lambda ref: ray.get(ref[0]))
    t_fetch = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="zkml-ray-") as tmp:
        wpath, ppath = Path(tmp) / "witness.json", Path(tmp) / "proof.json"
        wpath.write_bytes(witness)
        t = time.perf_counter()
        try:
            with native_output_captured():
                ok = ezkl.prove(str(wpath), str(paths["model.compiled"]), str(paths["pk.key"]), str(ppath),
                                srs_path=str(paths["srs"]))
        except RuntimeError as e:
            raise ProofError(f"proving failed on {socket.gethostname()}: {e}") from e
        secs = time.perf_counter() - t
        if not ok or not ppath.is_file():
            raise ProofError("ezkl.prove returned false")
        proof = json.loads(ppath.read_text())
    return {"proof": proof, "seconds": secs, "node": node, "host": socket.gethostname(),
            "pid": os.getpid(), "fetched": fetched, "fetch_seconds": t_fetch,
            "task_seconds": time.perf_counter() - t0}


def _check_reachable(address: str) -> None:
    """Fail fast on a dead ``HOST:PORT`` (``ray.init`` would retry for minutes).

    Raises:
        ConfigError: malformed, or nothing listening there.
    """
    if address == "auto":
        return
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray {address!r}: expected HOST:PORT or auto")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise ConfigError(f"cannot join the Ray cluster at {address!r}: {e.strerror or e}") from None


class RayProver:
    """A :data:`zkml.prove.ProveChunks` backend running each proof as a Ray task.

    ``address``: a Ray cluster address (``HOST:PORT``) or ``auto`` (the cluster this machine belongs to).
    ``threads``: ezkl threads per task (and CPUs it reserves).
    """

    def __init__(self, address: str, *, threads: int = 1, max_retries: int = MAX_RETRIES,
                 cache_root: str | None = None):
        self.address = address
        self.threads = max(1, threads)
        self.max_retries = max_retries
        self.cache_root = cache_root
        self._blobs: dict[str, Blob] = {}  # sha256 -> blob already in the object store
        self._remote: Any = None

    def connect(self) -> Any:
        """Join the cluster (once); returns the ``ray`` module.

        Raises:
            ConfigError: no cluster at that address.
        """
        import ray

        if not ray.is_initialized():
            _check_reachable(self.address)
            try:
                ray.init(address=self.address, logging_level="ERROR", log_to_driver=False,
                         include_dashboard=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise ConfigError(f"cannot join the Ray cluster at {self.address!r}: {str(e).splitlines()[0]}") from None
        if self._remote is None:
            self._remote = ray.remote(_task_body).options(
                num_cpus=self.threads, max_retries=self.max_retries, retry_exceptions=False,
                runtime_env={"env_vars": {"RAYON_NUM_THREADS": str(self.threads)}},
            )
        return ray

    def nodes(self) -> list[dict[str, Any]]:
        """The cluster's live nodes (id, address, CPUs)."""
        ray = self.connect()
        return [{"node": n["NodeID"], "address": n["NodeManagerAddress"], "cpus": n["Resources"].get("CPU", 0)}
                for n in ray.nodes() if n.get("Alive")]

    def ship(self, circuit: Any) -> list[Blob]:
        """The circuit's artifacts as blobs in the object store (each put once per driver, by digest)."""
        ray = self.connect()
        out = []
        for name, (path, digest) in circuit_digests(circuit).items():
            if digest not in self._blobs:
                self._blobs[digest] = Blob(name=name, sha256=digest, ref=[ray.put(Path(path).read_bytes())])
            b = self._blobs[digest]
            out.append(Blob(name=name, sha256=digest, ref=b.ref))
        return out

    def __call__(self, circuit: Any, witnesses: Sequence[Path], timeout: float,
                 progress: Callable[[str], None] = lambda _: None) -> list[Any]:
        from zkml.prove import ChunkProof

        ray = self.connect()
        blobs = self.ship(circuit)
        n = len(witnesses)
        refs = [self._remote.remote(Path(w).read_bytes(), blobs, self.cache_root) for w in witnesses]
        index = {r: i for i, r in enumerate(refs)}
        results: list[dict[str, Any] | None] = [None] * n
        pending = list(refs)
        # A whole-run deadline: every proof may take `timeout`, the cluster runs them side by side
        deadline = time.monotonic() + timeout * max(1, n)
        progress(f"ray: {n} proof task(s) submitted to {self.address}")
        try:
            while pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ProveTimeout(timeout)
                ready, pending = ray.wait(pending, num_returns=1, timeout=min(left, 5.0))
                for r in ready:
                    try:
                        res = ray.get(r)
                    except ray.exceptions.RayTaskError as e:
                        cause = e.cause if isinstance(getattr(e, "cause", None), Exception) else e
                        raise ProofError(f"a Ray proof task failed: {cause}") from None
                    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                            ray.exceptions.RayError) as e:
                        raise ProofError(f"a Ray proof task failed after {self.max_retries} retries: "
                                         f"{type(e).__name__}") from None
                    results[index[r]] = res
                    done = sum(x is not None for x in results)
                    progress(f"ray: proof {done}/{n} done on node {res['node'][:12]} (pid {res['pid']}, "
                             f"{res['seconds']:.2f}s{', fetched ' + '+'.join(res['fetched']) if res['fetched'] else ''})")
        finally:
            for r in pending:
                ray.cancel(r, force=True)
        return [ChunkProof(proof=r["proof"], seconds=float(r["seconds"]),
                           prover={"backend": "ray", "node": r["node"], "host": r["host"], "pid": r["pid"],
                                   "fetched": r["fetched"], "task_seconds": r["task_seconds"]})
                for r in results if r is not None]

    def close(self) -> None:
        """Leave the cluster (the cluster itself keeps running)."""
        import ray

        if ray.is_initialized():
            ray.shutdown()
        self._blobs.clear()
        self._remote = None
