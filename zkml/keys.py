"""Keys: the one place zkml reads, writes and hides secrets (VRF keys and Ethereum keys).

Two kinds of secret, one set of rules:

* an **Ethereum key** signs transactions and EIP-712 records: from a key file
  (a hex private key, or an encrypted Ethereum keystore JSON whose password is
  given or taken from ``$ZKML_KEY_PASSWORD``) or from ``$ZKML_PRIVATE_KEY``
  (:func:`load_eth_key`);
* a **VRF key** draws audit and gate samples: from a ``zkml-vrf-key/1`` key
  file (what ``zkml vrf keygen --out`` writes: JSON naming its suite), a file
  holding the secret as hex, or ``$ZKML_VRF_SK`` (:func:`load_vrf_key`).

Rules:

1. a secret never comes from the command line (``ps`` shows argv to every
   user): only from a file or an environment variable;
2. a key file is written mode 0600, atomically (:func:`write_key_file`);
3. reading a key file that the group or others can read prints one warning
   line on stderr (:func:`warn_if_exposed`), and goes on;
4. no message, repr or log line contains key material: errors name where a
   key came from, never its value; :class:`SigningKey` and :class:`VrfKey`
   show only public parts;
5. child processes that need no secret get :func:`child_env`, a copy of the
   environment without the secret variables.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from zkml import vrf
from zkml.errors import ConfigError

PRIVATE_KEY_ENV: Final[str] = "ZKML_PRIVATE_KEY"
"""Env var holding the Ethereum private key (hex) that signs transactions and records."""
KEY_PASSWORD_ENV: Final[str] = "ZKML_KEY_PASSWORD"
"""Env var holding the password of an encrypted keystore key file."""
VRF_SK_ENV: Final[str] = "ZKML_VRF_SK"
"""Env var holding the VRF secret key (hex)."""
VRF_KEY_FORMAT: Final[str] = "zkml-vrf-key/1"
"""Format tag of the VRF key file ``zkml vrf keygen --out`` writes."""
DEFAULT_VRF_SUITE: Final[str] = "secp256k1"
"""The one default ECVRF suite: secp256k1 (0xFE), the suite ``VRFVerifier.sol`` checks on chain."""

SECRET_ENV_VARS: Final[tuple[str, ...]] = (PRIVATE_KEY_ENV, KEY_PASSWORD_ENV, VRF_SK_ENV)
"""zkml's own secret env vars; :func:`child_env` drops these and any name matching :data:`SECRET_ENV_PATTERN`."""
SECRET_ENV_PATTERN: Final = re.compile(r"PRIVATE_KEY|SECRET|PASSWORD|PASSPHRASE|MNEMONIC|(^|_)SK$", re.IGNORECASE)
"""Names that look like secrets of other tools (``ETH_PRIVATE_KEY``, ``AWS_SECRET_ACCESS_KEY``, ``FOO_SK``)."""

SECP256K1_N: Final[int] = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""Order of the secp256k1 group: an Ethereum key is in ``[1, N)``."""


def _stderr_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


warn: Callable[[str], None] = _stderr_line
"""Where key warnings go (one line each); tests may replace it."""


# ---------------------------------------------------------------------------
# Files: permissions, atomic 0600 writes
# ---------------------------------------------------------------------------


def warn_if_exposed(path: str | os.PathLike[str]) -> bool:
    """Warn (one stderr line) when ``path`` is readable or writable by group or others; return whether it was.

    Not fatal: the key is still used, since refusing would break CI runners
    that mount secrets with loose modes, but the line tells the owner to ``chmod 600``.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    if not stat.S_ISREG(mode) or not mode & 0o077:
        return False
    warn(f"warning: key file {path} is accessible by group or others (mode {stat.S_IMODE(mode):04o}): chmod 600 {path}")
    return True


def write_key_file(path: str | os.PathLike[str], content: str | bytes, *, overwrite: bool = False) -> Path:
    """Write a secret to ``path``: created 0600 before any byte is written, fsynced, renamed into place.

    A crash leaves at most a hidden ``.tmp`` file of mode 0600 beside ``path``.
    Raises :class:`ConfigError` when ``path`` exists (unless ``overwrite``) or cannot be written.
    """
    dest = Path(path)
    if dest.exists() and not overwrite:
        raise ConfigError(f"{dest} already exists (use --force to overwrite)")
    data = content.encode() if isinstance(content, str) else content
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as e:
        raise ConfigError(f"cannot write key file {dest}: {e.strerror or type(e).__name__}") from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except OSError as e:
        raise ConfigError(f"cannot write key file {dest}: {e.strerror or type(e).__name__}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def _read_secret_file(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {what} file {path} ({type(e).__name__})") from None
    warn_if_exposed(path)
    return text


# ---------------------------------------------------------------------------
# Child processes
# ---------------------------------------------------------------------------


def is_secret_env(name: str) -> bool:
    """Whether the env var ``name`` holds (or looks like it holds) a secret."""
    return name in SECRET_ENV_VARS or bool(SECRET_ENV_PATTERN.search(name))


def child_env(extra: Mapping[str, str] | None = None, *, keep: Iterable[str] = (),
              base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment (``base``, default ``os.environ``) for a child process that needs no secret.

    Drops :data:`SECRET_ENV_VARS` and every name matching :data:`SECRET_ENV_PATTERN`,
    except the names in ``keep`` (a child that really needs one); then adds ``extra``.
    """
    kept = set(keep)
    env = {k: v for k, v in (os.environ if base is None else base).items() if k in kept or not is_secret_env(k)}
    env.update(extra or {})
    return env


# ---------------------------------------------------------------------------
# Ethereum keys
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """An Ethereum private key; its repr shows the address only."""

    address: str
    """Checksummed address of the key."""
    secret: bytes = field(repr=False, compare=False)
    """The 32-byte private key. Excluded from repr; never logged."""
    source: str = field(default="private key", compare=False)
    """Where it came from (``$ZKML_PRIVATE_KEY``, ``key file …``, ``keystore …``), for messages."""

    def __post_init__(self) -> None:
        """Raise :class:`ConfigError` unless ``secret`` is a valid key whose address is ``address``."""
        from eth_account import Account

        if not isinstance(self.secret, bytes) or len(self.secret) != 32:
            raise ConfigError("private key must be 32 bytes")
        if not 0 < int.from_bytes(self.secret, "big") < SECP256K1_N:
            raise ConfigError("private key is out of range for secp256k1")
        if Account.from_key(self.secret).address != self.address:
            raise ConfigError("private key does not match the given address")

    @property
    def hex(self) -> str:
        """``0x`` + 64 hex digits, for APIs that take a hex key (e.g. :func:`zkml.evm.chain.connect`)."""
        return "0x" + self.secret.hex()

    @classmethod
    def from_secret(cls, secret: bytes | str, source: str = "private key") -> SigningKey:
        """Key from 32 raw bytes or 64 hex digits (``0x`` optional).

        Raises :class:`ConfigError` naming ``source`` (never the value) when malformed.
        """
        from eth_account import Account

        if isinstance(secret, str):
            text = secret.strip()
            text = text[2:] if text[:2] in ("0x", "0X") else text
            if len(text) != 64:
                raise ConfigError(f"the private key from {source} is not a 32-byte hex string")
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raise ConfigError(f"the private key from {source} is not a 32-byte hex string") from None
        elif isinstance(secret, bytes):
            raw = secret
        else:
            raise ConfigError(f"the private key from {source} must be bytes or a hex string")
        if len(raw) != 32 or not 0 < int.from_bytes(raw, "big") < SECP256K1_N:
            raise ConfigError(f"the private key from {source} is not a valid secp256k1 private key")
        return cls(address=Account.from_key(raw).address, secret=raw, source=source)


def load_eth_key(
    key_file: str | os.PathLike[str] | None = None,
    *,
    password: str | None = None,
    env: Mapping[str, str] | None = None,
    required: bool = True,
) -> SigningKey | None:
    """The Ethereum key from ``key_file`` if given, else from ``$ZKML_PRIVATE_KEY`` (the file wins).

    A key file holds a hex private key or an Ethereum keystore JSON (decrypted
    with ``password`` or ``$ZKML_KEY_PASSWORD``). Without either source:
    None, or :class:`ConfigError` when ``required``.

    Raises:
        ConfigError: no key (when required), a missing or unreadable file, a
            missing or wrong keystore password, a malformed key. Messages never
            contain key material.
    """
    environ = os.environ if env is None else env
    # From the environment
    if key_file is None:
        value = environ.get(PRIVATE_KEY_ENV, "").strip()
        if not value:
            if required:
                raise ConfigError(f"no signing key: set ${PRIVATE_KEY_ENV} or pass --key-file FILE")
            return None
        return SigningKey.from_secret(value, source=f"${PRIVATE_KEY_ENV}")
    # From a file: hex, or keystore JSON
    path = Path(key_file)
    text = _read_secret_file(path, "key")
    if not text.startswith("{"):
        return SigningKey.from_secret(text, source=f"key file {path}")
    from eth_account import Account

    secret_password = password if password is not None else environ.get(KEY_PASSWORD_ENV)
    if secret_password is None:
        raise ConfigError(f"key file {path} is an encrypted keystore: set ${KEY_PASSWORD_ENV}")
    try:
        keystore = json.loads(text)
        raw = bytes(Account.decrypt(keystore, secret_password))
    except json.JSONDecodeError:
        raise ConfigError(f"key file {path} is neither a hex key nor keystore JSON") from None
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"cannot decrypt keystore {path}: wrong password or corrupt file") from None
    return SigningKey.from_secret(raw, source=f"keystore {path}")


# ---------------------------------------------------------------------------
# VRF keys
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VrfKey:
    """An ECVRF key pair; its repr shows the suite, public key and source only."""

    suite: vrf.Suite
    """The ECVRF suite."""
    sk: bytes = field(repr=False)
    """The secret scalar. Excluded from repr; never logged."""
    pk: bytes = b""
    """The public key (compressed point), derived from ``sk`` when not given."""
    source: str = field(default="VRF key", compare=False)
    """``file`` path, ``$ZKML_VRF_SK`` or ``ephemeral``, for messages and reports."""

    def __post_init__(self) -> None:
        """Derive and check the public key. Raises :class:`ConfigError` (never quoting the key)."""
        try:
            pk = vrf.public_key(self.suite, self.sk)
        except vrf.VRFError as e:
            raise ConfigError(f"{self.source}: {e.message}") from None
        if self.pk and self.pk != pk:
            raise ConfigError(f"{self.source}: the public key does not belong to the secret key")
        object.__setattr__(self, "pk", pk)

    @classmethod
    def generate(cls, suite: str | vrf.Suite | None = None) -> VrfKey:
        """A fresh key pair of ``suite`` (default :data:`DEFAULT_VRF_SUITE`)."""
        s = vrf.get_suite(suite or DEFAULT_VRF_SUITE)
        sk, pk = vrf.keygen(s)
        return cls(s, sk, pk, source="ephemeral")

    def to_file_json(self) -> str:
        """The ``zkml-vrf-key/1`` key file content."""
        return json.dumps({"format": VRF_KEY_FORMAT, "suite": self.suite.short_name, "sk": self.sk.hex(),
                           "pk": self.pk.hex()}, indent=2) + "\n"


def _suite(name: str, origin: str) -> vrf.Suite:
    try:
        return vrf.get_suite(name)
    except vrf.VRFError as e:
        raise ConfigError(f"{origin}: {e.message}") from None


def load_vrf_key(
    path: str | os.PathLike[str] | None = None,
    suite: str | vrf.Suite | None = None,
    *,
    env: Mapping[str, str] | None = None,
    required: bool = True,
) -> VrfKey | None:
    """The VRF key from ``path`` if given, else from ``$ZKML_VRF_SK``.

    ``suite`` defaults to the key file's, else :data:`DEFAULT_VRF_SUITE`.
    Without either source: None, or :class:`ConfigError` when ``required``.

    Raises:
        ConfigError: a missing, unreadable or malformed key, or a ``suite``
            that contradicts the key file's (never quoting the key).
    """
    environ = os.environ if env is None else env
    file_suite: str | None = None
    if path is not None:
        p = Path(path)
        text = _read_secret_file(p, "VRF key")
        origin = f"VRF key file {p}"
        if text.startswith("{"):
            try:
                doc = json.loads(text)
            except json.JSONDecodeError:
                raise ConfigError(f"{origin} is neither hex nor a {VRF_KEY_FORMAT} file") from None
            if not isinstance(doc, dict) or doc.get("format") != VRF_KEY_FORMAT or not isinstance(doc.get("sk"), str):
                raise ConfigError(f"{origin} is not a {VRF_KEY_FORMAT} key file")
            text = doc["sk"]
            file_suite = doc.get("suite") if isinstance(doc.get("suite"), str) else None
    else:
        text = environ.get(VRF_SK_ENV, "").strip()
        origin = f"${VRF_SK_ENV}"
        if not text:
            if required:
                raise ConfigError(f"no VRF key: pass a key file (from `zkml vrf keygen --out`) or set ${VRF_SK_ENV}")
            return None
    try:
        sk = bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        raise ConfigError(f"{origin} is not a hex VRF secret key") from None
    chosen = _suite(suite, origin) if isinstance(suite, str) else suite
    from_file = _suite(file_suite, origin) if file_suite is not None else None
    if chosen is not None and from_file is not None and chosen != from_file:
        raise ConfigError(f"{origin} holds a {from_file.short_name} key, not {chosen.short_name}")
    s = chosen or from_file or vrf.get_suite(DEFAULT_VRF_SUITE)
    if len(sk) != s.q_len:
        raise ConfigError(f"{origin} is not a {s.short_name} VRF secret key ({s.q_len} bytes)")
    return VrfKey(s, sk, source=origin)


def write_vrf_key(path: str | os.PathLike[str], key: VrfKey, *, overwrite: bool = False) -> Path:
    """Write ``key`` as a ``zkml-vrf-key/1`` file (0600, atomic). Raises :class:`ConfigError`."""
    return write_key_file(path, key.to_file_json(), overwrite=overwrite)
