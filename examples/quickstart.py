"""A tour of the core: make a secret, show the code, verify it once, refuse it twice."""

from __future__ import annotations

import time

from isoms_otp import TOTP, decode_secret, encode_secret, generate_secret


def main() -> None:
    """Run the tour and print what happens."""
    stored = encode_secret(generate_secret())
    totp = TOTP(decode_secret(stored))
    now = time.time()
    code = totp.generate(now)
    print(f"new secret (store it encrypted): {stored[:4]}... ({len(stored)} base32 characters)")
    print(f"current code: {code}  (changes in {totp.remaining(now):.0f} s)")
    match = totp.verify(code, at=now)
    print(f"first use:  {'accepted' if match else 'refused'} {match}")
    last = match.step if match else None
    again = totp.verify(code, at=now, after_step=last)
    print(f"second use: {'accepted' if again else 'refused (already used)'}")
    print(f"a typo:     {'accepted' if totp.verify('000000', at=now) else 'refused'}")


if __name__ == "__main__":
    main()
