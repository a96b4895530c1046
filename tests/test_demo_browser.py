"""The whole iSOMS flow in a real browser: Debian's Chromium driven by Playwright.

The QR code is "scanned" by screenshotting it and decoding the picture with zxing-cpp, and the
codes come from Debian's ``oathtool``, so nothing of ours computes what the test types. Every
step leaves a screenshot in ``test-artifacts/demo/``.

Real time runs here (browser, server and oathtool share the wall clock), so the test waits at
TOTP step boundaries instead of faking time: it never types a code with less than
``MARGIN`` seconds left in its step.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

try:
    import zxingcpp
    from PIL import Image
    from playwright.sync_api import Page, sync_playwright
except ImportError:  # need_tools() turns this into a failure with an install hint
    pass

from isoms_otp.demo.app import DEMO_POLICY, MESSAGES, STORE_EXTENSION, create_app
from isoms_otp.demo.db import DemoDB

# Chromium may start slowly on a busy CI machine: more than the suite's 120 s per test
# (pyproject.toml), still a bound.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CHROMIUM = "/usr/bin/chromium"
# The flags a root user in a container needs, and no background traffic from the browser.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "demo"
PERIOD = 30
MARGIN = 3.0
PASSWORD = "correct horse battery staple"  # noqa: S105 - the seeded test account's


def need_tools() -> None:
    """Fail (never skip) with an install hint when a tool the test needs is missing."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401, PLC0415
    except ImportError:
        missing.append(
            "the playwright package: pip install playwright (never `playwright install`)"
        )
    if not Path(CHROMIUM).exists():
        missing.append("Debian's Chromium: apt-get install -y chromium")
    if shutil.which("oathtool") is None:
        missing.append("oathtool: apt-get install -y oathtool")
    try:
        import zxingcpp  # noqa: F401, PLC0415
    except ImportError:
        missing.append("zxing-cpp: pip install 'isoms-otp[test]'")
    if missing:
        pytest.fail("the browser test needs " + "; ".join(missing))


def oathtool(secret: str, *args: str) -> list[str]:
    """Return the codes Debian's oathtool prints for ``secret``."""
    result = subprocess.run(
        ["oathtool", "--totp", "-b", *args, secret],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return result.stdout.split()


def fresh_code(secret: str, *, after_step: int = -1) -> tuple[str, int]:
    """Wait for a step after ``after_step`` with at least MARGIN s left; return its code."""
    while True:
        now = time.time()
        step, left = int(now // PERIOD), PERIOD - now % PERIOD
        if step > after_step and left >= MARGIN:
            break
        time.sleep(left + 0.1 if step <= after_step or left < MARGIN else 0.1)
    (code,) = oathtool(secret, f"--now=@{step * PERIOD + 1}")
    return code, step


def wrong_code(secret: str) -> str:
    """Return a code that matches no step from two before now to two after."""
    earlier = int(time.time()) - 2 * PERIOD
    near = set(oathtool(secret, "-w", "4", f"--now=@{earlier}"))
    return next(c for c in (f"{d}" * 6 for d in range(10)) if c not in near)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """Serve the demo on a free loopback port, with alice seeded; yield its base URL."""
    need_tools()
    from werkzeug.serving import make_server  # noqa: PLC0415

    db_path = str(tmp_path / "demo.sqlite3")
    app = create_app(db_path)
    DemoDB(db_path).set_user("alice", PASSWORD, phone="+1 555 0100")
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
        app.extensions[STORE_EXTENSION].close()


@dataclass
class Walk:
    """One browser tab on the demo, with the moves a user makes and a screenshot per step."""

    page: Page
    server: str
    shots: Iterator[int] = field(default_factory=lambda: iter(range(1, 100)))

    def shot(self, name: str, page: Page | None = None) -> None:
        """Save a full-page screenshot as the next numbered artifact."""
        path = ARTIFACTS / f"{next(self.shots):02d}-{name}.png"
        (page or self.page).screenshot(path=path, full_page=True)

    def sign_in(self, code: str = "") -> None:
        """Fill in the one sign-in screen and press the button once."""
        self.page.goto(f"{self.server}/sign-in")
        self.page.fill("input[name=username]", "alice")
        self.page.fill("input[name=password]", PASSWORD)
        self.page.fill("input[name=code]", code)
        self.page.click("#sign-in button[type=submit]")

    def menu(self, item: str) -> None:
        """Open the menu under the user's name (top right) and choose ``item``."""
        self.page.click("#user-menu summary")
        self.page.locator("#user-menu nav").get_by_text(item).click()

    def error(self) -> str:
        """Return the error message shown on the page."""
        return self.page.locator("#error").inner_text()

    def welcome(self) -> str:
        """Return the home page's greeting."""
        return self.page.locator("#welcome").inner_text()


def sign_in_by_sms(walk: Walk) -> None:
    """Sign in as before: username and password, then the code from the (simulated) SMS."""
    walk.sign_in()
    assert walk.page.url.endswith("/sign-in/sms")
    walk.shot("sms-step")
    outbox = walk.page.context.new_page()
    outbox.goto(f"{walk.server}/outbox")
    walk.shot("outbox", outbox)
    assert "alice" == outbox.locator("#outbox tbody tr .recipient").first.inner_text()
    body = outbox.locator("#outbox tbody tr .body").first.inner_text()
    outbox.close()
    sms_code = re.search(r"\b(\d{6})\b", body)
    assert sms_code is not None
    walk.page.fill("input[name=code]", sms_code.group(1))
    # The sign-in counted as an attempt (right password or wrong, so that the SMS step tells
    # nothing): a person reading the message takes longer than its back-off, a browser not.
    time.sleep(DEMO_POLICY.base_delay)
    walk.page.click("#sms-code button[type=submit]")
    assert "Welcome, alice" == walk.welcome()
    walk.shot("signed-in-by-sms")


def scan_qr(walk: Walk) -> str:
    """Screenshot the QR code, decode it with zxing-cpp and return the secret it carries."""
    qr = walk.page.locator("#totp-qr")
    picture = qr.screenshot(path=ARTIFACTS / f"{next(walk.shots):02d}-qr-code.png")
    (barcode,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(picture)))
    # Parsed by hand with the standard library, not with isoms_otp.uri.
    uri = urlsplit(barcode.text)
    query = parse_qs(uri.query, strict_parsing=True)
    assert ("otpauth", "totp", "iSOMS:alice") == (uri.scheme, uri.netloc, unquote(uri.path[1:]))
    assert ["iSOMS"] == query["issuer"]
    return query["secret"][0]


def activate_totp(walk: Walk) -> tuple[str, int]:
    """TOTP Configuration, Activate TOTP, scan, confirm; return the secret and the used step."""
    walk.menu("TOTP Configuration")
    walk.shot("totp-configuration")
    walk.page.click("#activate button")
    walk.page.locator("#totp-qr").wait_for()
    walk.shot("activate-totp")
    secret = scan_qr(walk)
    assert secret == walk.page.locator("#manual-key").inner_text().replace(" ", "")
    code, step = fresh_code(secret)
    walk.page.fill("#confirm input[name=code]", code)
    walk.page.click("#confirm button")
    assert "TOTP is active" in walk.page.locator("#totp-status").inner_text()
    walk.shot("totp-active")
    return secret, step


def test_whole_flow_in_chromium(server: str) -> None:
    """SMS sign-in, Activate TOTP by scanning the QR code, TOTP sign-in, reuse and throttle."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 900, "height": 760})
            walk = Walk(context.new_page(), server)
            sign_in_by_sms(walk)
            secret, confirmed_step = activate_totp(walk)

            # Sign out; then username, password and TOTP code on one screen, one press. The
            # confirmation used its step up, so the first sign-in needs a later step's code.
            walk.menu("Sign out")
            assert walk.page.url.endswith("/sign-in")
            code, _ = fresh_code(secret, after_step=confirmed_step)
            walk.sign_in(code)
            assert "Welcome, alice" == walk.welcome()
            walk.shot("signed-in-by-totp")

            # The same code a second time is refused, with the generic message: a message of its
            # own would tell that the password was right.
            walk.menu("Sign out")
            walk.sign_in(code)
            assert MESSAGES["failed"] == walk.error()
            walk.shot("code-reused")

            # Repeated wrong codes reach the throttling message within max_failures tries.
            wrong = wrong_code(secret)
            messages = []
            for _ in range(DEMO_POLICY.max_failures):
                walk.sign_in(wrong)
                messages.append(walk.error())
                if messages[-1].startswith("Too many failed attempts"):
                    break
            walk.shot("throttled")
            throttled = r"Too many failed attempts\. Try again in (1 second|\d+ seconds)\."
            assert re.fullmatch(throttled, messages[-1])
            assert set(messages[:-1]) <= {MESSAGES["failed"]}
        finally:
            browser.close()
