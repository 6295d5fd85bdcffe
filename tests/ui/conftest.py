"""Fixtures for the browser suite: one `cairn server` on SQLite (the UI does not care which
store is behind the API), data logged into it with the real `mlflow` client, and one headless
Chromium session driven by Selenium.

Screenshots go to `.test-work/screenshots/` at the repository root (git-ignored); every test
can call `shot(name)`. Browser console errors fail the test that caused them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")

import pytest  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from servers import REPO_ROOT, Server  # noqa: E402

from browser import Browser  # noqa: E402
from data import Dataset, log_dataset  # noqa: E402
from governance import gov, gov_server, story  # noqa: E402, F401  (the governance views' server and data)

SCREENSHOTS = REPO_ROOT / ".test-work" / "screenshots"
CHROMIUM = os.environ.get("CAIRN_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CAIRN_CHROMEDRIVER", "/usr/bin/chromedriver")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    workdir = tmp_path_factory.mktemp("cairn-ui")
    server = Server(kind="cairn", backend="sqlite", backend_uri=f"sqlite:///{workdir / 'store.db'}", workdir=workdir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dataset(server: Server) -> Dataset:
    """Experiments and runs for every view, XSS payloads included."""
    return log_dataset(server.url)


@pytest.fixture(scope="session")
def driver():
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: apt-get install chromium chromium-driver (scripts/test.sh does)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000", "--disable-gpu"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def browser(driver, server: Server, request: pytest.FixtureRequest) -> Browser:
    """The shared browser, its console cleared, with alerts and console errors checked after the test."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    b = Browser(driver, server.url, SCREENSHOTS)
    b.drain_console()
    yield b
    b.assert_no_alert()
    errors = [e for e in b.drain_console() if e["level"] == "SEVERE" and not b.expected_error(e["message"])]
    assert not errors, f"browser console errors in {request.node.name}: {errors}"
