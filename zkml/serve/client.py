"""Client of ``zkml serve`` with failover: each server in turn, then (the caller's choice) local proving.

A server is skipped when it is unreachable, lacks the circuit (404), answers 5xx, stays busy (429)
past its Retry-After budget, or reports the job failed; a ``400`` (bad input)
is the same everywhere, so it stops the search
with :class:`ServiceRefused`. The client sends one ``request_id`` per
request, so retrying a server (e.g. across its restart) never makes it prove twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from zkml.errors import InputError, ProofError

BUSY_BUDGET_S = 30.0
RESTART_GRACE_S = 30.0


class ServiceUnavailable(ProofError):
    """No server proved the request (each was unreachable, busy or failed)."""


class ServiceRefused(InputError):
    """A server refused the request itself (bad input, unknown circuit): another would too."""


class ProverClient:
    """Talks to one or more prover services, in order."""

    def __init__(self, urls: Sequence[str], *, token: str | None = None, connect_timeout: float = 3.0,
                 progress: Callable[[str], None] = lambda _: None):
        self.urls = [u.rstrip("/") for u in urls if u.strip()]
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.connect_timeout = connect_timeout
        self.progress = progress

    def prove(self, samples: Any, *, circuit: str | None = None, model_sha256: str | None = None,
              timeout: float = 600.0, reveal_input: bool | None = None) -> tuple[Any, str]:
        """``(bundle, url that proved it)``.

        Raises:
            ServiceRefused: a server refused the input or the circuit.
            ServiceUnavailable: every server failed.
        """
        import httpx

        from zkml.bundle import Bundle
        from zkml.errors import BundleError

        body = {"input": samples, "request_id": uuid.uuid4().hex, "reveal_input": reveal_input, "wait": 60.0}
        body.update({"circuit": circuit} if circuit else {"model_sha256": model_sha256})
        reasons = []
        for url in self.urls:
            try:
                doc = self._one(httpx, url, body, timeout)
                b = Bundle.parse(doc["bundle"], source=f"bundle from {url}")
            except (_Skip, BundleError) as e:
                reasons.append(f"{url}: {e}")
                self.progress(f"server {url}: {e}")
                continue
            return b, url
        raise ServiceUnavailable("no prover service proved it (" + "; ".join(reasons) + ")")

    def _one(self, httpx: Any, url: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        t_end = time.monotonic() + timeout + 60.0
        busy_until = time.monotonic() + BUSY_BUDGET_S
        job: str | None = None
        down_since: float | None = None
        with httpx.Client(headers=self.headers, timeout=httpx.Timeout(90.0, connect=self.connect_timeout)) as http:
            while time.monotonic() < t_end:
                try:
                    if job is None:
                        r = http.post(f"{url}/v1/prove", json=body)
                    else:
                        r = http.get(f"{url}/v1/jobs/{job}", params={"wait": 30})
                    down_since = None
                except httpx.HTTPError as e:
                    # Unreachable before it accepted: next server. After: it may be restarting; the job is on its disk.
                    if job is None:
                        raise _Skip(f"unreachable ({type(e).__name__})") from None
                    down_since = down_since or time.monotonic()
                    if time.monotonic() - down_since > RESTART_GRACE_S:
                        raise _Skip(f"lost contact with job {job}") from None
                    time.sleep(0.5)
                    continue
                if r.status_code == 429:
                    wait = float(r.headers.get("retry-after", "1") or 1)
                    if time.monotonic() + wait > busy_until:
                        raise _Skip("busy (429)")
                    self.progress(f"server {url} busy, retrying in {wait:.0f}s")
                    time.sleep(wait)
                    continue
                if r.status_code == 404 and job is None:
                    raise _Skip(f"no such circuit there ({_error(r)})")
                if r.status_code in (400, 404, 413):
                    raise ServiceRefused(f"server {url} refused the request: {_error(r)}")
                if r.status_code == 401:
                    raise _Skip("unauthorized (check $ZKML_SERVE_TOKEN)")
                if r.status_code >= 500:
                    raise _Skip(f"server error {r.status_code}")
                doc = r.json()
                job = doc.get("job", job)
                if doc.get("status") == "done":
                    return dict(doc)
                if doc.get("status") == "failed":
                    raise _Skip(f"job failed: {doc.get('error')}")
                if doc.get("progress"):
                    self.progress(f"server {url}: {doc['progress']}")
        raise _Skip("timed out")


class _Skip(Exception):
    """This server did not prove it; try the next."""


def _error(r: Any) -> str:
    try:
        return str(r.json().get("error"))
    except ValueError:
        return r.text[:200]
