"""The ASGI guard in front of the scoring service: an API key on everything but the probes and
the API docs, load shedding, a cap on the request body, JSON bodies only, and 422 for a body
that is not a valid transaction (BentoML 1.4 has no setting for any of these; it hides the
message of any 5xx an API raises). One middleware doing the five checks: each ASGI layer costs
every request a little."""

import hmac
import json
import os
import time
from collections.abc import Callable

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics", "/", "/docs.json"})


def _takes_requests() -> str | None:
    return None


# Why this worker refuses new requests now (None: it takes them); set by the service.
_refusal: Callable[[], str | None] = _takes_requests


def refuse_while(reason: Callable[[], str | None]) -> None:
    """Answer 503 with `reason()` to every guarded request while it is not None."""
    global _refusal
    _refusal = reason


def _not_observed(route: str, status: int, seconds: float) -> None:
    return None


# Told of every answered request (route, status, seconds to the answer's start); set by the
# service.
_observe: Callable[[str, int, float], None] = _not_observed


def observe_requests(observe: Callable[[str, int, float], None]) -> None:
    global _observe
    _observe = observe


async def _answer(send, status: int, error: str, headers: tuple = ()) -> None:
    body = json.dumps({"error": error}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """On every path but `open_paths` (each request told to `observe_requests`'s observer, by
    its route, one of `routes` or `other`), in this order:
    - 401 unless the `X-API-Key` header equals the key in `key_variable` (compared in constant
      time; read when the server starts, which it refuses to do without one);
    - 503 with the reason (and Retry-After) while the service refuses work (`refuse_while`);
    - 413 for a body over `max_bytes`, declared (Content-Length) or streamed (chunked): the body
      is read here, bounded, so the service never sees an oversized one;
    - 415 for a POST whose body is not declared `application/json` (BentoML answers a malformed
      multipart type with a 500);
    - BentoML's 400 for a body that fails the API's schema becomes 422 (the request is well
      formed HTTP, its content is not a valid transaction); its detail names the field."""

    def __init__(
        self,
        app,
        key_variable: str,
        max_bytes: int,
        routes: frozenset[str] = frozenset(),
        open_paths: frozenset[str] = OPEN_PATHS,
    ):
        key = os.environ.get(key_variable)
        if not key:
            raise RuntimeError(f"{key_variable} is not set: the API will not start without a key")
        self.app, self.key, self.max_bytes = app, key.encode(), max_bytes
        self.open_paths, self.routes = open_paths, routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        route = scope["path"] if scope["path"] in self.routes else "other"  # bounded labels

        async def observed(message):
            if message["type"] == "http.response.start":
                _observe(route, message["status"], time.perf_counter() - started)
            await send(message)

        return await self._guarded(scope, receive, observed)

    async def _guarded(self, scope, receive, send):
        headers = dict(scope["headers"])
        if not hmac.compare_digest(headers.get(b"x-api-key", b""), self.key):
            return await _answer(send, 401, "missing or wrong X-API-Key header")
        refused = _refusal()
        if refused is not None:
            return await _answer(send, 503, refused, headers=((b"retry-after", b"1"),))
        too_large = f"request body over {self.max_bytes} bytes"
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await _answer(send, 413, too_large)
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if scope["method"] == "POST" and kind != b"application/json":
            return await _answer(send, 415, "send the body as application/json")
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await _answer(send, 413, too_large)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send_422(message):
            if message["type"] == "http.response.start" and message["status"] == 400:
                message = {**message, "status": 422}
            await send(message)

        return await self.app(scope, replay, send_422)
