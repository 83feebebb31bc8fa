"""What every response gets: security headers, and {"error": ...} for routes we lack.

    curl -si http://127.0.0.1:3000/no/such/path     # 404 {"error": "no route GET /no/such/path"}

An ASGI middleware around BentoML's routes, our endpoints and its own (/docs, /readyz,
/metrics) alike:
- `X-Content-Type-Options: nosniff` on everything;
- `Cache-Control: no-store` on predictions: an answer about a user's image is not for a
  shared cache;
- a strict Content-Security-Policy on HTML: the Swagger UI page embeds Google Tag
  Manager, which must not run (a privacy leak, and broken offline);
- Starlette's plain-text 404 and 405 become the JSON body every other error has;
- a redirect's Location is a path on this site: Starlette builds an absolute URL from
  the client's Host header (`Host: evil.example`, or a replica's own address behind a
  proxy when an HTTP/1.0 client sends no Host).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import MethodNotAllowed, NoRoute, ServiceError, error_response

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; frame-src 'none'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# Starlette's plain-text answers that become ours, and what ours say.
_REPLACED: dict[int, tuple[type[ServiceError], str]] = {
    404: (NoRoute, "no route"), 405: (MethodNotAllowed, "method not allowed:")}


def _replacement(status: int, method: str, path: str) -> bytes:
    """The JSON body every other error has (errors.error_response); bounded: the path is
    cut, and JSON escapes what it holds."""
    error, reason = _REPLACED[status]
    return bytes(error_response(error(f"{reason} {method} {path[:200]}")).body)


def _same_site(location: str) -> str:
    """An absolute URL's path, query and fragment: a Location on the site that answered."""
    url = urlsplit(location)
    path = "/" + url.path.lstrip("/")  # never "//host": a network-path reference
    return path + (f"?{url.query}" if url.query else "") + \
        (f"#{url.fragment}" if url.fragment else "")


class SafeResponses:
    def __init__(self, app: ASGIApp,
                 no_store: Callable[[str], bool] = lambda path: False) -> None:
        self.app = app
        self.no_store = no_store  # whether a path's answers are for no cache to keep

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        replacing = False

        async def guarded_send(message: Message) -> None:
            nonlocal replacing
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if self.no_store(path):
                    headers["Cache-Control"] = "no-store"
                ctype = headers.get("content-type", "")
                if ctype.startswith("text/html"):
                    headers["Content-Security-Policy"] = CSP
                status = message["status"]
                if 300 <= status < 400 and "location" in headers:
                    headers["location"] = _same_site(headers["location"])
                if status in _REPLACED and ctype.startswith("text/plain"):
                    replacing = True
                    body = _replacement(status, method, path)
                    headers["content-type"] = "application/json"
                    headers["content-length"] = str(len(body))
                    await send(message)
                    await send({"type": "http.response.body", "body": body})
                    return
            elif message["type"] == "http.response.body" and replacing:
                return  # the plain-text body is dropped: ours went out with the start
            await send(message)

        await self.app(scope, receive, guarded_send)
