"""``zkml vrf``: ECVRF keys, proofs, verification and index sampling (RFC 9381).

Keep secret keys out of argv and shell history: the documented way is

    zkml vrf keygen --suite secp256k1 --out vrf.key     # 0600 file; prints only the public key
    zkml vrf prove --sk-file vrf.key --alpha 616263     # or ZKML_VRF_SK=<hex> zkml vrf prove ...
    zkml vrf verify --suite secp256k1 --pk <hex> --alpha 616263 --pi <hex>

There is no ``--sk`` flag: a secret on the command line is visible to every
user in ``ps``. Keys are read and written by :mod:`zkml.keys` (one default
suite, secp256k1, the one ``VRFVerifier.sol`` checks).

Exit codes: 0 success / valid proof, 1 invalid proof, 2 malformed input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from zkml import keys, sampling, vrf
from zkml.errors import InputError, VerificationError
from zkml.keys import DEFAULT_VRF_SUITE
from zkml_cli.common import JsonOpt, emit, run

app = typer.Typer(
    name="vrf",
    help="Verifiable random function (ECVRF, RFC 9381): keygen, prove, verify, sample indices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_SUITE_HELP = "ECVRF suite: secp256k1 (0xFE, verifiable on chain) or p256 (RFC 9381 ECVRF-P256-SHA256-TAI, 0x01)."

SuiteOpt = Annotated[
    str | None,
    typer.Option("--suite", help=_SUITE_HELP + f" Default: the key file's suite, else {DEFAULT_VRF_SUITE}."),
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


def _resolve_suite(name: str | None) -> vrf.Suite:
    return vrf.get_suite(name or DEFAULT_VRF_SUITE)


@app.command()
def keygen(
    suite: SuiteOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the key pair to this file (mode 0600); print only the public key.")
    ] = None,
    print_secret: Annotated[
        bool, typer.Option("--print-secret", help="Print the secret key to stdout instead of writing a file (it lands "
                                                   "in your terminal and scrollback: prefer --out).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out file.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Generate a key pair. The secret key goes to --out (recommended) or, with --print-secret, to stdout."""

    def go() -> None:
        if out is None and not print_secret:
            raise InputError("refusing to print a secret key: pass --out KEYFILE (recommended) or --print-secret")
        if out is not None and print_secret:
            raise InputError("choose one of --out and --print-secret")
        key = keys.VrfKey.generate(_resolve_suite(suite))
        s = key.suite
        data: dict[str, Any] = {"suite": s.short_name, "pk": key.pk.hex()}
        if out is not None:
            keys.write_vrf_key(out, key, overwrite=force)
            data["key_file"] = str(out)
            emit(json_mode, data, f"public key ({s.name}): {key.pk.hex()}\nsecret key written to {out} (mode 0600)")
        else:
            data["sk"] = key.sk.hex()
            emit(json_mode, data, f"suite: {s.name}\nsk: {key.sk.hex()}\npk: {key.pk.hex()}")

    run(go)


@app.command()
def prove(
    alpha: AlphaOpt,
    suite: SuiteOpt = None,
    sk_file: Annotated[
        Path | None,
        typer.Option("--sk-file", "--key-file",
                     help=f"Key file from `zkml vrf keygen --out`, or a file holding the secret key as hex "
                          f"(else ${keys.VRF_SK_ENV}). There is no flag for the key itself: argv is visible in ps."),
    ] = None,
) -> None:
    """Prove alpha: prints JSON with the proof pi and the output beta (hex)."""

    def go() -> None:
        key = keys.load_vrf_key(sk_file, suite)
        assert key is not None
        alpha_bytes = _hex("--alpha", alpha)
        pi = vrf.prove(key.suite, key.sk, alpha_bytes)
        data = {
            "suite": key.suite.short_name,
            "pk": key.pk.hex(),
            "alpha": alpha_bytes.hex(),
            "pi": pi.hex(),
            "beta": vrf.proof_to_hash(key.suite, pi).hex(),
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
