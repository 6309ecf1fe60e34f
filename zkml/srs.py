"""Structured reference strings (KZG parameters over BN254).

Two sources:
- **dev**: ``ezkl.gen_srs`` — generated locally from a secret that is *not*
  destroyed in any ceremony. Anyone who knows it can forge proofs. Fine for
  development and CI; every bundle made with it says so, and the CLI warns.
- **ceremony**: a file from a real powers-of-tau ceremony, passed by path.
  Its header and size are checked against the logrows it claims.

The file layout (halo2 ``ParamsKZG``, raw bytes) is ``k: u32 LE`` followed by
``2^k`` G1 points, ``2^k`` Lagrange-basis G1 points (64 bytes each) and two G2
points (128 bytes each), so its size is exactly ``4 + 128 * 2^k + 256``.
An SRS must have exactly the circuit's logrows: ezkl accepts a larger one but
then downsizes it on every setup and prove (measured ~10x slower).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from zkml.errors import SRSError
from zkml.util import atomic_path, read_json, sha256_file, write_json_atomic

DEV_WARNING = (
    "INSECURE development SRS (ezkl.gen_srs): proofs are not sound against whoever knows its secret; "
    "use --srs with a ceremony file for anything real"
)


@dataclass(frozen=True)
class SRS:
    """A KZG parameter file zkml has checked."""

    path: Path
    """Where the parameters are."""
    logrows: int
    """k: the file holds 2^k G1 points."""
    sha256: str
    """Digest of the file, recorded in manifests and bundles."""
    kind: str
    """``dev`` (insecure, generated here) or ``ceremony`` (given by path)."""

    @property
    def insecure(self) -> bool:
        """True for a development SRS."""
        return self.kind == "dev"

    def describe(self) -> dict[str, object]:
        """JSON-friendly description for manifests and bundles."""
        return {"kind": self.kind, "logrows": self.logrows, "sha256": self.sha256, "insecure": self.insecure}


def expected_size(logrows: int) -> int:
    """Byte size of a raw ``ParamsKZG`` file of ``2^logrows`` points."""
    return 4 + 128 * (1 << logrows) + 256


def read_header(path: Path) -> int:
    """Return k from an SRS file's header after checking the size matches it.

    Raises:
        SRSError: missing, truncated, or a size that does not match its header.
    """
    if not path.is_file():
        raise SRSError(f"SRS file not found: {path}")
    size = path.stat().st_size
    if size < 4:
        raise SRSError(f"{path}: not an SRS file (only {size} bytes)")
    with open(path, "rb") as f:
        (k,) = struct.unpack("<I", f.read(4))
    if not 1 <= k <= 28:
        raise SRSError(f"{path}: not an SRS file (header claims 2^{k} points)")
    if size != expected_size(k):
        raise SRSError(f"{path}: corrupt or truncated SRS: {size} bytes, expected {expected_size(k)} for k={k}")
    return k


def ceremony_srs(path: str | Path, logrows: int) -> SRS:
    """Check a ceremony SRS file for a circuit of ``logrows``.

    Raises:
        SRSError: unreadable, corrupt, or built for a different k.
    """
    p = Path(path).resolve()
    k = read_header(p)
    if k != logrows:
        raise SRSError(
            f"{p}: SRS has k={k} but the circuit needs logrows={logrows}; "
            f"use the ceremony file for k={logrows} (or compile with --max-logrows {k})"
        )
    return SRS(path=p, logrows=k, sha256=sha256_file(p), kind="ceremony")


def dev_srs(store_root: Path, logrows: int) -> SRS:
    """Return the cached development SRS for ``logrows``, generating it once.

    The sidecar ``kN.json`` records its digest; a file that no longer matches
    is regenerated, never trusted.

    Raises:
        SRSError: generation failed.
    """
    import ezkl
    from filelock import FileLock

    folder = store_root / "srs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"dev-k{logrows}.srs"
    meta = folder / f"dev-k{logrows}.json"
    with FileLock(str(folder / f".dev-k{logrows}.lock")):
        if path.is_file() and meta.is_file():
            try:
                recorded = read_json(meta)["sha256"]
                if read_header(path) == logrows and sha256_file(path) == recorded:
                    return SRS(path=path, logrows=logrows, sha256=recorded, kind="dev")
            except (SRSError, KeyError, ValueError, OSError):
                pass
        with atomic_path(path) as tmp:
            try:
                ezkl.gen_srs(str(tmp), logrows)
            except RuntimeError as e:
                raise SRSError(f"generating a dev SRS for k={logrows} failed: {e}") from e
        digest = sha256_file(path)
        write_json_atomic(meta, {"kind": "dev", "logrows": logrows, "sha256": digest, "warning": DEV_WARNING})
        return SRS(path=path, logrows=logrows, sha256=digest, kind="dev")
