"""The review page in a real headless browser: Debian's chromium and chromedriver, driven by
Selenium. Clicks yes and no, takes a mark back, saves, and reads the CSV the browser wrote.
Skipped, with the reason, where chromium, chromedriver or Selenium is missing (``.ci/run``
installs them)."""

from __future__ import annotations

import csv
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soundtransfer.cli.main import main

from .test_folder import _predict

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOT_ENV = "SOUNDTRANSFER_REVIEW_SCREENSHOT"  # a path to keep the page to look at


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "chromium and chromedriver not found (apt-get install chromium chromium-driver)"
        )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900",
                "--disable-dev-shm-usage"):  # fmt: skip
        options.add_argument(arg)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def _wait_for(path: Path, seconds: float = 30.0) -> Path:
    """The downloaded file, once the browser has finished writing it."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists() and not list(path.parent.glob("*.crdownload")):
            return path
        time.sleep(0.1)
    raise AssertionError(f"{path} was not downloaded: {list(path.parent.iterdir())}")


def _click(browser: Any, element: Any) -> None:
    """Click as a reader would: with the button in the middle of the window, not under the
    page's sticky bar (where a row scrolled past it lies)."""
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def test_marks_clicked_in_the_page_are_saved(
    browser: Any, bundle: Path, recordings: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    det = tmp_path / "detections"
    assert _predict(bundle, recordings, det, "--hop", "1") == 0
    review = tmp_path / "review"
    assert main(["review", str(det), "--audio", str(recordings), "--out", str(review),
                 "--per-class", "3", "--top", "1"]) == 0  # fmt: skip
    with (review / "review.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 3
    browser.get((review / "review.html").as_uri())
    want = {}
    for k, row in enumerate(rows):
        tr = browser.find_element(By.ID, f"row-{row['id']}")
        if k % 3 == 2:
            continue  # left blank
        _click(browser, tr.find_element(By.CLASS_NAME, "yes" if k % 3 == 0 else "no"))
        want[row["id"]] = "yes" if k % 3 == 0 else "no"
    first = browser.find_element(By.ID, f"row-{rows[0]['id']}")
    _click(browser, first.find_element(By.CLASS_NAME, "no"))  # changed my mind
    want[rows[0]["id"]] = "no"
    assert first.get_attribute("data-mark") == "no"
    assert first.find_element(By.CLASS_NAME, "state").text == "no"
    count = browser.find_element(By.ID, "count").text
    assert count == f"{len(want)} of {len(rows)} marked"
    # Every spectrogram decoded (a broken data URI has no natural width).
    widths = browser.execute_script(
        "return [...document.images].map(i => i.complete ? i.naturalWidth : 0)"
    )
    assert len(widths) == len(rows) and min(widths) > 0
    browser.execute_script("window.scrollTo(0, 0)")
    shot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "review.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 0
    _click(browser, browser.find_element(By.ID, "save"))
    saved = _wait_for(browser.downloads / "review-marked.csv")
    with saved.open(newline="") as f:
        got = list(csv.DictReader(f))
    assert [{k: v for k, v in r.items() if k != "mark"} for r in got] == [
        {k: v for k, v in r.items() if k != "mark"} for r in rows
    ]
    assert {r["id"]: r["mark"] for r in got} == {r["id"]: want.get(r["id"], "") for r in rows}
    out = tmp_path / "thresholds.csv"
    assert main(["review", "--marked", str(saved), "--out", str(out)]) == 0  # the page's CSV reads
