"""sensorprint.web: the local web interface over a case (FastAPI, Jinja2 pages, server-sent events).

`serve(case)` binds 127.0.0.1 unless told otherwise, prints the address with a random
access token, and refuses every request without it (`web/security.py`). Actions run the
workflow's use cases in background jobs (`web/jobs.py`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from sensorprint.web.app import create_app
from sensorprint.web.security import new_token

__all__ = ["bind", "create_app", "serve"]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one); CaseError-like one line when taken."""
    from sensorprint.errors import SensorprintError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SensorprintError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from exc
    sock.listen(64)
    return sock


def allowed_hosts(host: str, port: int) -> set[str]:
    """The Host headers a browser sends for this server (anything else is refused: DNS rebinding)."""
    names = {host, "localhost", "127.0.0.1"} if host in ("127.0.0.1", "localhost") else {host}
    return {f"{name}:{port}" for name in names} | ({f"[{host}]:{port}"} if ":" in host else set())


def serve(
    case: Path | str,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    workers: int | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the case until interrupted (Ctrl-C); prints the address with the access token first."""
    import uvicorn

    token = token or new_token()
    sock = bind(host, port)
    port = sock.getsockname()[1]
    app = create_app(case, token, workers=workers, allowed_hosts=allowed_hosts(host, port))
    shown = f"[{host}]" if ":" in host else host
    announce(f"sensorprint serves {Path(case).absolute()} at http://{shown}:{port}/?token={token}")
    announce("open that address in a browser on this machine; without the token every request is refused")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])
