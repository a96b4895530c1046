"""The demo web app: the iSOMS sign-in flow from the user guide, on Flask.

Routes, in the order a user meets them:

* ``/sign-in``: username, password and code on one form. A user with active TOTP signs in
  right there (a wrong password or code counts as a failure). Everyone else (including unknown
  usernames, so nothing tells them apart) goes on to ``/sign-in/sms``: that attempt counts as a
  failure right away, right password or wrong, until its code signs in, and a text message is
  sent only if the password was right and the user is not throttled. Both paths do the same
  work and leave the same throttle state, so no answer tells whether the password was right.
* ``/outbox``: demo only, the simulated phone: it shows every text message to anyone. A real
  deployment must not have such a page (it would tell a guesser when a password was right).
* ``/sign-in/recovery``: "Use a recovery code": username, password and one of the recovery
  codes, for a TOTP user without their phone. It signs in, says how many codes are left and,
  when two or fewer are, asks to make new ones.
* ``/totp``: *TOTP Configuration* (from the menu under the user's name): *Activate TOTP* makes a
  pending secret and shows its QR code (and an ``otpauth://`` link for an app on this device);
  the first code from the app makes it active and shows the recovery codes, once. *Set up a new
  phone* does the same beside the active secret, which works until the new one is confirmed.
  *Make new recovery codes* and *Deactivate TOTP* each need a current code or a recovery code.
* ``/admin``: the demo administrator looks up a user, unlocks them, resets their TOTP and reads
  the audit list (the Verifier's last events); ``/metrics`` is its Prometheus page.

Every POST carries the session's CSRF token. The failure messages are chosen so that none says
whether the password or the code was wrong; ``docs/integration.md`` explains each choice.
"""

from __future__ import annotations

import hmac
import logging
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from typing import Final
from urllib.parse import quote

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from isoms_otp import (
    HOTP,
    TOTP,
    Event,
    RecoveryCodes,
    SQLiteStore,
    StoreError,
    ThrottlePolicy,
    Verdict,
    Verifier,
    enroll,
)
from isoms_otp.events import LoggingSink
from isoms_otp.metrics import PrometheusSink

from .db import Challenge, DemoDB, TOTPRecord, User
from .sms import Outbox, SmsSink

__all__ = [
    "DEMO_POLICY",
    "ISSUER",
    "MESSAGES",
    "AuditLog",
    "create_app",
    "message_otp",
    "wait_text",
]

#: The demo's throttle: back-off from 1 s, lock for 5 minutes after 5 failures in a row. A
#: production policy is stricter on the lock (see ThrottlePolicy's defaults).
#: A visitor reaches a lock in a few tries (codes per user, passwords per client and user) and is
#: not locked out for long.
DEMO_POLICY: Final = ThrottlePolicy(max_failures=5, base_delay=1.0, max_delay=60.0,
                                    lock_duration=300.0, source_max_failures=5,
                                    source_lock_duration=300.0)  # fmt: skip
#: The service name authenticator apps show next to the account.
ISSUER: Final = "iSOMS"
#: How long a text-message code may be used after it was sent.
SMS_LIFETIME: Final = 300.0
#: How long a signed-in session lasts: its cookie is refused once it was signed this long ago.
SESSION_LIFETIME: Final = timedelta(minutes=30)
#: The least time between two text messages to one user: signing in again sooner reuses the
#: message just sent (its code and its expiry) instead of sending another.
SMS_INTERVAL: Final = 60.0
#: How long a sign-in with a code (TOTP or recovery) counts as a fresh proof for setting up a
#: new phone without typing another code (docs/recovery.md: at most 5 minutes).
FRESH_PROOF: Final = 300.0
#: From how many recovery codes left the demo asks the user to make new ones.
FEW_CODES_LEFT: Final = 2
#: How many of the Verifier's last events the admin's audit list keeps (in memory).
AUDIT_SIZE: Final = 200
#: The event actions that spend a person's one code budget: a lock of it is the person's.
_PERSON_ACTIONS: Final = frozenset({"verify", "confirm", "recovery"})

#: Everything the user is told when something fails (``throttled`` takes the ``wait``).
#: ``replayed`` is only for signed-in users (TOTP Configuration): at sign-in a reused code gets
#: ``failed``, since saying "used" would reveal that the password was right.
MESSAGES: Final = {
    "failed": "Sign-in failed: check your username, password and code.",
    "replayed": (
        "That code has already been used. Wait for the next code in your authenticator app, "
        "then try again."
    ),
    "throttled": "Too many failed attempts. Try again in {wait}.",
    "paused": (
        "Too many failed attempts: sign-in is paused for {wait}. Try again then, or ask the "
        "helpdesk to unlock your account."
    ),
    "locked": (
        "Too many failed attempts: this account is locked until an administrator unlocks it. "
        "Contact the helpdesk."
    ),
    "expired": "That code has expired. Sign in again and we will send you a new code.",
    "confirm_failed": (
        "That code did not match. Scan the QR code shown here, check that your phone sets its "
        "clock automatically, and type the newest code."
    ),
    "code_failed": (
        "That code did not match. Type the newest code from your authenticator app, or a "
        "recovery code."
    ),
    "unavailable": "Sign-in is unavailable right now. Please try again in a minute.",
    "csrf": "This form had expired, so nothing was done. Check it and send it again.",
    "activated": (
        "TOTP is active. Wait for the next code in your authenticator app before you sign in: "
        "the code you just typed is used up."
    ),
    "cancelled": "Activation cancelled: nothing changed.",
    "deactivated": "TOTP is deactivated: you sign in with a code sent by text message.",
    "regenerated": "New recovery codes are ready: the old ones no longer work.",
    "recovery_used": "You signed in with a recovery code. Recovery codes left: {left}.",
    "recovery_few": (
        "Only {left} recovery codes left: make new ones in TOTP Configuration, Make new "
        "recovery codes."
    ),
    "recovery_none": (
        "That was your last recovery code: make new ones now in TOTP Configuration, Make new "
        "recovery codes."
    ),
    "locked_since": (
        "Your account was locked after too many wrong codes since you last signed in. If that "
        "was not you, change your password and tell the helpdesk."
    ),
    "forbidden": "Only an administrator may open this page.",
    "no_user": "There is no user with that name.",
    "unlocked": "{user} is unlocked: their failed attempts are cleared.",
    "totp_reset": (
        "{user}'s TOTP is reset: the secret and recovery codes are removed. They sign in with a "
        "text message code and can activate TOTP again."
    ),
}

# Usernames are looked up and logged; a strict form keeps control characters out of the log.
_USERNAME: Final = re.compile(r"[a-z][a-z0-9._-]{0,63}")
# scrypt runs on every sign-in; a bound keeps a megabyte "password" from costing more.
_MAX_PASSWORD: Final = 1024

log = logging.getLogger("isoms_otp.demo")


#: Where create_app() keeps its SQLiteStore, for whoever shuts the app down to close it.
STORE_EXTENSION: Final = "isoms_otp_store"


def create_app(
    db_path: str,
    *,
    clock: Callable[[], float] = time.time,
    sms_sink: SmsSink | None = None,
    policy: ThrottlePolicy = DEMO_POLICY,
    timeout: float = 5.0,
) -> Flask:
    """Build the demo app on the SQLite file ``db_path`` (created if missing).

    ``clock`` (Unix seconds) drives code checks and SMS expiry; pass a
    :class:`~isoms_otp.testing.FakeClock` in tests. ``sms_sink(username, text)`` sends each text
    message; the default is the outbox page plus a ``[SIMULATED SMS]`` log line. ``policy`` is
    the throttle. ``timeout`` is how long a request waits for the database's lock (seconds);
    every storage failure, the demo's tables or the OTP store, is the 503 page. The session
    key is random per call, so a restart signs everyone out. The app's :class:`SQLiteStore` is
    ``app.extensions["isoms_otp_store"]``: close it when done.

    Every Verifier decision is one event: logged by :class:`~isoms_otp.events.LoggingSink`
    (the ``isoms_otp.events`` logger), kept in the admin's audit list, counted on ``/metrics``
    (a :class:`~prometheus_client.CollectorRegistry` of this app's own), and a lock of a
    person's code budget is recorded beside the user, to tell them at their next sign-in.
    """
    db = DemoDB(db_path, timeout=timeout)
    store = SQLiteStore(db_path, timeout=timeout)
    audit = AuditLog(db)
    # look_ahead=0: a text-message code is accepted only for the counter it was sent for, not
    # for the next five (TOTP codes ignore look_ahead).
    verifier = Verifier(store, policy=policy, clock=clock, look_ahead=0, on_event=audit)
    send_sms: SmsSink = Outbox(db, clock=clock) if sms_sink is None else sms_sink
    demo = _Demo(db=db, verifier=verifier, send_sms=send_sms, clock=clock, audit=audit)

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),
        SESSION_COOKIE_NAME="isoms_demo_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Plain HTTP on loopback; behind HTTPS set this to True (the cookie then never leaks).
        SESSION_COOKIE_SECURE=False,
        MAX_CONTENT_LENGTH=16 * 1024,
        # Signed-in sessions are permanent with a fixed lifetime, checked against the cookie's
        # signed timestamp on the server. Not refreshed on every request: a copied cookie dies
        # 30 minutes after sign-in (or the last change to the session), however much it is used.
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    app.context_processor(demo.template_globals)
    app.register_error_handler(StoreError, _store_failed)
    app.before_request(_check_csrf)
    app.after_request(_security_headers)
    for rule, view, methods in (
        ("/", demo.home, ["GET"]),
        ("/sign-in", demo.sign_in, ["GET"]),
        ("/sign-in", demo.sign_in_post, ["POST"]),
        ("/sign-in/sms", demo.sign_in_sms, ["GET"]),
        ("/sign-in/sms", demo.sign_in_sms_post, ["POST"]),
        ("/sign-in/recovery", demo.sign_in_recovery, ["GET"]),
        ("/sign-in/recovery", demo.sign_in_recovery_post, ["POST"]),
        ("/sign-out", demo.sign_out, ["POST"]),
        ("/outbox", demo.outbox, ["GET"]),
        ("/totp", demo.totp, ["GET"]),
        ("/totp/activate", demo.totp_activate, ["POST"]),
        ("/totp/replace", demo.totp_replace, ["POST"]),
        ("/totp/cancel", demo.totp_cancel, ["POST"]),
        ("/totp/confirm", demo.totp_confirm, ["POST"]),
        ("/totp/regenerate", demo.totp_regenerate, ["POST"]),
        ("/totp/deactivate", demo.totp_deactivate_page, ["GET"]),
        ("/totp/deactivate", demo.totp_deactivate, ["POST"]),
        ("/admin", demo.admin, ["GET"]),
        ("/admin/unlock", demo.admin_unlock, ["POST"]),
        ("/admin/reset-totp", demo.admin_reset_totp, ["POST"]),
        ("/metrics", demo.metrics, ["GET"]),
    ):
        app.add_url_rule(rule, view_func=view, methods=methods)
    # Whoever ends the app closes the store: the command on shutdown, tests after each app.
    app.extensions[STORE_EXTENSION] = store
    return app


#: The page each form lives on, shown again (with a fresh token) when its POST is refused.
_FORM_PAGES: Final = {
    "/sign-in": "sign_in",
    "/sign-in/sms": "sign_in_sms",
    "/sign-in/recovery": "sign_in_recovery",
    "/totp/deactivate": "totp_deactivate_page",
    "/admin/unlock": "admin",
    "/admin/reset-totp": "admin",
}


def _check_csrf() -> ResponseReturnValue | None:
    """Refuse a POST whose form does not carry this session's CSRF token.

    Nothing is done; the page the form is on is shown again with the message, and with the
    token of the session the browser now holds, so sending it again works (it used to be a
    dead-end error page).
    """
    if request.method != "POST":
        return None
    expected = session.get("csrf")
    given = request.form.get("csrf_token", "")
    # Bytes: compare_digest refuses str with non-ASCII characters, which a forged form may hold.
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), given.encode()):
        # %r: a path may hold an encoded newline (%0a) that would forge a log line.
        log.warning("POST refused: missing or wrong CSRF token path=%r", request.path)
        g.error = MESSAGES["csrf"]
        endpoint = _FORM_PAGES.get(request.path)
        if endpoint is None:  # the forms on /totp, and sign-out in the menu
            endpoint = "totp" if request.path.startswith("/totp") else "home"
        response = make_response(current_app.view_functions[endpoint]())
        if response.status_code == 200:
            response.status_code = 400
        return response
    return None


def _store_failed(error: StoreError) -> ResponseReturnValue:
    """Fail closed when storage fails (the OTP store or the demo's tables): nobody signs in."""
    log.error("OTP store failed: %s", error)
    g.storage_failed = True  # the page must not read the database again (template_globals)
    return render_template("error.html", error=MESSAGES["unavailable"]), 503


def _security_headers(response: Response) -> Response:
    # Pages hold QR codes and codes: never cache them. The one script is the demo's own file
    # (the recovery codes' copy button); no inline script runs anywhere.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
        "form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def message_otp(user: User, sent_at: float) -> HOTP:
    """Return the HOTP of the text message sent to ``user`` at ``sent_at``.

    Each message has a key of its own, derived from the user's SMS key and the time it was
    sent, so the code of a message that expired unused is never sent or accepted again. The
    Verifier still claims the HOTP counter, so each code works once.
    """
    return HOTP(hmac.digest(user.sms_secret, repr(sent_at).encode(), "sha256"))


def _client() -> str:
    """Return the source of this request's attempts: the client address (behind no proxy)."""
    return request.remote_addr or "unknown"


def wait_text(seconds: float) -> str:
    """Return ``seconds`` (positive, finite) as people say it: in seconds, minutes or hours.

    Rounded up, so that a person who waits as long as it says is never refused again.
    """
    if seconds >= 3600:
        unit, count = "hour", math.ceil(seconds / 3600)
    elif seconds >= 60:
        unit, count = "minute", math.ceil(seconds / 60)
    else:
        unit, count = "second", max(1, math.ceil(seconds))
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _throttled(verdict: Verdict) -> tuple[str, dict[str, str]]:
    if verdict.retry_after is not None and math.isinf(verdict.retry_after):
        return MESSAGES["locked"], {}  # 100 failures in a row: only an admin reset unlocks
    seconds = max(1, math.ceil(verdict.retry_after or 0))
    key = "throttled" if seconds < 60 else "paused"  # a lock, not a back-off: say what to do
    return MESSAGES[key].format(wait=wait_text(seconds)), {"Retry-After": str(seconds)}


def _refuse(verdict: Verdict, *, template: str, username: str = "") -> ResponseReturnValue:
    """Render ``template`` with the message for a refused sign-in ``verdict``.

    Only "throttled" has a message of its own; every other refusal, a reused code included,
    gets the generic one, so nothing tells whether the password was right.
    """
    if verdict.reason == "throttled":
        message, headers = _throttled(verdict)
        return render_template(template, error=message, username=username), 429, headers
    return render_template(template, error=MESSAGES["failed"], username=username), 401


class AuditLog:
    """The demo's event hook: the log line, the audit list, the metrics, and locks per user.

    It calls :class:`~isoms_otp.events.LoggingSink` and a
    :class:`~isoms_otp.metrics.PrometheusSink` on ``registry`` (this app's own), keeps the last
    :data:`AUDIT_SIZE` events in memory for the admin (:meth:`last`), and records in ``db`` the
    time of every event that locked a person's code budget. Events hold no secret or code.
    """

    def __init__(self, db: DemoDB) -> None:
        self.db = db
        self.registry = CollectorRegistry()
        self._log = LoggingSink()
        self._metrics = PrometheusSink(self.registry)
        self._events: deque[Event] = deque(maxlen=AUDIT_SIZE)
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        """Log, keep and count ``event``; record a lock of a person's code budget."""
        self._log(event)
        self._metrics(event)
        with self._lock:
            self._events.append(event)
        if event.locked and event.user is not None and event.action in _PERSON_ACTIONS:
            self.db.locked(event.user, event.at)

    def last(self, user: str | None = None, limit: int = 50) -> list[Event]:
        """Return the newest ``limit`` events (of ``user`` only, if given), newest first."""
        with self._lock:
            events = list(self._events)
        picked = [e for e in reversed(events) if user is None or e.user == user]
        return picked[:limit]


class _Demo:
    """The views; each one is a step of the flow and the library calls it makes."""

    def __init__(
        self,
        *,
        db: DemoDB,
        verifier: Verifier,
        send_sms: SmsSink,
        clock: Callable[[], float],
        audit: AuditLog,
    ) -> None:
        self.db = db
        self.verifier = verifier
        self.send_sms = send_sms
        self.clock = clock
        self.audit = audit
        # The library counts wrong codes per user; a wrong password must count as well, or the
        # throttle would slow down only code guessing. Settling an empty code does exactly
        # that: it is never examined ("malformed", a failure), or "throttled" while the user
        # must wait. The key is random and never used to compute a code.
        # Stands in for a user's SMS key when no message is sent (a wrong password), so that
        # both paths compute a code; what it computes is never sent nor compared for a verdict.
        self._decoy_sms_secret = secrets.token_bytes(20)

    # -- sessions --------------------------------------------------------------------------

    def template_globals(self) -> dict[str, object]:
        # current_user() first: it clears a stale session, token included, and the form must
        # carry the token of the session the browser will actually hold.
        user = None if g.get("storage_failed") else self.current_user()
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(32)
        return {
            "csrf_token": session["csrf"],
            "user": user,
            "notices": [] if g.get("storage_failed") else session.pop("notices", []),
            "form_error": g.get("error"),
        }

    def current_user(self) -> User | None:
        username = session.get("user")
        if not isinstance(username, str):
            return None
        user = self.db.user(username)
        # Signing out bumps the stored epoch: an old cookie, even a copied one, stops working.
        if user is None or session.get("epoch") != user.epoch:
            session.clear()
            return None
        return user

    def require_user(self) -> User:
        user = self.current_user()
        if user is None:
            abort(redirect(url_for("sign_in")))
        return user

    def require_admin(self) -> User:
        """Return the signed-in administrator; 403 for anyone else signed in."""
        user = self.require_user()
        if not user.is_admin:
            log.warning("admin page refused: user=%s path=%r", user.username, request.path)
            abort(Response(render_template("error.html", error=MESSAGES["forbidden"]), 403))
        return user

    def start_session(
        self, user: User, method: str, notices: list[str] | None = None
    ) -> ResponseReturnValue:
        now = self.clock()
        session.clear()  # a fresh session (and CSRF token) for the signed-in user
        session.permanent = True  # ends after SESSION_LIFETIME
        session["user"] = user.username
        session["epoch"] = user.epoch
        shown = list(notices or [])
        # A lock of the person's code budget since the last sign-in (the AuditLog records it).
        if user.last_locked is not None and (
            user.last_sign_in is None or user.last_locked > user.last_sign_in
        ):
            shown.insert(0, MESSAGES["locked_since"])
        if method != "password+sms":
            session["proof_at"] = now  # a second factor just now: a fresh proof (docs/recovery)
        session["notices"] = shown
        self.db.signed_in(user.username, now)
        log.info("sign-in accepted: user=%s method=%s", user.username, method)
        return redirect(url_for("home"))

    def notify(self, message: str) -> None:
        """Show ``message`` on the next page (a success notice, not an error)."""
        session["notices"] = [*session.get("notices", []), message]

    def fresh_proof(self) -> bool:
        """Whether this session signed in with a second factor at most FRESH_PROOF ago."""
        proof_at = session.get("proof_at")
        return isinstance(proof_at, float) and 0 <= self.clock() - proof_at <= FRESH_PROOF

    def end_other_sessions(self, user: User) -> None:
        """End ``user``'s other sessions (how they sign in has changed); keep this one."""
        session["epoch"] = self.db.end_sessions(user.username)

    def message_otp(self, user: User | None, sent_at: float) -> HOTP:
        """Return :func:`message_otp` for ``user``, or a decoy's when there is no user."""
        if user is not None:
            return message_otp(user, sent_at)
        return HOTP(hmac.digest(self._decoy_sms_secret, repr(sent_at).encode(), "sha256"))

    def count_failure(self, username: str) -> Verdict:
        """Count a wrong password (or a code typed after one) for this client only.

        It spends the (user, client address) budget, which never locks the person out: a
        stranger who types wrong passwords for a username locks only their own address.
        """
        return self.verifier.record_failure(username, source=_client())

    # -- sign-in ---------------------------------------------------------------------------

    def home(self) -> ResponseReturnValue:
        return render_template("home.html", totp=self.db.totp(self.require_user().username))

    def sign_in(self) -> ResponseReturnValue:
        if self.current_user() is not None:
            return redirect(url_for("home"))  # signed in already: nothing to do here
        return render_template("sign_in.html")

    def sign_in_post(self) -> ResponseReturnValue:
        username = request.form.get("username", "").strip().lower()
        password = request.form.get("password", "")
        if not _USERNAME.fullmatch(username) or len(password) > _MAX_PASSWORD:
            log.info("sign-in refused: malformed username or password")
            return render_template("sign_in.html", error=MESSAGES["failed"]), 401
        user = self.db.check_password(username, password)
        record = self.db.totp(username)
        totp = None if record is None or record.state != "active" else TOTP(record.secret)
        if totp is None:
            # The text-message path. Its attempt (password, then code) counts here, once, right
            # or wrong password, and so does each wrong code typed on the next page, all on this
            # client's budget for the user: the throttle state must not tell whether the
            # password was right. (It used to count only a wrong one, so the code step answered
            # [401, 429] to two wrong codes after the right password and [401, 401] after a wrong
            # one.) The right code resets it. Never send a text message while throttled: a
            # locked account gets the same page whether the password was right or wrong.
            verdict = self.count_failure(username)
            if verdict.reason != "throttled":
                # Read either way; no message whose code could not be typed before it expires
                # (this attempt just started a lock).
                wait = self.verifier.retry_after(username, source=_client()) or 0.0
                return self.start_sms(username, user if wait < SMS_LIFETIME else None)
        elif user is None:
            # The code is not looked at, so a wrong code and a wrong password look the same.
            verdict = self.count_failure(username)
        else:
            code = request.form.get("code", "")
            verdict = self.verifier.verify(username, totp, code, source=_client())
        if verdict.ok and user is not None:
            return self.start_session(user, "password+totp")
        wrong = "password" if user is None and verdict.reason != "throttled" else verdict.reason
        log.info("sign-in refused: user=%s reason=%s", username, wrong)
        return _refuse(verdict, template="sign_in.html", username=username)

    def start_sms(self, username: str, user: User | None) -> ResponseReturnValue:
        """Go on to the text-message step; send a code only to ``user`` (the password was right)."""
        now = self.clock()
        self.db.remove_challenges(before=now - SMS_LIFETIME)
        # The same reads and the same code computation whether the password was right or not,
        # and the same lifetime: a challenge that reuses a recent message expires with it,
        # even when no message is for this sign-in (else its expiry would tell).
        # Each message has a key (a credential) of its own: its counter is 0 until it is used.
        counter = self.verifier.next_counter(username, self.message_otp(user, now))
        last = self.db.last_sent(username, counter)
        recent = last is not None and now - last < SMS_INTERVAL
        sent_at = last if last is not None and recent else now
        code = self.message_otp(user, now).generate(counter)
        if user is None:
            log.info("sign-in: user=%s wrong password or unknown user (no message)", username)
        elif recent:
            log.info("sign-in: user=%s text message sent recently, not again", username)
        else:
            text = f"Your iSOMS sign-in code is {code}. It expires in 5 minutes."
            self.send_sms(username, text)
            log.info("sign-in: user=%s text message sent", username)
        challenge = Challenge(
            username=username, counter=None if user is None else counter, sent_at=sent_at
        )
        session["challenge"] = self.db.add_challenge(challenge)
        return redirect(url_for("sign_in_sms"))

    def sign_in_sms(self) -> ResponseReturnValue:
        if not isinstance(session.get("challenge"), str):
            return redirect(url_for("sign_in"))
        return render_template("sign_in_sms.html")

    def sign_in_sms_post(self) -> ResponseReturnValue:
        key = session.get("challenge")
        challenge = self.db.challenge(key) if isinstance(key, str) else None
        if challenge is None:
            return redirect(url_for("sign_in"))
        if challenge.sent_at + SMS_LIFETIME <= self.clock():
            self.db.remove_challenges(key=key)
            session.pop("challenge", None)
            return render_template("sign_in.html", error=MESSAGES["expired"]), 401
        user = self.sms_user(challenge)
        # Every code typed here counts as an attempt, whether a message was sent or not: a
        # challenge that cannot match (a wrong password, a used code, TOTP active since) is
        # settled like a wrong code, with the same work: the store's counter read, one code
        # computed, one settle. (It used to be a read-only check, so only the right password
        # earned a back-off: a password oracle.) The decoy's result is thrown away: nothing
        # signs in by luck.
        code = request.form.get("code", "")
        otp = self.message_otp(user, challenge.sent_at)
        # The code is matched here (the message key's counter, then one code computed, as for a
        # decoy), so that a wrong one counts on this client's budget on both paths; only a
        # match goes to the Verifier, which claims it (once) and clears the count.
        match = otp.verify(code, counter=self.verifier.next_counter(challenge.username, otp))
        if user is None or match is None:
            verdict = self.count_failure(challenge.username)
        else:
            verdict = self.verifier.verify(user.username, otp, code, source=_client())
        if verdict.ok and user is not None:
            self.db.remove_challenges(key=key)
            self.db.end_challenges(user.username)
            return self.start_session(user, "password+sms")
        log.info("sign-in refused: user=%s step=sms reason=%s", challenge.username, verdict.reason)
        return _refuse(verdict, template="sign_in_sms.html")

    def sms_user(self, challenge: Challenge) -> User | None:
        """Return the user whose text-message code ``challenge`` still takes, else ``None``.

        ``None`` when no message was sent (a wrong password), its code was used already, or
        TOTP became active since: then only TOTP signs in.
        """
        # The same three reads whatever the challenge holds, so their time tells nothing.
        user = self.db.user(challenge.username)
        otp = self.message_otp(None if challenge.counter is None else user, challenge.sent_at)
        counter = self.verifier.next_counter(challenge.username, otp)
        record = self.db.totp(challenge.username)
        if user is None or challenge.counter is None or challenge.counter != counter:
            return None
        return None if record is not None and record.state == "active" else user

    def sign_in_recovery(self) -> ResponseReturnValue:
        if self.current_user() is not None:
            return redirect(url_for("home"))
        return render_template("sign_in_recovery.html")

    def sign_in_recovery_post(self) -> ResponseReturnValue:
        """Sign in with username, password and a recovery code, like the one-screen TOTP form.

        A wrong password, an unknown user or a user without recovery codes counts on this
        client's budget for the user (the code is not looked at); with the right password the
        code spends the person's code budget, as a TOTP code does. Every refusal but
        "throttled" gets the generic message. The code itself is never logged.
        """
        template = "sign_in_recovery.html"
        username = request.form.get("username", "").strip().lower()
        password = request.form.get("password", "")
        if not _USERNAME.fullmatch(username) or len(password) > _MAX_PASSWORD:
            log.info("sign-in refused: method=recovery malformed username or password")
            return render_template(template, error=MESSAGES["failed"]), 401
        user = self.db.check_password(username, password)
        record = self.db.totp(username)
        codes = _recovery(record)
        if user is None or codes is None:
            verdict = self.count_failure(username)
        else:
            code = request.form.get("code", "")
            verdict = self.verifier.verify_recovery(username, codes, code, source=_client())
        if verdict.ok and user is not None and codes is not None:
            left = self.verifier.recovery_remaining(username, codes)
            notices = [MESSAGES["recovery_used"].format(left=left)]
            if left == 0:
                notices.append(MESSAGES["recovery_none"])
            elif left <= FEW_CODES_LEFT:
                notices.append(MESSAGES["recovery_few"].format(left=left))
            return self.start_session(user, "password+recovery", notices)
        wrong = "password" if user is None and verdict.reason != "throttled" else verdict.reason
        log.info("sign-in refused: user=%s method=recovery reason=%s", username, wrong)
        return _refuse(verdict, template=template, username=username)

    def sign_out(self) -> ResponseReturnValue:
        user = self.current_user()
        if user is not None:
            self.db.end_sessions(user.username)
            log.info("signed out: user=%s", user.username)
        session.clear()
        return redirect(url_for("sign_in"))

    def outbox(self) -> ResponseReturnValue:
        return render_template("outbox.html", messages=self.db.messages())

    # -- TOTP Configuration ----------------------------------------------------------------

    def totp_page(
        self, user: User, *, error: str | None = None, status: int = 200
    ) -> ResponseReturnValue:
        record = self.db.totp(user.username)
        qr = key = uri = None
        waiting = None if record is None else _waiting(record)
        if waiting is not None:
            enrollment = enroll(user.username, issuer=ISSUER, secret=waiting)
            # segno's SVG, from our own URI: no user-controlled markup reaches the page.
            qr = Markup(enrollment.qr_svg())  # noqa: S704
            key = enrollment.manual_key
            uri = enrollment.uri  # "add to authenticator app" on this device
        codes = _recovery(record)
        left = None if codes is None else self.verifier.recovery_remaining(user.username, codes)
        page = render_template(
            "totp.html",
            record=record,
            qr=qr,
            key=key,
            uri=uri,
            left=left,
            few=FEW_CODES_LEFT,
            fresh=self.fresh_proof(),
            error=error,
        )
        return page, 400 if error is not None and status == 200 else status

    def totp(self) -> ResponseReturnValue:
        return self.totp_page(self.require_user())

    def totp_activate(self) -> ResponseReturnValue:
        user = self.require_user()
        self.db.set_pending(user.username, enroll(user.username, issuer=ISSUER).secret)
        log.info("TOTP activation started: user=%s", user.username)
        return redirect(url_for("totp"))

    def totp_replace(self) -> ResponseReturnValue:
        """Start setting up a new phone beside the active secret, after a fresh proof.

        A sign-in with a code (TOTP or recovery) less than FRESH_PROOF ago is one; otherwise the
        form's code is checked with :meth:`Verifier.step_up` (a current code or a recovery code).
        """
        user = self.require_user()
        record = self.db.totp(user.username)
        if record is None or record.state != "active":
            return redirect(url_for("totp"))
        if not self.fresh_proof():
            code = request.form.get("code", "")
            verdict = self.verifier.step_up(
                user.username, TOTP(record.secret), code, codes=_recovery(record), source=_client()
            )
            if not verdict.ok:
                log.info("new phone refused: user=%s reason=%s", user.username, verdict.reason)
                return self.totp_page(user, error=_code_error(verdict, MESSAGES["code_failed"]))
            session["proof_at"] = self.clock()
        self.db.set_replacement(user.username, enroll(user.username, issuer=ISSUER).secret)
        log.info("TOTP new phone started: user=%s", user.username)
        return redirect(url_for("totp"))

    def totp_cancel(self) -> ResponseReturnValue:
        user = self.require_user()
        self.db.cancel_pending(user.username)
        log.info("TOTP activation cancelled: user=%s", user.username)
        self.notify(MESSAGES["cancelled"])
        return redirect(url_for("totp"))

    def totp_confirm(self) -> ResponseReturnValue:
        """Confirm the waiting secret with its first code: it becomes active, codes are issued.

        A new phone's secret replaces the old one (and the old recovery codes) in one write.
        The codes are shown on this response only; only their hashes are stored.
        """
        user = self.require_user()
        record = self.db.totp(user.username)
        waiting = None if record is None else _waiting(record)
        if record is None or waiting is None:
            return redirect(url_for("totp"))
        # _waiting found a secret, so a replacement's token is there ("" would match nothing).
        sealed = record.sealed if record.state == "pending" else record.replacement_sealed or ""
        code = request.form.get("code", "")
        result = self.verifier.activate(user.username, TOTP(waiting), code, source=_client())
        if (
            result.ok
            and result.recovery is not None
            and self.db.activate(user.username, sealed, result.recovery.to_string())
        ):
            self.end_other_sessions(user)
            replaced = record.state == "active"
            log.info("TOTP activated: user=%s new_phone=%s", user.username, replaced)
            return self.codes_page(result.codes, MESSAGES["activated"])
        log.info("TOTP activation refused: user=%s reason=%s", user.username, result.verdict.reason)
        return self.totp_page(user, error=_code_error(result.verdict, MESSAGES["confirm_failed"]))

    def codes_page(self, codes: tuple[str, ...], notice: str) -> ResponseReturnValue:
        """Show new recovery codes, once: on screen, to copy, and as a text file to download."""
        text = "iSOMS recovery codes: each works once, in place of a code from your app.\n"
        text += "".join(f"{code}\n" for code in codes)
        return render_template(
            "recovery_codes.html",
            codes=codes,
            notice=notice,
            download="data:text/plain;charset=utf-8," + quote(text),
        )

    def totp_regenerate(self) -> ResponseReturnValue:
        user = self.require_user()
        record = self.db.totp(user.username)
        codes = _recovery(record)
        if record is None or record.state != "active":
            return redirect(url_for("totp"))
        code = request.form.get("code", "")
        otp = TOTP(record.secret)
        result = self.verifier.regenerate(user.username, otp, code, codes=codes, source=_client())
        if result.ok and result.recovery is not None:
            self.db.set_recovery(user.username, result.recovery.to_string())
            log.info("recovery codes regenerated: user=%s", user.username)
            return self.codes_page(result.codes, MESSAGES["regenerated"])
        log.info("recovery codes refused: user=%s reason=%s", user.username, result.verdict.reason)
        return self.totp_page(user, error=_code_error(result.verdict, MESSAGES["code_failed"]))

    def totp_deactivate_page(self) -> ResponseReturnValue:
        """Show the confirmation step of *Deactivate TOTP*: what it does, and a code to confirm."""
        user = self.require_user()
        record = self.db.totp(user.username)
        if record is None or record.state != "active":
            return redirect(url_for("totp"))
        return render_template("deactivate.html", error=g.get("error"))

    def totp_deactivate(self) -> ResponseReturnValue:
        user = self.require_user()
        record = self.db.totp(user.username)
        if record is None or record.state != "active":
            return redirect(url_for("totp"))
        code = request.form.get("code", "")
        verdict = self.verifier.step_up(
            user.username, TOTP(record.secret), code, codes=_recovery(record), source=_client()
        )
        if verdict.ok:
            self.db.remove_totp(user.username)
            self.end_other_sessions(user)
            log.info("TOTP deactivated: user=%s", user.username)
            self.notify(MESSAGES["deactivated"])
            return redirect(url_for("totp"))
        log.info("TOTP deactivation refused: user=%s reason=%s", user.username, verdict.reason)
        error = _code_error(verdict, MESSAGES["code_failed"])
        return render_template("deactivate.html", error=error), 400

    # -- the demo administrator --------------------------------------------------------------

    def admin(self) -> ResponseReturnValue:
        """Look up a user (``?user=``): their TOTP, codes left, wait; the audit list."""
        self.require_admin()
        name = request.args.get("user", "").strip().lower()
        looked_up = None
        error = g.get("error")
        if name:
            looked_up = self.db.user(name) if _USERNAME.fullmatch(name) else None
            if looked_up is None:
                error = error or MESSAGES["no_user"]
        status = None
        if looked_up is not None:
            record = self.db.totp(looked_up.username)
            codes = _recovery(record)
            wait = self.verifier.retry_after(looked_up.username)
            status = {
                "totp": "not active" if record is None else record.state,
                "left": None if codes is None else self.verifier.recovery_remaining(name, codes),
                "wait": None if wait is None else _wait_or_lock(wait),
                "last_sign_in": looked_up.last_sign_in,
                "last_locked": looked_up.last_locked,
            }
        events = self.audit.last(name or None)
        page = render_template(
            "admin.html",
            looked_up=looked_up,
            status=status,
            events=events,
            users=self.db.usernames(),
            error=error,
        )
        return page, 404 if name and looked_up is None else 200 if error is None else 400

    def admin_target(self) -> tuple[User, User]:
        """Return the administrator and the user the form names (404 for none such)."""
        admin = self.require_admin()
        name = request.form.get("user", "").strip().lower()
        target = self.db.user(name) if _USERNAME.fullmatch(name) else None
        if target is None:
            abort(Response(render_template("error.html", error=MESSAGES["no_user"]), 404))
        return admin, target

    def admin_unlock(self) -> ResponseReturnValue:
        """Clear the user's failures, back-off and locks (:meth:`Verifier.reset`: an event)."""
        admin, target = self.admin_target()
        self.verifier.reset(target.username)
        log.warning("admin action: admin=%s action=unlock user=%s", admin.username, target.username)
        self.notify(MESSAGES["unlocked"].format(user=target.username))
        return redirect(url_for("admin", user=target.username))

    def admin_reset_totp(self) -> ResponseReturnValue:
        """Remove the user's TOTP secret and recovery codes and end their sessions."""
        admin, target = self.admin_target()
        self.db.remove_totp(target.username)
        self.db.end_sessions(target.username)
        log.warning(
            "admin action: admin=%s action=reset-totp user=%s", admin.username, target.username
        )
        self.notify(MESSAGES["totp_reset"].format(user=target.username))
        return redirect(url_for("admin", user=target.username))

    def metrics(self) -> ResponseReturnValue:
        """Serve the Prometheus exposition of this app's events (administrators only)."""
        self.require_admin()
        return Response(generate_latest(self.audit.registry), content_type=CONTENT_TYPE_LATEST)


def _waiting(record: TOTPRecord) -> bytes | None:
    """Return the secret waiting for its first code (pending, or a new phone's), or ``None``."""
    return record.secret if record.state == "pending" else record.replacement


def _recovery(record: TOTPRecord | None) -> RecoveryCodes | None:
    """Return the active secret's recovery set, or ``None`` (no TOTP, pending, or none yet)."""
    if record is None or record.state != "active" or record.recovery is None:
        return None
    return RecoveryCodes.from_string(record.recovery)


def _wait_or_lock(wait: float) -> str:
    return "locked until an administrator unlocks it" if math.isinf(wait) else wait_text(wait)


def _code_error(verdict: Verdict, otherwise: str) -> str:
    """Return the message for a refused code from a signed-in user (the password is known)."""
    if verdict.reason == "throttled":
        return _throttled(verdict)[0]
    if verdict.reason == "replayed":
        return MESSAGES["replayed"]
    return otherwise
