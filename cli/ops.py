"""Operating a deployed model: ``zkml cid`` (content ids of artifacts) and ``zkml monitor`` (drift, circuit breaker).

    zkml cid FILE…        # IPFS CIDv1 of each file, offline
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zkml_cli.common import JsonOpt, emit, run


def cid(
    files: Annotated[list[Path], typer.Argument(metavar="FILE…", help="Files to name.")],
    json_out: JsonOpt = False,
) -> None:
    """Print the IPFS CIDv1 of each file, computed offline.

    A file of at most 256 KiB gets the CID `ipfs add --cid-version 1 --raw-leaves` prints (bafkrei…); a larger
    one a raw-codec CID of its sha256, marked `raw-sha256` (not the UnixFS root `ipfs add` would give).
    """
    from zkml.commitments.cid import cid_of_file

    out = run(lambda: [(str(f), cid_of_file(f)) for f in files])
    data = {"files": [{"path": p, "cid": c.cid, "kind": c.kind, "size": c.size, "sha256": c.sha256,
                       "matches_ipfs_add": c.matches_ipfs_add} for p, c in out]}
    emit(json_out, data, "\n".join(f"{c.cid}  {p}" + ("" if c.matches_ipfs_add else "  (raw-sha256: over 256 KiB, "
                                                      "not the ipfs add root)") for p, c in out))


def register(app: typer.Typer) -> None:
    """Attach ``cid`` (and ``monitor``)."""
    app.command("cid")(cid)
