"""The demo web app: the iSOMS sign-in flow from the user guide, on Flask.

Routes, in the order a user meets them:

* ``/sign-in``: username, password and code on one form. A wrong password counts as a failure
  right away. A user with active TOTP signs in right there; everyone else (including unknown
  usernames, so nothing tells them apart) goes on to ``/sign-in/sms``, and a text message is
  sent only if the password was right and the user is not throttled.
* ``/outbox``: demo only, the simulated phone: it shows every text message to anyone. A real
  deployment must not have such a page (it would tell a guesser when a password was right).
* ``/totp``: *TOTP Configuration* (from the menu under the user's name): *Activate TOTP* makes a
  pending secret and shows its QR code; the first code from the app makes it active;
  *Deactivate TOTP* (with a current code) removes it.

Every POST carries the session's CSRF token. The failure messages are chosen so that none says
whether the password or the code was wrong; ``docs/integration.md`` explains each choice.
"""

from __future__ import annotations

import hmac
import logging
import math
import re
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Final

from flask import Flask, Response, abort, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from isoms_otp import (
    HOTP,
    TOTP,
    SQLiteStore,
    StoreError,
    ThrottlePolicy,
    Verdict,
    Verifier,
    enroll,
)

from .db import Challenge, DemoDB, User
from .sms import Outbox, SmsSink

__all__ = ["DEMO_POLICY", "ISSUER", "MESSAGES", "create_app", "message_otp"]

#: The demo's throttle: back-off from 1 s, lock for 5 minutes after 5 failures in a row. A
#: production policy is stricter on the lock (see ThrottlePolicy's defaults).
DEMO_POLICY: Final = ThrottlePolicy(max_failures=5, base_delay=1.0, max_delay=60.0,
                                    lock_duration=300.0)  # fmt: skip
#: The service name authenticator apps show next to the account.
ISSUER: Final = "iSOMS"
#: How long a text-message code may be used after it was sent.
SMS_LIFETIME: Final = 300.0
#: How long a signed-in session lasts: its cookie is refused once it was signed this long ago.
SESSION_LIFETIME: Final = timedelta(minutes=30)
#: The least time between two text messages to one user: signing in again sooner reuses the
#: message just sent (its code and its expiry) instead of sending another.
SMS_INTERVAL: Final = 60.0

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
    "expired": "That code has expired. Sign in again and we will send you a new code.",
    "confirm_failed": (
        "That code did not match. Scan the QR code shown here, check that your phone sets its "
        "clock automatically, and type the newest code."
    ),
    "code_failed": "That code did not match. Type the newest code from your authenticator app.",
    "unavailable": "Sign-in is unavailable right now. Please try again in a minute.",
    "csrf": "The form expired or did not come from this site. Reload the page and try again.",
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
) -> Flask:
    """Build the demo app on the SQLite file ``db_path`` (created if missing).

    ``clock`` (Unix seconds) drives code checks and SMS expiry; pass a
    :class:`~isoms_otp.testing.FakeClock` in tests. ``sms_sink(username, text)`` sends each text
    message; the default is the outbox page plus a ``[SIMULATED SMS]`` log line. ``policy`` is
    the throttle. The session key is random per call, so a restart signs everyone out. The
    app's :class:`SQLiteStore` is ``app.extensions["isoms_otp_store"]``: close it when done.
    """
    db = DemoDB(db_path)
    store = SQLiteStore(db_path)
    # look_ahead=0: a text-message code is accepted only for the counter it was sent for, not
    # for the next five (TOTP codes ignore look_ahead).
    verifier = Verifier(store, policy=policy, clock=clock, look_ahead=0)
    send_sms: SmsSink = Outbox(db, clock=clock) if sms_sink is None else sms_sink
    demo = _Demo(db=db, verifier=verifier, send_sms=send_sms, clock=clock)

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
        ("/sign-out", demo.sign_out, ["POST"]),
        ("/outbox", demo.outbox, ["GET"]),
        ("/totp", demo.totp, ["GET"]),
        ("/totp/activate", demo.totp_activate, ["POST"]),
        ("/totp/confirm", demo.totp_confirm, ["POST"]),
        ("/totp/deactivate", demo.totp_deactivate, ["POST"]),
    ):
        app.add_url_rule(rule, view_func=view, methods=methods)
    # Whoever ends the app closes the store: the command on shutdown, tests after each app.
    app.extensions[STORE_EXTENSION] = store
    return app


def _check_csrf() -> ResponseReturnValue | None:
    """Refuse a POST whose form does not carry this session's CSRF token."""
    if request.method != "POST":
        return None
    expected = session.get("csrf")
    given = request.form.get("csrf_token", "")
    # Bytes: compare_digest refuses str with non-ASCII characters, which a forged form may hold.
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), given.encode()):
        # %r: a path may hold an encoded newline (%0a) that would forge a log line.
        log.warning("POST refused: missing or wrong CSRF token path=%r", request.path)
        return render_template("error.html", error=MESSAGES["csrf"]), 400
    return None


def _store_failed(error: StoreError) -> ResponseReturnValue:
    """Fail closed when the replay/throttle store fails: nobody signs in, nothing is accepted."""
    log.error("OTP store failed: %s", error)
    return render_template("error.html", error=MESSAGES["unavailable"]), 503


def _security_headers(response: Response) -> Response:
    # Pages hold QR codes and codes: never cache them. No script runs anywhere.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
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


def _throttled(verdict: Verdict) -> tuple[str, dict[str, str]]:
    seconds = max(1, math.ceil(verdict.retry_after or 0))
    wait = "1 second" if seconds == 1 else f"{seconds} seconds"
    return MESSAGES["throttled"].format(wait=wait), {"Retry-After": str(seconds)}


def _refuse(verdict: Verdict, *, template: str, username: str = "") -> ResponseReturnValue:
    """Render ``template`` with the message for a refused sign-in ``verdict``.

    Only "throttled" has a message of its own; every other refusal, a reused code included,
    gets the generic one, so nothing tells whether the password was right.
    """
    if verdict.reason == "throttled":
        message, headers = _throttled(verdict)
        return render_template(template, error=message, username=username), 429, headers
    return render_template(template, error=MESSAGES["failed"], username=username), 401


# What the code page answers when there is no code to check (the password was wrong).
_NO_MATCH: Final = Verdict(reason="invalid")


class _Demo:
    """The views; each one is a step of the flow and the library calls it makes."""

    def __init__(
        self, *, db: DemoDB, verifier: Verifier, send_sms: SmsSink, clock: Callable[[], float]
    ) -> None:
        self.db = db
        self.verifier = verifier
        self.send_sms = send_sms
        self.clock = clock
        # The library counts wrong codes per user; a wrong password must count as well, or the
        # throttle would slow down only code guessing. Settling an empty code does exactly
        # that: it is never examined ("malformed", a failure), or "throttled" while the user
        # must wait. The key is random and never used to compute a code.
        self._failure_only = TOTP(secrets.token_bytes(20))

    # -- sessions --------------------------------------------------------------------------

    def template_globals(self) -> dict[str, object]:
        # current_user() first: it clears a stale session, token included, and the form must
        # carry the token of the session the browser will actually hold.
        user = self.current_user()
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(32)
        return {"csrf_token": session["csrf"], "user": user}

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

    def start_session(self, user: User, method: str) -> ResponseReturnValue:
        session.clear()  # a fresh session (and CSRF token) for the signed-in user
        session.permanent = True  # ends after SESSION_LIFETIME
        session["user"] = user.username
        session["epoch"] = user.epoch
        log.info("sign-in accepted: user=%s method=%s", user.username, method)
        return redirect(url_for("home"))

    def end_other_sessions(self, user: User) -> None:
        """End ``user``'s other sessions (how they sign in has changed); keep this one."""
        session["epoch"] = self.db.end_sessions(user.username)

    def count_failure(self, username: str) -> Verdict:
        return self.verifier.verify(username, self._failure_only, "")

    def throttle(self, username: str) -> Verdict | None:
        """Return a "throttled" verdict while ``username`` must wait, else ``None`` (read-only)."""
        wait = self.verifier.retry_after(username)
        return None if wait is None else Verdict(reason="throttled", retry_after=wait)

    # -- sign-in ---------------------------------------------------------------------------

    def home(self) -> ResponseReturnValue:
        return render_template("home.html", totp=self.db.totp(self.require_user().username))

    def sign_in(self) -> ResponseReturnValue:
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
        if user is None:
            # A wrong password counts here, once, whatever comes next: passwords are throttled
            # like codes. The code is not looked at, so a wrong code and a wrong password look
            # the same.
            verdict = self.count_failure(username)
            if totp is None and verdict.reason != "throttled":
                return self.start_sms(username, None)
        elif totp is None:
            # Never send a text message while throttled: a locked account gets the same page
            # whether the password was right or wrong.
            throttled = self.throttle(username)
            if throttled is None:
                return self.start_sms(username, user)
            verdict = throttled
        else:
            verdict = self.verifier.verify(username, totp, request.form.get("code", ""))
        if verdict.ok and user is not None:
            return self.start_session(user, "password+totp")
        wrong = "password" if user is None and verdict.reason != "throttled" else verdict.reason
        log.info("sign-in refused: user=%s reason=%s", username, wrong)
        return _refuse(verdict, template="sign_in.html", username=username)

    def start_sms(self, username: str, user: User | None) -> ResponseReturnValue:
        """Go on to the text-message step; send a code only to ``user`` (the password was right)."""
        now = self.clock()
        self.db.remove_challenges(before=now - SMS_LIFETIME)
        counter, sent_at = None, now
        if user is None:
            log.info("sign-in: user=%s wrong password or unknown user (no message)", username)
        else:
            # Each message has a key of its own: its counter is 0 until its code is used.
            counter = self.verifier.next_counter(username, message_otp(user, now))
            last = self.db.last_sent(username, counter)
            if last is not None and now - last < SMS_INTERVAL:
                sent_at = last  # no second message so soon: this challenge takes the last one's
                log.info("sign-in: user=%s text message sent recently, not again", username)
            else:
                code = message_otp(user, now).generate(counter)
                text = f"Your iSOMS sign-in code is {code}. It expires in 5 minutes."
                self.send_sms(username, text)
                log.info("sign-in: user=%s text message sent", username)
        challenge = Challenge(username=username, counter=counter, sent_at=sent_at)
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
        if user is None:
            # Nothing can match, so nothing is counted again here (a wrong password was
            # counted on /sign-in).
            throttled = self.throttle(challenge.username)
            verdict = _NO_MATCH if throttled is None else throttled
        else:
            otp = message_otp(user, challenge.sent_at)
            verdict = self.verifier.verify(user.username, otp, request.form.get("code", ""))
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
        user = None if challenge.counter is None else self.db.user(challenge.username)
        if user is None:
            return None
        otp = message_otp(user, challenge.sent_at)
        if challenge.counter != self.verifier.next_counter(user.username, otp):
            return None
        record = self.db.totp(user.username)
        return None if record is not None and record.state == "active" else user

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

    def totp_page(self, user: User, *, error: str | None = None) -> ResponseReturnValue:
        record = self.db.totp(user.username)
        qr = key = None
        if record is not None and record.state == "pending":
            enrollment = enroll(user.username, issuer=ISSUER, secret=record.secret)
            # segno's SVG, from our own URI: no user-controlled markup reaches the page.
            qr = Markup(enrollment.qr_svg())  # noqa: S704
            key = enrollment.manual_key
        page = render_template("totp.html", record=record, qr=qr, key=key, error=error)
        return page, 200 if error is None else 400

    def totp(self) -> ResponseReturnValue:
        return self.totp_page(self.require_user())

    def totp_activate(self) -> ResponseReturnValue:
        user = self.require_user()
        self.db.set_pending(user.username, enroll(user.username, issuer=ISSUER).secret)
        log.info("TOTP activation started: user=%s", user.username)
        return redirect(url_for("totp"))

    def totp_confirm(self) -> ResponseReturnValue:
        user = self.require_user()
        record = self.db.totp(user.username)
        if record is None or record.state != "pending":
            return redirect(url_for("totp"))
        code = request.form.get("code", "")
        verdict = self.verifier.confirm(user.username, TOTP(record.secret), code)
        if verdict.ok and self.db.activate(user.username, record.secret):
            self.end_other_sessions(user)
            log.info("TOTP activated: user=%s", user.username)
            return redirect(url_for("totp"))
        log.info("TOTP activation refused: user=%s reason=%s", user.username, verdict.reason)
        return self.totp_page(user, error=_code_error(verdict, MESSAGES["confirm_failed"]))

    def totp_deactivate(self) -> ResponseReturnValue:
        user = self.require_user()
        record = self.db.totp(user.username)
        if record is None or record.state != "active":
            return redirect(url_for("totp"))
        code = request.form.get("code", "")
        verdict = self.verifier.verify(user.username, TOTP(record.secret), code)
        if verdict.ok:
            self.db.remove_totp(user.username)
            self.end_other_sessions(user)
            log.info("TOTP deactivated: user=%s", user.username)
            return redirect(url_for("totp"))
        log.info("TOTP deactivation refused: user=%s reason=%s", user.username, verdict.reason)
        return self.totp_page(user, error=_code_error(verdict, MESSAGES["code_failed"]))


def _code_error(verdict: Verdict, otherwise: str) -> str:
    """Return the message for a refused code from a signed-in user (the password is known)."""
    if verdict.reason == "throttled":
        return _throttled(verdict)[0]
    if verdict.reason == "replayed":
        return MESSAGES["replayed"]
    return otherwise
