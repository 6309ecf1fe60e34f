"""The prover service's job queue: bounded, on disk, never losing or duplicating a job.

Layout under the service's job folder::

    <id>/job.json      the request and its state (queued, running, done, failed), written atomically
    <id>/bundle.json   the proof bundle, written atomically *before* the state says done

A job is accepted only once it is on disk. On start, jobs left ``queued`` or
``running`` by a stopped or crashed service are queued again (a ``running``
one counts as an interrupted attempt; after :data:`MAX_ATTEMPTS` it is failed,
explicitly); a job whose bundle is complete but whose state was not yet
updated is marked done, and half-written temp files of a crash are removed (the
folder is held by one service at a time, ``.lock``). A client's ``request_id`` maps to one job, so a
retried POST gets the job it already created instead of a second one.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zkml.errors import ConfigError
from zkml.util import read_json, write_json_atomic

MAX_ATTEMPTS = 3
JOB_ID = re.compile(r"[0-9a-f]{32}")
REQUEST_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
STATES = ("queued", "running", "done", "failed")


class QueueFull(Exception):
    """The queue holds its maximum of queued + running jobs."""


@dataclass
class Job:
    """One proof request and where it stands."""

    id: str
    """32 hex chars."""
    circuit: str
    """The circuit id it is proven on."""
    samples: list[Any]
    """The input samples (floats, nested per sample shape)."""
    reveal_input: bool | None
    """As :func:`zkml.prove.prove`."""
    request_id: str | None = None
    """The client's idempotency key."""
    state: str = "queued"
    """queued | running | done | failed."""
    attempts: int = 0
    """How many times a worker started it."""
    error: str | None = None
    """Why it failed."""
    progress: str = ""
    """The latest progress line (in memory; not persisted)."""
    created: float = field(default_factory=time.time)
    """Accept time (unix seconds)."""
    finished: float | None = None
    """Done/failed time."""
    prover: dict[str, Any] | None = None
    """Which worker proved it."""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "circuit": self.circuit, "samples": self.samples, "reveal_input": self.reveal_input,
                "request_id": self.request_id, "state": self.state, "attempts": self.attempts, "error": self.error,
                "created": self.created, "finished": self.finished, "prover": self.prover}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Job:
        return cls(**{k: d[k] for k in ("id", "circuit", "samples", "reveal_input", "request_id", "state", "attempts",
                                         "error", "created", "finished", "prover")})

    def public(self) -> dict[str, Any]:
        """What ``GET /v1/jobs/ID`` shows (without the input)."""
        return {"job": self.id, "status": self.state, "circuit": self.circuit, "samples": len(self.samples),
                "attempts": self.attempts, "error": self.error, "progress": self.progress,
                "created": self.created, "finished": self.finished, "prover": self.prover}


class JobQueue:
    """Jobs on disk plus an in-memory FIFO of those waiting. Thread-safe."""

    def __init__(self, root: Path, capacity: int):
        if capacity < 1:
            raise ConfigError(f"--queue must be at least 1, not {capacity}")
        self.root = root
        self.capacity = capacity
        self.jobs: dict[str, Job] = {}
        self.by_request: dict[str, str] = {}
        self.waiting: deque[str] = deque()
        self.cond = threading.Condition()
        self.recovered = {"requeued": 0, "done": 0, "failed": 0}
        root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = self._lock(root)
        self._recover()

    @staticmethod
    def _lock(root: Path) -> int:
        """Hold the job folder for this process: two services on one folder would both re-queue its jobs."""
        fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(f"job folder {root} is in use by another running zkml serve") from None
        return fd

    def close(self) -> None:
        """Release the job folder (the lock also goes with the process)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # Persistence
    def _dir(self, job_id: str) -> Path:
        if not JOB_ID.fullmatch(job_id):
            raise KeyError(job_id)
        return self.root / job_id

    def bundle_path(self, job_id: str) -> Path:
        return self._dir(job_id) / "bundle.json"

    def _save(self, job: Job) -> None:
        d = self._dir(job.id)
        d.mkdir(exist_ok=True)
        write_json_atomic(d / "job.json", job.to_json())

    def _recover(self) -> None:
        from zkml.bundle import Bundle
        from zkml.errors import BundleError

        for d in sorted(self.root.iterdir(), key=lambda p: p.name):
            if not (d.is_dir() and JOB_ID.fullmatch(d.name)):
                continue
            for tmp in d.glob(".*.tmp"):  # a crashed service's half-written file; this process holds the folder
                tmp.unlink(missing_ok=True)
            if not (d / "job.json").is_file():
                continue
            try:
                job = Job.from_json(read_json(d / "job.json"))
            except (ValueError, KeyError, TypeError, OSError):
                continue  # a job.json is written atomically: unreadable means not ours
            if job.state in ("queued", "running"):
                try:
                    Bundle.load(d / "bundle.json")
                    job.state, job.finished = "done", time.time()
                    self.recovered["done"] += 1
                except BundleError:
                    if job.state == "running" and job.attempts >= MAX_ATTEMPTS:
                        job.state, job.finished = "failed", time.time()
                        job.error = f"interrupted {job.attempts} times (worker crash or service restart)"
                        self.recovered["failed"] += 1
                    else:
                        job.state = "queued"
                        self.recovered["requeued"] += 1
                self._save(job)
            self.jobs[job.id] = job
            if job.request_id:
                self.by_request[job.request_id] = job.id
        for job in sorted(self.jobs.values(), key=lambda j: j.created):
            if job.state == "queued":
                self.waiting.append(job.id)

    # Queue
    def active(self) -> int:
        """Queued + running jobs."""
        return sum(j.state in ("queued", "running") for j in self.jobs.values())

    def find_request(self, request_id: str) -> Job | None:
        with self.cond:
            jid = self.by_request.get(request_id)
            return self.jobs.get(jid) if jid else None

    def submit(self, circuit: str, samples: list[Any], reveal_input: bool | None, request_id: str | None) -> tuple[Job, bool]:
        """Accept a job (on disk before this returns); ``(job, created)``: an old job for a known ``request_id``.

        Raises:
            QueueFull: at capacity.
        """
        with self.cond:
            if request_id is not None and request_id in self.by_request:
                return self.jobs[self.by_request[request_id]], False
            if self.active() >= self.capacity:
                raise QueueFull()
            job = Job(id=uuid.uuid4().hex, circuit=circuit, samples=samples, reveal_input=reveal_input,
                      request_id=request_id)
            self._save(job)
            self.jobs[job.id] = job
            if request_id is not None:
                self.by_request[request_id] = job.id
            self.waiting.append(job.id)
            self.cond.notify()
            return job, True

    def take(self, stop: threading.Event) -> Job | None:
        """The next queued job, now running (attempt counted on disk first); None once ``stop`` is set."""
        with self.cond:
            while not self.waiting:
                if stop.is_set():
                    return None
                self.cond.wait(0.2)
            if stop.is_set():
                return None
            job = self.jobs[self.waiting.popleft()]
            job.state, job.attempts = "running", job.attempts + 1
            self._save(job)
            return job

    def finish(self, job: Job, *, error: str | None = None, retry: bool = False) -> None:
        """Mark done (its bundle already written), failed, or queued again for another attempt."""
        with self.cond:
            if retry and job.attempts < MAX_ATTEMPTS:
                job.state, job.error = "queued", error
                self.waiting.appendleft(job.id)
                self.cond.notify()
            else:
                job.state = "failed" if error else "done"
                job.error = error
                job.finished = time.time()
            self._save(job)
            self.cond.notify_all()

    def get(self, job_id: str) -> Job | None:
        with self.cond:
            return self.jobs.get(job_id)

    def counts(self) -> dict[str, int]:
        with self.cond:
            return {s: sum(j.state == s for j in self.jobs.values()) for s in STATES}
