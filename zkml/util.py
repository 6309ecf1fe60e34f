"""Small shared helpers: digests, atomic writes, canonical JSON."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON encoding used for every digest over structured data."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def sha256_json(obj: Any) -> str:
    """Hex sha256 of the canonical JSON encoding of ``obj``."""
    return sha256_bytes(canonical_json(obj))


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside ``dest``; rename it into place only on success.

    A crash mid-write leaves at most a ``.tmp`` file that nothing trusts.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(dest: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(dest: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON to ``dest`` atomically."""
    write_bytes_atomic(dest, (json.dumps(obj, indent=indent, allow_nan=False) + "\n").encode())


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file (errors propagate; callers wrap them in their own type)."""
    with open(path, "rb") as f:
        return json.loads(f.read())


@contextlib.contextmanager
def native_output_captured() -> Iterator[Path]:
    """Send the process's fd 1/2 to a temp log while native code (ezkl) runs.

    ezkl prints tables and progress straight to the file descriptors, which
    would corrupt ``--json`` output. The log's tail is available to error
    messages through the yielded path until the block exits.
    """
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    fd, log = tempfile.mkstemp(prefix="zkml-ezkl-", suffix=".log")
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield Path(log)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for s in saved:
            os.close(s)
        os.close(fd)
        try:
            os.unlink(log)
        except OSError:
            pass


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second (as every zkml document records it)."""
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def printable(text: str) -> str:
    """``text`` with control and escape characters made visible, safe to print on a terminal."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text))
