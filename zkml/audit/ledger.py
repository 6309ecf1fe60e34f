"""The auditor's ledger: the challenges it issued, and which one is open per model and dataset."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

from zkml.audit.challenge import Challenge
from zkml.audit.common import FORMAT_VERSION, LEDGER_FORMAT
from zkml.bundle import now_iso
from zkml.commitments import hex32
from zkml.errors import StoreError
from zkml.util import write_json_atomic


# ---------------------------------------------------------------------------
# The auditor's ledger
# ---------------------------------------------------------------------------


def default_ledger_path(store_root: str | os.PathLike[str]) -> Path:
    """``<store>/audit/ledger.json``."""
    from zkml.store import Store

    return Store(store_root).audit_dir / "ledger.json"


class Ledger:
    """The challenges an auditor issued, newest last; the latest per (model id, dataset root) is the open one."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path: Final[Path] = Path(path)
        """The ledger JSON file."""

    def _lock(self) -> Any:
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path) + ".lock", timeout=60)

    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"format": LEDGER_FORMAT, "version": FORMAT_VERSION, "entries": []}
        try:
            doc = json.loads(self.path.read_bytes())
        except (OSError, ValueError) as e:
            raise StoreError(f"audit ledger {self.path} is unreadable ({type(e).__name__})") from None
        if not isinstance(doc, dict) or doc.get("format") != LEDGER_FORMAT or not isinstance(doc.get("entries"), list):
            raise StoreError(f"{self.path} is not a zkml audit ledger")
        return doc

    def record_issued(self, challenge: Challenge, file: str | None = None) -> list[str]:
        """Add ``challenge``; return the digests it supersedes (same model id and dataset root)."""
        with self._lock():
            doc = self._read()
            key = (hex32(challenge.fields.model_id), hex32(challenge.fields.dataset_root))
            superseded = []
            for e in doc["entries"]:
                if (e["model_id"], e["dataset_root"]) == key and e.get("superseded_by") is None:
                    e["superseded_by"] = challenge.digest
                    superseded.append(e["digest"])
            doc["entries"].append({
                "digest": challenge.digest, "model_id": key[0], "dataset_root": key[1], "issued": challenge.created,
                "file": file, "superseded_by": None, "checks": [], "challenge": challenge.to_json(),
            })
            write_json_atomic(self.path, doc)
            return superseded

    def expected(self, digest: str) -> tuple[Challenge | None, str]:
        """The issued challenge with ``digest`` if it is the open one, and why not otherwise.

        Returns ``(challenge, "open")``, ``(None, "superseded by …")`` or
        ``(None, "never issued")``.
        """
        doc = self._read()
        for e in doc["entries"]:
            if e["digest"] == digest:
                if e.get("superseded_by"):
                    return None, f"superseded by challenge {e['superseded_by'][:16]}… (issued later)"
                return Challenge.from_json(e["challenge"], source=f"ledger entry {digest[:16]}…"), "open"
        return None, "never issued by this auditor"

    def latest(self, model_id: bytes, dataset_root: bytes) -> Challenge | None:
        """The open challenge for this model and dataset, if any."""
        key = (hex32(model_id), hex32(dataset_root))
        for e in reversed(self._read()["entries"]):
            if (e["model_id"], e["dataset_root"]) == key and not e.get("superseded_by"):
                return Challenge.from_json(e["challenge"], source=f"ledger entry {e['digest'][:16]}…")
        return None

    def record_check(self, digest: str, passed: bool, report: str | None) -> None:
        """Note a check of the response to ``digest`` (time, verdict, report path)."""
        if not self.path.is_file():
            return
        with self._lock():
            doc = self._read()
            hits = [e for e in doc["entries"] if e["digest"] == digest]
            for e in hits:
                e.setdefault("checks", []).append({"time": now_iso(), "passed": passed, "report": report})
            if hits:
                write_json_atomic(self.path, doc)
