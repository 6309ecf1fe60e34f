"""Root Typer app: joins the command groups. Installed as the ``zkml`` script."""

from __future__ import annotations

import typer

from zkml_cli import audit, chain, compare, core, data, gate, onchain, ops, report, serve, vrf
from zkml_cli.common import main_guard, root_app

app = root_app()


def _version(value: bool) -> None:
    if value:
        from zkml import __version__

        typer.echo(f"zkml {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Zero-knowledge verifiable ML inference: compile ONNX to a Halo2 circuit, prove, verify (locally or on chain)."""


core.register(app)
compare.register(app)
gate.register(app)
onchain.register(app)
ops.register(app)
serve.register(app)
report.register(app)
app.add_typer(chain.app, name="chain")
app.add_typer(data.app, name="data")
app.add_typer(vrf.app, name="vrf")
app.add_typer(audit.app, name="audit")


def main() -> None:
    """Console-script entry point."""
    main_guard(app)


if __name__ == "__main__":
    main()
