"""A thin layer over Selenium for the UI tests: open an app address, wait for the app's own
readiness marks (`performance.mark("cairn:<view>:ready")`), take screenshots, read the console."""

from __future__ import annotations

import re
import time
from pathlib import Path

from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

TIMEOUT = 20


class Browser:
    def __init__(self, driver, base_url: str, screenshots: Path) -> None:
        self.driver = driver
        self.base = base_url.rstrip("/")
        self.screenshots = screenshots
        self._expected: list[re.Pattern[str]] = []

    # Navigation -----------------------------------------------------------------------------
    def open(self, hash_path: str = "") -> None:
        """Load the app fresh at `#<hash_path>` (marks from the previous page are gone)."""
        self.driver.get(f"{self.base}/{('#' + hash_path) if hash_path else ''}")
        # A hash-only change keeps the page; reload so every test starts from a clean app.
        if hash_path:
            self.driver.refresh()

    def go(self, hash_path: str) -> None:
        """Navigate within the loaded app, as a click on a link would."""
        self.driver.execute_script("location.hash = arguments[0]", hash_path)

    @property
    def hash(self) -> str:
        return self.driver.execute_script("return decodeURIComponent(location.hash)")

    # Waiting --------------------------------------------------------------------------------
    def marks(self, name: str) -> int:
        return self.driver.execute_script("return performance.getEntriesByName(arguments[0]).length", f"cairn:{name}:ready")

    def wait_mark(self, name: str, at_least: int = 1) -> None:
        WebDriverWait(self.driver, TIMEOUT).until(lambda _: self.marks(name) >= at_least, f"mark cairn:{name}:ready")

    def wait(self, css: str) -> WebElement:
        return WebDriverWait(self.driver, TIMEOUT).until(EC.visibility_of_element_located((By.CSS_SELECTOR, css)), css)

    def wait_text(self, css: str, text: str) -> WebElement:
        WebDriverWait(self.driver, TIMEOUT).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text), f"{text!r} in {css}")
        return self.find(css)

    def wait_until(self, predicate, what: str):
        return WebDriverWait(self.driver, TIMEOUT).until(lambda _: predicate(), what)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    # Evidence -------------------------------------------------------------------------------
    def shot(self, name: str) -> Path:
        time.sleep(0.2)  # let the last paint land
        path = self.screenshots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def shot_element(self, css: str, name: str) -> Path:
        """A screenshot of one element, scrolled into view (for plots below the fold)."""
        element = self.find(css)
        self.js("arguments[0].scrollIntoView({block: 'center'})", element)
        path = self.screenshots / f"{name}.png"
        element.screenshot(str(path))
        return path

    def expect_console_error(self, pattern: str) -> None:
        """A console error this test causes on purpose (a 404 for an unknown id, say)."""
        self._expected.append(re.compile(pattern))

    def expected_error(self, message: str) -> bool:
        return any(p.search(message) for p in self._expected)

    def drain_console(self) -> list[dict]:
        return self.driver.get_log("browser")

    def assert_no_alert(self) -> None:
        try:
            alert = self.driver.switch_to.alert
        except NoAlertPresentException:
            return
        text = alert.text
        alert.dismiss()
        raise AssertionError(f"a script ran: alert({text!r})")
