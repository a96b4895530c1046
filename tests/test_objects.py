"""HOTP, TOTP and Match as values: frozen, secret-free reprs, equality, pickling, replace()."""

from __future__ import annotations

import base64
import copy
import dataclasses
import pickle

import pytest

from isoms_otp import HOTP, TOTP, ConfigurationError, InvalidSecretError, Match

KEY = b"isoms-secret-key"  # 16 bytes, recognisable in every spelling
SHORT_KEY = b"legacy-key"  # 10 bytes: needs allow_short_secret

OTP = HOTP | TOTP


def secret_forms(secret: bytes) -> list[str]:
    """Spellings of ``secret`` that must never show up."""
    b32 = base64.b32encode(secret).decode("ascii").rstrip("=")
    return [b32, b32.lower(), secret.hex(), secret.hex().upper(), repr(secret), str(secret)[2:-1]]


def make(kind: str, secret: bytes | bytearray = KEY, **options: object) -> OTP:
    """Build an HOTP or a TOTP by name."""
    cls = HOTP if kind == "HOTP" else TOTP
    return cls(secret, **options)  # type: ignore[arg-type]


KINDS = ["HOTP", "TOTP"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["secret", "digits", "algorithm", "allow_short_secret", "_inner"])
def test_frozen(kind: str, name: str) -> None:
    """Assigning or deleting any attribute raises FrozenInstanceError."""
    otp = make(kind)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(otp, name, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(otp, name)


@pytest.mark.parametrize("name", ["period", "t0"])
def test_totp_frozen(name: str) -> None:
    """period and t0 cannot be changed after construction either."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(TOTP(KEY), name, 60)


@pytest.mark.parametrize("kind", KINDS)
def test_no_new_attributes(kind: str) -> None:
    """Slotted: no stray attributes can be added (nor through object.__setattr__)."""
    otp = make(kind)
    # Some Python versions raise TypeError here instead of FrozenInstanceError (a CPython bug:
    # the generated __setattr__ calls super() on the pre-slots class); either way nothing is added.
    with pytest.raises((dataclasses.FrozenInstanceError, TypeError)):
        otp.extra = 1  # type: ignore[union-attr]
    with pytest.raises(AttributeError):
        object.__setattr__(otp, "extra", 1)


@pytest.mark.parametrize("kind", KINDS)
def test_repr_and_str_hold_no_secret(kind: str) -> None:
    """repr() and str() show the options, never the key in any spelling."""
    otp = make(kind, digits=8, algorithm="sha256")
    for text in (repr(otp), str(otp), f"{otp!r}", f"{otp}"):
        assert text.startswith(kind + "(")
        assert "digits=8" in text
        assert "algorithm='SHA256'" in text
        for form in secret_forms(KEY):
            assert form not in text
        assert "secret" not in text


def test_totp_repr() -> None:
    """TOTP's repr shows period and t0."""
    assert "TOTP(digits=6, algorithm='SHA1', period=60, t0=7)" == repr(TOTP(KEY, period=60, t0=7))
    assert "HOTP(digits=6, algorithm='SHA1')" == repr(HOTP(KEY))


@pytest.mark.parametrize("kind", KINDS)
def test_equality_and_hash(kind: str) -> None:
    """Equal configuration means equal objects with equal hashes; the algorithm case is moot."""
    first = make(kind, algorithm="sha1")
    second = make(kind, bytearray(KEY), algorithm="SHA1")
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1
    assert first != make(kind, KEY[::-1])
    assert first != make(kind, digits=7)
    assert first != make(kind, algorithm="SHA256")


def test_totp_equality_covers_period_and_t0() -> None:
    """period and t0 are part of a TOTP's identity; HOTP and TOTP never compare equal."""
    assert TOTP(KEY) != TOTP(KEY, period=60)
    assert TOTP(KEY) != TOTP(KEY, t0=1)
    hotp: object = HOTP(KEY)
    assert hotp != TOTP(KEY)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("secret", [KEY, SHORT_KEY])
def test_pickle_round_trip(kind: str, secret: bytes) -> None:
    """Pickling rebuilds an equal object (hash states are recomputed) that gives the same codes."""
    otp = make(kind, secret, digits=8, algorithm="SHA512", allow_short_secret=True)
    clone = pickle.loads(pickle.dumps(otp))  # noqa: S301
    assert otp == clone
    assert otp.allow_short_secret == clone.allow_short_secret
    assert otp.generate(1234) == clone.generate(1234)


def test_pickle_totp_options() -> None:
    """Pickling keeps period and t0."""
    totp = TOTP(KEY, period=60, t0=100)
    clone = pickle.loads(pickle.dumps(totp))  # noqa: S301
    assert (60, 100) == (clone.period, clone.t0)
    assert totp.generate(10_000) == clone.generate(10_000)


@pytest.mark.parametrize("kind", KINDS)
def test_copy_and_deepcopy(kind: str) -> None:
    """copy() and deepcopy() work (hash states themselves cannot be deep-copied)."""
    otp = make(kind)
    assert otp == copy.copy(otp)
    assert otp == copy.deepcopy(otp)
    assert otp.generate(5) == copy.deepcopy(otp).generate(5)


@pytest.mark.parametrize("kind", KINDS)
def test_replace_builds_a_new_valid_object(kind: str) -> None:
    """dataclasses.replace() changes an option and recomputes the per-key state."""
    otp = make(kind)
    longer = dataclasses.replace(otp, digits=8)
    assert 8 == longer.digits
    assert 8 == len(longer.generate(1))
    rekeyed = dataclasses.replace(otp, secret=KEY[::-1])
    assert otp.generate(1) != rekeyed.generate(1) or otp.generate(2) != rekeyed.generate(2)
    assert rekeyed == make(kind, KEY[::-1])
    assert 6 == otp.digits  # the original is unchanged


@pytest.mark.parametrize("kind", KINDS)
def test_replace_revalidates(kind: str) -> None:
    """dataclasses.replace() runs the same checks as construction."""
    otp = make(kind)
    with pytest.raises(ConfigurationError):
        dataclasses.replace(otp, digits=5)
    with pytest.raises(ConfigurationError):
        dataclasses.replace(otp, algorithm="MD5")
    with pytest.raises(InvalidSecretError):
        dataclasses.replace(otp, secret=SHORT_KEY)
    assert SHORT_KEY == dataclasses.replace(otp, secret=SHORT_KEY, allow_short_secret=True).secret


def test_replace_keeps_allow_short_secret() -> None:
    """A legacy-key object stays legacy through replace()."""
    legacy = TOTP(SHORT_KEY, allow_short_secret=True)
    assert 8 == dataclasses.replace(legacy, digits=8).digits


def test_replace_totp_period() -> None:
    """replace() re-checks period and t0 too."""
    with pytest.raises(ConfigurationError):
        dataclasses.replace(TOTP(KEY), period=0)
    with pytest.raises(TypeError):
        dataclasses.replace(TOTP(KEY), t0=1.5)  # type: ignore[arg-type]
    assert 60 == dataclasses.replace(TOTP(KEY), period=60).period


# --- Match --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("step", "drift"), [(0, 0), (0, -1), (5, 0), (2**64 - 1, 10)])
def test_match_is_always_truthy(step: int, drift: int) -> None:
    """Match is truthy even for step 0 and drift 0."""
    assert bool(Match(step=step, drift=drift)) is True


def test_match_is_frozen_and_keyword_only() -> None:
    """Match cannot be changed and is built by keyword."""
    match = Match(step=3, drift=-1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        match.step = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        Match(3, -1)  # type: ignore[call-arg]


def test_match_value_semantics() -> None:
    """Match compares and hashes by value and has a readable repr."""
    assert Match(step=3, drift=-1) == Match(step=3, drift=-1)
    assert Match(step=3, drift=-1) != Match(step=3, drift=0)
    assert hash(Match(step=3, drift=-1)) == hash(Match(step=3, drift=-1))
    assert "Match(step=3, drift=-1, credential=0)" == repr(Match(step=3, drift=-1))
    assert Match(step=3, drift=-1) == pickle.loads(pickle.dumps(Match(step=3, drift=-1)))  # noqa: S301
