"""``zkml serve``: the warm prover service (:mod:`zkml.serve.app`) and its client (:mod:`zkml.serve.client`).

Loopback by default; binding any other address needs a bearer token
(``$ZKML_SERVE_TOKEN`` or ``--token-file``), never one on the command line.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from zkml.errors import ConfigError

TOKEN_ENV = "ZKML_SERVE_TOKEN"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(token_file: Path | None, env: dict[str, str]) -> str | None:
    """The bearer token from a file (first line) or ``$ZKML_SERVE_TOKEN``.

    Raises:
        ConfigError: unreadable or empty token file.
    """
    if token_file is not None:
        try:
            tok = token_file.read_text().strip().splitlines()
        except OSError as e:
            raise ConfigError(f"token file {token_file}: {e.strerror}") from None
        if not tok or not tok[0].strip():
            raise ConfigError(f"token file {token_file} is empty")
        return tok[0].strip()
    return env.get(TOKEN_ENV) or None


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond loopback without a token.

    Raises:
        ConfigError: a non-loopback host and no token.
    """
    if not is_loopback(host) and not token:
        raise ConfigError(f"binding {host} exposes the prover beyond this machine: set ${TOKEN_ENV} or --token-file")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port).

    Raises:
        ConfigError: the address is in use or not ours.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
    except OSError as e:
        s.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    s.listen(256)
    s.set_inheritable(True)
    return s


def run(cfg: object, host: str, port: int, announce: Callable[[str], None] = lambda m: print(m, flush=True)) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn), announcing ``listening on URL`` once bound."""
    import uvicorn

    from zkml.serve.app import create_app

    check_bind(host, getattr(cfg, "token", None))
    sock = bind(host, port)
    real = sock.getsockname()[1]
    app = create_app(cfg)  # type: ignore[arg-type]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                           timeout_graceful_shutdown=5))
    shown = f"[{host}]" if ":" in host else host
    orig_startup = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await orig_startup(sockets=sockets)
        svc = app.state.service
        announce(f"zkml serve: listening on http://{shown}:{real} ({svc.cfg.workers} worker(s), queue {svc.cfg.queue}, "
                 f"{'bearer token required' if svc.cfg.token else 'no auth: loopback only'}; "
                 f"recovered jobs: {svc.queue.recovered})")

    server.startup = startup  # type: ignore[method-assign]
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    sys.stdout.flush()
