"""The embedded local chain: the pinned anvil on 127.0.0.1.

Two ways to run it:

* :class:`Anvil` — a child process for the lifetime of a ``with`` block (tests,
  one-shot commands). ``Anvil.start()`` picks a free port, waits until the RPC
  answers, and ``stop()`` terminates then kills.
* the detached chain of ``zkml chain up|down|status`` — an anvil in its own
  session that outlives the CLI. Its pid, port, process start time and state
  path live in ``<store>/chain/chain.json``; ``--state`` makes anvil load the
  state file at start and dump it on SIGTERM, so deployments survive restarts.

We never pass ``--code-size-limit``/``--disable-code-size-limit``: EIP-170
(24,576 bytes of runtime code) is enforced exactly as on mainnet, which is
the point of testing verifier deployments here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

import psutil
from filelock import FileLock

from zkml.errors import ChainError, StoreError, ToolError
from zkml.evm.solc import NODE_MODULES_ENV, find_node_modules
from zkml.util import read_json, write_json_atomic

#: Env var naming an anvil binary to use instead of the pinned one.
ANVIL_ENV: Final[str] = "ZKML_ANVIL"
#: Chain id of the embedded chain (anvil's default).
ANVIL_CHAIN_ID: Final[int] = 31337
#: Private key of anvil's first dev account (public knowledge: the "test test … junk"
#: mnemonic). Only ever used against the embedded chain.
ANVIL_DEV_KEY: Final[str] = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
#: Address of that account.
ANVIL_DEV_ADDRESS: Final[str] = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
#: Subdirectory of the store that holds the detached chain's files.
CHAIN_SUBDIR: Final[str] = "chain"

_HOST = "127.0.0.1"


def find_anvil() -> str:
    """Path of the pinned anvil binary.

    ``$ZKML_ANVIL`` wins; otherwise ``node_modules/.bin/anvil`` (installed by
    ``npm ci`` from the platform package ``@foundry-rs/anvil-<os>-<arch>``).

    Raises:
        ToolError: no executable anvil (tells the user to run ``npm ci``).
    """
    env = os.environ.get(ANVIL_ENV)
    if env:
        path = shutil.which(env) or env
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
        raise ToolError(f"anvil not found: {ANVIL_ENV}={env} is not an executable")
    try:
        nm = find_node_modules()
    except ToolError:
        raise ToolError(f"anvil not found: run npm ci (or set {NODE_MODULES_ENV} / {ANVIL_ENV})") from None
    candidates = [nm / ".bin" / "anvil", *sorted((nm / "@foundry-rs").glob("anvil-*/bin/anvil"))]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    raise ToolError("anvil not found: run npm ci")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((_HOST, 0))
        return int(s.getsockname()[1])


def rpc_request(url: str, method: str, params: list[Any] | None = None, *, timeout: float = 2.0) -> Any:
    """One JSON-RPC call over plain HTTP (no web3 import; used for liveness checks).

    Raises:
        ChainError: the node is unreachable, answers garbage, or returns an error.
    """
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - URL is ours or the user's
            reply = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ChainError(f"cannot reach RPC at {url}") from e
    if not isinstance(reply, dict):
        raise ChainError(f"RPC at {url} returned a malformed reply to {method}")
    if "error" in reply:
        err = reply["error"]
        msg = err.get("message", err) if isinstance(err, dict) else err
        raise ChainError(f"RPC {method} failed: {msg}")
    return reply.get("result")


def _log_tail(log: IO[bytes] | Path | None, lines: int = 3) -> str:
    try:
        if isinstance(log, Path):
            data = log.read_bytes()
        elif log is not None:
            log.seek(0)
            data = log.read()
        else:
            return ""
    except OSError:
        return ""
    tail = [ln.strip() for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    return " | ".join(tail[-lines:])


def _command(binary: str, port: int, state_path: Path | None, chain_id: int, hardfork: str | None) -> list[str]:
    cmd = [binary, "--host", _HOST, "--port", str(port), "--chain-id", str(chain_id), "--silent"]
    if hardfork:
        cmd += ["--hardfork", hardfork]
    if state_path is not None:
        cmd += ["--state", str(state_path)]
    return cmd


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float) -> bool:
    """True once the RPC answers; False if the process died first.

    Raises:
        ToolError: still not answering after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            rpc_request(url, "eth_chainId", timeout=0.5)
            return True
        except ChainError:
            time.sleep(0.05)
    raise ToolError(f"anvil did not answer on {url} within {timeout:.0f}s")


class Anvil:
    """A running anvil child process; a context manager that stops it on exit."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, state_path: Path | None, chain_id: int):
        self._proc = proc
        self.port: Final[int] = port
        """TCP port on 127.0.0.1."""
        self.state_path: Final[Path | None] = state_path
        """The ``--state`` file, if persistence is on."""
        self.chain_id: Final[int] = chain_id
        """EIP-155 chain id."""

    @classmethod
    def start(
        cls,
        state_path: str | os.PathLike[str] | None = None,
        port: int | None = None,
        *,
        chain_id: int = ANVIL_CHAIN_ID,
        hardfork: str | None = None,
        timeout: float = 30.0,
        detached: bool = False,
        log_path: str | os.PathLike[str] | None = None,
    ) -> Anvil:
        """Start anvil on 127.0.0.1 and wait until its RPC answers.

        ``port=None`` picks a free port (retrying if another process grabs it
        first). ``state_path`` turns on ``--state`` persistence. ``detached``
        puts anvil in its own session so it outlives this process (output goes
        to ``log_path``).

        Raises:
            ToolError: anvil is missing, exits during start-up (message carries
                its last log line), or does not answer within ``timeout``.
        """
        binary = find_anvil()
        state = Path(state_path).resolve() if state_path is not None else None
        if state is not None:
            state.parent.mkdir(parents=True, exist_ok=True)
        attempts = 1 if port is not None else 3
        last = ""
        for _ in range(attempts):
            p = port if port is not None else free_port()
            log: IO[bytes]
            if log_path is not None:
                log = open(log_path, "ab+")  # noqa: SIM115 - closed below / handed to the child
            else:
                log = tempfile.TemporaryFile()  # noqa: SIM115
            from zkml.keys import child_env

            try:
                proc = subprocess.Popen(
                    _command(binary, p, state, chain_id, hardfork),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=detached,
                    env=child_env(),  # anvil needs no secret
                )
            except OSError as e:
                log.close()
                raise ToolError(f"cannot start anvil ({e.strerror or e}): run npm ci") from e
            try:
                ready = _wait_ready(proc, f"http://{_HOST}:{p}", timeout)
            except ToolError:
                _terminate(proc, 5.0)
                log.close()
                raise
            if ready:
                log.close()  # the child keeps its own descriptor
                return cls(proc, p, state, chain_id)
            last = _log_tail(log) or f"exit code {proc.returncode}"
            log.close()
            if "in use" not in last.lower():
                break
        raise ToolError(f"anvil exited during start-up: {last}")

    @property
    def rpc_url(self) -> str:
        """HTTP JSON-RPC endpoint."""
        return f"http://{_HOST}:{self.port}"

    @property
    def pid(self) -> int:
        """Process id of anvil."""
        return self._proc.pid

    def running(self) -> bool:
        """Whether the process is still alive."""
        return self._proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate (anvil dumps ``--state`` on SIGTERM), kill after ``timeout``. Idempotent."""
        _terminate(self._proc, timeout)

    def __enter__(self) -> Anvil:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running() else "stopped"
        return f"Anvil(rpc_url={self.rpc_url!r}, pid={self.pid}, {state})"


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5.0)


# The detached chain of `zkml chain up|down|status`


@dataclass(frozen=True)
class ChainInfo:
    """What ``chain up`` recorded about the detached anvil."""

    pid: int
    """Process id."""
    create_time: float
    """Process start time (psutil); guards against a recycled pid."""
    port: int
    """TCP port on 127.0.0.1."""
    rpc_url: str
    """HTTP JSON-RPC endpoint."""
    chain_id: int
    """EIP-155 chain id."""
    state_path: str
    """anvil ``--state`` file: loaded at start, dumped on ``chain down``."""
    log_path: str
    """anvil's output."""
    started_at: float
    """Unix time of ``chain up``."""


@dataclass(frozen=True)
class ChainStatus:
    """Liveness of the detached chain."""

    state: str
    """``running`` (pid alive and RPC answers), ``unresponsive`` (pid alive, RPC silent) or ``stopped``."""
    info: ChainInfo | None
    """The record, when one exists."""
    block_number: int | None
    """Latest block when running."""

    @property
    def running(self) -> bool:
        """True only when the RPC answers."""
        return self.state == "running"

    def to_json(self) -> dict[str, Any]:
        """Machine-readable form for ``--json``."""
        return {
            "state": self.state,
            "running": self.running,
            "block_number": self.block_number,
            **({"chain": asdict(self.info)} if self.info else {}),
        }


def _chain_dir(store_dir: str | os.PathLike[str]) -> Path:
    from zkml.store import Store

    return Store(Path(store_dir).expanduser()).chain_dir


def _record_path(store_dir: str | os.PathLike[str]) -> Path:
    return _chain_dir(store_dir) / "chain.json"


def _lock(store_dir: str | os.PathLike[str]) -> FileLock:
    d = _chain_dir(store_dir)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create {d}: {e.strerror or e}") from e
    return FileLock(str(d / ".lock"), timeout=60)


def _read_record(store_dir: str | os.PathLike[str]) -> ChainInfo | None:
    path = _record_path(store_dir)
    if not path.exists():
        return None
    try:
        return ChainInfo(**read_json(path))
    except (OSError, ValueError, TypeError) as e:
        raise StoreError(f"chain record {path} is corrupt ({e}); delete it after stopping anvil") from e


def _process_of(info: ChainInfo) -> psutil.Process | None:
    """The recorded anvil process if it is still the same live process."""
    try:
        proc = psutil.Process(info.pid)
        if abs(proc.create_time() - info.create_time) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def _status(info: ChainInfo | None) -> ChainStatus:
    if info is None or _process_of(info) is None:
        return ChainStatus("stopped", info, None)
    try:
        block = int(rpc_request(info.rpc_url, "eth_blockNumber", timeout=2.0), 16)
    except (ChainError, TypeError, ValueError):
        return ChainStatus("unresponsive", info, None)
    return ChainStatus("running", info, block)


def chain_status(store_dir: str | os.PathLike[str]) -> ChainStatus:
    """Whether the detached chain of this store is running (pid alive and RPC answering).

    Raises:
        StoreError: the chain record is corrupt.
    """
    return _status(_read_record(store_dir))


def chain_up(store_dir: str | os.PathLike[str], port: int | None = None, *, timeout: float = 30.0) -> ChainInfo:
    """Start the detached chain for ``store_dir`` (or return the one already running).

    State persists in ``<store>/chain/state.json`` across ``down``/``up``.

    Raises:
        ToolError: anvil is missing or fails to start.
        ChainError: a recorded anvil is alive but its RPC does not answer.
        StoreError: the store is not writable or the record is corrupt.
    """
    with _lock(store_dir):
        status = chain_status(store_dir)
        if status.running and status.info is not None:
            return status.info
        if status.state == "unresponsive" and status.info is not None:
            raise ChainError(
                f"anvil (pid {status.info.pid}) is alive but {status.info.rpc_url} does not answer: "
                "run `zkml chain down` first"
            )
        d = _chain_dir(store_dir)
        state = d / "state.json"
        log = d / "anvil.log"
        anvil = Anvil.start(state, port, detached=True, log_path=log, timeout=timeout)
        info = ChainInfo(
            pid=anvil.pid,
            create_time=psutil.Process(anvil.pid).create_time(),
            port=anvil.port,
            rpc_url=anvil.rpc_url,
            chain_id=anvil.chain_id,
            state_path=str(state),
            log_path=str(log),
            started_at=time.time(),
        )
        try:
            write_json_atomic(_record_path(store_dir), asdict(info))
        except OSError as e:
            anvil.stop()
            raise StoreError(f"cannot write chain record: {e.strerror or e}") from e
        return info


def chain_down(store_dir: str | os.PathLike[str], *, timeout: float = 15.0) -> ChainInfo | None:
    """Stop the detached chain (SIGTERM, so anvil dumps its state; SIGKILL after ``timeout``).

    Returns the record of the chain that was stopped, or None if none was running.

    Raises:
        StoreError: the record is corrupt or cannot be removed.
    """
    with _lock(store_dir):
        info = _read_record(store_dir)
        if info is None:
            return None
        proc = _process_of(info)
        stopped = info if proc is not None else None
        if proc is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.terminate()
                try:
                    proc.wait(timeout)
                except psutil.TimeoutExpired:
                    proc.kill()
                    proc.wait(5.0)
        try:
            _record_path(store_dir).unlink(missing_ok=True)
        except OSError as e:
            raise StoreError(f"cannot remove chain record: {e.strerror or e}") from e
        return stopped


def embedded_rpc_url(store_dir: str | os.PathLike[str]) -> str | None:
    """RPC URL of this store's running detached chain, or None when it is not running."""
    status = chain_status(store_dir)
    return status.info.rpc_url if status.running and status.info else None
