"""Verify codes from an async framework (Starlette; FastAPI is built on it) without blocking it.

``Verifier.verify`` blocks: a SQLite store may wait for another process's write lock, a Redis
store for the network, each up to its timeout. Called directly inside ``async def``, that wait
stalls the event loop, and with it every other request the worker serves (measured: 1.9 s with
the SQLite file locked by another process). Until the library has an async API, run the call in
the thread pool: ``await run_in_threadpool(verifier.verify, ...)`` here (FastAPI re-exports it
as ``fastapi.concurrency.run_in_threadpool``), or ``await anyio.to_thread.run_sync(...)``. The
Verifier is thread-safe. Whatever else blocks (the password check, the app's own database) goes
to the thread pool too. A plain ``def`` endpoint in FastAPI is run in the pool already.

Build the app with :func:`create_app` and serve it with any ASGI server. This example checks
only the code; a real sign-in checks the password first (see docs/integration.md).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from isoms_otp import TOTP, StoreError, Verdict, Verifier

__all__ = ["create_app"]


def create_app(verifier: Verifier, secret_of: Callable[[str], bytes | None]) -> Starlette:
    """Return an app with ``POST /sign-in`` (JSON ``user`` and ``code``) and ``GET /health``.

    ``secret_of(user)`` returns the user's decrypted TOTP secret or ``None``; it may block (a
    database query), so it runs in the thread pool as well.
    """
    # An unknown user is verified against a random key, so it costs and counts the same.
    unknown = TOTP(secrets.token_bytes(20))

    async def sign_in(request: Request) -> JSONResponse:
        body = await request.json()
        user, code = body.get("user"), body.get("code")
        if not isinstance(user, str) or not isinstance(code, str) or not user:
            return JSONResponse({"error": "user and code are required"}, status_code=400)
        secret = await run_in_threadpool(secret_of, user)
        otp = unknown if secret is None else TOTP(secret)
        try:
            # Never `verifier.verify(...)` directly here: it would block the event loop.
            client = request.client.host if request.client else None
            verdict: Verdict = await run_in_threadpool(
                verifier.verify, user, otp, code, source=client
            )
        except StoreError:
            # Fail closed: nobody signs in while the store is down.
            return JSONResponse({"error": "unavailable, try again in a minute"}, status_code=503)
        if verdict.ok and secret is not None:
            return JSONResponse({"signed_in": user})
        if verdict.reason == "throttled":
            wait = {"Retry-After": str(max(1, math.ceil(verdict.retry_after or 0)))}
            return JSONResponse({"error": "too many attempts"}, status_code=429, headers=wait)
        return JSONResponse({"error": "sign-in failed"}, status_code=401)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[Route("/sign-in", sign_in, methods=["POST"]), Route("/health", health)]
    )


if __name__ == "__main__":
    # A self-check through the ASGI app (needs httpx, as Starlette's TestClient does).
    import warnings

    with warnings.catch_warnings():  # newer Starlette asks for httpx2; either works here
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from isoms_otp import MemoryStore

    key = secrets.token_bytes(20)
    app = create_app(Verifier(MemoryStore()), {"alice": key}.get)
    with TestClient(app) as client:
        right = client.post("/sign-in", json={"user": "alice", "code": TOTP(key).generate()})
        wrong = client.post("/sign-in", json={"user": "alice", "code": "000000"})
        print(f"right code: {right.status_code}, wrong code: {wrong.status_code}")
