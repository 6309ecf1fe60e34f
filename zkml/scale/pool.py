"""A local pool of warm prover processes.

Each worker is one ``python -m zkml._prove_worker --serve`` subprocess: the
interpreter and ``import ezkl`` are paid once, then it proves job after job.
A proof still runs in a process the parent can kill, so a hang (ezkl issue
1029) ends in :class:`~zkml.errors.ProveTimeout` and a crash in a retry on a
fresh worker, never in a half-read proof. Each worker's ezkl thread pool is
capped (``RAYON_NUM_THREADS``) so N workers do not oversubscribe the cores.
"""

from __future__ import annotations

import json
import os
import queue
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from zkml.errors import ProofError, ProveTimeout

START_TIMEOUT_S = 60.0


class WorkerCrashed(ProofError):
    """A prover process died before answering (killed, out of memory, native crash)."""

    def __init__(self, pid: int, code: int | None):
        super().__init__(f"prover worker {pid} died (exit code {code})")
        self.pid = pid
        self.code = code


def cores() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers(pk_bytes: int | None = None, jobs: int | None = None) -> int:
    """A sensible pool size: one worker per core, fewer if memory (≈3× the pk per worker) or the job count is short."""
    n = cores()
    if pk_bytes:
        import psutil

        n = min(n, max(1, int(psutil.virtual_memory().available // (3 * pk_bytes + 200_000_000))))
    if jobs is not None:
        n = min(n, max(1, jobs))
    return max(1, n)


def threads_per_worker(workers: int) -> int:
    """ezkl threads per worker so that workers × threads ≈ cores."""
    return max(1, cores() // max(1, workers))


class WarmWorker:
    """One persistent prover subprocess. Not thread-safe: one caller at a time (the pool hands it out)."""

    def __init__(self, threads: int | None = None):
        self.threads = threads
        self.proc: subprocess.Popen[bytes] | None = None
        self._buf = b""
        self._ready_pending = False

    @classmethod
    def adopt(cls, proc: subprocess.Popen[bytes]) -> WarmWorker:
        """A worker around a ``--serve`` process already started (its ready line not read yet):
        :func:`zkml._prove_worker.prestart`'s, with ezkl's own thread count."""
        w = cls(None)
        w.proc = proc
        w._ready_pending = True
        return w

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self) -> None:
        """Start the subprocess and wait for its ready line (ezkl imported)."""
        from zkml._prove_worker import serve_process

        self.close()
        self.proc = serve_process(self.threads)
        self._buf = b""
        self._ready_pending = False
        self._read_line(START_TIMEOUT_S)

    def _read_line(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    raise ProveTimeout(timeout)
                if not sel.select(left):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    pid = self.proc.pid
                    code = self.proc.wait()
                    self.proc = None
                    raise WorkerCrashed(pid, code)
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return dict(json.loads(line))

    def prove(self, compiled: Path, pk: Path, srs: Path, witness: Path, proof: Path, timeout: float) -> dict[str, Any]:
        """Prove one witness; return the worker's result line (``seconds``, ``pid``).

        Raises:
            ProveTimeout: no answer within ``timeout`` (the worker is killed; the next call starts a fresh one).
            WorkerCrashed: the worker died.
            ProofError: ezkl failed.
        """
        if self.pid is None:
            self.start()
        elif self._ready_pending:
            self._ready_pending = False
            self._read_line(START_TIMEOUT_S)
        assert self.proc is not None and self.proc.stdin is not None
        job = {"witness": str(witness), "compiled": str(compiled), "pk": str(pk), "proof": str(proof), "srs": str(srs)}
        pid = self.proc.pid
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            code = self.proc.wait()
            self.proc = None
            raise WorkerCrashed(pid, code) from None
        res = self._read_line(timeout)
        if not res.get("ok") or not proof.is_file():
            raise ProofError(f"proving failed: {res.get('error')}")
        return res

    def kill(self) -> None:
        """Kill the worker's process group now."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        """Stop the worker (closing stdin ends it; killed if it lingers)."""
        if self.proc is None:
            return
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (subprocess.TimeoutExpired, OSError):
            pass
        self.kill()


class ProverPool:
    """N warm prover processes; a :data:`zkml.prove.ProveChunks` backend (call it with the chunks' witnesses).

    Use as a context manager, or call :meth:`close`: it owns subprocesses.
    """

    def __init__(self, workers: int | None = None, *, threads: int | None = None, retries: int = 1):
        if workers is not None and workers < 1:
            from zkml.errors import ConfigError

            raise ConfigError(f"--workers must be at least 1, not {workers}")
        self.workers = workers or default_workers()
        self.threads = threads or threads_per_worker(self.workers)
        self.retries = retries
        self._idle: queue.Queue[WarmWorker] = queue.Queue()
        self._all = [WarmWorker(self.threads) for _ in range(self.workers)]
        for w in self._all:
            self._idle.put(w)
        self._lock = threading.Lock()
        self.host = socket.gethostname()

    def __enter__(self) -> ProverPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pids(self) -> list[int]:
        """The live worker pids (for health reports and fault tests)."""
        return [p for p in (w.pid for w in self._all) if p is not None]

    def warm(self) -> None:
        """Start every worker now (else each starts on its first job)."""
        with ThreadPoolExecutor(self.workers) as ex:
            list(ex.map(lambda w: w.start() if w.pid is None else None, self._all))

    def prove_one(self, circuit: Any, witness: Path, timeout: float) -> Any:
        """Prove one witness on the next free worker, retrying a crash on a fresh process."""
        from zkml.prove import ChunkProof

        proof = witness.with_name("proof.json")
        for attempt in range(1, self.retries + 2):
            w = self._idle.get()
            try:
                res = w.prove(circuit.compiled, circuit.pk, circuit.srs.path, witness, proof, timeout)
            except WorkerCrashed:
                if attempt > self.retries:
                    raise
                continue
            finally:
                self._idle.put(w)
            data = json.loads(proof.read_text())
            proof.unlink()
            return ChunkProof(proof=data, seconds=float(res["seconds"]),
                              prover={"backend": "pool", "host": self.host, "pid": int(res["pid"]), "attempt": attempt,
                                      "threads": self.threads})
        raise AssertionError("unreachable")

    def __call__(self, circuit: Any, witnesses: Sequence[Path], timeout: float,
                 progress: Callable[[str], None] = lambda _: None) -> list[Any]:
        n = len(witnesses)
        progress(f"proving {n} proof(s) on {min(self.workers, n)} worker(s) × {self.threads} ezkl thread(s)")
        done = 0

        def one(w: Path) -> Any:
            nonlocal done
            cp = self.prove_one(circuit, w, timeout)
            with self._lock:
                done += 1
                progress(f"proof {done}/{n} done (worker {cp.prover['pid']}, {cp.seconds:.2f}s)")
            return cp

        with ThreadPoolExecutor(min(self.workers, n) or 1) as ex:
            return list(ex.map(one, witnesses))

    def close(self) -> None:
        """Stop every worker."""
        for w in self._all:
            w.close()
