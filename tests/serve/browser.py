"""Headless Chromium for the dashboard's tests: Debian's `chromium` driven by Selenium through
Debian's `chromedriver` (the two come from the same source package, so their versions always
match).  Nothing is downloaded: the driver's path is given, so Selenium Manager never runs.

A missing browser is a failure, not a skip: CI installs both packages (.ci/run)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM", "CHROMEDRIVER", "CHROMIUM_FLAGS", "start_chromium", "console_problems"]

CHROMIUM = os.environ.get("DPSYNTH_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DPSYNTH_CHROMEDRIVER", "/usr/bin/chromedriver")
# The machine's network is closed: nothing may phone home, look for updates or sync.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def start_chromium(profile: Path, *, width: int = 1280, height: int = 1000) -> Any:
    """A Selenium WebDriver on a fresh headless Chromium whose profile lives in `profile`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() or shutil.which(path)):
            raise RuntimeError(f"{path} is missing: install Debian's {package} "
                               "(apt-get install -y chromium chromium-driver)")
    profile.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER, log_output=os.devnull))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


def console_problems(driver: Any) -> list[str]:
    """Console messages that mean the page broke: script errors and Content-Security-Policy
    violations (a refused inline script or style).  Failed requests (a 401 before login) are
    the page's business and are not counted."""
    out = []
    for entry in driver.get_log("browser"):
        message = entry.get("message", "")
        if "Content Security Policy" in message or "Content-Security-Policy" in message:
            out.append(message)
        elif entry.get("level") == "SEVERE" and "Failed to load resource" not in message:
            out.append(message)
    return out
