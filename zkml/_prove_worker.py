"""Subprocess entry point that runs ``ezkl.prove``: once, or warm for many jobs.

``python -m zkml._prove_worker WITNESS COMPILED PK PROOF SRS`` proves once.
``python -m zkml._prove_worker --serve`` stays up: one JSON job per stdin line
(``{"witness", "compiled", "pk", "proof", "srs"}``), one JSON result per line,
so a pool (:mod:`zkml.scale.pool`) pays interpreter start and ``import ezkl``
once per worker instead of once per proof.

It imports nothing heavy (startup ~50 ms), so the parent can enforce a timeout by
killing the whole process group: ezkl 23.0.5 ``prove`` can hang on some inputs
(upstream issue 1029), and a thread cannot be stopped, a process can.
Each result is one JSON line: ``{"ok": bool, "seconds": float, "error": str|null, "pid": int}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import IO, Any


def _prove(witness: str, compiled: str, pk: str, proof: str, srs: str) -> dict[str, Any]:
    import ezkl

    t = time.perf_counter()
    try:
        ok = bool(ezkl.prove(witness, compiled, pk, proof, srs_path=srs))
        err = None if ok else "ezkl.prove returned false"
    except Exception as e:  # reported to the parent as data, not a traceback
        ok, err = False, f"{type(e).__name__}: {e}"
    return {"ok": ok, "seconds": time.perf_counter() - t, "error": err, "pid": os.getpid()}


def _private_stdout() -> IO[str]:
    # ezkl chatters on fd 1/2; keep our JSON lines on a private copy of stdout.
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    return out


def serve(stdin: IO[str]) -> int:
    """Answer jobs until stdin closes."""
    import ezkl  # noqa: F401  (warm: imported before the first job)

    out = _private_stdout()
    out.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    out.flush()
    for line in stdin:
        if not line.strip():
            continue
        try:
            job = json.loads(line)
            res = _prove(job["witness"], job["compiled"], job["pk"], job["proof"], job["srs"])
        except (ValueError, KeyError, TypeError) as e:
            res = {"ok": False, "seconds": 0.0, "error": f"bad job line: {e}", "pid": os.getpid()}
        out.write(json.dumps(res) + "\n")
        out.flush()
    return 0


def prover_env(threads: int | None = None) -> dict[str, str]:
    """The environment of a prover process: no secrets; ``threads`` caps ezkl's (rayon's) thread pool."""
    from zkml.keys import child_env

    env = child_env()  # the prover needs no key
    if threads is not None:
        env["RAYON_NUM_THREADS"] = str(max(1, int(threads)))
    return env


def serve_process(threads: int | None = None) -> Any:
    """Start a ``--serve`` prover process (a ``subprocess.Popen``; its ready line is the caller's to read)."""
    import subprocess

    return subprocess.Popen(
        [sys.executable, "-m", "zkml._prove_worker", "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, start_new_session=True, env=prover_env(threads))


_prestarted: Any = None  # a subprocess.Popen started by prestart(), taken by take_prestarted()


def prestart() -> None:
    """Start one warm prover process (``--serve``) now, without waiting for it.

    The ``zkml`` entry point calls this first thing for a one-proof ``zkml prove``, so the
    prover's interpreter start and ``import ezkl`` overlap the CLI's own imports, circuit
    lookup and witness. Light on purpose: nothing heavy is imported here. The process gets
    no secret (:func:`prover_env`); if nothing takes it, it ends when this process does
    (its stdin closes).
    """
    global _prestarted
    if _prestarted is None:
        _prestarted = serve_process()


def take_prestarted() -> Any:
    """The process :func:`prestart` started (None if none, or if it already exited); it is the caller's now."""
    global _prestarted
    proc, _prestarted = _prestarted, None
    if proc is not None and proc.poll() is not None:
        return None
    return proc


def main(argv: list[str]) -> int:
    if argv == ["--serve"]:
        return serve(sys.stdin)
    witness, compiled, pk, proof, srs = argv
    out = _private_stdout()
    res = _prove(witness, compiled, pk, proof, srs)
    out.write(json.dumps(res) + "\n")
    out.flush()
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
