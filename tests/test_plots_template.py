"""``dvc plots show`` and ``dvc plots diff`` draw every plot with the network off.

A temporary DVC project holds the pipeline, the committed ``.dvc/config``
(``plots.html_template``) and its template, and the committed default run's
``metrics/``, so the real ``dvc`` renders the pipeline's own plots: 7 Vega
plots and 4 pictures. Headless Chromium, its host names all unresolvable and
its proxy a closed port, opens each page and waits for every plot to draw.
The same browser given DVC's own page, which loads Vega from a CDN, draws none:
the network is really off.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from dvc_render.html import PAGE_HTML

from benchmarks.project import make_project, run
from rainforest.errors import PipelineError
from rainforest.plots_template import LIBRARIES, PLACEHOLDERS, TEMPLATE, Library, page
from tests.support.browser import chromium_options, start_chromium
from tests.support.paths import ROOT

#: The pipeline's Vega plots: 3 training curves, precision-recall, confusion, 2 per-species tables,
#: pseudo-labels per species, test LWLRAP by round, and validation and test LWLRAP by round (dvc.yaml's plots).
VEGA_PLOTS = 10
PICTURES = 4
#: How long every plot may take to draw.
DRAW_SECONDS = 30

#: Each Vega plot's state: whether vega-embed drew into its container, and any text shown there besides
#: (vega-embed replaces the container's content, DVC's script with it, by the drawing, its menu and the
#: plot's controls: DVC's curves have a smoothing slider, its confusion matrix a checkbox).
PLOT_STATE = """
const div = document.getElementById(arguments[0]);
const rest = div.cloneNode(true);
rest.querySelectorAll('svg, canvas, script, details, .vega-bindings').forEach(node => node.remove());
return {drawn: div.querySelector('svg, canvas') !== null, text: rest.textContent.trim()};
"""
PICTURES_STATE = "return [...document.images].map(image => image.complete && image.naturalWidth > 0);"


def test_template_is_built_from_the_pinned_libraries():
    text = TEMPLATE.read_text()
    assert "{scripts}" not in text, "DVC would add its CDN script tags"
    assert all(placeholder in text for placeholder in PLACEHOLDERS)
    assert "<script src" not in text and "https://cdn" not in text
    for library in LIBRARIES:
        assert f"<script>/* {library.name} {library.version}, BSD-3-Clause */" in text
    assert "Redistributions of source code must retain the above copyright notice" in text
    assert (ROOT / ".dvc/config").read_text().count("html_template = plots/offline.html") == 1


@pytest.mark.parametrize("text", ["</script>", "{plot_divs}", "{scripts}"])
def test_page_refuses_a_bundle_that_would_break_it(text):
    library = Library("vega", "0.0.0", "sha512-x", "build/vega.min.js")
    with pytest.raises(PipelineError, match=f"vega 0.0.0: build/vega.min.js holds '{text[:8]}"):
        page({library: f"var a = '{text}';"})


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The pipeline with the committed .dvc/config, its template and the default run's metrics, committed."""
    path = make_project(tmp_path_factory.mktemp("plots") / "project", {})
    shutil.copy(ROOT / ".dvc/config", path / ".dvc/config")
    shutil.copytree(ROOT / ".dvc/plots", path / ".dvc/plots")
    committed = subprocess.run(["git", "ls-files", "metrics"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in committed.stdout.split():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, path / name)
    run(["git", "add", "-A"], path)
    run(["git", "commit", "-qm", "the default run's metrics"], path)
    return path


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium that reaches no network: every host name fails to resolve, and its proxy is a
    closed port on this machine."""
    options = chromium_options(
        "--window-size=1400,1000", "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9"
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console, for its errors
    driver = start_chromium(options)
    try:
        yield driver
    finally:
        driver.quit()


def plots_on(driver, html: Path, *, wait: bool = True) -> dict[str, dict]:
    """Each Vega plot's state (its container's id -> :data:`PLOT_STATE`) on the page ``html``, once all
    are drawn (or after :data:`DRAW_SECONDS`)."""
    ids = re.findall(r"vegaEmbed\('#([^']+)'", html.read_text())
    driver.get(html.as_uri())
    deadline = time.monotonic() + (DRAW_SECONDS if wait else 3)
    while True:
        plots = {id: driver.execute_script(PLOT_STATE, id) for id in ids}
        if all(plot["drawn"] for plot in plots.values()) or time.monotonic() > deadline:
            return plots
        time.sleep(0.2)


def assert_every_plot_draws(driver, html: Path, *, vega_plots: int, pictures: int) -> None:
    plots = plots_on(driver, html)
    assert len(plots) == vega_plots, plots
    assert [id for id, plot in plots.items() if not plot["drawn"]] == [], f"Vega plots that did not draw in {html}"
    assert {id: plot["text"] for id, plot in plots.items() if plot["text"]} == {}, "text besides a drawing"
    assert driver.execute_script(PICTURES_STATE) == [True] * pictures
    assert [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"] == []


@pytest.mark.dvc
@pytest.mark.slow
def test_dvc_plots_show_draws_every_plot_offline(project, browser):
    run(["dvc", "plots", "show"], project)
    assert_every_plot_draws(browser, project / "dvc_plots/index.html", vega_plots=VEGA_PLOTS, pictures=PICTURES)


@pytest.mark.dvc
@pytest.mark.slow
def test_dvc_plots_diff_draws_every_plot_offline(project, browser):
    # A changed curve in the workspace, against the committed one: each Vega plot draws both revisions
    # in one, each picture is shown once per revision.
    curve = project / "metrics/plots/precision_recall.csv"
    lines = curve.read_text().splitlines()
    curve.write_text("\n".join(lines[:-1]) + "\n")
    run(["dvc", "plots", "diff", "HEAD", "-o", "diff_plots"], project)
    html = project / "diff_plots/index.html"
    assert_every_plot_draws(browser, html, vega_plots=VEGA_PLOTS, pictures=2 * PICTURES)


@pytest.mark.dvc
@pytest.mark.slow
def test_dvc_own_page_draws_nothing_without_the_network(project, browser):
    cdn_page = project / "cdn.html"
    cdn_page.write_text(PAGE_HTML)
    run(["dvc", "plots", "show", "--html-template", str(cdn_page), "-o", "cdn_plots"], project)
    assert "https://cdn.jsdelivr.net/npm/vega@" in (project / "cdn_plots/index.html").read_text()
    plots = plots_on(browser, project / "cdn_plots/index.html", wait=False)
    assert len(plots) == VEGA_PLOTS and not any(plot["drawn"] for plot in plots.values())
