"""examples/starlette_signin.py: real requests through ASGI, and an event loop that keeps going.

Regression for the async guide: a SQLite wait inside ``async def`` stalled the event loop (for
1.9 s in a measurement). The example runs ``Verifier.verify`` in the thread pool; these tests
show, by the order things happen and not by time, that another request is served while a
verification waits for a SQLite lock, and that calling it directly would not be.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from isoms_otp import TOTP, SQLiteStore, StoreError, ThrottlePolicy, Verifier
from isoms_otp.testing import FakeClock

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "starlette_signin.py"
NOW = 1_700_000_000.0
SECRET = bytes(range(20))


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("starlette_signin", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SignallingStore(SQLiteStore):
    """A SQLiteStore that says when a settle has begun (and may now wait for the lock)."""

    def __init__(self, path: Path, *, timeout: float) -> None:
        super().__init__(path, timeout=timeout)
        self.path = path
        self.settling = threading.Event()

    def settle(self, *args: Any, **kwargs: Any) -> Any:
        self.settling.set()
        return super().settle(*args, **kwargs)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SignallingStore]:
    made = SignallingStore(tmp_path / "otp.sqlite3", timeout=30.0)
    yield made
    made.close()


def verifier_on(store: SQLiteStore) -> Verifier:
    policy = ThrottlePolicy(max_failures=3, base_delay=1.0, max_delay=1.0, lock_duration=60.0)
    return Verifier(store, clock=FakeClock(NOW), policy=policy)


def blocking_app(verifier: Verifier) -> Starlette:
    """What the guide warns against: the blocking call made inside ``async def``."""

    async def sign_in(request: Request) -> JSONResponse:
        body = await request.json()
        try:
            verdict = verifier.verify(body["user"], TOTP(SECRET), body["code"])
        except StoreError:
            return JSONResponse({}, status_code=503)
        return JSONResponse({}, status_code=200 if verdict.ok else 401)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[Route("/sign-in", sign_in, methods=["POST"]), Route("/health", health)]
    )


def sign_in_while_locked(app: Starlette, store: SignallingStore) -> list[tuple[str, int]]:
    """Start a sign-in while another connection holds the write lock; once it is in the store,
    ask for /health, then release the lock. Return what answered, in order.
    """
    events: list[tuple[str, int]] = []
    code = TOTP(SECRET).generate(NOW)
    holder = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://example") as client,
            anyio.create_task_group() as tasks,
        ):

            async def sign_in() -> None:
                response = await client.post("/sign-in", json={"user": "alice", "code": code})
                events.append(("sign-in", response.status_code))

            tasks.start_soon(sign_in)
            await anyio.to_thread.run_sync(store.settling.wait)  # the verify is waiting now
            response = await client.get("/health")
            events.append(("health", response.status_code))
            holder.execute("ROLLBACK")

    try:
        anyio.run(main)
    finally:
        holder.close()
    return events


def test_the_event_loop_serves_others_while_a_verify_waits(store: SignallingStore) -> None:
    """/health answers while the sign-in waits for the SQLite lock; the sign-in then succeeds."""
    app = load_example().create_app(verifier_on(store), {"alice": SECRET}.get)
    assert [("health", 200), ("sign-in", 200)] == sign_in_while_locked(app, store)


def test_a_blocking_call_in_async_def_would_stall_it(tmp_path: Path) -> None:
    """The control: called directly in ``async def`` the verify holds the loop until the store
    gives up, so /health answers only after the sign-in has failed.
    """
    quick = SignallingStore(tmp_path / "otp.sqlite3", timeout=0.2)
    try:
        assert [("sign-in", 503), ("health", 200)] == sign_in_while_locked(
            blocking_app(verifier_on(quick)), quick
        )
    finally:
        quick.close()


def post_all(app: Starlette, *bodies: dict[str, object]) -> list[httpx.Response]:
    """POST each body to /sign-in in turn; return the responses."""
    responses: list[httpx.Response] = []

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://example") as client:
            responses.extend([await client.post("/sign-in", json=body) for body in bodies])

    anyio.run(main)
    return responses


def test_answers(store: SignallingStore) -> None:
    """Accepted, replayed, throttled (with Retry-After), unknown user and bad input."""
    app = load_example().create_app(verifier_on(store), {"alice": SECRET}.get)
    code = TOTP(SECRET).generate(NOW)
    ok, again, throttled, unknown, bad = post_all(
        app,
        {"user": "alice", "code": code},
        {"user": "alice", "code": code},
        {"user": "alice", "code": code},
        {"user": "bob", "code": code},
        {"user": "alice"},
    )
    assert {"signed_in": "alice"} == ok.json()
    assert (401, 429, "1") == (again.status_code, throttled.status_code,
                               throttled.headers["Retry-After"])  # fmt: skip
    assert (401, 400) == (unknown.status_code, bad.status_code)


def test_store_failure_is_503(tmp_path: Path) -> None:
    """A store that gives up (the file stays locked past its timeout) fails closed: 503."""
    quick = SignallingStore(tmp_path / "otp.sqlite3", timeout=0.2)
    holder = sqlite3.connect(quick.path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        app = load_example().create_app(verifier_on(quick), {"alice": SECRET}.get)
        (response,) = post_all(app, {"user": "alice", "code": TOTP(SECRET).generate(NOW)})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        quick.close()
    assert (503, {"error": "unavailable, try again in a minute"}) == (
        response.status_code, response.json()
    )  # fmt: skip
