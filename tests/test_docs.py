"""The figures the README and docs/*.md state agree with their source.

Each figure that comes from a file in the repository, or that two pages both
state, is read from its source here: the default run's minutes and the last
CI run's test count and times from the CI log in docs/development.md, the
pipeline's window and recording counts from the committed metrics/, and the
README's model and review-loop scores from docs/model.md and docs/review.md,
where they are measured. (The README's results table is held to ``dvc
metrics show`` by tests/test_readme.py.)
"""

import json
import re

import pytest

from tests.support.paths import ROOT

README = (ROOT / "README.md").read_text()
DEVELOPMENT = (ROOT / "docs/development.md").read_text()
PIPELINE = (ROOT / "docs/pipeline.md").read_text()
MODEL = (ROOT / "docs/model.md").read_text()
REVIEW = (ROOT / "docs/review.md").read_text()

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
DEFAULT_RUN = re.compile(r"([\d.]+) minutes in all in the clean-clone CI run on commit ([0-9a-f]{7,40})")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _section(text: str, heading: str) -> str:
    """The text under a ``## heading``, up to the next heading of that level."""
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def _ci_log() -> tuple[str, str]:
    """The CI log shown in docs/development.md and the commit it ran on."""
    section = _section(DEVELOPMENT, "CI")
    logs = [block for block in FENCE.findall(section) if "== quick start: make run" in block]
    assert len(logs) == 1, "docs/development.md's CI section shows one .ci/run log"
    commit = re.findall(r"on commit ([0-9a-f]{7,40})", _one_line(section.split("```", 1)[0]))
    assert commit, "docs/development.md says which commit its CI log ran on (`on commit abc1234`)"
    return logs[0], commit[-1]


def _step_seconds(log: str) -> dict[str, int]:
    """When each ``== step (at N s)`` of the log began."""
    return {step: int(at) for step, at in re.findall(r"^== (.+) \(at (\d+) s\)$", log, re.MULTILINE)}


def test_default_run_minutes_are_the_ci_logs():
    log, commit = _ci_log()
    steps = list(_step_seconds(log).items())
    begin = next(i for i, (step, _) in enumerate(steps) if step == "quick start: make run")
    minutes = f"{(steps[begin + 1][1] - steps[begin][1]) / 60:.1f}"
    for name, text in [("README.md", README), ("docs/pipeline.md", PIPELINE)]:
        stated = DEFAULT_RUN.findall(_one_line(text))
        assert stated, (
            f"{name} states the default run's time as '... minutes in all in the clean-clone CI run on commit ...'"
        )
        assert stated == [(minutes, commit)], (
            f"{name} says the default run took {stated[0][0]} minutes (commit {stated[0][1]}); the CI log in "
            f"docs/development.md (commit {commit}) shows make run taking {minutes} minutes"
        )


def test_ci_figures_in_prose_are_the_logs():
    log, _ = _ci_log()
    passed, seconds = re.search(r"(\d+) passed, .* in ([\d.]+)s", log).groups()
    tests = _one_line(_section(DEVELOPMENT, "Tests"))
    stated = re.search(r"last clean-clone `\.ci/run`, (\d+) tests passed in (\d+) min (\d+) s", tests)
    assert stated, "docs/development.md's Tests section states the last CI run's test count and time"
    minutes, rest = divmod(round(float(seconds)), 60)
    assert stated.groups() == (passed, str(minutes), str(rest)), (
        f"docs/development.md's Tests section says {stated.group(0)!r}; its CI log says {passed} passed in {seconds} s"
    )
    total = _step_seconds(log)["done"]
    ci = _one_line(_section(DEVELOPMENT, "CI"))
    assert f"took {total // 60} min {total % 60} s" in ci, f"the CI section's run time is its log's, {total} s"


@pytest.mark.parametrize(
    ("row", "figure", "metrics", "key"),
    [
        ("etl", r"([\d,]+) windows", "etl", "windows"),
        ("etl", r"from ([\d,]+) recordings", "etl", "recordings"),
        ("evaluate", r"([\d,]+) validation windows", "validation", "windows"),
        ("submit", r"([\d,]+) test recordings", "test", "recordings"),
    ],
)
def test_pipeline_stage_table_counts_are_the_committed_metrics(row, figure, metrics, key):
    table = _section(PIPELINE, "The default run").splitlines()
    line = next(line for line in table if line.startswith(f"| `{row}` |"))
    stated = int(re.search(figure, line).group(1).replace(",", ""))
    committed = json.loads((ROOT / f"metrics/{metrics}.json").read_text())[key]
    assert stated == committed, (
        f"docs/pipeline.md's {row} row says {stated}; metrics/{metrics}.json has {key} {committed}"
    )


def test_readme_model_scores_are_model_mds():
    scores = re.findall(r"\d\.\d{3} ± \d\.\d{3}", _one_line(README))
    assert scores, "the README states the models' scores as mean ± spread"
    missing = [score for score in scores if score not in _one_line(MODEL)]
    assert not missing, f"the README states scores that docs/model.md, where they are measured, does not: {missing}"


def test_readme_review_loop_is_review_mds():
    section = _section(README, "Your recordings, your labels: detect, review, retrain")
    rows = [line for line in section.splitlines() if re.match(r"\| (both|near|random) \|", line)]
    assert rows, "the README shows the review loop's table"
    missing_rows = [row for row in rows if row not in REVIEW.splitlines()]
    assert not missing_rows, f"rows of the README's review-loop table that docs/review.md does not have: {missing_rows}"
    figures = set(re.findall(r"\b0\.\d{3}\b", re.sub(r"^\|.*$", "", section, flags=re.MULTILINE)))
    missing = sorted(figure for figure in figures if figure not in REVIEW)
    assert not missing, (
        f"the README's review-loop figures that docs/review.md, where they are measured, lacks: {missing}"
    )
