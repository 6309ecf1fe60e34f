"""Proving at scale: a warm process pool, Ray tasks, and a prover service, behind one call.

:func:`prove_many` is what the CLI, the gate and ``zkml audit respond`` call for
many samples; it returns the same typed bundle as :func:`zkml.prove.prove`
(proofs in sample order), with ``metadata.provers`` saying which process,
node or server made each proof (unchecked metadata).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from zkml.errors import ProofError
from zkml.scale.pool import ProverPool, WarmWorker, WorkerCrashed, default_workers, threads_per_worker

__all__ = ["ProverPool", "WarmWorker", "WorkerCrashed", "default_workers", "threads_per_worker", "prove_many"]


def prove_many(
    circuit: Any,
    samples: np.ndarray,
    *,
    workers: int | None = None,
    ray: str | None = None,
    server: str | Sequence[str] | None = None,
    token: str | None = None,
    timeout: float | None = None,
    reveal_input: bool | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> Any:
    """Prove ``samples`` on ``circuit`` (a :class:`zkml.circuit.Circuit`) and return one bundle.

    Where it runs, first match wins:
    - ``server``: one URL or a list; each is tried in turn (unreachable, busy or failing: the next), and if
      none proves, proving falls back to this machine (``ray`` or the pool below);
    - ``ray``: a Ray cluster address or ``auto``: one Ray task per proof;
    - otherwise a local pool of ``workers`` warm prover processes (default :func:`default_workers`).

    Raises:
        InputError: bad samples. ProveTimeout / ProofError: proving failed everywhere.
        ConfigError: a bad worker count or an unreachable Ray cluster.
    """
    from zkml.prove import DEFAULT_TIMEOUT_S, prove
    from zkml.scale.route import jsonable

    timeout = DEFAULT_TIMEOUT_S if timeout is None else timeout
    if server:
        from zkml.serve.client import ProverClient, ServiceUnavailable

        urls = [server] if isinstance(server, str) else list(server)
        try:
            bundle, url = ProverClient(urls, token=token, progress=progress).prove(
                jsonable(samples), circuit=circuit.circuit_id, timeout=timeout, reveal_input=reveal_input)
        except ServiceUnavailable as e:
            progress(f"{e}; proving locally")
        else:
            if bundle.circuit_id != circuit.circuit_id:
                raise ProofError(f"server {url} proved on circuit {bundle.circuit_id}, not {circuit.circuit_id}")
            return with_via(bundle, url)
    if ray:
        from zkml.scale.ray_tasks import RayProver

        rp = RayProver(ray)
        try:
            return prove(circuit, samples, timeout=timeout, reveal_input=reveal_input, progress=progress, executor=rp)
        finally:
            rp.close()
    try:
        per = max(1, int(np.prod(circuit.sample_shape)))
        n_chunks = max(1, -(-(int(np.size(samples)) // per) // circuit.batch_size))
    except (TypeError, ValueError):  # several inputs: size the pool from the cores alone
        n_chunks = None
    if workers is None and n_chunks == 1:  # one proof: no pool to start
        from zkml._prove_worker import take_prestarted

        proc = take_prestarted()
        if proc is None:
            return prove(circuit, samples, timeout=timeout, reveal_input=reveal_input, progress=progress)
        from zkml.prove import prove_chunks_local

        worker = WarmWorker.adopt(proc)  # the entry point's early prover: already warm

        def on_worker(c: Any, witness: Any, proof: Any, t: float) -> float:
            return float(worker.prove(c.compiled, c.pk, c.srs.path, witness, proof, t)["seconds"])

        try:
            return prove(circuit, samples, timeout=timeout, reveal_input=reveal_input, progress=progress,
                         executor=lambda c, wits, t, prog: prove_chunks_local(c, wits, t, prog, run=on_worker))
        finally:
            worker.close()
    n = workers or default_workers(circuit.pk.stat().st_size, n_chunks)
    with ProverPool(n) as pool:
        return prove(circuit, samples, timeout=timeout, reveal_input=reveal_input, progress=progress, executor=pool)


def with_via(bundle: Any, via: str) -> Any:
    """A copy whose ``metadata.provers`` entries name the server that proved (``via``)."""
    provers = tuple({**p, "via": via} for p in bundle.meta.provers) or ({"via": via},)
    return replace(bundle, meta=replace(bundle.meta, provers=provers))

