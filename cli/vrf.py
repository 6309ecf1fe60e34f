"""``zkml vrf``: ECVRF keys, proofs, verification and index sampling (RFC 9381).

Keep secret keys out of argv and shell history: the documented way is

    zkml vrf keygen --suite secp256k1 --out vrf.key     # 0600 file; prints only the public key
    zkml vrf prove --sk-file vrf.key --alpha 616263     # or ZKML_VRF_SK=<hex> zkml vrf prove ...
    zkml vrf verify --suite secp256k1 --pk <hex> --alpha 616263 --pi <hex>

Exit codes: 0 success / valid proof, 1 invalid proof, 2 malformed input.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from zkml import sampling, vrf
from zkml.errors import InputError, VerificationError
from zkml.util import atomic_path
from zkml_cli.common import JsonOpt, emit, run

app = typer.Typer(
    name="vrf",
    help="Verifiable random function (ECVRF, RFC 9381): keygen, prove, verify, sample indices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

KEY_FILE_FORMAT = "zkml-vrf-key/1"
DEFAULT_SUITE = "p256"
_SUITE_HELP = "ECVRF suite: p256 (RFC 9381 ECVRF-P256-SHA256-TAI, 0x01) or secp256k1 (0xFE, verifiable on chain)."

SuiteOpt = Annotated[
    str | None,
    typer.Option("--suite", help=_SUITE_HELP + f" Default: the key file's suite, else {DEFAULT_SUITE}."),
]
AlphaOpt = Annotated[str, typer.Option("--alpha", help="VRF input alpha as hex (0x prefix optional; empty allowed).")]


def _hex(flag: str, value: str) -> bytes:
    """Decode a hex flag value, with an optional 0x prefix; one clear error otherwise."""
    text = value.strip()
    if text[:2].lower() == "0x":
        text = text[2:]
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InputError(f"{flag} is not valid hex: {value!r}") from None


def _expect_len(flag: str, data: bytes, length: int, what: str) -> None:
    if len(data) != length:
        raise InputError(f"{flag} must be {length} bytes ({what}), got {len(data)}")


def _resolve_suite(name: str | None, from_key_file: str | None = None) -> vrf.Suite:
    if name is not None and from_key_file is not None and vrf.get_suite(name) != vrf.get_suite(from_key_file):
        raise InputError(f"--suite {name} does not match the key file's suite {from_key_file}")
    return vrf.get_suite(name or from_key_file or DEFAULT_SUITE)


def _read_key_file(path: Path) -> tuple[bytes, str | None]:
    """A key file from ``keygen --out`` (JSON with the suite) or a file holding the secret key as hex."""
    try:
        text = path.read_text()
    except OSError as e:
        raise InputError(f"cannot read key file {path}: {e.strerror}") from None
    try:
        doc: Any = json.loads(text)
    except json.JSONDecodeError:
        return _hex("--sk-file", text), None
    if not isinstance(doc, dict) or doc.get("format") != KEY_FILE_FORMAT or not isinstance(doc.get("sk"), str):
        raise InputError(f"{path} is not a {KEY_FILE_FORMAT} key file")
    suite = doc.get("suite")
    return _hex("--sk-file", doc["sk"]), suite if isinstance(suite, str) else None


def _write_key_file(path: Path, suite: vrf.Suite, sk: bytes, pk: bytes, force: bool) -> None:
    if path.exists() and not force:
        raise InputError(f"{path} already exists (use --force to overwrite)")
    doc = {"format": KEY_FILE_FORMAT, "suite": suite.short_name, "sk": sk.hex(), "pk": pk.hex()}
    try:
        with atomic_path(path) as tmp:
            os.chmod(tmp, 0o600)
            tmp.write_text(json.dumps(doc, indent=2) + "\n")
    except OSError as e:
        raise InputError(f"cannot write key file {path}: {e.strerror}") from None


@app.command()
def keygen(
    suite: SuiteOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the key pair to this file (mode 0600); print only the public key.")
    ] = None,
    show_secret: Annotated[
        bool, typer.Option("--show-secret", help="Print the secret key to stdout instead of writing a file.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out file.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Generate a key pair. The secret key goes to --out (recommended) or, with --show-secret, to stdout."""

    def go() -> None:
        if out is None and not show_secret:
            raise InputError("refusing to print a secret key: pass --out KEYFILE (recommended) or --show-secret")
        if out is not None and show_secret:
            raise InputError("choose one of --out and --show-secret")
        s = _resolve_suite(suite)
        sk, pk = vrf.keygen(s)
        data: dict[str, Any] = {"suite": s.short_name, "pk": pk.hex()}
        if out is not None:
            _write_key_file(out, s, sk, pk, force)
            data["key_file"] = str(out)
            emit(json_mode, data, f"public key ({s.name}): {pk.hex()}\nsecret key written to {out} (mode 0600)")
        else:
            data["sk"] = sk.hex()
            emit(json_mode, data, f"suite: {s.name}\nsk: {sk.hex()}\npk: {pk.hex()}")

    run(go)


@app.command()
def prove(
    alpha: AlphaOpt,
    suite: SuiteOpt = None,
    sk: Annotated[
        str | None,
        typer.Option("--sk", envvar="ZKML_VRF_SK", show_envvar=True, help="Secret key as hex (prefer the env var or --sk-file)."),
    ] = None,
    sk_file: Annotated[
        Path | None, typer.Option("--sk-file", help="Key file from `zkml vrf keygen --out`, or a file holding the secret key as hex.")
    ] = None,
) -> None:
    """Prove alpha: prints JSON with the proof pi and the output beta (hex)."""

    def go() -> None:
        if sk_file is not None and sk is None:
            sk_bytes, file_suite = _read_key_file(sk_file)
            s = _resolve_suite(suite, file_suite)
        elif sk is not None and sk_file is None:
            sk_bytes = _hex("--sk", sk)
            s = _resolve_suite(suite)
        else:
            raise InputError("give exactly one secret key: --sk-file, --sk, or the ZKML_VRF_SK environment variable")
        _expect_len("the secret key", sk_bytes, s.q_len, "a scalar")
        alpha_bytes = _hex("--alpha", alpha)
        pi = vrf.prove(s, sk_bytes, alpha_bytes)
        data = {
            "suite": s.short_name,
            "pk": vrf.public_key(s, sk_bytes).hex(),
            "alpha": alpha_bytes.hex(),
            "pi": pi.hex(),
            "beta": vrf.proof_to_hash(s, pi).hex(),
        }
        emit(True, data, "")

    run(go)


@app.command()
def verify(
    pk: Annotated[str, typer.Option("--pk", help="Public key as hex (33-byte compressed point).")],
    alpha: AlphaOpt,
    pi: Annotated[str, typer.Option("--pi", help="Proof as hex (81 bytes).")],
    suite: SuiteOpt = None,
    json_mode: JsonOpt = False,
) -> None:
    """Verify a proof: exit 0 and print beta if valid; exit 1 "invalid VRF proof" otherwise."""

    def go() -> None:
        s = _resolve_suite(suite)
        pk_bytes = _hex("--pk", pk)
        pi_bytes = _hex("--pi", pi)
        alpha_bytes = _hex("--alpha", alpha)
        _expect_len("--pk", pk_bytes, s.pt_len, "a compressed point")
        _expect_len("--pi", pi_bytes, s.pi_len, "Gamma || c || s")
        beta = vrf.verify(s, pk_bytes, alpha_bytes, pi_bytes)
        if beta is None:
            if json_mode:
                emit(True, {"suite": s.short_name, "valid": False, "beta": None}, "")
            raise VerificationError("invalid VRF proof")
        emit(json_mode, {"suite": s.short_name, "valid": True, "beta": beta.hex()}, beta.hex())

    run(go)


@app.command()
def sample(
    beta: Annotated[str, typer.Option("--beta", help="VRF output beta as hex (32 bytes).")],
    n: Annotated[int, typer.Option("-n", "--population", help="Population size N (indices 0..N-1).")],
    k: Annotated[int, typer.Option("-k", "--count", help="How many distinct indices to draw.")],
    json_mode: JsonOpt = False,
) -> None:
    """Draw k distinct indices in [0, N) from beta (the same rule as the on-chain sampleIndices)."""

    def go() -> None:
        indices = sampling.sample_indices(_hex("--beta", beta), n, k)
        emit(json_mode, {"n": n, "k": k, "indices": indices}, " ".join(map(str, indices)))

    run(go)
