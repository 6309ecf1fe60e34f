"""zkml.keys: one loader for Ethereum and VRF keys, 0600 atomic writes, exposure warnings, scrubbed child envs.

Real keys throughout (eth_account, zkml.vrf); a real child process shows what
:func:`zkml.keys.child_env` hides.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from zkml import keys, vrf
from zkml.errors import ConfigError

ETH_KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ETH_ADDR = Account.from_key(ETH_KEY).address
VRF_SK = bytes.fromhex("3f1c0a1e5b2d4c3a9e8f7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928")


@pytest.fixture
def warnings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(keys, "warn", seen.append)
    return seen


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


# Writing


def test_write_key_file_is_0600_atomic_and_refuses_to_clobber(tmp_path: Path) -> None:
    old = os.umask(0o000)  # even with a permissive umask
    try:
        p = keys.write_key_file(tmp_path / "sub" / "k.key", "secret\n")
    finally:
        os.umask(old)
    assert p.read_text() == "secret\n" and _mode(p) == 0o600
    assert [x.name for x in p.parent.iterdir()] == ["k.key"]  # no temp file left behind
    with pytest.raises(ConfigError, match="already exists"):
        keys.write_key_file(p, "other")
    keys.write_key_file(p, b"other", overwrite=True)
    assert p.read_text() == "other" and _mode(p) == 0o600


def test_vrf_key_file_roundtrip(tmp_path: Path, warnings: list[str]) -> None:
    key = keys.VrfKey(vrf.SECP256K1, VRF_SK)
    p = keys.write_vrf_key(tmp_path / "auditor.key", key)
    doc = json.loads(p.read_text())
    assert doc == {"format": "zkml-vrf-key/1", "suite": "secp256k1", "sk": VRF_SK.hex(), "pk": key.pk.hex()}
    back = keys.load_vrf_key(p)
    assert back == key and back.suite == vrf.SECP256K1 and warnings == []
    assert VRF_SK.hex() not in repr(back)


# Loading: a table of sources and their one-line errors


@pytest.mark.parametrize(
    ("content", "suite", "env", "expected"),
    [
        (None, None, {"ZKML_VRF_SK": "0x" + VRF_SK.hex()}, "secp256k1"),  # the one default suite
        (None, "p256", {"ZKML_VRF_SK": VRF_SK.hex()}, "p256"),
        ("file-json-p256", None, {}, "p256"),  # the file names its suite
        ("hex", None, {}, "secp256k1"),
        (None, None, {}, "no VRF key"),
        (None, None, {"ZKML_VRF_SK": "zz" * 32}, "is not a hex VRF secret key"),
        (None, None, {"ZKML_VRF_SK": "ab" * 31}, "is not a secp256k1 VRF secret key"),
        ("file-json-p256", "secp256k1", {}, "holds a p256 key, not secp256k1"),
        ("{not json", None, {}, "neither hex nor a zkml-vrf-key/1 file"),
        ('{"format": "other"}', None, {}, "is not a zkml-vrf-key/1 key file"),
        (None, "ed25519", {"ZKML_VRF_SK": VRF_SK.hex()}, "unknown VRF suite"),
    ],
)
def test_load_vrf_key(tmp_path: Path, content: str | None, suite: str | None, env: dict[str, str], expected: str,
                      warnings: list[str]) -> None:
    path = None
    if content is not None:
        path = tmp_path / "k.key"
        if content == "file-json-p256":
            keys.write_vrf_key(path, keys.VrfKey(vrf.P256, VRF_SK))
        elif content == "hex":
            keys.write_key_file(path, VRF_SK.hex() + "\n")
        else:
            keys.write_key_file(path, content)
    if expected in ("secp256k1", "p256"):
        key = keys.load_vrf_key(path, suite, env=env)
        assert key is not None and key.sk == VRF_SK and key.suite.short_name == expected
        assert key.pk == vrf.public_key(expected, VRF_SK)
    else:
        with pytest.raises(ConfigError, match=expected) as e:
            keys.load_vrf_key(path, suite, env=env)
        assert VRF_SK.hex() not in e.value.message and "zz" * 4 not in e.value.message
    assert warnings == []


def test_missing_key_is_none_when_not_required() -> None:
    assert keys.load_vrf_key(None, env={}, required=False) is None
    assert keys.load_eth_key(None, env={}, required=False) is None
    with pytest.raises(ConfigError, match=r"no signing key: set \$ZKML_PRIVATE_KEY"):
        keys.load_eth_key(None, env={})
    with pytest.raises(ConfigError, match="key file not found"):
        keys.load_eth_key("/nonexistent/k.key", env={})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("env", ETH_ADDR),
        ("env-no-0x", ETH_ADDR),
        ("hex-file", ETH_ADDR),
        ("keystore", ETH_ADDR),
        ("keystore-no-password", r"encrypted keystore: set \$ZKML_KEY_PASSWORD"),
        ("keystore-wrong-password", "wrong password or corrupt file"),
        ("env-short", "is not a 32-byte hex string"),
        ("env-zero", "not a valid secp256k1 private key"),
    ],
)
def test_load_eth_key(tmp_path: Path, source: str, expected: str, warnings: list[str]) -> None:
    path, env = None, {}
    if source == "env":
        env = {"ZKML_PRIVATE_KEY": ETH_KEY}
    elif source == "env-no-0x":
        env = {"ZKML_PRIVATE_KEY": ETH_KEY[2:] + "\n"}
    elif source == "env-short":
        env = {"ZKML_PRIVATE_KEY": "0xdeadbeef"}
    elif source == "env-zero":
        env = {"ZKML_PRIVATE_KEY": "00" * 32}
    elif source == "hex-file":
        path = keys.write_key_file(tmp_path / "k", ETH_KEY + "\n")
        env = {"ZKML_PRIVATE_KEY": "0x" + "11" * 32}  # the file wins
    else:
        path = keys.write_key_file(tmp_path / "k.json", json.dumps(Account.encrypt(ETH_KEY, "horse", kdf="pbkdf2",
                                                                                   iterations=2)))
        if source == "keystore":
            env = {"ZKML_KEY_PASSWORD": "horse"}
        elif source == "keystore-wrong-password":
            env = {"ZKML_KEY_PASSWORD": "cart"}
    if expected == ETH_ADDR:
        key = keys.load_eth_key(path, env=env)
        assert key is not None and key.address == ETH_ADDR and key.hex == ETH_KEY
        assert ETH_KEY[2:] not in repr(key) + str(key)
    else:
        with pytest.raises(ConfigError, match=expected) as e:
            keys.load_eth_key(path, env=env)
        assert ETH_KEY[2:] not in e.value.message
    assert warnings == []


@pytest.mark.parametrize(("mode", "warned"), [(0o600, False), (0o400, False), (0o640, True), (0o644, True),
                                               (0o604, True)])
def test_exposed_key_file_warns_once_and_still_loads(tmp_path: Path, mode: int, warned: bool,
                                                     warnings: list[str]) -> None:
    p = tmp_path / "k.key"
    p.write_text(ETH_KEY)
    p.chmod(mode)
    assert keys.load_eth_key(p, env={}).address == ETH_ADDR  # type: ignore[union-attr]
    assert len(warnings) == (1 if warned else 0)
    if warned:
        assert warnings[0].startswith(f"warning: key file {p} is accessible by group or others") and "chmod 600" in warnings[0]
        assert ETH_KEY[2:] not in warnings[0]


def test_exposed_key_warning_is_one_stderr_line(tmp_path: Path) -> None:
    """Through the real stderr of a real process."""
    p = tmp_path / "k.key"
    p.write_text(VRF_SK.hex())
    p.chmod(0o644)
    proc = subprocess.run([sys.executable, "-c", f"from zkml import keys; print(keys.load_vrf_key({str(p)!r}).pk.hex())"],
                          capture_output=True, text=True, timeout=60, env=keys.child_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == vrf.public_key("secp256k1", VRF_SK).hex()
    assert len(proc.stderr.strip().splitlines()) == 1 and "accessible by group or others" in proc.stderr
    assert VRF_SK.hex() not in proc.stdout + proc.stderr


# Child processes


def test_child_env_scrubs_secrets_from_a_real_child(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {"ZKML_PRIVATE_KEY": ETH_KEY, "ZKML_VRF_SK": VRF_SK.hex(), "ZKML_KEY_PASSWORD": "horse",
               "ETH_PRIVATE_KEY": ETH_KEY, "AWS_SECRET_ACCESS_KEY": "s3cr3t", "MY_SK": "ab", "DEPLOY_MNEMONIC": "w o r d s"}
    for k, v in secrets.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("ZKML_STORE", "/tmp/store")
    env = keys.child_env({"NODE_OPTIONS": "--max-old-space-size=64"})
    assert not set(secrets) & set(env)
    assert env["ZKML_STORE"] == "/tmp/store" and env["PATH"] == os.environ["PATH"] and env["NODE_OPTIONS"]
    assert os.environ["ZKML_PRIVATE_KEY"] == ETH_KEY  # the parent's environment is untouched
    proc = subprocess.run([sys.executable, "-c", "import os, json; print(json.dumps(dict(os.environ)))"],
                          capture_output=True, text=True, env=env, timeout=60, check=True)
    seen = json.loads(proc.stdout)
    assert not set(secrets) & set(seen) and seen["ZKML_STORE"] == "/tmp/store"
    for v in secrets.values():
        assert v not in proc.stdout
    # A child that needs one secret gets exactly that one
    assert set(keys.child_env(keep=["ZKML_PRIVATE_KEY"])) & set(secrets) == {"ZKML_PRIVATE_KEY"}


@pytest.mark.parametrize(("name", "secret"), [
    ("ZKML_PRIVATE_KEY", True), ("ZKML_VRF_SK", True), ("ZKML_KEY_PASSWORD", True), ("GITHUB_STEP_SUMMARY", False),
    ("ZKML_STORE", False), ("PATH", False), ("ZKML_REGISTRY", False), ("TASK", False), ("DB_PASSWORD", True),
    ("client_secret", True),
])
def test_is_secret_env(name: str, secret: bool) -> None:
    assert keys.is_secret_env(name) is secret


def test_anvil_child_gets_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real anvil started by zkml while secrets are in the environment: its /proc environ holds none of them."""
    from zkml.evm.anvil import Anvil

    monkeypatch.setenv("ZKML_PRIVATE_KEY", "0x" + "11" * 32)
    monkeypatch.setenv("ZKML_VRF_SK", "22" * 32)
    with Anvil.start() as a:
        environ = open(f"/proc/{a.pid}/environ", "rb").read().split(b"\0")
    names = {e.split(b"=", 1)[0] for e in environ if e}
    assert b"PATH" in names
    assert b"ZKML_PRIVATE_KEY" not in names and b"ZKML_VRF_SK" not in names
