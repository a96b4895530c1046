"""``python -m isoms_otp``: the ``isoms-otp`` command (see :mod:`isoms_otp.cli`)."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
