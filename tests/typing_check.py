"""The public API as users write it, for ``mypy --strict`` (and run by ``test_typing.py``).

If a signature changes in a way that breaks users' type checking, mypy fails on this file. The
``# type: ignore[...]`` lines are misuse that mypy must keep rejecting: ``warn_unused_ignores``
(part of ``--strict``) turns an ignore that is no longer needed into an error.
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime, timezone

import isoms_otp
from isoms_otp import (
    HOTP,
    TOTP,
    ConfigurationError,
    InvalidSecretError,
    InvalidURIError,
    Match,
    MissingExtraError,
    OTPError,
    StoreError,
    decode_secret,
    encode_secret,
    generate_secret,
)


def enrol() -> tuple[bytes, str]:
    """Make a key and the text a user types into the app."""
    secret: bytes = generate_secret()
    longer: bytes = generate_secret(32)
    text: str = encode_secret(secret)
    assert decode_secret(text) == secret
    assert len(longer) == 32
    return secret, text


def sign_in(secret: bytes, typed: str, last_step: int | None) -> int | None:
    """Verify a typed TOTP code and return the step to store, as the iSOMS backend would."""
    totp = TOTP(secret, digits=6, algorithm="SHA1", period=30, t0=0)
    match: Match | None = totp.verify(typed, past=1, future=1, after_step=last_step)
    if match:
        step: int = match.step
        drift: int = match.drift
        assert -1 <= drift <= 1
        return step
    return None


def clock_values(totp: TOTP) -> list[str]:
    """Every accepted kind of time."""
    now = datetime.now(timezone.utc)
    codes: list[str] = [totp.generate(), totp.generate(59), totp.generate(59.5), totp.generate(now)]
    step: int = totp.step(now)
    left: float = totp.remaining(now)
    assert step >= 0
    assert left > 0
    return codes


def counters(secret: bytes) -> int:
    """HOTP with a stored counter."""
    hotp = HOTP(secret, digits=8, algorithm="sha256", allow_short_secret=False)
    code: str = hotp.generate(0)
    match = hotp.verify(code, counter=0, look_ahead=10)
    return 0 if match is None else match.step + 1


def configuration(totp: TOTP, hotp: HOTP) -> tuple[bytes, int, str, int, int]:
    """Readable configuration and replace()."""
    eight: TOTP = dataclasses.replace(totp, digits=8)
    assert hotp.digits == 6 or hotp.digits != 6
    return (eight.secret, eight.digits, eight.algorithm, eight.period, eight.t0)


def errors() -> list[type[Exception]]:
    """The error tree is importable and typed as exceptions."""
    caught: list[type[Exception]] = [
        OTPError,
        ConfigurationError,
        InvalidSecretError,
        InvalidURIError,
        StoreError,
        MissingExtraError,
    ]
    try:
        TOTP(b"short")
    except InvalidSecretError as error:
        message: str = str(error)
        assert message
    except OTPError:
        raise
    return caught


def misuse(totp: TOTP, hotp: HOTP) -> None:
    """Mistakes the type checker must catch (this function is never called)."""
    totp.verify(123456)  # type: ignore[arg-type]
    totp.generate("now")  # type: ignore[arg-type]
    hotp.generate("1")  # type: ignore[arg-type]
    hotp.verify("123456")  # type: ignore[call-arg]
    TOTP("JBSWY3DPEHPK3PXP")  # type: ignore[arg-type]
    TOTP(b"0123456789abcdef", 8)  # type: ignore[call-arg]
    totp.digits = 8  # type: ignore[misc]
    decode_secret(b"JBSWY3DP")  # type: ignore[arg-type]
    encode_secret("JBSWY3DP")  # type: ignore[arg-type]
    Match(1, 0)  # type: ignore[call-arg]


def sign_in_service(secret: bytes, typed: str, client: str) -> bool:
    """The Verifier as a backend writes it: sources, wrong passwords, several credentials."""
    verifier = isoms_otp.Verifier(isoms_otp.MemoryStore(), policy=isoms_otp.ThrottlePolicy())
    wrong: isoms_otp.Verdict = verifier.record_failure("bob", source=client)
    assert wrong.failures >= 0
    phone, token = TOTP(secret), HOTP(secret)
    verdict = verifier.verify("alice", [phone, token], typed, source=client)
    if verdict.match is not None:
        which: int = verdict.match.credential
        assert which in (0, 1)
    wait: float | None = verifier.retry_after("alice", source=client)
    counter: int = verifier.next_counter("alice", token)
    with contextlib.suppress(TypeError):
        verifier.next_counter("alice", phone)  # type: ignore[arg-type]
    with contextlib.suppress(TypeError):
        verifier.verify("alice", phone, typed, source=1)  # type: ignore[arg-type]
    return verdict.ok and wait is None and counter >= 0


def main() -> None:
    """Run the well-typed examples (test_typing.py calls this)."""
    secret, _ = enrol()
    totp = TOTP(secret)
    assert sign_in(secret, totp.generate(), None) is not None
    assert len(clock_values(totp)) == 4
    assert counters(secret) == 1
    assert configuration(totp, HOTP(secret))[1] == 8
    assert sign_in_service(secret, totp.generate(), "198.51.100.7")
    assert len(errors()) == 6
    version: str = isoms_otp.__version__
    assert version
