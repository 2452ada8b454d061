"""The documentation stays true to the repository.

README.md's results table is exactly what ``dvc metrics show --md`` prints for
the committed metrics, so it cannot drift from them; every relative link in
README.md and docs/*.md points at a file that exists (and a link into a
Markdown page at one of its headings); every docs page is listed in the README.
"""

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
DVC = Path(sys.executable).parent / "dvc"

METRICS_BEGIN = "<!-- metrics: dvc metrics show --md -->"
METRICS_END = "<!-- /metrics -->"

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose(text: str) -> str:
    """The text without code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _anchors(page: Path) -> set[str]:
    """The heading anchors GitHub gives a Markdown page."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _relative_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(_prose(page.read_text())) if not SCHEME.match(target)]


def test_readme_results_table_is_what_dvc_metrics_show_prints():
    text = README.read_text()
    assert text.count(METRICS_BEGIN) == 1 and text.count(METRICS_END) == 1, (
        f"README.md needs one results block between {METRICS_BEGIN!r} and {METRICS_END!r}"
    )
    block = text.split(METRICS_BEGIN, 1)[1].split(METRICS_END, 1)[0]
    assert DVC.exists(), f"no dvc next to {sys.executable}: install requirements.txt into this environment"
    shown = subprocess.run([str(DVC), "metrics", "show", "--md"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, f"dvc metrics show --md failed:\n{shown.stderr}"
    assert block.strip() == shown.stdout.strip(), (
        "README.md's results table is not what `dvc metrics show --md` prints for metrics/. "
        f"Refresh it: run `dvc metrics show --md` in the repository root and paste its output "
        f"between the {METRICS_BEGIN} and {METRICS_END} lines of README.md.\n"
        f"dvc metrics show --md prints:\n{shown.stdout}"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_point_at_existing_files(page):
    broken = []
    for target in _relative_links(page):
        path_part, _, anchor = target.partition("#")
        path = (page.parent / unquote(path_part)).resolve() if path_part else page
        if ROOT != path and ROOT not in path.parents:
            broken.append(f"{target}: outside the repository")
        elif not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{target}: no heading #{anchor} in {path.relative_to(ROOT)}")
    assert not broken, f"broken links in {page.relative_to(ROOT)}:\n" + "\n".join(broken)


def test_readme_lists_every_docs_page():
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in _relative_links(README)}
    unlisted = [str(page.relative_to(ROOT)) for page in PAGES[1:] if page not in linked]
    assert not unlisted, f"docs pages the README does not link to: {unlisted}"
