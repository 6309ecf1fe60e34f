"""``zkml serve``: run the warm prover service."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from zkml_cli.common import StoreOpt, run


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind (default loopback; others need a token).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0: any free port, printed).")] = 8765,
    workers: Annotated[int | None, typer.Option("--workers", help="Prover processes (default: from the cores and memory).")] = None,
    queue: Annotated[int, typer.Option("--queue", help="Most queued + running jobs; beyond it requests get 429.")] = 64,
    jobs: Annotated[Path | None, typer.Option("--jobs", help="Job folder (default: STORE/serve-jobs); survives restarts.")] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file", help="File holding the bearer token (else $ZKML_SERVE_TOKEN).")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per proof before its worker is killed.")] = 600.0,
    store: StoreOpt = None,
) -> None:
    """Serve proofs over HTTP: POST /v1/prove, GET /v1/jobs/ID, /v1/health, /v1/circuits."""
    from zkml.errors import ConfigError
    from zkml.serve import check_bind, read_token
    from zkml.serve import run as serve_run
    from zkml.serve.app import ServeConfig
    from zkml.store import Store

    def go() -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"--port must be 0-65535, not {port}")
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be at least 1, not {workers}")
        token = read_token(token_file, dict(os.environ))
        check_bind(host, token)
        st = Store(store)
        from zkml.scale.pool import default_workers

        cfg = ServeConfig(store=st.root, jobs=jobs or st.root / "serve-jobs", workers=workers or default_workers(),
                          queue=queue, token=token, timeout=timeout)
        serve_run(cfg, host, port)

    run(go)


def register(app: typer.Typer) -> None:
    """Attach ``serve`` to the root app."""
    app.command("serve")(serve)
