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
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from isoms_otp.demo.app import DEMO_POLICY, MESSAGES, create_app
from isoms_otp.demo.db import DemoDB

pytestmark = pytest.mark.slow

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
PASSWORD = "correct horse battery staple"


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


def test_whole_flow_in_chromium(server: str) -> None:
    """SMS sign-in, Activate TOTP by scanning the QR code, TOTP sign-in, reuse and throttle."""
    need_tools()
    from PIL import Image  # noqa: PLC0415
    from playwright.sync_api import Page, sync_playwright  # noqa: PLC0415
    import zxingcpp  # noqa: PLC0415

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shots = iter(range(1, 100))

    def shot(page: Page, name: str) -> None:
        page.screenshot(path=ARTIFACTS / f"{next(shots):02d}-{name}.png", full_page=True)

    def error_text(page: Page) -> str:
        return page.locator("#error").inner_text()

    def sign_in(page: Page, code: str = "") -> None:
        page.goto(f"{server}/sign-in")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=code]", code)
        page.click("#sign-in button[type=submit]")

    def open_menu_item(page: Page, item: str) -> None:
        page.click("#user-menu summary")
        page.locator("#user-menu nav").get_by_text(item).click()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 760})

            # 1. Sign in as before: username and password, then the code from the text message.
            sign_in(page)
            assert page.url.endswith("/sign-in/sms")
            shot(page, "sms-step")
            outbox = browser.new_page()
            outbox.goto(f"{server}/outbox")
            shot(outbox, "outbox")
            assert "alice" == outbox.locator("#outbox tbody tr .recipient").first.inner_text()
            body = outbox.locator("#outbox tbody tr .body").first.inner_text()
            sms_code = re.search(r"\b(\d{6})\b", body)
            assert sms_code is not None
            page.fill("input[name=code]", sms_code.group(1))
            page.click("#sms-code button[type=submit]")
            assert "Welcome, alice" == page.locator("#welcome").inner_text()
            shot(page, "signed-in-by-sms")

            # 2. Top right: the name opens the menu; TOTP Configuration; Activate TOTP.
            open_menu_item(page, "TOTP Configuration")
            shot(page, "totp-configuration")
            page.click("#activate button")
            qr = page.locator("#totp-qr")
            qr.wait_for()
            shot(page, "activate-totp")
            picture = qr.screenshot(path=ARTIFACTS / f"{next(shots):02d}-qr-code.png")

            # "Scan" it: a real QR decoder reads the screenshot; the URI is parsed by hand here.
            (barcode,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(picture)))
            uri = urlsplit(barcode.text)
            query = parse_qs(uri.query, strict_parsing=True)
            assert ("otpauth", "totp", "iSOMS:alice") == (
                uri.scheme,
                uri.netloc,
                unquote(uri.path[1:]),
            )
            assert ["iSOMS"] == query["issuer"]
            secret = query["secret"][0]
            manual_key = page.locator("#manual-key").inner_text().replace(" ", "")
            assert secret == manual_key

            code, confirmed_step = fresh_code(secret)
            page.fill("#confirm input[name=code]", code)
            page.click("#confirm button")
            assert "TOTP is active" in page.locator("#totp-status").inner_text()
            shot(page, "totp-active")

            # 3. Sign out; sign in with username, password and TOTP code on one screen.
            open_menu_item(page, "Sign out")
            assert page.url.endswith("/sign-in")
            # The confirmation used its step up: the first sign-in needs the next step's code.
            code, _ = fresh_code(secret, after_step=confirmed_step)
            sign_in(page, code)
            assert "Welcome, alice" == page.locator("#welcome").inner_text()
            shot(page, "signed-in-by-totp")

            # The same code a second time is refused, with its own message.
            open_menu_item(page, "Sign out")
            sign_in(page, code)
            assert MESSAGES["replayed"] == error_text(page)
            shot(page, "code-reused")

            # Repeated wrong codes lead to the throttling message within max_failures tries.
            wrong = wrong_code(secret)
            messages = []
            for _ in range(DEMO_POLICY.max_failures):
                sign_in(page, wrong)
                messages.append(error_text(page))
                if messages[-1].startswith("Too many failed attempts"):
                    break
            shot(page, "throttled")
            assert re.fullmatch(
                r"Too many failed attempts\. Try again in (1 second|\d+ seconds)\.", messages[-1]
            )
            assert set(messages[:-1]) <= {MESSAGES["failed"]}
        finally:
            browser.close()
