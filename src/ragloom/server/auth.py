"""Who may talk to the server: an API key, loopback hosts, same-origin browser requests.

``AccessGuard`` runs before any endpoint:

- With an API key (``RAGLOOM_API_KEY``), every request needs ``Authorization: Bearer
  <key>`` except ``/healthz`` and the page's static files (``/``, ``/web/...``): a
  browser cannot attach a header to a page it navigates to, the files hold no data, and
  the page asks for the key before it calls the API.  Otherwise: 401.
- Bound to loopback, only loopback ``Host`` names are answered, so a web page on
  another site cannot reach the server through DNS rebinding.
- A request that changes something (POST, DELETE...) sent by a page of another origin
  is refused: without a key, that is what would let any web site upload to or delete
  from a loopback server (CSRF).
"""

from __future__ import annotations

import hmac
from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from ragloom.server.errors import error_response

#: Paths answered without the key.
PUBLIC_PATHS = frozenset({"/healthz", "/"})
PUBLIC_PREFIXES = ("/web/",)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    """True for an address or name that only this machine can reach."""
    host = host.strip("[]").lower()
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def _hostname(netloc: str) -> str:
    """``host`` from ``host:port`` or ``[v6]:port``."""
    return (urlsplit(f"//{netloc}").hostname or "").lower()


class AccessGuard:
    """ASGI middleware enforcing the rules in the module docstring.

    ``api_key`` None means no key is needed; ``allowed_hosts`` None means any Host.
    """

    def __init__(
        self, app: ASGIApp, api_key: str | None, allowed_hosts: Collection[str] | None
    ) -> None:
        self.app = app
        self.api_key = api_key
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope["method"], scope["path"], headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message = refusal
        extra = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        code = "invalid_api_key" if status == 401 else None  # as OpenAI's API says it
        await error_response(status, message, headers=extra, code=code)(scope, receive, send)

    def _refusal(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if self.allowed_hosts is not None and _hostname(host) not in self.allowed_hosts:
            return 403, (
                f"Host '{host}' refused: this server listens on loopback and answers"
                f" {', '.join(sorted(self.allowed_hosts))} only"
            )
        origin = headers.get("origin")
        cross_origin = origin is not None and (
            origin == "null" or urlsplit(origin).netloc.lower() != host.lower()
        )
        if method not in _SAFE_METHODS and cross_origin:
            return 403, f"cross-origin request from {origin} refused"
        if self.api_key is None or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return 401, (
                "this server needs an API key: send the header 'Authorization: Bearer <key>'"
                " with the key in the server's RAGLOOM_API_KEY"
            )
        if not hmac.compare_digest(given.strip().encode(), self.api_key.encode()):
            return 401, "wrong API key: use the value of the server's RAGLOOM_API_KEY"
        return None
