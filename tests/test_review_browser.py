"""The review page in a real browser, and its verdicts back into training.

Headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by
selenium) opens the page from disk, as a person would, clicks verdicts,
exports them, and reloads the page; answers another page with keys alone;
lays the page out as a phone and a wide screen would; and
``rainforest-review import`` then adds the exported verdicts to a dataset. The whole module is slow: the detections
it reviews come from the tiny model (TensorFlow) and Chromium takes seconds
to start.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from rainforest.detect.thresholds import load_detector
from rainforest.events import EVENT_COLUMNS
from rainforest.events.verdicts import VERDICT_COLUMNS
from rainforest.review.cli import review
from rainforest.review.page import write_review_page
from rainforest.review.selection import merge_detected
from tests.support.browser import chromium_options, start_chromium
from tests.support.detector import BANDS, SPECIES, restored_logging, write_recording
from tests.support.events import read_reviewed, read_training_events
from tests.support.paths import committed_params
from tests.support.review import detections_folder

pytestmark = pytest.mark.slow

#: How long the browser may take to write the export.
DOWNLOAD_SECONDS = 30

#: Card number -> the verdict clicked on it: yes and no on cards of every
#: species, unsure on one; the other cards are left without a verdict.
CLICKS = {1: "yes", 2: "no", 3: "unsure", 6: "yes", 7: "no", 11: "yes", 12: "no"}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    made = detections_folder(tmp_path_factory.mktemp("review"))
    # One card per window: the tiny model's scores, and so the number of calls, change from run to run.
    page = write_review_page(
        made["detections"], model=made["model"], detector=made["detector"], top=2, near=3, merge=False
    )
    assert sum(page.shown.values()) >= max(CLICKS), "too few cards to click"
    return {**made, "page": page.path, "downloads": tmp_path_factory.mktemp("downloads")}


@pytest.fixture(scope="module")
def browser(made):
    """Headless Chromium that saves downloads to ``made["downloads"]`` without asking."""
    options = chromium_options(
        "--window-size=1440,1000",
        # Keys start a player as a person's would; a test's synthetic ones count as no gesture without this.
        "--autoplay-policy=no-user-gesture-required",
    )
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(made["downloads"]), "download.prompt_for_download": False}
    )
    driver = start_chromium(options)
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


# --- keys, merged calls, and the width of a phone and of a wide screen ----------------------------


def press(driver, keys: str) -> None:
    """Type ``keys`` to the page, one key at a time, as a person at the keyboard would."""
    for key in keys:
        ActionChains(driver).send_keys(key).perform()


def current_card(driver) -> int:
    return int(driver.find_element(By.CSS_SELECTOR, ".card.current").get_attribute("data-row"))


@pytest.fixture(scope="module")
def keyboard_page(made, tmp_path_factory) -> dict[str, Path]:
    """The page of the same detections, calls merged, made in another folder: its own verdicts (the page's
    location keys them) and downloads."""
    root = tmp_path_factory.mktemp("keyboard")
    folder = Path(shutil.copytree(made["detections"], root / "detections"))
    page = write_review_page(folder, model=made["model"], detector=made["detector"], top=3, near=4)
    return {"page": page.path, "downloads": root / "downloads"}


def test_keys_answer_cards_play_them_slower_and_export(browser, keyboard_page, exported):
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(keyboard_page["downloads"])}
    )
    browser.get(keyboard_page["page"].as_uri())
    assert current_card(browser) == 1 and "y / n / u" in browser.find_element(By.CLASS_NAME, "keys").text
    # y, n: cards 1 and 2, each moving on; j skips 3; u answers 4; k, k go back to 3; y answers it.
    press(browser, "ynju")
    assert current_card(browser) == 5
    press(browser, "kky")
    assert current_card(browser) == 4 and browser.find_element(By.ID, "counter").text == "4"
    assert pressed(browser) == {1: "yes", 2: "no", 3: "yes", 4: "unsure"}
    # s slows every player: 1x, then 0.5x, then 0.25x; space plays the card in focus, and pauses it.
    rates = "return Array.from(document.querySelectorAll('audio'), audio => audio.playbackRate);"
    assert set(browser.execute_script(rates)) == {1}
    press(browser, "s")
    assert set(browser.execute_script(rates)) == {0.5}
    assert browser.find_element(By.ID, "speed").get_attribute("value") == "0.5"
    paused = "return document.querySelector('.card.current audio').paused;"
    press(browser, " ")
    deadline = time.monotonic() + 10
    while browser.execute_script(paused) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not browser.execute_script(paused), "space did not play the card in focus"
    press(browser, " ")
    assert browser.execute_script(paused)
    browser.find_element(By.ID, "export").click()
    verdicts = pd.read_csv(wait_for_download(keyboard_page["downloads"]), dtype=str, keep_default_na=False)
    data = json.loads(browser.find_element(By.ID, "review-data").get_attribute("textContent"))
    assert list(verdicts["verdict"]) == ["yes", "no", "yes", "unsure"]
    assert verdicts.drop(columns="verdict").to_dict("records") == data["rows"][:4]


def test_windows_of_one_call_are_one_card(browser, made, keyboard_page):
    browser.get(keyboard_page["page"].as_uri())
    detections = pd.read_csv(made["detections"] / "detections.csv", dtype={"recording": str, "species": str})
    detector = load_detector(made["detector"], SPECIES)
    calls = merge_detected(detections, {entry.species: entry.threshold for entry in detector.species})
    spans = []
    for card in browser.find_elements(By.CSS_SELECTOR, ".card"):
        shown = {dt.text: dd.text for dt, dd in zip(*definitions(card))}
        start, end = (float(value) for value in shown["time"].removesuffix(" s").split("\u2013"))
        spans.append((shown["species"].split("(")[-1].rstrip(")"), shown["recording"], start, end))
    assert len(spans) == len(set(spans)), "a call shown on two cards"
    # s2's threshold is 0: each recording's windows of it are one call, its whole length, on one card.
    assert ("s2", "SD01/0500", 0.0, 5.0) in spans and ("s2", "SD02/0500", 0.0, 4.0) in spans
    merged = {(row.species, row.recording, round(row.start, 3), round(row.end, 3)) for row in calls.itertuples()}
    assert set(spans) <= merged and sum(end - start > 1.0 for *_, start, end in spans) >= 2


def definitions(card) -> tuple[list, list]:
    return card.find_elements(By.TAG_NAME, "dt"), card.find_elements(By.TAG_NAME, "dd")


def lay_out(driver, width: int, height: int, *, phone: bool) -> dict:
    """The page laid out at ``width`` CSS pixels (a phone's, touch and all, with ``phone``): its widths and
    the distinct left edges of its cards (one per column)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 3 if phone else 1, "mobile": phone},
    )
    driver.refresh()
    return driver.execute_script(
        "return {viewport: window.innerWidth, document: document.documentElement.scrollWidth,"
        " columns: new Set(Array.from(document.querySelectorAll('.card'), card => card.getBoundingClientRect().left)).size,"
        " button: document.querySelector('.verdicts button').getBoundingClientRect().height};"
    )


def test_a_phone_shows_one_column_without_sideways_scrolling_and_a_wide_screen_several(browser, made):
    browser.get(made["page"].as_uri())
    try:
        phone = lay_out(browser, 390, 844, phone=True)
        # Without the viewport tag a phone lays the page out 980 px wide and shrinks it.
        assert phone["viewport"] == 390 and phone["document"] <= phone["viewport"], phone
        assert phone["columns"] == 1 and phone["button"] >= 40, phone
        wide = lay_out(browser, 1440, 900, phone=False)
        assert wide["document"] <= wide["viewport"] == 1440 and wide["columns"] >= 3, wide
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


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
