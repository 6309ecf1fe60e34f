"""The signing key: ``--key-file`` or ``$ZKML_PRIVATE_KEY``, checked but never echoed.

:func:`load_private_key` reads it; :func:`zkml.evm.chain.connect` normalizes a
key passed in directly the same way. No message raised here contains the key.
:mod:`zkml.evm.chain` re-exports the public names.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from zkml.errors import ConfigError

#: Env var holding the private key used to sign transactions.
PRIVATE_KEY_ENV: Final[str] = "ZKML_PRIVATE_KEY"

_KEY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


# Keys


def _normalize_key(raw: str, origin: str) -> str:
    key = raw.strip()
    if not _KEY_RE.match(key):
        raise ConfigError(f"the private key from {origin} is not a 32-byte hex string")
    return key if key.startswith("0x") else "0x" + key


def load_private_key(key_file: str | os.PathLike[str] | None = None) -> str | None:
    """The signing key from ``key_file`` or ``$ZKML_PRIVATE_KEY`` (file wins); None if neither.

    Raises:
        ConfigError: the file is unreadable or the key is malformed (the
            message never contains the key).
    """
    if key_file is not None:
        try:
            text = Path(key_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read key file {key_file}: {getattr(e, 'strerror', None) or e}") from None
        return _normalize_key(text, f"key file {key_file}")
    env = os.environ.get(PRIVATE_KEY_ENV)
    if env:
        return _normalize_key(env, f"${PRIVATE_KEY_ENV}")
    return None
