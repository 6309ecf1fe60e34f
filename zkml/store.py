"""The content-addressed artifact store.

Layout under the store root (default ``./.zkml``, or ``$ZKML_STORE``)::

    circuits/<circuit_id>/   model.onnx settings.json model.compiled vk.key pk.key
                             calibration.json manifest.json
    srs/dev-k<N>.srs         development SRS files and their digests
    locks/                   one lock file per circuit being built
    models/<onnx_sha256>.json  the model's circuits, newest first: the first is its current circuit
    inputs/<digest>.json     the circuit a compile's input files (ONNX, calibration, options, SRS, ezkl) made
    chain/                   the embedded anvil's state and process record
    chains/<chain_id>.json   deployments on a chain (registry, verifiers, models); proposals/
    solc-cache/              solc-js outputs by source digest
    verifiers/<circuit_id>/  rendered Solidity verifiers (the gate's)
    audit/                   the auditor's ledger and its VRF verifier deployments per chain

Every path under the root is made by a method here; other modules ask the store.

A circuit folder is keyed by a digest of everything that determines it (ONNX
bytes, run options, calibration data, ezkl version, SRS identity). It is built
in a temp folder and renamed into place, so a crash never leaves a half-built
circuit that a later run trusts. ``manifest.json`` is written last and lists
every file with its sha256; a folder whose files no longer match is rebuilt.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from zkml import __version__
from zkml.errors import StoreError
from zkml.util import printable, read_json, sha256_file, write_json_atomic

CIRCUIT_ID = re.compile(r"[0-9a-f]{20}")
CIRCUIT_PREFIX = re.compile(r"[0-9a-f]{1,20}")
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
LOCK_TIMEOUT_S = 3600.0


def default_root() -> Path:
    """``$ZKML_STORE`` or ``./.zkml``."""
    return Path(os.environ.get("ZKML_STORE") or ".zkml").resolve()


def tool_versions() -> dict[str, str]:
    """Versions recorded in every manifest and bundle."""
    from importlib.metadata import PackageNotFoundError, version

    import ezkl

    try:
        onnx_version = version("onnx")  # the installed distribution: no `import onnx` (~0.8 s) on the prove path
    except PackageNotFoundError:
        onnx_version = "unknown"
    return {
        "zkml": __version__,
        "ezkl": str(getattr(ezkl, "__version__", "unknown")),
        "onnx": onnx_version,
        "python": platform.python_version(),
    }


@dataclass(frozen=True)
class Manifest:
    """A validated manifest: every listed file matched its digest when read."""

    folder: Path
    """The circuit folder the manifest describes."""
    data: dict[str, Any]
    """The manifest JSON."""

    @property
    def files(self) -> dict[str, str]:
        """File name -> sha256."""
        return dict(self.data["files"])


class Store:
    """Access to one artifact store root."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).resolve() if root else default_root()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # Paths
    @property
    def circuits(self) -> Path:
        return self.root / "circuits"

    def circuit_dir(self, circuit_id: str) -> Path:
        """The folder of a circuit id; the id must be exactly a store key prefix.

        Raises:
            StoreError: not a circuit id (an id from a bundle is untrusted: never a path).
        """
        if not isinstance(circuit_id, str) or not CIRCUIT_ID.fullmatch(circuit_id):
            raise StoreError(f"not a circuit id: {printable(repr(circuit_id))[:48]} (expected 20 lowercase hex chars)")
        folder = self.circuits / circuit_id
        if not folder.resolve().is_relative_to(self.circuits.resolve()):
            raise StoreError(f"circuit {circuit_id} resolves outside the store")
        return folder

    @contextmanager
    def lock(self, name: str, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
        """Hold an inter-process lock; a second builder of the same circuit waits here.

        Raises:
            StoreError: the lock was not obtained within ``timeout`` seconds.
        """
        folder = self.root / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(folder / f"{name}.lock"))
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise StoreError(f"timed out after {timeout:.0f}s waiting for another zkml building {name}") from None
        try:
            yield
        finally:
            lock.release()

    # Manifests
    def read_manifest(self, folder: Path) -> tuple[Manifest | None, str]:
        """Return the manifest if every file matches its digest, else ``(None, reason)``."""
        mpath = folder / MANIFEST
        if not mpath.is_file():
            return None, "no manifest"
        try:
            data = read_json(mpath)
            files = data["files"]
            if data.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
                return None, "unknown manifest format"
        except (ValueError, KeyError, TypeError, OSError):
            return None, "unreadable manifest"
        for name, digest in files.items():
            if not isinstance(name, str) or "/" in name or name in ("", ".", "..") or name.startswith("."):
                return None, "manifest names a file outside its folder"
            f = folder / name
            if not f.is_file():
                return None, f"{name} is missing"
            if sha256_file(f) != digest:
                return None, f"{name} does not match its digest"
        return Manifest(folder=folder, data=data), "ok"

    @staticmethod
    def write_manifest(folder: Path, files: list[str], meta: dict[str, Any]) -> dict[str, Any]:
        """Hash ``files`` in ``folder`` and write the manifest (last, atomically)."""
        data = {
            "format": MANIFEST_FORMAT,
            **meta,
            "files": {name: sha256_file(folder / name) for name in sorted(files)},
            "tools": tool_versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_json_atomic(folder / MANIFEST, data)
        return data

    # Building
    def staging_dir(self, circuit_id: str) -> Path:
        """A fresh temp folder on the same filesystem, to be published with :meth:`publish`."""
        self.circuits.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".build-{circuit_id}-", dir=self.circuits))

    def publish(self, staging: Path, circuit_id: str) -> Path:
        """Rename a fully built folder into place, replacing a stale one."""
        dest = self.circuit_dir(circuit_id)
        if dest.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".stale-{circuit_id}-", dir=self.circuits))
            os.replace(dest, trash / "old")
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(staging, dest)
        return dest

    def list_circuits(self) -> list[Manifest]:
        """Every circuit whose manifest currently validates."""
        out = []
        if self.circuits.is_dir():
            for d in sorted(self.circuits.iterdir()):
                if d.is_dir() and not d.name.startswith("."):
                    m, _ = self.read_manifest(d)
                    if m:
                        out.append(m)
        return out

    def circuits_with_vk(self, vk_sha256: str) -> list[Manifest]:
        """Every circuit whose (digest-checked) manifest names this vk.key sha256."""
        return [m for m in self.list_circuits() if m.files.get("vk.key") == vk_sha256] if vk_sha256 else []

    def find_circuit(self, prefix: str) -> Path:
        """Resolve a circuit id or unique prefix to its folder.

        Raises:
            StoreError: no circuit, or an ambiguous prefix.
        """
        if not isinstance(prefix, str) or not CIRCUIT_PREFIX.fullmatch(prefix):
            raise StoreError(f"not a circuit id: {printable(repr(prefix))[:48]} (expected up to 20 lowercase hex chars)")
        if len(prefix) == 20 and self.circuit_dir(prefix).is_dir():
            return self.circuit_dir(prefix)
        if not self.circuits.is_dir():
            raise StoreError(f"no circuit '{prefix}' in store {self.root}")
        hits = [d for d in self.circuits.iterdir()
                if d.is_dir() and CIRCUIT_ID.fullmatch(d.name) and d.name.startswith(prefix)]
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise StoreError(f"no circuit '{prefix}' in store {self.root}")
        raise StoreError(f"circuit id prefix '{prefix}' is ambiguous ({len(hits)} circuits)")

    # Models -> their current circuit
    def _model_record(self, onnx_sha256: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", onnx_sha256):
            raise StoreError("not a model digest")
        return self.root / "models" / f"{onnx_sha256}.json"

    def record_circuit(self, onnx_sha256: str, circuit_id: str) -> None:
        """Make ``circuit_id`` the model's current circuit (what ``prove model.onnx`` and friends resolve to)."""
        path = self._model_record(onnx_sha256)
        with self.lock(f"model-{onnx_sha256[:20]}"):
            ids = [circuit_id, *[c for c in self.model_circuit_ids(onnx_sha256) if c != circuit_id]]
            write_json_atomic(path, {"format": 1, "model_sha256": onnx_sha256, "circuits": ids,
                                     "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def model_circuit_ids(self, onnx_sha256: str) -> list[str]:
        """The model's circuit ids, current first, that are still in the store and validate."""
        path = self._model_record(onnx_sha256)
        try:
            ids = [str(c) for c in read_json(path)["circuits"]]
        except (OSError, ValueError, KeyError, TypeError):
            return []
        return [c for c in ids if CIRCUIT_ID.fullmatch(c) and self.read_manifest(self.circuit_dir(c))[0] is not None]

    # Compile inputs -> circuit: lets a warm `prove model.onnx --calibration FILE` skip parsing the ONNX
    def _inputs_record(self, digest: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise StoreError("not an inputs digest")
        return self.root / "inputs" / f"{digest}.json"

    def record_inputs(self, digest: str, circuit_id: str) -> None:
        """Remember that the compile inputs with this digest (:func:`zkml.targets.inputs_digest`) made ``circuit_id``."""
        write_json_atomic(self._inputs_record(digest), {"format": 1, "circuit_id": circuit_id})

    def circuit_for_inputs(self, digest: str) -> str | None:
        """The circuit id recorded for these compile inputs, if any (the caller checks it is the right model)."""
        try:
            cid = str(read_json(self._inputs_record(digest))["circuit_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return cid if CIRCUIT_ID.fullmatch(cid) else None

    # The rest of the layout (every folder is created by the method that names it)
    def _dir(self, *parts: str) -> Path:
        d = self.root.joinpath(*parts)
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def chain_dir(self) -> Path:
        """The embedded anvil's folder (state dump, process record)."""
        return self._dir("chain")

    def chain_records(self, chain_id: int) -> Path:
        """The deployment record file of a chain."""
        return self._dir("chains") / f"{int(chain_id)}.json"

    def proposal_file(self, chain_id: int, name: str) -> Path:
        """Where a proposed update's test proof is kept (challengers need it)."""
        if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,128}", name):
            raise StoreError("not a proposal name")
        return self._dir("chains", "proposals") / f"{int(chain_id)}-{name}.json"

    @property
    def solc_cache(self) -> Path:
        """solc-js outputs, keyed by source digest."""
        return self._dir("solc-cache")

    def verifier_dir(self, circuit_id: str) -> Path:
        """Rendered Solidity of one circuit's verifier (outside the circuit folder, so its manifest stays intact)."""
        self.circuit_dir(circuit_id)  # validates the id
        return self._dir("verifiers", circuit_id)

    def circuit_evm_dir(self, circuit_id: str) -> Path:
        """The per-circuit ``evm/`` folder of deployed verifier artifacts."""
        return self.circuit_dir(circuit_id) / "evm"

    @property
    def audit_dir(self) -> Path:
        """The auditor's folder (ledger, VRF verifier deployments)."""
        return self._dir("audit")

    def audit_chain_records(self, chain_id: int) -> Path:
        """VRF verifier deployments on one chain."""
        return self._dir("audit", "chains") / f"{int(chain_id)}.json"
