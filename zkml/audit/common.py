"""Shared pieces of the audit protocol (:mod:`zkml.audit`): file formats, the progress callback, :class:`AuditError`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from zkml.errors import InputError

CHALLENGE_FORMAT: Final = "zkml-audit-challenge"
RESPONSE_FORMAT: Final = "zkml-audit-response"
REPORT_FORMAT: Final = "zkml-audit-report"
LEDGER_FORMAT: Final = "zkml-audit-ledger"
FORMAT_VERSION: Final = 2
"""Version 2: nonce commitments in challenges, revealed row features in responses."""

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class AuditError(InputError):
    """A challenge or response file is malformed or inconsistent, or a request cannot be answered."""


def _read_doc(path: str | os.PathLike[str], what: str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise AuditError(f"{what} file not found: {p}")
    try:
        return json.loads(p.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AuditError(f"{p}: not a JSON {what} file ({type(e).__name__})") from None
