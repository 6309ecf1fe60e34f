"""The ``zkml`` console script: the warm ``zkml prove`` path kept lean, then the CLI.

Two things keep a warm ``zkml prove`` (circuit already built) close to raw ``ezkl.prove``:
- a one-shot ``zkml prove`` proves in a subprocess (so that a hung ezkl can be killed). Started
  here, before the CLI's own imports, that subprocess's interpreter start and ``import ezkl``
  run while this process imports, finds the circuit and makes the witness. Only the plain
  local route takes it (``--server``, ``--ray``, ``--workers`` or help do not start one); if
  nothing takes it, it ends with this process;
- the core commands (``export``, ``compile``, ``prove``, ``verify``, ``inspect``, ``reproduce``)
  run on an app holding just them: the other command groups are neither imported nor built
  (the same commands, options and messages; ``zkml --help`` and every other command use the
  full app in :mod:`zkml_cli.main`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

_OTHER_ROUTES = {"--server", "--ray", "--workers", "--help", "-h"}
CORE_COMMANDS = ("export", "compile", "prove", "verify", "inspect", "reproduce")


def wants_early_prover(argv: list[str]) -> bool:
    """``zkml prove ...`` on this machine's default route."""
    return argv[:1] == ["prove"] and not any(a.split("=", 1)[0] in _OTHER_ROUTES for a in argv[1:])


def main() -> None:
    """Console-script entry point."""
    if wants_early_prover(sys.argv[1:]):
        from zkml._prove_worker import prestart

        prestart()
    if sys.argv[1:2] and sys.argv[1] in CORE_COMMANDS:
        from zkml_cli.common import main_guard

        main_guard(core_app())
    from zkml_cli.main import main as run

    run()


def core_app() -> typer.Typer:
    """A root app with only the core commands (what :mod:`zkml_cli.main` registers first)."""
    from zkml_cli import core
    from zkml_cli.common import root_app

    app = root_app()
    core.register(app)
    return app
