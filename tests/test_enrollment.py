"""The enroll() helper: what *Activate TOTP* shows, stores and later confirms."""

from __future__ import annotations

import io

import pytest

from isoms_otp import (
    TOTP,
    Enrollment,
    InvalidSecretError,
    InvalidURIError,
    MemoryStore,
    Verifier,
    build_uri,
    decode_secret,
    encode_secret,
    enroll,
    parse_uri,
)
from isoms_otp.testing import FakeClock

KEY = decode_secret("HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ")


def test_enrolment_has_everything_activate_totp_needs() -> None:
    """A fresh 160-bit key, the TOTP every app supports, and its URI."""
    enrolment = enroll("alice@example.org", issuer="iSOMS")
    expected_size = 20
    assert expected_size == len(enrolment.secret)
    assert TOTP(enrolment.secret) == enrolment.otp
    expected_uri = build_uri(enrolment.otp, account="alice@example.org", issuer="iSOMS")
    assert expected_uri == enrolment.uri
    expected_label = ("alice@example.org", "iSOMS")
    assert expected_label == (enrolment.account, enrolment.issuer)


def test_each_enrolment_has_a_new_key() -> None:
    """Two enrolments of the same account never share a key."""
    first = enroll("alice", issuer="iSOMS")
    second = enroll("alice", issuer="iSOMS")
    assert first.secret != second.secret
    assert first != second


def test_a_stored_secret_shows_the_same_enrolment_again() -> None:
    """Passing the pending secret back gives the same URI (a reloaded page shows the same QR)."""
    first = enroll("alice", issuer="iSOMS")
    again = enroll("alice", issuer="iSOMS", secret=first.secret)
    assert first == again
    assert first.uri == again.uri


def test_manual_key_is_grouped_by_four() -> None:
    """The key for typing in is base32 in groups of four, and decodes back to the key."""
    enrolment = enroll("alice", issuer="iSOMS", secret=KEY)
    expected = "HXDM VJEC JJWS RB3H WIZR 4IFU GFTM XBOZ"
    assert expected == enrolment.manual_key
    assert decode_secret(enrolment.manual_key) == KEY


def test_manual_key_of_an_uneven_length() -> None:
    """A 16-byte key (26 symbols) ends with a short group and still decodes."""
    key = bytes(range(16))
    enrolment = enroll("alice", issuer="iSOMS", secret=key)
    expected = "AAAQ EAYE AUDA OCAJ BIFQ YDIO B4"
    assert expected == enrolment.manual_key
    assert key == decode_secret(enrolment.manual_key)


def test_repr_shows_no_secret() -> None:
    """repr shows who and how, but not the key, the URI or the manual key."""
    enrolment = enroll("alice", issuer="iSOMS", secret=KEY)
    text = repr(enrolment)
    expected = (
        "Enrollment(account='alice', issuer='iSOMS', "
        "otp=TOTP(digits=6, algorithm='SHA1', period=30, t0=0))"
    )
    assert expected == text
    assert encode_secret(KEY) not in text


def test_scan_then_confirm_with_the_same_objects() -> None:
    """The app reads the URI, shows a code, and the server's TOTP computes the same one.

    Past the matched step (``after_step``) the same code matches no more; in an application
    the Verifier keeps that mark (see the next test).
    """
    enrolment = enroll("alice", issuer="iSOMS")
    app = parse_uri(enrolment.uri).otp  # what the phone computes from the QR code
    at = 1_800_000_015
    code = app.generate(at)
    match = enrolment.otp.verify(code, at=at + 20)
    assert match is not None
    assert enrolment.otp.step(at) == match.step
    assert enrolment.otp.verify(code, at=at + 20, after_step=match.step) is None


def test_confirmation_code_is_not_the_first_sign_in_code() -> None:
    """Regression: the enrolment guide used to confirm with a bare ``otp.verify``.

    It told integrators to keep ``match.step`` as their own mark, which the Verifier never
    sees, so the confirmation code was accepted again as the first sign-in code. Confirming
    through ``Verifier.confirm`` claims it in the store that sign-in checks.
    """
    enrolment = enroll("alice", issuer="iSOMS")
    app = parse_uri(enrolment.uri).otp  # what the phone computes from the QR code
    assert isinstance(app, TOTP)
    clock = FakeClock(1_800_000_015)
    verifier = Verifier(MemoryStore(), clock=clock)
    code = app.generate(clock())
    confirmed = verifier.confirm("alice", enrolment.otp, code)
    assert "accepted" == confirmed.reason
    clock.advance(20)  # signing in right away: the code is still inside the window
    assert "replayed" == verifier.verify("alice", enrolment.otp, code).reason
    clock.advance(30)  # the next code, past the replay's back-off, signs in
    assert "accepted" == verifier.verify("alice", enrolment.otp, app.generate(clock())).reason


def test_a_wrong_code_does_not_confirm() -> None:
    """A code from another key does not activate the enrolment."""
    enrolment = enroll("alice", issuer="iSOMS")
    other = enroll("alice", issuer="iSOMS")
    at = 1_800_000_000
    assert enrolment.otp.verify(other.otp.generate(at), at=at, past=0, future=0) is None


@pytest.mark.parametrize(
    ("account", "issuer", "error", "message"),
    [
        pytest.param("a:b", "iSOMS", InvalidURIError, "contains ':'", id="colon-in-account"),
        pytest.param("alice", "A:B", InvalidURIError, "contains ':'", id="colon-in-issuer"),
        pytest.param("", "iSOMS", InvalidURIError, "account name is empty", id="empty-account"),
        pytest.param("alice", "", InvalidURIError, "issuer is empty", id="empty-issuer"),
        pytest.param("a\nb", "iSOMS", InvalidURIError, "control character", id="newline"),
        # Regression: trailing spaces used to be accepted; the app trims them.
        pytest.param("alice ", "iSOMS", InvalidURIError, "ends with a space", id="account-end"),
        pytest.param("alice", "iSOMS ", InvalidURIError, "ends with a space", id="issuer-end"),
        pytest.param("alice", " iSOMS", InvalidURIError, "starts with a space", id="issuer-start"),
        pytest.param("alice", None, TypeError, "issuer must be a str", id="issuer-none"),
        pytest.param(b"alice", "iSOMS", TypeError, "account must be a str", id="account-bytes"),
    ],
)
def test_refusals(account: object, issuer: object, error: type[Exception], message: str) -> None:
    """Bad labels are refused as build_uri refuses them; an issuer is required."""
    with pytest.raises(error, match=message):
        enroll(account, issuer=issuer)  # type: ignore[arg-type]


def test_short_secret_is_refused() -> None:
    """A new enrolment never uses a legacy 80-bit key."""
    with pytest.raises(InvalidSecretError, match="at least 128"):
        enroll("alice", issuer="iSOMS", secret=b"Hello!\xde\xad\xbe\xef")


def test_text_secret_is_a_type_error() -> None:
    """The stored secret is bytes; base32 text must be decoded first."""
    with pytest.raises(TypeError, match="decode_secret"):
        enroll("alice", issuer="iSOMS", secret=encode_secret(KEY))  # type: ignore[arg-type]


def test_direct_construction_validates_too() -> None:
    """Enrollment(...) checks the same things as enroll()."""
    made = Enrollment(account="alice", issuer="iSOMS", secret=KEY)
    assert enroll("alice", issuer="iSOMS", secret=KEY) == made
    with pytest.raises(InvalidURIError, match="contains ':'"):
        Enrollment(account="a:b", issuer="iSOMS", secret=KEY)


@pytest.mark.qr
def test_qr_methods_draw_the_uri() -> None:
    """The enrolment's QR codes decode to its URI."""
    import zxingcpp  # noqa: PLC0415 - only this test needs the decoder; it fails without it
    from PIL import Image  # noqa: PLC0415

    enrolment = enroll("alice@example.org", issuer="iSOMS")
    png = Image.open(io.BytesIO(enrolment.qr_png(scale=4)))
    (result,) = zxingcpp.read_barcodes(png)
    assert enrolment.uri == result.text
    assert enrolment.qr_svg().startswith("<svg")
    assert "\u2580" in enrolment.qr_terminal()
