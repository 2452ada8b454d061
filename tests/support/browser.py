"""Debian's headless Chromium, as the browser tests start it (the review page, the offline plots)."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def chromium_options(*arguments: str) -> webdriver.ChromeOptions:
    """Headless Chromium's options with ``arguments`` added; fails the test, naming the packages to install,
    where Chromium or its driver is missing (tests/support/system-packages.sh installs them as root)."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: the browser tests need Debian's Chromium and its driver: "
            "apt-get install -y --no-install-recommends chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # --no-sandbox: Chromium's sandbox refuses to run as root, as CI does.
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", *arguments]:
        options.add_argument(argument)
    return options


def start_chromium(options: webdriver.ChromeOptions) -> webdriver.Chrome:
    """Chromium with ``options`` (from :func:`chromium_options`), driven by Debian's chromedriver."""
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
