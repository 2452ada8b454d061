"""The review page in a real browser, and its verdicts back into training.

Headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by
selenium) opens the page from disk, as a person would, clicks verdicts,
exports them, and reloads the page; ``rainforest-review import`` then adds
the exported verdicts to a dataset. The whole module is slow: the detections
it reviews come from the tiny model (TensorFlow) and Chromium takes seconds
to start.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from rainforest.events import EVENT_COLUMNS
from rainforest.events.verdicts import VERDICT_COLUMNS
from rainforest.review.cli import review
from rainforest.review.page import write_review_page
from tests.support.detector import BANDS, SPECIES, restored_logging, write_recording
from tests.support.events import read_reviewed, read_training_events
from tests.support.paths import committed_params
from tests.support.review import detections_folder

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: How long the browser may take to write the export.
DOWNLOAD_SECONDS = 30

#: Card number -> the verdict clicked on it: yes and no on cards of every
#: species, unsure on one; the other cards are left without a verdict.
CLICKS = {1: "yes", 2: "no", 3: "unsure", 6: "yes", 7: "no", 11: "yes", 12: "no"}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    made = detections_folder(tmp_path_factory.mktemp("review"))
    page = write_review_page(made["detections"], model=made["model"], detector=made["detector"], top=2, near=3)
    assert sum(page.shown.values()) >= max(CLICKS), "too few cards to click"
    return {**made, "page": page.path, "downloads": tmp_path_factory.mktemp("downloads")}


@pytest.fixture(scope="module")
def browser(made):
    """Headless Chromium that saves downloads to ``made["downloads"]`` without asking."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: the browser tests need Debian's Chromium and its driver: "
            "apt-get install -y --no-install-recommends chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # --no-sandbox: Chromium's sandbox refuses to run as root, as CI does.
    for argument in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ]:
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(made["downloads"]), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        # Headless Chromium ignores the download preferences without this.
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(made["downloads"])}
        )
        driver.get(made["page"].as_uri())
        yield driver
    finally:
        driver.quit()


def click(driver, number: int, verdict: str) -> None:
    """Click a card's verdict button, scrolled to the middle of the window as a person would (at the top the
    page's sticky header lies over it)."""
    element = driver.find_element(By.CSS_SELECTOR, f'[data-row="{number}"] button[data-verdict="{verdict}"]')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def pressed(driver) -> dict[int, str]:
    """Card number -> the verdict its pressed button shows."""
    found = {}
    for element in driver.find_elements(By.CSS_SELECTOR, 'button[data-verdict][aria-pressed="true"]'):
        card = element.find_element(By.XPATH, "ancestor::article[@data-row]")
        found[int(card.get_attribute("data-row"))] = element.get_attribute("data-verdict")
    return found


def wait_for_download(folder: Path) -> Path:
    path = folder / "verdicts.csv"
    deadline = time.monotonic() + DOWNLOAD_SECONDS
    while not path.exists() or any(folder.glob("*.crdownload")):
        if time.monotonic() > deadline:
            pytest.fail(
                f"no verdicts.csv in {folder} {DOWNLOAD_SECONDS} s after Export (found {sorted(folder.iterdir())})"
            )
        time.sleep(0.1)
    return path


@pytest.fixture(scope="module")
def exported(browser, made) -> pd.DataFrame:
    """The verdicts of :data:`CLICKS`, clicked and exported."""
    assert browser.find_element(By.ID, "counter").text == "0"
    # A click taken back leaves no verdict: card 4 is clicked twice.
    for number, verdict in [*CLICKS.items(), (4, "yes"), (4, "yes")]:
        click(browser, number, verdict)
    assert browser.find_element(By.ID, "counter").text == str(len(CLICKS))
    browser.find_element(By.ID, "export").click()
    path = wait_for_download(made["downloads"])
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_export_holds_exactly_the_verdicts_clicked(exported, made):
    assert list(exported.columns) == VERDICT_COLUMNS
    assert list(exported["verdict"]) == [CLICKS[number] for number in sorted(CLICKS)]
    page = (made["page"].parent / "index.html").read_text()
    # Each row is its card's: the page's own data, in page order.
    for row in exported.itertuples():
        assert f'alt="spectrogram of {row.recording} at {float(row.start):.3f} s"' in page
        assert Path(row.file).is_file() and Path(row.file).stem == Path(row.recording).name
        assert (float(row.low_freq), float(row.high_freq)) == BANDS[SPECIES.index(row.species)]
        assert row.reason in ("top", "near") and row.label
    assert set(exported["species"]) == set(SPECIES)
    assert (made["downloads"] / "verdicts.csv").read_text().endswith("\n")


def test_page_shows_the_verdicts_clicked(browser, exported):
    assert pressed(browser) == CLICKS


def test_verdicts_survive_a_reload(browser, exported):
    browser.refresh()
    assert browser.find_element(By.ID, "counter").text == str(len(CLICKS))
    assert pressed(browser) == CLICKS


# --- into training ------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path) -> dict[str, Path]:
    """A dataset in the competition's layout (one labelled call, one absence) and a params.yaml reading it."""
    dataset = tmp_path / "dataset"
    write_recording(dataset / "train" / "r0.flac", 32000, 1, 6.0, "FLAC", "PCM_16")
    write_recording(dataset / "test" / "t0.flac", 32000, 1, 6.0, "FLAC", "PCM_16")
    header = ",".join(EVENT_COLUMNS)
    (dataset / "train_tp.csv").write_text(f"{header}\nr0,0,1,1.0,500.0,2.0,2000.0\n")
    (dataset / "train_fp.csv").write_text(f"{header}\nr0,1,1,3.0,2500.0,4.0,4000.5\n")
    (dataset / "sample_submission.csv").write_text("recording_id,s0,s1,s2\nt0,0,0,0\n")
    params = committed_params()
    # Relative, as in the project's params.yaml: the import reads them from the file's folder.
    params["data"]["dataset_dir"] = "dataset"
    params["data"]["reviews_dir"] = "reviews"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return {"dataset": dataset, "params": tmp_path / "params.yaml", "reviews": tmp_path / "reviews"}


def events(project: dict[str, Path]) -> pd.DataFrame:
    """What etl reads: the dataset's events and the reviewed ones."""
    table, _ = read_training_events(project["dataset"], len(SPECIES))
    return pd.concat([table, read_reviewed(project["reviews"], len(SPECIES))], ignore_index=True)


def event_keys(table: pd.DataFrame) -> Counter:
    """Species, times, band and presence of each event: what a verdict becomes."""
    return Counter(
        (
            int(row.species_id),
            round(float(row.t_min), 3),
            round(float(row.t_max), 3),
            float(row.f_min),
            float(row.f_max),
            bool(row.present),
        )
        for row in table.itertuples()
    )


def test_import_adds_yes_as_calls_and_no_as_absences_and_leaves_out_unsure(exported, made, project, capsys):
    before = events(project)
    status = run_import(made["downloads"] / "verdicts.csv", "--params", project["params"])
    assert status == 0, capsys.readouterr().err
    assert "rainforest-review: " in capsys.readouterr().err
    after = events(project)
    # The dataset's own events are kept, and exactly the yes and no verdicts added.
    assert event_keys(before) <= event_keys(after)
    judged = exported[exported["verdict"] != "unsure"]
    expected = Counter(
        (
            SPECIES.index(row.species),
            round(float(row.start), 3),
            round(float(row.end), 3),
            float(row.low_freq),
            float(row.high_freq),
            row.verdict == "yes",
        )
        for row in judged.itertuples()
    )
    assert event_keys(after) - event_keys(before) == expected
    assert len(after) == len(before) + len(judged)


def run_import(*argv) -> int:
    with restored_logging():
        return review(["import", *map(str, argv)])


def test_import_of_a_file_that_is_not_verdicts_says_so(project, tmp_path, capsys):
    bad = tmp_path / "verdicts.csv"
    bad.write_text("recording,begin\na,0\n")
    assert run_import(bad, "--params", project["params"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rainforest-review: error: ") and str(bad) in lines[0]
