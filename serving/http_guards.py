"""ASGI guards in front of the scoring service: an API key on everything but the probes and the
API docs, and a cap on the request body (BentoML 1.4 has no setting for either)."""

import hmac
import json
import os

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics", "/", "/docs.json"})


async def _answer(send, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class APIKeyMiddleware:
    """401 unless the `X-API-Key` header equals the key in `key_variable` (compared in constant
    time). The key is read when the server starts, which it refuses to do without one."""

    def __init__(self, app, key_variable: str, open_paths: frozenset[str] = OPEN_PATHS):
        key = os.environ.get(key_variable)
        if not key:
            raise RuntimeError(f"{key_variable} is not set: the API will not start without a key")
        self.app, self.key, self.open_paths = app, key.encode(), open_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            return await self.app(scope, receive, send)
        given = next((v for k, v in scope["headers"] if k == b"x-api-key"), b"")
        if not hmac.compare_digest(given, self.key):
            return await _answer(send, 401, "missing or wrong X-API-Key header")
        return await self.app(scope, receive, send)


class BodySizeLimitMiddleware:
    """413 for a body over `max_bytes`, declared (Content-Length) or streamed (chunked). The
    body is read here, bounded, so the service never sees an oversized one."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = f"request body over {self.max_bytes} bytes"
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await _answer(send, 413, too_large)
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

        return await self.app(scope, replay, send)


class UnprocessableMiddleware:
    """BentoML answers a body that fails the API's schema with 400; it is a 422 (the request
    is well formed HTTP, its content is not a valid transaction), and its detail names the
    field."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)

        async def send_422(message):
            if message["type"] == "http.response.start" and message["status"] == 400:
                message = {**message, "status": 422}
            await send(message)

        return await self.app(scope, receive, send_422)


class JsonBodyMiddleware:
    """415 for a request to the API whose body is not declared `application/json` (BentoML
    answers a malformed multipart type with a 500)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] not in OPEN_PATHS
        ):
            declared = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
            if declared.split(b";")[0].strip().lower() != b"application/json":
                return await _answer(send, 415, "send the body as application/json")
        return await self.app(scope, receive, send)
