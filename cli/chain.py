"""``zkml chain up|down|status``: the embedded local chain (a detached anvil on 127.0.0.1)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from zkml_cli.common import JsonOpt, StoreOpt, emit, run


def _anvil() -> Any:
    """zkml.evm.anvil, imported on first use (keeps ``zkml --help`` fast)."""
    import zkml.evm.anvil

    return zkml.evm.anvil

app = typer.Typer(
    name="chain",
    help="Run the embedded local chain (anvil on 127.0.0.1; state persists in the store).",
    no_args_is_help=True,
    add_completion=False,
)

PortOpt = Annotated[int | None, typer.Option("--port", help="TCP port (default: a free one).")]


def _store(store: Path | None) -> Path:
    return store if store is not None else Path(".zkml")


@app.command("up")
def up(store: StoreOpt = None, port: PortOpt = None, json_mode: JsonOpt = False) -> None:
    """Start the chain (or report the one already running)."""

    def go() -> None:
        info = _anvil().chain_up(_store(store), port)
        emit(json_mode, {"running": True, **asdict(info)},
             f"chain running at {info.rpc_url} (pid {info.pid}, chain id {info.chain_id}, state {info.state_path})")

    run(go)


@app.command("down")
def down(store: StoreOpt = None, json_mode: JsonOpt = False) -> None:
    """Stop the chain; its state is dumped to the store for the next `up`."""

    def go() -> None:
        info = _anvil().chain_down(_store(store))
        if info is None:
            emit(json_mode, {"stopped": False, "running": False}, "chain was not running")
        else:
            emit(json_mode, {"stopped": True, "running": False, **asdict(info)},
                 f"chain stopped (pid {info.pid}); state saved to {info.state_path}")

    run(go)


@app.command("status")
def status(store: StoreOpt = None, json_mode: JsonOpt = False) -> None:
    """Show whether the chain runs and answers. Exit code 1 when it does not."""

    def go() -> int:
        st = _anvil().chain_status(_store(store))
        if st.running and st.info is not None:
            human = f"running at {st.info.rpc_url} (pid {st.info.pid}), block {st.block_number}"
        elif st.state == "unresponsive" and st.info is not None:
            human = f"unresponsive: pid {st.info.pid} is alive but {st.info.rpc_url} does not answer"
        else:
            human = "stopped"
        emit(json_mode, st.to_json(), human)
        return 0 if st.running else 1

    code = run(go)
    if code:
        raise typer.Exit(code)
