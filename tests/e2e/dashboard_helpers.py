"""The suite in a background thread with the demo data loaded, and a headless Chromium to look at it.

The browser is driven with Selenium's blocking calls, so the server cannot share the test's event
loop: it runs in a thread of its own (its own loop), on a real loopback port, and the demo data is
loaded into it over real HTTP by the same loader `qcity demo` uses.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from qcity.demo import DemoData, Loader, LoadReport, generate
from qcity.embedded import create_embedded_app
from shared.auth import TokenService
from shared.clock import FixedClock
from shared.settings import PlatformSettings
from tests.helpers import Served

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"


class BackgroundSuite:
    """The embedded suite served on a real port from a thread, seeded with the demo generator."""

    def __init__(self, data: DemoData) -> None:
        self.data = data
        self.platform = PlatformSettings(topic_prefix=f"t{uuid.uuid4().hex[:10]}.", log_json=False)
        self.tokens = TokenService(self.platform)
        # Early 2016: the whole plan period (2011–2015) lies in the past, as it does for a reader today.
        self.clock = FixedClock(datetime(2016, 3, 1, 4, 0, tzinfo=UTC))
        self.dir = Path(tempfile.mkdtemp(prefix="qc-dashboard-"))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="suite", daemon=True)
        self.served: Served | None = None
        self.report: LoadReport | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 300) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> BackgroundSuite:
        self.thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        app = create_embedded_app(self.dir / "data", self.platform, clock=self.clock)
        self.served = await Served(app).start()
        async with httpx.AsyncClient(base_url=self.url, timeout=120) as client:
            loader = Loader(client, self.mint)
            self.report = await loader.run(self.data)
            await loader.settle(quiet_s=1.5)

    def mint(self, subject: str, scopes: list[str], agency: str | None = None) -> str:
        return self.tokens.mint(subject, scopes, agency=agency)

    @property
    def url(self) -> str:
        assert self.served is not None
        return self.served.url

    def api(self, path: str, params: dict[str, Any] | None = None, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = httpx.get(self.url + path, params=params, headers=headers, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def stop(self) -> None:
        if self.served is not None:
            self.run(self.served.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def demo_data() -> DemoData:
    """A smaller city than `qcity demo`'s (the browser tests need the shapes, not the volume)."""
    return generate(2012, results_per_year=700, enterprises=200, honour_scale=0.4)


def demo_suite() -> Iterator[BackgroundSuite]:
    """The browser tests' suite (a module fixture): seeded with `demo_data()`, which must load without a problem."""
    s = BackgroundSuite(demo_data()).start()
    try:
        assert s.report is not None and s.report.problem_total == 0, s.report and s.report.examples
        yield s
    finally:
        s.stop()


def headless_browser(tmp_path: Path) -> Iterator[WebDriver]:
    """A browser test's Chromium (a fixture), with a profile of its own."""
    driver = chromium(tmp_path / "profile")
    try:
        yield driver
    finally:
        driver.quit()


def chromium(profile_dir: Path) -> webdriver.Chrome:
    """Debian's Chromium through chromedriver; paths given so Selenium never downloads a browser."""
    os.environ["SE_OFFLINE"] = "true"  # belt and braces: selenium-manager must not reach the network
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--lang=zh-CN",
        f"--user-data-dir={profile_dir}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


def screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page (the window is grown to the document's height first) as a PNG under test-artifacts."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(1400, max(800, min(height + 40, 8000)))
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot for {name}"
    driver.set_window_size(1400, 1000)
    return path
