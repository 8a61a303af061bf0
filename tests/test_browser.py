"""Reports in a real browser: a run's HTML, the runs index and a sweep's comparison page, opened in headless
Chromium, show their metrics tables and figures; the tables sort on a click; links lead to the run reports.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them), or the binaries named by
``TERRALAB_CHROMIUM`` and ``TERRALAB_CHROMEDRIVER``. When either is missing or the browser does not start, the
tests skip with the reason on a user's machine and fail in CI (``TERRALAB_REQUIRE_DATA=1``, see
``conftest.require``). Screenshots go to ``reports/browser-*.png`` at the repository root.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from conftest import require

ROOT = Path(__file__).resolve().parents[1]
TOY = Path(__file__).parent / "notebooks_sweep" / "sweep_toy.ipynb"
SHOTS = ROOT / "reports"
CHROMIUM = os.environ.get("TERRALAB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = (
    os.environ.get("TERRALAB_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1400",
]


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Two real runs of the toy notebook (n = 1, 2), the runs index over them and their comparison page."""
    from terralab import compare, report
    from terralab.run import run_notebook
    from terralab.sweep import run_name

    out = tmp_path_factory.mktemp("browser-reports")
    runs = [
        run_notebook(TOY, {"n": n}, out, name=run_name("sweep_toy", {"n": n}), progress=False) for n in (1, 2)
    ]
    assert all(r.status == "ok" for r in runs), [r.error for r in runs]
    index = report.build_index(out)
    all_runs = index.rename(out / "all-runs.html")
    comparison = Path(compare.write_comparison(out, {"n": [1, 2]}, notebook=str(TOY)))
    return {"run": runs[1].html, "index": all_runs, "comparison": comparison}


@pytest.fixture(scope="module")
def browser():
    require(
        os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK),
        f"headless Chromium not found ({CHROMIUM}, {CHROMEDRIVER}); install the Debian packages "
        "`chromium` and `chromium-driver` (.ci/run does) or set TERRALAB_CHROMIUM and TERRALAB_CHROMEDRIVER",
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException as exc:
        require(
            False, f"headless Chromium ({CHROMIUM}, driver {CHROMEDRIVER}) did not start: {exc.msg or exc}"
        )
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver, path: Path) -> None:
    driver.get(path.resolve().as_uri())


def _images_loaded(driver) -> list[int]:
    """naturalWidth of every <img> on the page (0 for one that did not decode)."""
    return driver.execute_script(
        "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)"
    )


def _shoot(driver, name: str) -> Path:
    SHOTS.mkdir(exist_ok=True)
    target = SHOTS / f"browser-{name}.png"
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1280, min(max(int(height) + 250, 600), 4000))
    assert driver.save_screenshot(str(target))
    assert target.stat().st_size > 10_000, "a screenshot that small is a blank page"
    return target


def test_run_report_shows_its_metrics_and_figure(browser, pages):
    _open(browser, pages["run"])
    table = browser.find_element(By.ID, "terralab-metrics")
    assert table.is_displayed()
    rows = {
        r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text
        for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")
    }
    assert rows["score"] == "2" and rows["loss"] == "0.3333"
    widths = _images_loaded(browser)
    assert widths and all(w > 0 for w in widths), f"figures not displayed: naturalWidth {widths}"
    assert browser.find_element(By.TAG_NAME, "img").is_displayed()
    _shoot(browser, "run")


def test_runs_index_lists_both_runs_and_sorts_on_click(browser, pages):
    _open(browser, pages["index"])
    table = browser.find_element(By.CSS_SELECTOR, "table.sortable")
    assert table.is_displayed()
    headers = [
        h.text.replace("↕", "").strip()
        for h in table.find_elements(By.CSS_SELECTOR, "thead tr:last-child th")
    ]
    col = headers.index("score")

    def scores() -> list[str]:
        return [
            r.find_elements(By.TAG_NAME, "td")[col].text.replace("★", "").strip()
            for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")
        ]

    header = table.find_elements(By.CSS_SELECTOR, "thead tr:last-child th")[col]
    header.click()
    ascending = scores()
    header.click()
    assert ascending == ["1", "2"] and scores() == ["2", "1"]
    _shoot(browser, "index")


def test_comparison_page_marks_the_best_run_shows_the_figure_and_links_to_runs(browser, pages):
    _open(browser, pages["comparison"])
    assert browser.find_element(By.ID, "sweep-runs").is_displayed()
    best = browser.find_element(By.ID, "best-run")
    assert best.is_displayed() and "sweep_toy__n-2" in best.text and "score = 2" in best.text
    figure = browser.find_element(By.ID, "figure-score")
    assert figure.is_displayed()
    assert browser.execute_script("return arguments[0].naturalWidth", figure) > 0
    assert all(w > 0 for w in _images_loaded(browser))
    _shoot(browser, "comparison")

    browser.find_element(By.LINK_TEXT, "sweep_toy__n-1").click()
    assert browser.current_url.endswith("sweep_toy__n-1.html")
    assert browser.find_element(By.ID, "terralab-metrics").is_displayed()
