"""Access control of the web interface: a random token, a CSRF token on every action, strict headers.

The server prints `http://127.0.0.1:PORT/?token=...` at start. The first request with
the token sets an HttpOnly, SameSite=Strict cookie and redirects to the same page without
it (the token leaves the address bar and the history); every request without a valid
token or cookie is refused (403). Every POST carries a CSRF token derived from the access
token (HMAC), and its Origin, when sent, must be this server. The Host header must name
the address the server listens on (no DNS rebinding). Pages allow scripts and styles from
this server only (Content-Security-Policy).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlencode

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

COOKIE = "sensorprint_token"
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make browsers send "Origin: null" on POST
    "Cache-Control": "no-store",
}


def new_token() -> str:
    """A random access token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def csrf_token(token: str) -> str:
    """The CSRF token of forms for this access token (HMAC-SHA-256, so it needs no server state)."""
    return hmac.new(token.encode(), b"sensorprint csrf", hashlib.sha256).hexdigest()


def csrf_ok(token: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(token), str(sent))


class TokenMiddleware(BaseHTTPMiddleware):
    """Refuse every request without the access token; set the cookie from ?token=; add the security headers."""

    def __init__(self, app, token: str, allowed_hosts: set[str]) -> None:
        super().__init__(app)
        self.token = token
        self.allowed_hosts = allowed_hosts

    def _authorised(self, request: Request) -> bool:
        cookie = request.cookies.get(COOKIE) or ""
        return hmac.compare_digest(cookie.encode(), self.token.encode())

    async def dispatch(self, request: Request, call_next) -> Response:
        host = (request.headers.get("host") or "").lower()
        if self.allowed_hosts and host not in self.allowed_hosts:
            return self._secured(PlainTextResponse("refused: unknown Host header", status_code=421))
        given = request.query_params.get("token")
        if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + ("?" + urlencode(rest) if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", path="/")
            return self._secured(response)
        if not self._authorised(request):
            message = "refused: this sensorprint server needs the access token printed when it started (?token=...)"
            return self._secured(PlainTextResponse(message, status_code=403))
        if request.method not in ("GET", "HEAD") and not self._same_origin(request, host):
            return self._secured(PlainTextResponse("refused: the request came from another site", status_code=403))
        return self._secured(await call_next(request))

    @staticmethod
    def _same_origin(request: Request, host: str) -> bool:
        origin = request.headers.get("origin")
        return origin is None or origin.lower() in (f"http://{host}", f"https://{host}")

    @staticmethod
    def _secured(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response
