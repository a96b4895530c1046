"""The whole iSOMS flow in a real browser: Debian's Chromium driven by Playwright.

The walk: SMS sign-in, Activate TOTP, the recovery codes (copied and downloaded), the phone
lost: sign in with a recovery code, set up the new phone (the old one stops), wrong codes until
the throttle, the admin unlocks, sign in with the new phone.

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
    from playwright.sync_api import Page, expect, sync_playwright
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
ADMIN_PASSWORD = "the administrator's own"  # noqa: S105 - the seeded test admin's
# The docs show these two steps (committed copies in docs/images/).
DOC_SHOTS = {
    "recovery-codes": "recovery-codes.png",
    "admin-unlocked": "admin-unlock.png",
    "metrics": "metrics.png",
}


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
    DemoDB(db_path).set_user("admin", ADMIN_PASSWORD, phone="+1 555 0199", admin=True)
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

    def sign_in(self, code: str = "", user: str = "alice", password: str = PASSWORD) -> None:
        """Fill in the one sign-in screen and press the button once."""
        self.page.goto(f"{self.server}/sign-in")
        self.page.fill("input[name=username]", user)
        self.page.fill("input[name=password]", password)
        self.page.fill("input[name=code]", code)
        self.page.click("#sign-in button[type=submit]")

    def notices(self) -> list[str]:
        """Return the success notices shown on the page."""
        return self.page.locator("p.notice").all_inner_texts()

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


def sign_in_by_sms(walk: Walk, user: str = "alice", password: str = PASSWORD) -> None:
    """Sign in as before: username and password, then the code from the (simulated) SMS."""
    walk.sign_in(user=user, password=password)
    assert walk.page.url.endswith("/sign-in/sms")
    walk.shot("sms-step")
    outbox = walk.page.context.new_page()
    outbox.goto(f"{walk.server}/outbox")
    walk.shot("outbox", outbox)
    assert user == outbox.locator("#outbox tbody tr .recipient").first.inner_text()
    body = outbox.locator("#outbox tbody tr .body").first.inner_text()
    outbox.close()
    sms_code = re.search(r"\b(\d{6})\b", body)
    assert sms_code is not None
    walk.page.fill("input[name=code]", sms_code.group(1))
    # The sign-in counted as an attempt (right password or wrong, so that the SMS step tells
    # nothing): a person reading the message takes longer than its back-off, a browser not.
    time.sleep(DEMO_POLICY.base_delay)
    walk.page.click("#sms-code button[type=submit]")
    assert f"Welcome, {user}" == walk.welcome()
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


def confirm_new_secret(walk: Walk, name: str) -> tuple[str, int, list[str]]:
    """Scan the QR code, type the app's code; return the secret, its step and the codes shown.

    The activation ends on the recovery codes: copied with the button and downloaded as a
    text file, both compared with the page.
    """
    walk.page.locator("#totp-qr").wait_for()
    walk.shot(name)
    secret = scan_qr(walk)
    assert secret == walk.page.locator("#manual-key").inner_text().replace(" ", "")
    link = walk.page.locator("#otpauth-link").get_attribute("href") or ""
    assert link.startswith("otpauth://totp/")
    assert f"secret={secret}" in link
    code, step = fresh_code(secret)
    walk.page.fill("#confirm input[name=code]", code)
    walk.page.click("#confirm button")
    assert [MESSAGES["activated"]] == walk.notices()
    codes = walk.page.locator("#recovery-codes code").all_inner_texts()
    assert 10 == len(codes)
    walk.page.click("#copy-codes")
    expect(walk.page.locator("#copy-status")).to_have_text("Copied.")  # waits for the promise
    copied = walk.page.evaluate("navigator.clipboard.readText()")
    assert codes == copied.split()
    with walk.page.expect_download() as download:
        walk.page.click("#download-codes")
    assert "isoms-recovery-codes.txt" == download.value.suggested_filename
    saved = Path(download.value.path()).read_text(encoding="utf-8")
    assert set(codes) <= set(saved.split())
    walk.shot("recovery-codes")
    walk.page.click("#codes-saved")
    return secret, step, codes


def sign_in_with_recovery_code(walk: Walk, code: str) -> None:
    """The phone is lost: "Use a recovery code" on the sign-in screen."""
    walk.page.click("#use-recovery")
    walk.page.fill("input[name=username]", "alice")
    walk.page.fill("input[name=password]", PASSWORD)
    walk.page.fill("input[name=code]", code)
    walk.shot("sign-in-with-recovery-code")
    walk.page.click("#sign-in-recovery button[type=submit]")
    assert "Welcome, alice" == walk.welcome()
    assert [MESSAGES["recovery_used"].format(left=9)] == walk.notices()
    walk.shot("signed-in-by-recovery-code")


def lock_out(walk: Walk, secret: str) -> list[str]:
    """Type wrong codes, waiting out each back-off, until the lock; return the messages.

    Waiting as long as the message says is what a person does; the lock message then says
    minutes and what to do.
    """
    wrong = wrong_code(secret)
    messages: list[str] = []
    back_off = re.compile(r"Too many failed attempts\. Try again in (\d+) seconds?\.")
    for _ in range(4 * DEMO_POLICY.max_failures):
        walk.sign_in(wrong)
        messages.append(walk.error())
        waiting = back_off.fullmatch(messages[-1])
        if waiting is not None:
            time.sleep(int(waiting.group(1)))
        elif messages[-1] != MESSAGES["failed"]:
            break
    walk.shot("locked")
    return messages


def admin_unlocks_alice(admin: Walk) -> None:
    """The administrator, in a browser of their own, looks alice up and unlocks her."""
    sign_in_by_sms(admin, "admin", ADMIN_PASSWORD)
    admin.menu("Administration")
    admin.page.fill("#lookup input[name=user]", "alice")
    admin.page.click("#lookup button")
    assert "alice" == admin.page.locator("#looked-up").inner_text()
    assert admin.page.locator("#status-wait").inner_text().startswith("paused: ")
    admin.shot("admin-look-up")
    admin.page.click("#unlock button")
    assert [MESSAGES["unlocked"].format(user="alice")] == admin.notices()
    assert "open" == admin.page.locator("#status-wait").inner_text()
    assert "reset" in admin.page.locator("#audit tbody tr").first.inner_text()
    admin.shot("admin-unlocked")
    admin.page.click("a[href='/metrics']")
    assert 'isoms_otp_attempts_total{action="reset",reason="reset"} 1.0' in admin.page.content()
    admin.shot("metrics")


def test_whole_life_in_chromium(server: str) -> None:
    """Activation, recovery codes, lost phone, recovery sign-in, new phone, admin unlock."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 900, "height": 900})
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
            walk = Walk(context.new_page(), server)
            sign_in_by_sms(walk)
            walk.menu("TOTP Configuration")
            walk.shot("totp-configuration")
            walk.page.click("#activate button")
            old_secret, _, codes = confirm_new_secret(walk, "activate-totp")
            assert "TOTP is active" in walk.page.locator("#totp-status").inner_text()
            assert "10" == walk.page.locator("#codes-left strong").inner_text()
            walk.shot("totp-active")

            walk.menu("Sign out")
            sign_in_with_recovery_code(walk, codes[0].lower())
            # A new phone right after that sign-in (a fresh proof: no code asked).
            walk.menu("TOTP Configuration")
            walk.page.click("#replace button")
            assert "new phone" in walk.page.locator("#totp-status").inner_text()
            new_secret, new_step, _ = confirm_new_secret(walk, "new-phone")

            # The old phone's codes stop working; wrong codes end in the lock.
            walk.menu("Sign out")
            walk.sign_in(fresh_code(old_secret)[0])
            assert MESSAGES["failed"] == walk.error()
            messages = lock_out(walk, new_secret)
            assert MESSAGES["paused"].format(wait="5 minutes") == messages[-1]

            admin_context = browser.new_context(viewport={"width": 900, "height": 1200})
            admin_unlocks_alice(Walk(admin_context.new_page(), server, walk.shots))
            admin_context.close()

            # Unlocked: the new phone signs in (a step after the one its confirmation used),
            # and alice is told her account was locked since her last visit.
            walk.sign_in(fresh_code(new_secret, after_step=new_step)[0])
            assert "Welcome, alice" == walk.welcome()
            assert [MESSAGES["locked_since"]] == walk.notices()
            walk.shot("signed-in-by-new-phone")
        finally:
            browser.close()
    for name, target in DOC_SHOTS.items():
        assert any(ARTIFACTS.glob(f"*-{name}.png")), target
