"""Circuit artifacts shipped by digest and cached on each node, checked before use.

A remote prover needs four files: the compiled circuit, the proving key, the
settings and the SRS. They travel as content-addressed blobs: the driver
names each by its sha256 (from the circuit's validated manifest, or hashed
once for the SRS); a node keeps ``<cache>/<sha256>`` files and uses one only
after hashing it and finding that digest (once per process; again if the file
changes). A blob that arrives with the wrong digest is refused, not written.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zkml.errors import StoreError
from zkml.util import sha256_bytes, sha256_file

NAMES = ("model.compiled", "pk.key", "settings.json", "srs")


@dataclass(frozen=True)
class Blob:
    """One artifact: its role, its digest, and where its bytes can be fetched from (a Ray ObjectRef)."""

    name: str
    """``model.compiled``, ``pk.key``, ``settings.json`` or ``srs``."""
    sha256: str
    """Digest the bytes must have."""
    ref: Any
    """Handle to the bytes (a Ray ObjectRef; nested in a list when passed so Ray does not fetch it eagerly)."""


def circuit_digests(circuit: Any) -> dict[str, tuple[Path, str]]:
    """Role -> (local path, sha256) for a circuit's prover artifacts (manifest digests; the SRS from its record)."""
    f = circuit.files
    return {
        "model.compiled": (circuit.compiled, f["model.compiled"]),
        "pk.key": (circuit.pk, f["pk.key"]),
        "settings.json": (circuit.settings_path, f["settings.json"]),
        "srs": (circuit.srs.path, circuit.srs.sha256),
    }


def default_cache() -> Path:
    """``$ZKML_NODE_CACHE`` or a per-user folder under the temp dir."""
    return Path(os.environ.get("ZKML_NODE_CACHE") or Path(tempfile.gettempdir()) / f"zkml-node-cache-{os.getuid()}")


class NodeCache:
    """A node's digest-addressed artifact folder."""

    _checked: dict[str, tuple[int, int]] = {}  # path -> (size, mtime_ns) when its digest last matched (per process)

    def __init__(self, root: Path | None = None):
        self.root = root or default_cache()

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise StoreError("not an artifact digest")
        return self.root / sha256

    def valid(self, sha256: str) -> bool:
        """True when the cached file exists and hashes to its name (hashed once per process and file version)."""
        p = self.path(sha256)
        try:
            st = p.stat()
        except FileNotFoundError:
            return False
        stamp = (st.st_size, st.st_mtime_ns)
        if self._checked.get(str(p)) == stamp:
            return True
        if sha256_file(p) != sha256:
            p.unlink(missing_ok=True)  # corrupt or tampered: fetch again
            return False
        self._checked[str(p)] = stamp
        return True

    def put(self, sha256: str, data: bytes) -> Path:
        """Store bytes under their digest, refusing bytes that do not match it.

        Raises:
            StoreError: the bytes do not hash to ``sha256``.
        """
        if sha256_bytes(data) != sha256:
            raise StoreError(f"artifact {sha256[:16]}… arrived with a different digest: refused")
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        p = self.path(sha256)
        fd, tmp = tempfile.mkstemp(prefix=".in-", dir=self.root)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, p)
        st = p.stat()
        self._checked[str(p)] = (st.st_size, st.st_mtime_ns)
        return p

    def materialize(self, blobs: list[Blob], fetch: Any) -> tuple[dict[str, Path], list[str]]:
        """Paths for every blob, fetching (``fetch(ref) -> bytes``) only those not cached and valid.

        Returns ``(role -> path, roles fetched)``.
        """
        paths: dict[str, Path] = {}
        fetched: list[str] = []
        for b in blobs:
            if not self.valid(b.sha256):
                self.put(b.sha256, fetch(b.ref))
                fetched.append(b.name)
            paths[b.name] = self.path(b.sha256)
        return paths, fetched
