"""``python -m isoms_otp.demo``: the same as ``isoms-otp demo``."""

from isoms_otp.demo.command import main

if __name__ == "__main__":
    raise SystemExit(main())
