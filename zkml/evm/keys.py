"""The signing key for transactions: a thin view of :mod:`zkml.keys` for :mod:`zkml.evm`.

:func:`load_private_key` returns the key as ``0x`` hex (what
:func:`zkml.evm.chain.connect` takes), or None when neither ``--key-file``
nor ``$ZKML_PRIVATE_KEY`` gives one. Loading, permissions and messages are
:mod:`zkml.keys`'s; nothing here holds its own rules.
"""

from __future__ import annotations

import os

from zkml.keys import PRIVATE_KEY_ENV, SigningKey, load_eth_key

__all__ = ["PRIVATE_KEY_ENV", "load_private_key"]


def _normalize_key(raw: str, origin: str) -> str:
    """``raw`` (64 hex digits, ``0x`` optional) as ``0x`` hex. Raises ConfigError naming ``origin``, never the key."""
    return SigningKey.from_secret(raw, source=origin).hex


def load_private_key(key_file: str | os.PathLike[str] | None = None) -> str | None:
    """The signing key from ``key_file`` or ``$ZKML_PRIVATE_KEY`` (file wins) as ``0x`` hex; None if neither.

    Raises:
        ConfigError: the file is unreadable or the key is malformed (the
            message never contains the key).
    """
    key = load_eth_key(key_file, required=False)
    return key.hex if key is not None else None
