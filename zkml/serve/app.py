"""The prover service: a FastAPI app over a bounded on-disk job queue and warm prover workers.

Endpoints (JSON):
- ``POST /v1/prove`` ``{"circuit": ID | "model_sha256": HEX, "input": ARRAY | {"input_data": ...},
  "request_id": KEY?, "reveal_input": BOOL?, "wait": SECONDS?}``: validates the input against the circuit,
  accepts the job (on disk), and waits up to ``wait`` seconds (default 60): ``200`` with the bundle when done,
  ``202`` with the job id (poll ``/v1/jobs/ID``) otherwise; ``429`` + ``Retry-After`` when the queue is full;
  ``400`` for bad input, ``404`` for an unknown circuit.
- ``GET /v1/jobs/ID?wait=S``: state, progress, and the bundle once done.
- ``GET /v1/health``: up, queue counts, workers. ``GET /v1/circuits``: what this service proves.

Circuits are opened (every file digest-checked) once and kept; each worker thread
owns one warm prover process (:class:`zkml.scale.pool.WarmWorker`) whose ezkl
threads are capped so workers × threads ≈ cores. A worker that dies mid-proof
is restarted and its job retried (up to :data:`zkml.serve.jobs.MAX_ATTEMPTS`
attempts), then failed explicitly. With a token set every endpoint but health
needs ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from zkml import __version__
from zkml.errors import StoreError, ZkmlError
from zkml.serve.jobs import JOB_ID, REQUEST_ID, Job, JobQueue, QueueFull

MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_WAIT_S = 600.0
RECHECK_S = 1.0
"""A waiting request re-reads its job's state at least this often (it is woken when any job ends)."""


@dataclass(frozen=True)
class ServeConfig:
    """How a service runs."""

    store: Path
    """The artifact store whose circuits it proves."""
    jobs: Path
    """Where jobs and bundles live (survives a restart)."""
    workers: int = 1
    """Prover processes."""
    queue: int = 64
    """Most queued + running jobs; beyond it POST answers 429."""
    token: str | None = None
    """Bearer token; None: no auth (loopback only, enforced by :func:`zkml.serve.check_bind`)."""
    timeout: float = 600.0
    """Seconds per proof before its worker is killed."""


class Service:
    """The state behind the app: store, open circuits, queue, worker threads."""

    def __init__(self, cfg: ServeConfig):
        from zkml.scale.pool import ProverPool, threads_per_worker
        from zkml.store import Store

        self.cfg = cfg
        self.store = Store(cfg.store)
        self.queue = JobQueue(cfg.jobs, cfg.queue)
        self.circuits: dict[str, Any] = {}
        self._clock = threading.Lock()
        threads = threads_per_worker(cfg.workers)
        self.pools = [ProverPool(1, threads=threads, retries=0) for _ in range(cfg.workers)]
        self.current: list[str | None] = [None] * cfg.workers
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.host = socket.gethostname()
        self.prove_seconds: list[float] = []
        self.started = time.time()
        # Requests waiting for a job sleep on this event; a worker that ends a job wakes them
        # (no polling loop taking CPU from the proofs on the same cores)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None

    # Circuits
    def circuit(self, ref: str | None = None, model_sha256: str | None = None) -> Any:
        """Open (once) the circuit a request names.

        Raises:
            StoreError: no such circuit in this service's store.
        """
        from zkml.circuit import open_circuit

        if model_sha256 is not None:
            ids = self.store.model_circuit_ids(model_sha256) if isinstance(model_sha256, str) else []
            if not ids:
                raise StoreError("this service has no circuit for that model")
            ref = ids[0]
        if not isinstance(ref, str):
            raise StoreError("name a circuit (circuit id) or a model (model_sha256)")
        with self._clock:
            if ref in self.circuits:
                return self.circuits[ref]
            folder = self.store.find_circuit(ref)
            c = open_circuit(folder, self.store)
            self.circuits[c.circuit_id] = c
            self.circuits[ref] = c
            return c

    def list_circuits(self) -> list[dict[str, Any]]:
        out = []
        for m in self.store.list_circuits():
            d = m.data
            out.append({"circuit_id": d["circuit_id"], "model_sha256": d["model"]["sha256"],
                        "sample_shape": d["model"]["sample_shape"], "logrows": d["logrows"],
                        "batch_size": d["options"]["batch_size"], "warm": d["circuit_id"] in self.circuits})
        return out

    # Workers
    def start(self) -> None:
        # Workers first, then the threads that feed them: a recovered queue is taken at once, and a worker
        # started twice (by warm() and by its first job) would leave two processes behind one pipe.
        for p in self.pools:
            p.warm()
        for i in range(self.cfg.workers):
            t = threading.Thread(target=self._work, args=(i,), name=f"zkml-prover-{i}", daemon=True)
            t.start()
            self.threads.append(t)

    def shutdown(self) -> None:
        self.stop.set()
        for p in self.pools:
            p.close()  # a running proof dies; its job stays `running` on disk and is retried on restart
        for t in self.threads:
            t.join(timeout=10)
        self.queue.close()

    def _work(self, i: int) -> None:
        from zkml.prove import prove
        from zkml.scale.pool import WorkerCrashed

        pool = self.pools[i]
        while not self.stop.is_set():
            job = self.queue.take(self.stop)
            if job is None:
                return
            self.current[i] = job.id
            try:
                c = self.circuit(job.circuit)

                def progress(msg: str, job: Job = job) -> None:
                    job.progress = msg

                b = prove(c, _to_array(job.samples), timeout=self.cfg.timeout,
                          reveal_input=job.reveal_input, progress=progress, executor=pool)
                from dataclasses import replace

                provers = tuple({**p, "backend": "serve", "host": self.host, "job": job.id} for p in b.meta.provers)
                b = replace(b, meta=replace(b.meta, provers=provers))
                b.save(self.queue.bundle_path(job.id))  # atomic: a bundle is whole or absent
                job.prover = dict(provers[0]) if provers else None
                self.prove_seconds = (self.prove_seconds + [float(b.timings["prove_seconds"])])[-50:]
                self.queue.finish(job)
            except WorkerCrashed as e:
                if self.stop.is_set():
                    return  # shutting down: the job stays `running` on disk, retried on restart
                self.queue.finish(job, error=str(e), retry=True)
            except ZkmlError as e:
                if self.stop.is_set():
                    return
                self.queue.finish(job, error=e.message)
            except Exception as e:  # a bug: the job still ends, explicitly
                self.queue.finish(job, error=f"internal error: {type(e).__name__}: {e}")
            finally:
                self.current[i] = None
                self._notify()

    def _notify(self) -> None:
        """From a worker thread: wake the requests waiting for jobs."""
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._pulse)
            except RuntimeError:  # the loop is closed (shutting down)
                pass

    def _pulse(self) -> None:
        if self._changed is not None:
            self._changed.set()
        self._changed = asyncio.Event()

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the queue ahead × mean proof time / workers."""
        mean = sum(self.prove_seconds) / len(self.prove_seconds) if self.prove_seconds else 1.0
        return max(1, math.ceil(mean * max(1, len(self.queue.waiting)) / self.cfg.workers))

    # Responses
    def job_body(self, job: Job) -> dict[str, Any]:
        from zkml.util import read_json

        body = job.public()
        if job.state == "done":
            body["bundle"] = read_json(self.queue.bundle_path(job.id))
        return body

    async def wait_for(self, job: Job, seconds: float) -> None:
        """Return when ``job`` has ended or ``seconds`` have passed."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if self._changed is None:
            self._changed = asyncio.Event()
        deadline = time.monotonic() + min(max(0.0, seconds), MAX_WAIT_S)
        while job.state in ("queued", "running"):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(left, RECHECK_S))
            except TimeoutError:
                pass


def _err(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _to_array(value: Any) -> Any:
    """The request's input as :func:`zkml.prove.prove` takes it: one array, or a list of them (several inputs)."""
    if isinstance(value, dict) and "input_data" not in value:  # named arrays
        return {str(k): np.asarray(v, dtype=np.float64) for k, v in value.items()}
    if isinstance(value, dict):  # ezkl's input JSON
        data = value["input_data"]
        if not isinstance(data, list) or not data:
            raise ValueError("input_data must be a non-empty list")
        if len(data) > 1:
            return [np.asarray(d, dtype=np.float64) for d in data]
        value = data[0]
    return np.asarray(value, dtype=np.float64)


def _jsonable(value: Any) -> Any:
    from zkml.scale.route import jsonable

    return jsonable(value)


def create_app(cfg: ServeConfig) -> FastAPI:
    """The ASGI app for ``cfg`` (worker threads start with the app and stop with it)."""
    svc = Service(cfg)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        svc.start()
        try:
            yield
        finally:
            svc.shutdown()

    app = FastAPI(title="zkml prover", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.service = svc

    def authorized(request: Request) -> bool:
        if cfg.token is None:
            return True
        got = request.headers.get("authorization", "")
        return hmac.compare_digest(got.encode(), f"Bearer {cfg.token}".encode())

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if request.url.path != "/v1/health" and not authorized(request):
            return _err(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY_BYTES):
            return _err(413, f"request body over {MAX_BODY_BYTES} bytes")
        return await call_next(request)

    @app.get("/v1/health")
    async def health(request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": True, "version": __version__, "queue": svc.queue.counts(),
                                "capacity": cfg.queue, "workers": cfg.workers}
        if authorized(request):
            body["worker_pids"] = [pid for p in svc.pools for pid in p.pids()]
            body["running"] = [j for j in svc.current if j]
            body["recovered"] = svc.queue.recovered
        return body

    @app.get("/v1/circuits")
    async def circuits() -> dict[str, Any]:
        return {"circuits": await asyncio.to_thread(svc.list_circuits)}

    @app.post("/v1/prove")
    async def prove(request: Request) -> JSONResponse:
        # Input validation
        try:
            body = await request.json()
        except ValueError:
            return _err(400, "body is not JSON")
        if not isinstance(body, dict) or "input" not in body:
            return _err(400, "body must be an object with an `input`")
        rid = body.get("request_id")
        if rid is not None and (not isinstance(rid, str) or not REQUEST_ID.fullmatch(rid)):
            return _err(400, "request_id must be 1-128 chars of [A-Za-z0-9_.:-]")
        reveal = body.get("reveal_input")
        if reveal is not None and not isinstance(reveal, bool):
            return _err(400, "reveal_input must be true, false or absent")
        wait = body.get("wait", 60.0)
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not math.isfinite(wait):
            return _err(400, "wait must be a number of seconds")
        # A retried request gets its job, never a second one
        if rid is not None and (old := svc.queue.find_request(rid)) is not None:
            await svc.wait_for(old, wait)
            return JSONResponse(svc.job_body(old), status_code=200 if old.state in ("done", "failed") else 202)
        # Busy: answer at once, before any work
        if svc.queue.active() >= cfg.queue:
            return _err(429, "busy: the prover queue is full", {"Retry-After": str(svc.retry_after())})
        try:
            c = svc.circuit(body.get("circuit"), body.get("model_sha256"))
        except StoreError as e:
            return _err(404, e.message)
        from zkml.prove import check_samples

        try:
            raw = _to_array(body["input"])
            check_samples(c, raw)  # refuse bad input now, not in a failed job
        except ZkmlError as e:
            return _err(400, e.message)
        except (ValueError, TypeError) as e:
            return _err(400, f"input: {e}")
        try:
            job, _ = svc.queue.submit(c.circuit_id, _jsonable(raw), reveal, rid)
        except QueueFull:
            return _err(429, "busy: the prover queue is full", {"Retry-After": str(svc.retry_after())})
        await svc.wait_for(job, wait)
        status = 200 if job.state in ("done", "failed") else 202
        return JSONResponse(svc.job_body(job), status_code=status, headers={"Location": f"/v1/jobs/{job.id}"})

    @app.get("/v1/jobs/{job_id}")
    async def job(job_id: str, wait: float = 0.0) -> JSONResponse:
        if not JOB_ID.fullmatch(job_id):
            return _err(404, "no such job")
        j = svc.queue.get(job_id)
        if j is None:
            return _err(404, "no such job")
        await svc.wait_for(j, wait)
        return JSONResponse(svc.job_body(j))

    return app
