"""The hand-written HMAC (``_hmac``) against :mod:`hmac`, and codes against a plain reference."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isoms_otp import HOTP, TOTP
from isoms_otp._hmac import ALGORITHMS, hmac_digest, hmac_states, normalize_algorithm

BLOCK_SIZES = {"SHA1": 64, "SHA256": 64, "SHA512": 128}
algorithms = st.sampled_from(sorted(ALGORITHMS))


def reference_code(key: bytes, counter: int, digits: int, algorithm: str) -> str:
    """RFC 4226 section 5.3 written out with the standard library's hmac.digest."""
    mac = hmac.digest(key, struct.pack(">Q", counter), algorithm.lower())
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).rjust(digits, "0")


def test_block_sizes() -> None:
    """The block sizes the key-length tests rely on are the ones hashlib reports."""
    assert BLOCK_SIZES == {name: make().block_size for name, make in ALGORITHMS.items()}


@pytest.mark.parametrize("algorithm", sorted(BLOCK_SIZES))
@pytest.mark.parametrize("relation", ["shorter", "equal", "longer"])
def test_key_sizes_around_the_block(algorithm: str, relation: str) -> None:
    """Keys shorter than, equal to and longer than the block give stdlib hmac's digest."""
    block = BLOCK_SIZES[algorithm]
    size = {"shorter": block - 1, "equal": block, "longer": block + 1}[relation]
    key = bytes(range(256))[:size]
    message = b"\x00\x00\x00\x00\x00\x00\x00\x2a"
    expected = hmac.digest(key, message, algorithm.lower())
    assert expected == hmac_digest(hmac_states(key, algorithm), message)


@pytest.mark.parametrize("algorithm", sorted(BLOCK_SIZES))
@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_totp_and_hotp_keys_around_the_block(algorithm: str, offset: int) -> None:
    """TOTP's constructor builds the states itself for keys that fit a block and calls
    hmac_states() for longer ones: both give the reference codes, as HOTP's do."""
    key = bytes(range(256))[: BLOCK_SIZES[algorithm] + offset]
    for counter in (0, 1, 2**32, 2**64 - 1):
        expected = reference_code(key, counter, 8, algorithm)
        assert expected == HOTP(key, digits=8, algorithm=algorithm).generate(counter)
        assert expected == TOTP(key, digits=8, algorithm=algorithm).generate(counter * 30)


@given(algorithm=algorithms, key=st.binary(max_size=300), message=st.binary(max_size=300))
def test_hmac_equals_stdlib(algorithm: str, key: bytes, message: bytes) -> None:
    """For any key and message, hmac_digest(hmac_states(...)) == hmac.digest."""
    expected = hmac.digest(key, message, algorithm.lower())
    assert expected == hmac_digest(hmac_states(key, algorithm), message)


@given(algorithm=algorithms, data=st.data())
def test_hmac_keys_at_block_boundaries(algorithm: str, data: st.DataObject) -> None:
    """Keys within a few bytes of the block size (where RFC 2104 changes behaviour)."""
    block = BLOCK_SIZES[algorithm]
    size = data.draw(st.integers(block - 3, block + 3))
    key = data.draw(st.binary(min_size=size, max_size=size))
    message = data.draw(st.binary(max_size=16))
    assert hmac.digest(key, message, algorithm.lower()) == hmac_digest(
        hmac_states(key, algorithm), message
    )


def test_states_are_reusable() -> None:
    """Computing one digest does not disturb the precomputed states (copy() before update)."""
    states = hmac_states(b"k" * 20, "SHA256")
    first = hmac_digest(states, b"one")
    hmac_digest(states, b"two")
    assert first == hmac_digest(states, b"one")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("SHA1", "SHA1"),
        ("sha1", "SHA1"),
        ("Sha256", "SHA256"),
        ("sHa512", "SHA512"),
        ("MD5", None),
        ("SHA-1", None),
        ("SHA224", None),
        ("", None),
        ("\u017fha1", None),  # LATIN SMALL LETTER LONG S upper-cases to "S"; must not pass
        (None, None),
        (1, None),
        (b"SHA1", None),
    ],
    ids=repr,
)
def test_normalize_algorithm(name: object, expected: str | None) -> None:
    """Any letter case of the three names is accepted; anything else gives None."""
    assert expected == normalize_algorithm(name)


@given(
    algorithm=algorithms,
    key=st.binary(min_size=16, max_size=256),
    counter=st.integers(0, 2**64 - 1),
    digits=st.sampled_from([6, 7, 8]),
)
def test_hotp_equals_reference(algorithm: str, key: bytes, counter: int, digits: int) -> None:
    """HOTP.generate == the plain hmac.digest reference for any key, counter, digits, hash."""
    expected = reference_code(key, counter, digits, algorithm)
    assert expected == HOTP(key, digits=digits, algorithm=algorithm).generate(counter)


@given(
    algorithm=algorithms,
    key=st.binary(min_size=16, max_size=256),
    at=st.one_of(st.integers(0, 2**40), st.floats(0, 2**40, allow_nan=False)),
    period=st.integers(1, 604800),
    t0=st.integers(0, 2**20),
    digits=st.sampled_from([6, 7, 8]),
)
def test_totp_equals_reference(
    *, algorithm: str, key: bytes, at: float, period: int, t0: int, digits: int
) -> None:
    """TOTP.generate == the reference at floor((at - t0) / period), for times from t0 on."""
    at = at + t0
    totp = TOTP(key, digits=digits, algorithm=algorithm, period=period, t0=t0)
    step = int((at - t0) // period)
    assert step == totp.step(at)
    assert reference_code(key, step, digits, algorithm) == totp.generate(at)


def test_hashlib_names_match() -> None:
    """The constructors are hashlib's own (no look-alike implementation)."""
    assert hashlib.sha1 is ALGORITHMS["SHA1"]
    assert hashlib.sha256 is ALGORITHMS["SHA256"]
    assert hashlib.sha512 is ALGORITHMS["SHA512"]
