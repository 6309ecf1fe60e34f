"""IPFS content ids (CIDv1) of artifacts, computed offline, and the registry metadata that carries them.

What :func:`cid_of_file` gives (``kind``):

``ipfs-raw-leaf``
    A file of at most one chunk (262,144 bytes, the default chunker of
    ``ipfs add``): CIDv1, codec ``raw`` (0x55), multihash sha2-256 of the
    bytes, multibase base32 lower (``b``), i.e. ``bafkrei…``. This is exactly
    what ``ipfs add --cid-version 1 --raw-leaves`` prints for the file, so
    the file can be fetched from IPFS by it.
``raw-sha256``
    A larger file: the *same construction over the whole file* (a raw-codec
    CIDv1 of its sha256). It names the bytes unambiguously and is checked the
    same way, but it is **not** the UnixFS DAG root ``ipfs add`` prints for a
    file over one chunk (that root is a dag-pb node, ``bafybei…``, over the
    chunks); we do not compute that root because we cannot test it here
    against ``ipfs`` itself. Pin such a file with ``ipfs add`` and keep both.

The CIDs are built with the maintained ``multiformats`` library.

Registry metadata (``metadataURI`` of a model record), format v1::

    zkml:circuit:<circuit id>;onnx=<cid>;settings=<cid>;vk=<cid>;verifier=<cid>[;dataset=<cid>]

The leading ``zkml:circuit:<id>`` is what records carried before; the
``name=cid`` pairs follow in that order. The registration block (the
``ModelRegistered`` event) is the on-chain timestamp of the CIDs.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from multiformats import CID, multihash

from zkml.errors import InputError

#: Bytes per chunk of ``ipfs add``'s default chunker (size-262144).
IPFS_CHUNK: Final[int] = 262_144
#: Artifacts whose CIDs a deployment records, in metadata order.
ARTIFACTS: Final[tuple[str, ...]] = ("onnx", "settings", "vk", "verifier", "dataset")
#: Prefix of zkml's metadata URIs.
METADATA_PREFIX: Final[str] = "zkml:circuit:"

CidKind = Literal["ipfs-raw-leaf", "raw-sha256"]


@dataclass(frozen=True)
class ContentId:
    """The content id of one file or byte string."""

    cid: str
    """CIDv1, base32 (``bafkrei…``)."""
    kind: CidKind
    """``ipfs-raw-leaf`` (what ``ipfs add --cid-version 1 --raw-leaves`` gives) or ``raw-sha256`` (larger file)."""
    size: int
    """Length in bytes."""
    sha256: str
    """Hex sha256 of the bytes (the CID's multihash digest)."""

    @property
    def matches_ipfs_add(self) -> bool:
        """Whether ``ipfs add --cid-version 1 --raw-leaves`` prints this same CID."""
        return self.kind == "ipfs-raw-leaf"


def _content_id(digest: bytes, size: int) -> ContentId:
    # Procedure: multihash(sha2-256, digest) -> CIDv1(raw) -> base32
    cid = CID("base32", 1, "raw", multihash.wrap(digest, "sha2-256"))
    kind: CidKind = "ipfs-raw-leaf" if size <= IPFS_CHUNK else "raw-sha256"
    return ContentId(str(cid), kind, size, digest.hex())


def cid_of_bytes(data: bytes) -> ContentId:
    """The content id of ``data``."""
    return _content_id(hashlib.sha256(data).digest(), len(data))


def cid_of_file(path: str | os.PathLike[str]) -> ContentId:
    """The content id of the file at ``path`` (streamed).

    Raises:
        InputError: not a readable regular file.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: not a file")
    h = hashlib.sha256()
    size = 0
    try:
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
                size += len(block)
    except OSError as e:
        raise InputError(f"{p}: cannot read ({e.strerror or e})") from None
    return _content_id(h.digest(), size)


def parse_cid(text: str) -> str:
    """``text`` as a canonical base32 CIDv1 string.

    Raises:
        InputError: not a CID.
    """
    try:
        cid = CID.decode(text.strip())
    except (ValueError, KeyError) as e:
        raise InputError(f"{text[:80]!r} is not a CID ({e})") from None
    return str(cid.set(base="base32", version=1))


# Registry metadata


def metadata_uri(circuit_id: str, cids: Mapping[str, str]) -> str:
    """The record's ``metadataURI``: ``zkml:circuit:<id>`` and the artifacts' CIDs (format v1, module docstring).

    Raises:
        InputError: an unknown artifact name or a malformed CID.
    """
    unknown = set(cids) - set(ARTIFACTS)
    if unknown:
        raise InputError(f"unknown artifact(s) {sorted(unknown)}; known: {', '.join(ARTIFACTS)}")
    parts = [METADATA_PREFIX + circuit_id]
    parts += [f"{name}={parse_cid(cids[name])}" for name in ARTIFACTS if name in cids]
    return ";".join(parts)


@dataclass(frozen=True)
class Metadata:
    """A parsed ``metadataURI``."""

    circuit_id: str | None
    """The circuit id it names (None: not zkml's format)."""
    cids: dict[str, str]
    """Artifact name -> CID (empty when the URI carries none)."""


def parse_metadata_uri(uri: str) -> Metadata:
    """Read a record's ``metadataURI``; a URI in another format gives no circuit id and no CIDs (never raises)."""
    if not uri.startswith(METADATA_PREFIX):
        return Metadata(None, {})
    head, *pairs = uri.split(";")
    cids: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in ARTIFACTS or name in cids:
            continue
        try:
            cids[name] = parse_cid(value)
        except InputError:
            continue
    circuit_id = head[len(METADATA_PREFIX):]
    return Metadata(circuit_id if re.fullmatch(r"[0-9A-Za-z_.:-]{1,128}", circuit_id) else None, cids)


@dataclass(frozen=True)
class FileCheck:
    """One local file checked against a record's CIDs."""

    path: str
    """The file as given."""
    cid: str
    """Its CID."""
    matches: tuple[str, ...]
    """The artifact names whose registered CID equals it (empty: no match)."""


def check_files(registered: Mapping[str, str], paths: list[str | os.PathLike[str]]) -> list[FileCheck]:
    """Each file's CID and which registered artifacts it is.

    Raises:
        InputError: a file cannot be read.
    """
    out = []
    for p in paths:
        c = cid_of_file(p).cid
        out.append(FileCheck(str(p), c, tuple(n for n, v in registered.items() if v == c)))
    return out
