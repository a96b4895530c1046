"""isoms_otp's TOTP against pyotp, mintotp, django_otp.oath and the HMAC floors, in one run.

Run from the repository root (the peers are the ``bench`` extra)::

    PYTHONPATH=src python benchmarks/bench_core.py            # about a minute
    PYTHONPATH=src python benchmarks/bench_core.py --quick    # seconds; only checks the script

Every figure is ns/op (median of interleaved rounds) and a ratio to a floor measured in the same
run: ``hmac.digest`` plus truncation with the key prepared once (the standard library's one-shot
HMAC), for as many codes as the row computes. The bare floor is the fastest HMAC-plus-truncation
loop we know in Python: hash objects with the key pads absorbed once, copied per code. All
implementations verify at one fixed Unix time, so every row does the same work on every call.
Before timing, every peer is checked to give the right answer for the right and the wrong code.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import hmac
import struct
import tracemalloc
from collections.abc import Callable
from hmac import compare_digest
from typing import Any

import _harness as h

import isoms_otp
from isoms_otp import TOTP, decode_secret, encode_secret

PEERS = {"pyotp": "pyotp", "mintotp": "mintotp", "django_otp.oath": "django-otp"}

#: A fixed instant (2023-11-14T22:13:20Z): every row verifies at the same time step.
AT = 1_700_000_000
PERIOD = 30
STEP = AT // PERIOD
#: RFC 6238 appendix B's keys: 20, 32 and 64 bytes for SHA1, SHA256 and SHA512.
KEYS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
HASHLIB = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}
BLOCK = {"SHA1": 64, "SHA256": 64, "SHA512": 128}
WINDOWS = (0, 1, 2, 5, 10)

PACK = struct.Struct(">Q").pack
UNPACK = struct.Struct(">I").unpack_from
DIGEST = hmac.digest


# ---- the floors: truncated HMAC values, nothing else -------------------------------------------


def digest_floor(key: bytes, first: int, count: int, name: str) -> None:
    """``count`` codes with ``hmac.digest`` (key set up again per call) plus truncation."""
    for counter in range(first, first + count):
        mac = DIGEST(key, PACK(counter), name)
        (UNPACK(mac, mac[-1] & 15)[0] & 0x7FFFFFFF) % 1000000


def digest_floor_1(key: bytes, counter: int, name: str) -> int:
    """One code with ``hmac.digest`` plus truncation."""
    mac = DIGEST(key, PACK(counter), name)
    value: int = UNPACK(mac, mac[-1] & 15)[0]
    return (value & 0x7FFFFFFF) % 1000000


def pad_states(key: bytes, algorithm: str) -> tuple[Any, Any]:
    """The inner and outer hash objects with ``key XOR ipad`` / ``key XOR opad`` absorbed."""
    constructor = HASHLIB[algorithm]
    block = BLOCK[algorithm]
    if len(key) > block:
        key = constructor(key).digest()
    key = key.ljust(block, b"\0")
    return (
        constructor(bytes(b ^ 0x36 for b in key)),
        constructor(bytes(b ^ 0x5C for b in key)),
    )


def bare_floor(inner: Any, outer: Any, first: int, count: int) -> None:
    """``count`` codes from pre-keyed hash objects copied per code, plus truncation."""
    inner_copy = inner.copy
    outer_copy = outer.copy
    for counter in range(first, first + count):
        state = inner_copy()
        state.update(PACK(counter))
        final = outer_copy()
        final.update(state.digest())
        mac = final.digest()
        (UNPACK(mac, mac[-1] & 15)[0] & 0x7FFFFFFF) % 1000000


def bare_floor_1(inner: Any, outer: Any, counter: int) -> int:
    """One code from pre-keyed hash objects, plus truncation."""
    state = inner.copy()
    state.update(PACK(counter))
    final = outer.copy()
    final.update(state.digest())
    mac = final.digest()
    value: int = UNPACK(mac, mac[-1] & 15)[0]
    return (value & 0x7FFFFFFF) % 1000000


# ---- how people use the peers -------------------------------------------------------------------


def make_mintotp_verify(mintotp: Any) -> Callable[..., bool]:
    """mintotp has no verify: compare every code of the window in constant time, as we do."""
    hotp = mintotp.hotp

    def verify(b32: str, code: str, step: int, window: int, digest: str = "sha1") -> bool:
        matched = False
        for counter in range(step - window, step + window + 1):
            if compare_digest(hotp(b32, counter, 6, digest), code):
                matched = True
        return matched

    return verify


def make_django_cold(oath: Any) -> Callable[[str, str, int], bool]:
    """The django-otp way per login: decode the stored base32, build ``TOTP``, verify an int."""

    def verify(b32: str, code: str, at: int) -> bool:
        device = oath.TOTP(base64.b32decode(b32 + "=" * (-len(b32) % 8)))
        device.time = at
        return bool(device.verify(int(code), tolerance=1))

    return verify


def isoms_cold(b32: str, code: str, at: int) -> bool:
    """Our per-login path: decode the stored secret, build the TOTP, verify."""
    return TOTP(decode_secret(b32)).verify(code, at=at) is not None


def wrong_code(otp: TOTP, spread: int) -> str:
    """A code that matches no step within ``spread`` of ``STEP`` (so every row fails alike)."""
    taken = {otp.generate((STEP + offset) * PERIOD) for offset in range(-spread, spread + 1)}
    return next(code for code in (f"{n:06d}" for n in range(1000000)) if code not in taken)


# ---- the cases ---------------------------------------------------------------------------------


def build_cases(peers: dict[str, Any]) -> list[h.Case]:  # noqa: PLR0915 - one flat list reads best
    pyotp = peers["pyotp"]
    mintotp = peers["mintotp"]
    oath = peers["django_otp.oath"]
    mintotp_verify = make_mintotp_verify(mintotp)
    django_cold = make_django_cold(oath)

    key = KEYS["SHA1"]
    b32 = encode_secret(key)
    ours = TOTP(key)
    right = ours.generate(AT)
    wrong = wrong_code(ours, max(WINDOWS))
    theirs = pyotp.TOTP(b32)
    device = oath.TOTP(key)
    device.time = AT
    inner, outer = pad_states(key, "SHA1")

    # The same answers everywhere, or timing them would compare different work.
    h.check(theirs.at(AT) == right, "pyotp generates another code")
    h.check(mintotp.hotp(b32, STEP) == right, "mintotp generates another code")
    h.check(f"{device.token():06d}" == right, "django_otp.oath generates another code")
    h.check(bare_floor_1(inner, outer, STEP) == int(right), "the bare floor computes another code")
    h.check(digest_floor_1(key, STEP, "sha1") == int(right), "the digest floor differs")
    for code, expected in ((right, True), (wrong, False)):
        h.check((ours.verify(code, at=AT) is not None) is expected, f"isoms_otp on {expected}")
        h.check(theirs.verify(code, for_time=AT, valid_window=1) is expected, "pyotp verify")
        h.check(mintotp_verify(b32, code, STEP, 1) is expected, "mintotp verify")
        h.check(django_cold(b32, code, AT) is expected, "django_otp.oath verify")
        h.check(isoms_cold(b32, code, AT) is expected, "isoms_otp cold path")
        h.check(device.verify(int(code), tolerance=1) is expected, "django_otp.oath TOTP.verify")

    env: dict[str, Any] = {
        "AT": AT,
        "STEP": STEP,
        "b32": b32,
        "key": key,
        "ours": ours,
        "theirs": theirs,
        "device": device,
        "inner": inner,
        "outer": outer,
        "right": right,
        "wrong": wrong,
        "right_int": int(right),
        "wrong_int": int(wrong),
        "pyotp": pyotp,
        "mintotp": mintotp,
        "mintotp_verify": mintotp_verify,
        "django_cold": django_cold,
        "isoms_cold": isoms_cold,
        "TOTP": TOTP,
        "decode_secret": decode_secret,
        "digest_floor": digest_floor,
        "digest_floor_1": digest_floor_1,
        "bare_floor": bare_floor,
        "bare_floor_1": bare_floor_1,
    }
    cases: list[h.Case] = []

    def add(section: str, variant: str, implementation: str, stmt: str, **extra: Any) -> None:
        floor = bool(extra.pop("floor", False))
        note = str(extra.pop("note", ""))
        cases.append(
            h.Case(
                section=section,
                variant=variant,
                implementation=implementation,
                stmt=stmt,
                env={**env, **extra},
                floor=floor,
                note=note,
            )
        )

    # generate: one code at a fixed time.
    add(
        "generate", "SHA1", "floor: hmac.digest x1", "digest_floor_1(key, STEP, 'sha1')", floor=True
    )
    add("generate", "SHA1", "floor: bare pre-keyed hashlib x1", "bare_floor_1(inner, outer, STEP)")
    add("generate", "SHA1", "isoms_otp TOTP.generate(at)", "ours.generate(AT)")
    add("generate", "SHA1", "pyotp TOTP.at(at), object built once", "theirs.at(AT)")
    add(
        "generate",
        "SHA1",
        "mintotp hotp(b32, step)",
        "mintotp.hotp(b32, STEP)",
        note="its API takes the base32 text and decodes it on every call",
    )
    add(
        "generate",
        "SHA1",
        "django_otp.oath TOTP.token(), object built once",
        "device.token()",
        note="returns an int (leading zeros are the caller's job)",
    )

    # verify, window +-1, object built once unless said otherwise; a wrong and a right code.
    for section, code, code_int in (
        ("verify-wrong", "wrong", "wrong_int"),
        ("verify-right", "right", "right_int"),
    ):
        variant = "SHA1, window +-1"
        add(
            section,
            variant,
            "floor: hmac.digest x3",
            "digest_floor(key, STEP - 1, 3, 'sha1')",
            floor=True,
        )
        add(
            section,
            variant,
            "floor: bare pre-keyed hashlib x3",
            "bare_floor(inner, outer, STEP - 1, 3)",
        )
        add(section, variant, "floor: hmac.digest x1", "digest_floor_1(key, STEP, 'sha1')")
        add(
            section, variant, "floor: bare pre-keyed hashlib x1", "bare_floor_1(inner, outer, STEP)"
        )
        add(
            section,
            variant,
            "isoms_otp TOTP.verify, object built once",
            f"ours.verify({code}, at=AT)",
        )
        add(
            section,
            variant,
            "pyotp TOTP.verify, object built once",
            f"theirs.verify({code}, for_time=AT, valid_window=1)",
            note="stops at the first match" if section == "verify-right" else "",
        )
        add(
            section,
            variant,
            "pyotp TOTP(secret).verify, built per call",
            f"pyotp.TOTP(b32).verify({code}, for_time=AT, valid_window=1)",
            note="the issue's comparison: the object is built from base32 on every call",
        )
        add(
            section,
            variant,
            "django_otp.oath TOTP.verify, object built once",
            f"device.verify({code_int}, tolerance=1)",
            note="takes the code as an int; stops at the first match"
            if section == "verify-right"
            else "takes the code as an int",
        )
        add(
            section,
            variant,
            "mintotp, every code of the window compared",
            f"mintotp_verify(b32, {code}, STEP, 1)",
            note="no verify in mintotp; decodes the base32 per code",
        )

    # the cold path: what a backend runs per login, from the stored base32 secret.
    variant = "SHA1, window +-1, wrong code"
    add(
        "cold",
        variant,
        "floor: hmac.digest x3",
        "digest_floor(key, STEP - 1, 3, 'sha1')",
        floor=True,
    )
    add(
        "cold", variant, "floor: bare pre-keyed hashlib x3", "bare_floor(inner, outer, STEP - 1, 3)"
    )
    add(
        "cold",
        variant,
        "isoms_otp decode_secret + TOTP() + verify",
        "TOTP(decode_secret(b32)).verify(wrong, at=AT)",
    )
    add(
        "cold",
        variant,
        "pyotp TOTP(b32).verify",
        "pyotp.TOTP(b32).verify(wrong, for_time=AT, valid_window=1)",
    )
    add(
        "cold",
        variant,
        "django_otp.oath b32decode + TOTP() + verify",
        "django_cold(b32, wrong, AT)",
    )
    add(
        "cold",
        variant,
        "mintotp, every code of the window compared",
        "mintotp_verify(b32, wrong, STEP, 1)",
    )

    # window sizes: the floor computes as many codes as the window holds.
    for window in WINDOWS:
        count = 2 * window + 1
        variant = f"window +-{window} ({count} codes), SHA1, wrong code"
        add(
            "window",
            variant,
            f"floor: hmac.digest x{count}",
            f"digest_floor(key, STEP - {window}, {count}, 'sha1')",
            floor=True,
        )
        add(
            "window",
            variant,
            f"floor: bare pre-keyed hashlib x{count}",
            f"bare_floor(inner, outer, STEP - {window}, {count})",
        )
        add(
            "window",
            variant,
            "isoms_otp TOTP.verify, object built once",
            f"ours.verify(wrong, at=AT, past={window}, future={window})",
        )
        add(
            "window",
            variant,
            "pyotp TOTP.verify, object built once",
            f"theirs.verify(wrong, for_time=AT, valid_window={window})",
        )

    # hashes: the same +-1 verification with each RFC 6238 algorithm and its RFC key.
    for algorithm, hkey in KEYS.items():
        name = algorithm.lower()
        hb32 = encode_secret(hkey)
        hours = TOTP(hkey, algorithm=algorithm)
        htheirs = pyotp.TOTP(hb32, digest=HASHLIB[algorithm])
        hwrong = wrong_code(hours, 1)
        hinner, houter = pad_states(hkey, algorithm)
        h.check(htheirs.at(AT) == hours.generate(AT), f"pyotp {algorithm} generates another code")
        h.check(
            mintotp.hotp(hb32, STEP, 6, name) == hours.generate(AT),
            f"mintotp {algorithm} generates another code",
        )
        h.check(
            bare_floor_1(hinner, houter, STEP) == int(hours.generate(AT)),
            f"the bare {algorithm} floor computes another code",
        )
        local = {
            "hkey": hkey,
            "hb32": hb32,
            "hours": hours,
            "htheirs": htheirs,
            "hwrong": hwrong,
            "hinner": hinner,
            "houter": houter,
        }
        variant = f"{algorithm}, window +-1, wrong code"
        add(
            "hash",
            variant,
            "floor: hmac.digest x3",
            f"digest_floor(hkey, STEP - 1, 3, '{name}')",
            floor=True,
            **local,
        )
        add(
            "hash",
            variant,
            "floor: bare pre-keyed hashlib x3",
            "bare_floor(hinner, houter, STEP - 1, 3)",
            **local,
        )
        add(
            "hash",
            variant,
            "isoms_otp TOTP.verify, object built once",
            "hours.verify(hwrong, at=AT)",
            **local,
        )
        add(
            "hash",
            variant,
            "pyotp TOTP.verify, object built once",
            "htheirs.verify(hwrong, for_time=AT, valid_window=1)",
            **local,
        )
        add(
            "hash",
            variant,
            "mintotp, every code of the window compared",
            f"mintotp_verify(hb32, hwrong, STEP, 1, '{name}')",
            **local,
        )
    return cases


# ---- memory ------------------------------------------------------------------------------------


def memory_growth(label: str, call: Callable[[], object], count: int) -> dict[str, Any]:
    """Net bytes still allocated after ``count`` calls (tracemalloc), and the peak above start."""
    for _ in range(1000):  # warm caches (interned strings, freelists) before counting
        call()
    gc.collect()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(count):
            call()
        gc.collect()
        end, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {
        "implementation": label,
        "verifications": count,
        "net_bytes": end - start,
        "peak_above_start_bytes": peak - start,
    }


def memory_section(peers: dict[str, Any], count: int) -> list[dict[str, Any]]:
    key = KEYS["SHA1"]
    b32 = encode_secret(key)
    ours = TOTP(key)
    right = ours.generate(AT)
    wrong = wrong_code(ours, 1)
    theirs = peers["pyotp"].TOTP(b32)
    return [
        memory_growth(
            "isoms_otp TOTP.verify, wrong code", lambda: ours.verify(wrong, at=AT), count
        ),
        memory_growth(
            "isoms_otp TOTP.verify, right code", lambda: ours.verify(right, at=AT), count
        ),
        memory_growth("isoms_otp cold path", lambda: isoms_cold(b32, wrong, AT), count),
        memory_growth(
            "pyotp TOTP.verify, wrong code",
            lambda: theirs.verify(wrong, for_time=AT, valid_window=1),
            count,
        ),
    ]


# ---- targets -----------------------------------------------------------------------------------


def targets(results: dict[str, h.Measured]) -> list[dict[str, Any]]:
    """The issue's targets, as ratios from this run."""
    wrong = "SHA1, window +-1"

    def case(section: str, variant: str, implementation: str) -> h.Measured:
        return results[f"{section}|{variant}|{implementation}"]

    def ratio(top: h.Measured, bottom: h.Measured) -> float:
        return h.paired_ratio(top, bottom)

    floor3 = case("verify-wrong", wrong, "floor: hmac.digest x3")
    ours = case("verify-wrong", wrong, "isoms_otp TOTP.verify, object built once")
    pyotp_per_call = case("verify-wrong", wrong, "pyotp TOTP(secret).verify, built per call")
    pyotp_once = case("verify-wrong", wrong, "pyotp TOTP.verify, object built once")
    django = case("verify-wrong", wrong, "django_otp.oath TOTP.verify, object built once")
    cold_variant = "SHA1, window +-1, wrong code"
    cold = case("cold", cold_variant, "isoms_otp decode_secret + TOTP() + verify")
    cold_floor = case("cold", cold_variant, "floor: hmac.digest x3")

    def target(name: str, value: float, comparison: str, limit: float | None) -> dict[str, Any]:
        met = None if limit is None else (value <= limit if comparison == "<=" else value >= limit)
        return {
            "target": name,
            "value": round(value, 3),
            "comparison": comparison,
            "limit": limit,
            "met": met,
        }

    return [
        target("verify wrong +-1 / (3 x hmac.digest + truncation)", ratio(ours, floor3), "<=", 0.6),
        target(
            "throughput vs pyotp TOTP(secret).verify built per call",
            ratio(pyotp_per_call, ours),
            ">=",
            8,
        ),
        target(
            "throughput vs pyotp TOTP.verify, object built once (not a target; for fairness)",
            ratio(pyotp_once, ours),
            ">=",
            None,
        ),
        target("throughput vs django_otp.oath TOTP.verify", ratio(django, ours), ">=", 2.5),
        target("cold path / (3 x hmac.digest + truncation)", ratio(cold, cold_floor), "<=", 1.05),
    ]


def main(argv: list[str] | None = None) -> int:
    settings = h.parse_args(__doc__.splitlines()[0], "core", argv)
    peers = h.require(PEERS)
    cases = build_cases(peers)
    print(f"timing {len(cases)} cases in {settings.rounds} interleaved rounds ...", flush=True)
    results = h.measure(cases, settings)

    titles = {
        "generate": "generate one code",
        "verify-wrong": "verify a WRONG code",
        "verify-right": "verify the RIGHT code",
        "cold": "cold path: from the stored base32 secret, per login",
        "window": "window size",
        "hash": "hash algorithm",
    }
    seen: list[tuple[str, str]] = []
    for measured in results.values():
        where = (measured.case.section, measured.case.variant)
        if where not in seen:
            seen.append(where)
    for section, variant in seen:
        ours = next(
            m.case.implementation
            for m in results.values()
            if (m.case.section, m.case.variant) == (section, variant)
            and m.case.implementation.startswith("isoms_otp")
        )
        h.print_section(f"{titles[section]} ({variant})", results, section, variant, ours=ours)

    memory = memory_section(peers, 2000 if settings.quick else 100_000)
    print("\nmemory (tracemalloc, after gc.collect())")
    for row in memory:
        print(
            f"  {row['implementation']:40s} {row['verifications']:>7,} verifications: "
            f"net {row['net_bytes']:+,} bytes, peak {row['peak_above_start_bytes']:,} bytes"
        )

    goals = targets(results)
    print("\ntargets (ratios from this run)")
    for goal in goals:
        verdict = {True: "met", False: "MISSED", None: "-"}[goal["met"]]
        limit = "" if goal["limit"] is None else f" {goal['comparison']} {goal['limit']}"
        print(f"  {goal['target']:78s} {goal['value']:7.2f}{limit:8s} {verdict}")

    h.write_json(
        settings.json_path,
        {
            "benchmark": "core",
            "isoms_otp": isoms_otp.__version__,
            "machine": h.machine(["isoms-otp", "pyotp", "mintotp", "django-otp"]),
            "settings": {
                "quick": settings.quick,
                "rounds": settings.rounds,
                "sample_seconds": settings.sample_seconds,
                "at": AT,
                "statistic": "median of per-round samples, ns per operation",
            },
            "results": h.rows(results),
            "memory": memory,
            "targets": goals,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
