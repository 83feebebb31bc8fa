"""The transport's own ceiling: uvicorn + httptools answering a constant 200 (benchmarks only).

    uvicorn benchmarks.transport:app --http httptools --workers 2 --no-access-log --port 3200

A bare ASGI app that reads the whole request body (the same multipart upload the service
gets) and answers the same small JSON every time: no routing, no parsing, no model. What
the service's HTTP server can do at best on this machine with the same workers and the
same load generator, so `make bench` can say how close the service comes to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

ANSWER = b'{"status":"ok"}'
HEADERS = [(b"content-type", b"application/json"),
           (b"content-length", str(len(ANSWER)).encode())]


async def app(scope: Scope, receive: Callable[[], Awaitable[Message]],
              send: Callable[[Message], Awaitable[None]]) -> None:
    if scope["type"] == "lifespan":  # nothing to start: say so, then wait for the end
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:  # the whole body, as any server that answers from it must read it
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})
