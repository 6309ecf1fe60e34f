"""Subprocess entry point that runs one ``ezkl.prove``.

Run as ``python -m zkml._prove_worker WITNESS COMPILED PK PROOF SRS``. It
imports nothing heavy (startup ~50 ms), so the parent can enforce a timeout by
killing the whole process group: ezkl 23.0.5 ``prove`` can hang on some inputs
(upstream issue 1029), and a thread cannot be stopped, a process can.
Prints one JSON line: ``{"ok": bool, "seconds": float, "error": str|null}``.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(argv: list[str]) -> int:
    witness, compiled, pk, proof, srs = argv
    import ezkl

    t = time.perf_counter()
    # ezkl chatters on fd 1/2; keep our JSON line on a private copy of stdout.
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        ok = bool(ezkl.prove(witness, compiled, pk, proof, srs_path=srs))
        err = None if ok else "ezkl.prove returned false"
    except Exception as e:  # reported to the parent as data, not a traceback
        ok, err = False, f"{type(e).__name__}: {e}"
    out.write(json.dumps({"ok": ok, "seconds": time.perf_counter() - t, "error": err}) + "\n")
    out.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
