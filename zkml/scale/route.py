"""Where ``zkml prove`` proves: a prover service (with failover), a Ray cluster, a local pool, or in turn.

The CLI only parses flags; this decides, so the gate, audits and the Python API reach the same routes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ProveRoute:
    """Where many proofs run: the ``--workers`` / ``--ray`` / ``--server`` flags, parsed once.

    ``zkml prove``, the gate and ``zkml audit respond`` all take one, so each reaches the same routes.
    """

    workers: int | None = None
    """Local warm prover processes (None: from the cores and memory)."""
    ray: str | None = None
    """A Ray cluster address or ``auto``."""
    servers: tuple[str, ...] = ()
    """Prover service URLs, tried in order before proving here."""
    token: str | None = field(default=None, repr=False)
    """The services' bearer token (from ``$ZKML_SERVE_TOKEN``; never printed)."""

    @classmethod
    def from_flags(cls, workers: int | None = None, ray: str | None = None, server: str | None = None) -> ProveRoute:
        """Validate the flags.

        Raises:
            ConfigError: ``--workers`` below 1, a ``--server`` that is not an http(s) URL.
        """
        import os

        from zkml.errors import ConfigError

        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be at least 1, not {workers}")
        urls = tuple(u.strip() for u in (server or "").split(",") if u.strip())
        for u in urls:
            if not u.startswith(("http://", "https://")):
                raise ConfigError(f"--server {u!r}: expected an http:// or https:// URL")
        token = None
        if urls:
            from zkml.serve import TOKEN_ENV

            token = os.environ.get(TOKEN_ENV) or None
        return cls(workers=workers, ray=ray or None, servers=urls, token=token)

    def prove(self, circuit: Any, samples: Any, *, timeout: float | None = None, reveal_input: bool | None = None,
              progress: Callable[[str], None] = lambda _: None) -> Any:
        """:func:`zkml.scale.prove_many` on this route."""
        from zkml.scale import prove_many

        return prove_many(circuit, samples, workers=self.workers, ray=self.ray, server=self.servers or None,
                          token=self.token, timeout=timeout, reveal_input=reveal_input, progress=progress)


def remote_ref(target: str, store: Any) -> dict[str, str]:
    """What to ask a server for: the circuit id when this store knows it, else the model's digest.

    An ONNX is hashed, not parsed; a recipe names its ONNX; a folder or an id is sent as the id.
    """
    from zkml.util import sha256_file

    p = Path(target)
    if p.suffix == ".toml" and p.is_file():
        from zkml.recipe import load_recipe

        p = Path(load_recipe(p, {}).model)
    if p.suffix == ".onnx" and p.is_file():
        sha = sha256_file(p)
        ids = store.model_circuit_ids(sha)
        return {"circuit": ids[0]} if ids else {"model_sha256": sha}
    if p.is_dir():
        return {"circuit": p.name}
    return {"circuit": target}


def jsonable(raw: Any) -> Any:
    """An input as JSON: one array, a list of arrays, or named arrays."""
    if isinstance(raw, dict):
        return {str(k): jsonable(v) for k, v in raw.items()}
    if isinstance(raw, list | tuple):
        return [jsonable(v) for v in raw]
    return np.asarray(raw, dtype=np.float64).tolist()


def via(bundle: Any) -> str:
    """A short phrase for what proved a bundle, from its ``metadata.provers``."""
    ps = list(bundle.meta.provers)
    if not ps:
        return "this process (local)"
    if ps[0].get("via"):
        return f"server {ps[0]['via']}"
    kind = ps[0].get("backend")
    if kind == "ray":
        nodes = sorted({str(p.get("node", "?"))[:12] for p in ps})
        return f"Ray ({len(nodes)} node(s): {', '.join(nodes)})"
    pids = sorted({int(p.get("pid", 0)) for p in ps})
    return f"local pool ({len(pids)} worker(s) × {ps[0].get('threads', '?')} ezkl thread(s))"


def prove_target(
    target: str,
    raw: Any,
    store: Any,
    resolve: Callable[[], tuple[Any, bool]],
    *,
    route: ProveRoute = ProveRoute(),
    timeout: float = 600.0,
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[Any, bool, Any, str]:
    """``(circuit or None, cache_hit, bundle, what proved it)``.

    ``route.servers`` are tried in order (by circuit id or model digest, before anything is compiled here);
    if none proves it, proving falls back to this machine (``route.ray`` or the pool) and says so.
    ``resolve`` returns ``(circuit, cache_hit)`` (compiling if it must).

    Raises:
        ConfigError / InputError / ProofError: as the route that ran raised.
    """
    if route.servers:
        from zkml.serve.client import ProverClient, ServiceUnavailable

        client = ProverClient(list(route.servers), token=route.token, progress=progress)
        try:
            b, url = client.prove(jsonable(raw), timeout=timeout, **remote_ref(target, store))
        except ServiceUnavailable as e:
            progress(f"{e}: proving locally")
        else:
            from zkml.scale import with_via

            return None, False, with_via(b, url), f"server {url}"
    c, hit = resolve()
    from zkml.scale import prove_many

    b = prove_many(c, raw, workers=route.workers, ray=route.ray, timeout=timeout, progress=progress)
    label = via(b)
    if route.servers:
        label += " (fallback: no server proved it)"
    return c, hit, b, label
