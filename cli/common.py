"""Shared CLI pieces: option types, output, and the error -> exit-code table."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from zkml.errors import ZkmlError

# Shared option types, defined once.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print complete machine-readable JSON instead of a summary.")]
StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", envvar="ZKML_STORE", help="Artifact store directory (default: ./.zkml)."),
]
KeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="Ethereum private key file for transactions (else $ZKML_PRIVATE_KEY; anvil's dev key on the embedded chain).",
    ),
]
RpcOpt = Annotated[
    str | None,
    typer.Option("--rpc-url", envvar="ZKML_RPC_URL", help="EVM JSON-RPC URL, or an ordered comma-separated list to fail over between (default: the embedded anvil chain)."),
]

WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", help="Local prover processes for many proofs (default: from the cores and memory)."),
]
RayOpt = Annotated[str | None, typer.Option("--ray", help="Prove on a Ray cluster: ADDRESS (host:port) or auto.")]
ServerOpt = Annotated[
    str | None,
    typer.Option("--server", help="Prover service URL[,URL…] (zkml serve), tried in order, then local proving; token in $ZKML_SERVE_TOKEN."),
]

T = TypeVar("T")


def emit(json_mode: bool, data: dict[str, Any], human: str) -> None:
    """Print ``data`` as JSON with --json, else the short human summary."""
    if json_mode:
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        typer.echo(human)


def progress(json_mode: bool) -> Callable[[str], None]:
    """A progress callback that writes to stderr (never pollutes --json stdout)."""

    def report(msg: str) -> None:
        if not json_mode:
            typer.echo(f"  .. {msg}", err=True)

    return report


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear line on stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def refuse(error: ZkmlError) -> typer.Exit:
    """Print a zkml error (a verdict, or bad input) as one stderr line; return the Exit with its code to raise."""
    return fail(error.message, error.exit_code)


def run(fn: Callable[[], T]) -> T:
    """Call ``fn``; map zkml errors to one stderr line and their exit code.

    ``ZKML_DEBUG=1`` prints the traceback as well.
    """
    debug = os.environ.get("ZKML_DEBUG", "") not in ("", "0")
    try:
        return fn()
    except typer.Exit:
        raise
    except ZkmlError as e:
        if debug:
            traceback.print_exc()
        raise fail(e.message, e.exit_code) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None
    except Exception as e:  # a bug: still one line unless debugging
        if debug:
            traceback.print_exc()
        raise fail(f"internal error: {type(e).__name__}: {e} (set ZKML_DEBUG=1 for the traceback)", 3) from None


APP_HELP = "Zero-knowledge verifiable ML inference: compile ONNX to a Halo2 circuit, prove, verify (locally or on chain)."


def root_app() -> typer.Typer:
    """An empty root ``zkml`` app (the full one in :mod:`zkml_cli.main`, the core-only one in :mod:`zkml_cli.boot`)."""
    return typer.Typer(name="zkml", help=APP_HELP, no_args_is_help=True, add_completion=False,
                       pretty_exceptions_enable=False)


def main_guard(app: typer.Typer) -> None:
    """Run the root app; a usage error (unknown option, missing argument) is one stderr line, exit 2."""
    from typer import _click
    from typer.exceptions import Abort

    try:
        rv = app(standalone_mode=False)
    except _click.exceptions.NoArgsIsHelpError as e:
        typer.echo(e.ctx.get_help() if e.ctx else str(e))
        sys.exit(2)
    except _click.exceptions.ClickException as e:
        where = f" (see `{e.ctx.command_path} --help`)" if getattr(e, "ctx", None) else ""
        typer.echo(f"error: {e.format_message()}{where}", err=True)
        sys.exit(e.exit_code)
    except Abort:
        typer.echo("error: aborted", err=True)
        sys.exit(1)
    except SystemExit as e:
        sys.exit(e.code)
    sys.exit(rv if isinstance(rv, int) else 0)
