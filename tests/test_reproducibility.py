"""Reproducibility and the DVC workflow, proven with the real ``dvc`` in temporary git repositories.

What users rely on, each promise tested without mocks on a tiny copy of the
pipeline (``TINY``):

* **Same inputs, same bytes.** Every stage run twice on the same inputs and
  settings writes byte-identical outputs (HDF5 window sets, model, metrics,
  plots, submission): in a fresh repository, and in the same one, where a
  rerun of ``train`` that gives the same model leaves ``evaluate`` and
  ``submit`` skipped.
* **Minimal reruns.** Changing one key of each section of ``params.yaml``, or
  a stage's code, reruns exactly the stages it affects, read from
  ``dvc repro``'s own log; a stage whose rerun writes the same bytes stops
  the cascade.
* **Run cache.** Undoing the change restores the earlier outputs from DVC's
  run cache without running anything but ``check``, which validates the
  settings again (a stage with a persistent output is never run-cached).
* **Comparing runs.** ``dvc params/metrics/plots diff`` show a change between
  two commits; ``dvc exp run -S`` and ``dvc exp show`` work, queued
  experiments included.
* **Sharing.** ``dvc push`` to a directory remote, a fresh ``git clone`` and
  ``dvc pull`` give every output byte for byte, and ``dvc repro`` there
  reruns nothing.
* **Interrupted work.** A ``dvc repro`` killed while a stage writes its output
  leaves no partial file at the output's path, and the next ``dvc repro``
  recovers.

The pipeline runs once (fixture ``base``) and is committed; each test works on
its own copy of that repository (.git and DVC cache included), so no test
sees another's changes. The tests' DVC runs are slow (every stage is a fresh
Python process, and importing TensorFlow alone takes seconds), so they run in
the background, ``WORKERS`` at a time, as soon as the base run is done
(fixture ``scenarios``); each test then waits for its own run and checks it.
``RAINFOREST_TEST_WORKERS=1`` runs them one at a time.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from benchmarks.project import STAGES, copy_project, make_project, project_env, run
from tests.support.project import TINY, commit, differing, output_files, with_setting

pytestmark = [pytest.mark.dvc, pytest.mark.slow]

#: How many DVC scenarios run at once.
WORKERS = int(os.environ.get("RAINFOREST_TEST_WORKERS", "2"))
#: Seconds any one dvc command may take before the test fails.
TIMEOUT = 900

UP_TO_DATE = "Data and pipelines are up to date."
AFTER_ETL = {"etl", "split", "augment", "pool", "embed", "train", "evaluate", "submit"}
AFTER_SPLIT = {"split", "augment", "embed", "train", "evaluate", "submit"}
AFTER_AUGMENT = {"augment", "embed", "train", "evaluate", "submit"}
AFTER_TRAIN = {"train", "evaluate", "submit"}
#: Any change of settings also reruns check, which validates them all.
CHECK = {"check"}


# ---------------------------------------------------------------------------
# Reading what dvc did
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Repro:
    """What one ``dvc repro`` did, read from its own log."""

    log: str
    #: "Running stage 'x'"
    ran: frozenset[str]
    #: "Stage 'x' didn't change, skipping"
    skipped: frozenset[str]
    #: "Stage 'x' is cached - skipping run, checking out outputs" (run cache)
    cached: frozenset[str]


def repro(path: Path, *args: str) -> Repro:
    """Run ``dvc repro *args`` in ``path`` and read which stages ran."""
    result = run(["dvc", "repro", *args], path, timeout=TIMEOUT)
    log = result.stdout + result.stderr
    return Repro(
        log,
        frozenset(re.findall(r"Running stage '([^']+)'", log)),
        frozenset(re.findall(r"Stage '([^']+)' didn't change, skipping", log)),
        frozenset(re.findall(r"Stage '([^']+)' is cached - skipping run, checking out outputs", log)),
    )


def assert_ran(result: Repro, expected: set[str], *, cached: set[str] = frozenset()) -> None:
    """Exactly ``expected`` ran, exactly ``cached`` came from the run cache,
    and every other stage was skipped as unchanged."""
    message = f"dvc repro log:\n{result.log}"
    assert result.ran == set(expected), message
    assert result.cached == set(cached), message
    assert result.skipped == set(STAGES) - set(expected) - set(cached), message


def dvc_status(path: Path) -> str:
    return run(["dvc", "status"], path, timeout=TIMEOUT).stdout


# ---------------------------------------------------------------------------
# Projects
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    path: Path
    #: The ``dvc repro`` that produced its outputs.
    repro: Repro
    outputs: dict[str, str | None]


def set_params(path: Path, changes: dict[str, object]) -> None:
    """Set dotted keys (``augment.gain.db``) of the repository's params.yaml."""
    params = yaml.safe_load((path / "params.yaml").read_text())
    for key, value in changes.items():
        params = with_setting(params, key, value, existing=True)
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Project:
    """The tiny pipeline, run once from scratch and committed (dvc.lock,
    metrics and plots in git; data and model in the DVC cache)."""
    path = make_project(tmp_path_factory.mktemp("base") / "project", TINY)
    first = repro(path)
    commit(path, "tiny run")
    return Project(path, first, output_files(path))


# ---------------------------------------------------------------------------
# Background runs
# ---------------------------------------------------------------------------

#: Scenario name -> (rough cost in stage runs, function). A scenario is a
#: function of the base project and an empty work folder that does a test's
#: DVC runs in its own copy and returns what it observed.
SCENARIOS: dict[str, tuple[float, Callable[[Project, Path], object]]] = {}
#: Test (node name) -> the scenario it checks; two tests may share one.
SCENARIO_OF_TEST: dict[str, str] = {}


def scenario(name: str, cost: float, *tests: str):
    """Register a scenario, checked by ``tests`` (default: the test ``name``)."""

    def register(function):
        SCENARIOS[name] = (cost, function)
        for test in tests or (name,):
            SCENARIO_OF_TEST[test] = name
        return function

    return register


class Scenarios:
    """The scenarios of the selected tests, running in a thread pool (each
    one's work is ``dvc`` subprocesses in its own repository)."""

    def __init__(self, futures: dict[str, Future]):
        self._futures = futures

    def outcome(self, request: pytest.FixtureRequest):
        """Wait for the requesting test's scenario; re-raise its failure."""
        return self._futures[SCENARIO_OF_TEST[request.node.name]].result()


@pytest.fixture(scope="module")
def scenarios(request, base, tmp_path_factory):
    """Start the scenarios of every selected test in this module, the
    costliest first, ``WORKERS`` at a time."""
    selected = {item.name for item in request.session.items if getattr(item.module, "__name__", None) == __name__}
    needed = {SCENARIO_OF_TEST[test] for test in selected if test in SCENARIO_OF_TEST}
    pool = ThreadPoolExecutor(max_workers=WORKERS)
    futures = {}
    for name in sorted(needed, key=lambda name: -SCENARIOS[name][0]):
        workdir = tmp_path_factory.mktemp(re.sub(r"\W+", "_", name)[:40])
        futures[name] = pool.submit(SCENARIOS[name][1], base, workdir)
    yield Scenarios(futures)
    pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------
# Same inputs, same bytes
# ---------------------------------------------------------------------------


@scenario("test_a_fresh_repository_reproduces_every_output_byte_for_byte", 7)
def rebuild(base: Project, workdir: Path) -> Project:
    # The same pipeline code and params.yaml, in a new repository with an
    # empty cache, at another path and another time.
    path = make_project(workdir / "project", {}, source=base.path)
    again = repro(path)
    return Project(path, again, output_files(path))


def test_base_run_writes_every_output(base):
    assert_ran(base.repro, set(STAGES))
    for name in [
        "data/features/windows.h5",
        "data/features/augmented.h5",
        "data/split.csv",
        "models/model.keras",
        "metrics/train/metrics.json",
        "metrics/validation.json",
        "metrics/plots/precision_recall.csv",
        "metrics/plots/confusion.csv",
        "metrics/plots/average_precision.png",
        "metrics/plots/precision_recall_by_species.png",
        "metrics/plots/worst_false_positives.png",
        "metrics/plots/worst_false_negatives.png",
        "models/detector.json",
        "data/submission.csv",
        "metrics/test.json",
    ]:
        assert base.outputs.get(name), f"{name} missing from the outputs in dvc.lock"
    assert any(name.startswith("data/demo/train/") for name in base.outputs)
    assert any(name.startswith("metrics/train/plots/") for name in base.outputs)
    assert UP_TO_DATE in dvc_status(base.path)


def test_a_fresh_repository_reproduces_every_output_byte_for_byte(base, scenarios, request):
    """Two full runs from the same seeds and settings, in two repositories:
    every stage ran twice on the same inputs and wrote the same bytes."""
    again = scenarios.outcome(request)
    assert_ran(again.repro, set(STAGES))
    assert differing(base.outputs, again.outputs) == []
    # So every dependency and output hash DVC recorded agrees too.
    assert (again.path / "dvc.lock").read_text() == (base.path / "dvc.lock").read_text()


@scenario("test_retraining_to_the_same_model_skips_evaluate_and_submit", 2)
def retrain(base: Project, workdir: Path):
    path = copy_project(base.path, workdir / "project")
    forced = repro(path, "--force", "--single-item", "train")
    status = dvc_status(path)
    lock_diff = run(["git", "diff", "dvc.lock"], path).stdout
    after = repro(path)
    return forced, status, lock_diff, after, output_files(path)


def test_retraining_to_the_same_model_skips_evaluate_and_submit(base, scenarios, request):
    forced, status, lock_diff, after, outputs = scenarios.outcome(request)
    # --single-item: train alone runs (dvc says nothing about the others).
    assert forced.ran == {"train"} and not forced.cached, forced.log
    assert differing(base.outputs, outputs) == []
    assert lock_diff == ""
    assert UP_TO_DATE in status
    assert_ran(after, set())


# ---------------------------------------------------------------------------
# Minimal reruns, and the run cache
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One change to a copy of the base project, and the stages it must rerun."""

    name: str
    expected: set[str]
    params: dict[str, object] = field(default_factory=dict)
    #: A file whose contents change (a comment is appended).
    edit: str | None = None
    #: Done before the change (e.g. to create a folder a new setting names).
    prepare: Callable[[Path], None] | None = None
    #: Outputs the change must alter, so that the expectation is not vacuous.
    alters: tuple[str, ...] = ()

    @property
    def checked(self) -> set[str]:
        """check, where the change is one of settings: it validates them again, and is never run-cached."""
        return CHECK if self.params else set()


def _copy_demo_dataset(path: Path) -> None:
    shutil.copytree(path / "data/demo", path / "data/demo_copy")


CHANGES = [
    # Another folder holding the same dataset: the three stages that read the
    # dataset rerun, and since etl writes the same windows (and pool the same
    # empty pool), nothing after them does.
    Change(
        "data.dataset_dir",
        {"etl", "pool", "submit"},
        {"data.dataset_dir": "data/demo_copy"},
        prepare=_copy_demo_dataset,
    ),
    # The demo draws every recording from its own seed, so one more test
    # recording leaves the training files as they were: etl and pool rerun
    # (their dataset folder changed) and write the same windows; submit scores
    # the new test set.
    Change(
        "demo.n_test_recordings",
        {"demo", "etl", "pool", "submit"},
        {"demo.n_test_recordings": 4},
        alters=("data/submission.csv",),
    ),
    Change("audio.sample_rate", AFTER_ETL, {"audio.sample_rate": 44100}, alters=("data/features/windows.h5",)),
    Change("features.n_mels", AFTER_ETL, {"features.n_mels": 24}, alters=("data/features/windows.h5",)),
    # More processes, same windows in the same order: only etl and pool (which reads etl.workers too) rerun.
    Change("etl.workers", {"etl", "pool"}, {"etl.workers": 2}),
    Change("split.seed", AFTER_SPLIT, {"split.seed": 8}, alters=("data/split.csv",)),
    Change("augment.gain.db", AFTER_AUGMENT, {"augment.gain.db": [-3.0, 3.0]}, alters=("data/features/augmented.h5",)),
    Change("model.dropout", AFTER_TRAIN, {"model.dropout": 0.5}, alters=("models/model.keras",)),
    Change("train.learning_rate", AFTER_TRAIN, {"train.learning_rate": 0.01}, alters=("models/model.keras",)),
    Change("submit.hop_seconds", {"submit"}, {"submit.hop_seconds": 0.5}, alters=("data/submission.csv",)),
    # A change to a stage's code reruns that stage; the same split stops there.
    Change("code:stages/split.py", {"split"}, edit="stages/split.py"),
]


@dataclass(frozen=True)
class ChangeOutcome:
    changed: Repro
    changed_outputs: dict[str, str | None]
    undone: Repro
    undone_outputs: dict[str, str | None]
    status: str


def change_and_undo(change: Change, base: Project, workdir: Path) -> ChangeOutcome:
    path = copy_project(base.path, workdir / "project")
    touched = ["params.yaml"] + ([change.edit] if change.edit else [])
    originals = {name: (path / name).read_bytes() for name in touched}
    if change.prepare:
        change.prepare(path)
    set_params(path, change.params)
    if change.edit:
        with open(path / change.edit, "a") as file:
            file.write("# an edit that changes nothing\n")
    changed = repro(path)
    changed_outputs = output_files(path)
    for name, content in originals.items():
        (path / name).write_bytes(content)
    undone = repro(path)
    return ChangeOutcome(changed, changed_outputs, undone, output_files(path), dvc_status(path))


for _change in CHANGES:
    scenario(
        f"change:{_change.name}",
        len(_change.expected) + 1,
        f"test_a_change_reruns_exactly_what_it_affects[{_change.name}]",
        f"test_undoing_a_change_restores_outputs_from_the_run_cache[{_change.name}]",
    )(functools.partial(change_and_undo, _change))


def _stage_outputs(base: Project, stages: set[str]) -> set[str]:
    lock = yaml.safe_load((base.path / "dvc.lock").read_text())
    prefixes = [out["path"] for name in stages for out in lock["stages"][name].get("outs", [])]
    return {name for name in base.outputs if any(name == p or name.startswith(p.rstrip("/") + "/") for p in prefixes)}


@pytest.mark.parametrize("change", CHANGES, ids=[change.name for change in CHANGES])
def test_a_change_reruns_exactly_what_it_affects(change, base, scenarios, request):
    outcome = scenarios.outcome(request)
    for name in change.alters:
        assert outcome.changed_outputs[name] != base.outputs[name], f"{change.name} left {name} as it was"
    # Only the expected stages ran...
    assert_ran(outcome.changed, change.expected | change.checked)
    # ... and the outputs of every other stage are the base run's bytes.
    untouched = _stage_outputs(base, set(STAGES) - change.expected)
    before = {name: base.outputs[name] for name in untouched}
    assert differing(before, {name: outcome.changed_outputs.get(name) for name in untouched}) == []


@pytest.mark.parametrize("change", CHANGES, ids=[change.name for change in CHANGES])
def test_undoing_a_change_restores_outputs_from_the_run_cache(change, base, scenarios, request):
    """After the change above, params.yaml (and the edited file) are put
    back: every stage that ran comes back from DVC's run cache, nothing runs."""
    outcome = scenarios.outcome(request)
    assert_ran(outcome.undone, change.checked, cached=change.expected)
    assert differing(base.outputs, outcome.undone_outputs) == []
    assert UP_TO_DATE in outcome.status


# ---------------------------------------------------------------------------
# Comparing runs
# ---------------------------------------------------------------------------


@scenario("test_params_metrics_and_plots_diff_show_a_change_between_commits", 4)
def compare_commits(base: Project, workdir: Path):
    path = copy_project(base.path, workdir / "project")
    set_params(path, {"train.epochs": 2})
    changed = repro(path)
    commit(path, "train two epochs")
    diffs = {
        kind: json.loads(run(["dvc", kind, "diff", "HEAD~1", "--json"], path, timeout=TIMEOUT).stdout)
        for kind in ["params", "metrics", "plots"]
    }
    return changed, diffs


def _plot_rows(plots: dict, name: str) -> dict[str, list[dict]]:
    """Rows of one plot in ``dvc plots diff --json``, by revision."""
    rows: dict[str, list[dict]] = {}
    for plot in plots["data"][name]:
        for row in plot["content"]["data"]["values"]:
            row = dict(row)
            rows.setdefault(row.pop("rev"), []).append(row)
    return rows


def test_params_metrics_and_plots_diff_show_a_change_between_commits(scenarios, request):
    changed, diffs = scenarios.outcome(request)
    assert_ran(changed, AFTER_TRAIN | CHECK)
    assert diffs["params"] == {"params.yaml": {"train.epochs": {"old": 1, "new": 2, "diff": 1}}}
    metrics = diffs["metrics"]
    assert metrics["metrics/validation.json"], "no validation metric changed"
    # Only the metrics of the stages that reran can differ.
    assert set(metrics) <= {"metrics/validation.json", "metrics/test.json"}
    species = _plot_rows(diffs["plots"], "metrics/plots/validation_species.csv")
    assert [len(species["HEAD~1"]), len(species["workspace"])] == [24, 24]
    training_curve = _plot_rows(diffs["plots"], "metrics/train/plots/metrics/eval/loss.tsv")
    assert [len(training_curve["HEAD~1"]), len(training_curve["workspace"])] == [1, 2]
    precision_recall = _plot_rows(diffs["plots"], "metrics/plots/precision_recall.csv")
    assert precision_recall["HEAD~1"] and precision_recall["workspace"]
    assert precision_recall["HEAD~1"] != precision_recall["workspace"]
    # Images are shown side by side, one per revision.
    for image in ["average_precision", "precision_recall_by_species", "worst_false_positives", "worst_false_negatives"]:
        shown = diffs["plots"]["data"][f"metrics/plots/{image}.png"]
        assert sorted(rev for plot in shown for rev in plot["revisions"]) == ["HEAD~1", "workspace"], image


def _experiments(shown: list[dict]) -> dict[str, dict]:
    """``dvc exp show --json``: each named experiment's data and executor."""
    found = {}
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            for revision in experiment["revs"]:
                found[experiment["name"]] = {**revision["data"], "executor": experiment.get("executor")}
    return found


@scenario("test_experiments_run_queue_and_show_with_params_and_metrics", 8)
def experiments(base: Project, workdir: Path):
    path = copy_project(base.path, workdir / "project")
    exp = ["dvc", "exp", "run"]
    for name, hop in [("hop-quarter", 0.25), ("hop-two", 2.0)]:
        run([*exp, "--queue", "--name", name, "--set-param", f"submit.hop_seconds={hop}"], path)
    in_workspace = run([*exp, "--name", "hop-half", "--set-param", "submit.hop_seconds=0.5"], path, timeout=TIMEOUT)
    queued = run([*exp, "--run-all", "--jobs", "1"], path, timeout=TIMEOUT)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], path, timeout=TIMEOUT).stdout)
    return in_workspace.stdout + in_workspace.stderr, queued.stdout + queued.stderr, shown


def test_experiments_run_queue_and_show_with_params_and_metrics(base, scenarios, request):
    in_workspace, queued, shown = scenarios.outcome(request)
    # Each experiment changes only the submission's hop, so only submit runs, after check validates it.
    assert re.findall(r"Running stage '([^']+)'", in_workspace) == ["check", "submit"], in_workspace
    assert re.findall(r"Running stage '([^']+)'", queued) == ["check", "submit"] * 2, queued
    found = _experiments(shown)
    assert set(found) >= {"hop-half", "hop-quarter", "hop-two"}, shown
    for name, hop in [("hop-half", 0.5), ("hop-quarter", 0.25), ("hop-two", 2.0)]:
        params = found[name]["params"]["params.yaml"]["data"]
        assert params["submit"]["hop_seconds"] == hop
        assert params["train"]["epochs"] == TINY["train"]["epochs"]
        metrics = found[name]["metrics"]
        assert metrics["metrics/test.json"]["data"]["recordings"] == TINY["demo"]["n_test_recordings"]
        assert 0 <= metrics["metrics/test.json"]["data"]["lwlrap"] <= 1
        # The validation metrics are the base run's: the model did not change.
        validation = metrics["metrics/validation.json"]["data"]
        base_validation = json.loads((base.path / "metrics/validation.json").read_text())
        for key in ["lwlrap", "macro_ap", "top1", "loss"]:
            assert validation[key] == base_validation[key], key
    for name in ["hop-quarter", "hop-two"]:
        assert found[name]["executor"]["state"] == "success", found[name]["executor"]


# ---------------------------------------------------------------------------
# Sharing
# ---------------------------------------------------------------------------


@scenario("test_push_clone_pull_gives_every_output_and_reruns_nothing", 2)
def share(base: Project, workdir: Path):
    origin = copy_project(base.path, workdir / "origin")
    run(["dvc", "remote", "add", "--default", "storage", str(workdir / "remote")], origin)
    commit(origin, "default remote")
    run(["dvc", "push"], origin, timeout=TIMEOUT)
    remote_status = run(["dvc", "status", "--cloud"], origin, timeout=TIMEOUT).stdout

    clone = workdir / "clone"
    run(["git", "clone", "-q", str(origin), str(clone)], workdir)
    before_pull = output_files(clone)
    run(["dvc", "pull"], clone, timeout=TIMEOUT)
    pulled = output_files(clone)
    status = dvc_status(clone)
    after = repro(clone)
    return remote_status, before_pull, pulled, status, after, output_files(clone)


def test_push_clone_pull_gives_every_output_and_reruns_nothing(base, scenarios, request):
    remote_status, before_pull, pulled, status, after, outputs = scenarios.outcome(request)
    assert "in sync" in remote_status, remote_status
    # A fresh clone has the metrics and plots (in git) but no data or model...
    assert before_pull["models/model.keras"] is None and before_pull["data/features/windows.h5"] is None
    # ... until dvc pull fetches them from the remote, byte for byte.
    assert differing(base.outputs, pulled) == []
    assert UP_TO_DATE in status
    assert_ran(after, set())
    assert differing(base.outputs, outputs) == []


# ---------------------------------------------------------------------------
# Interrupted work
# ---------------------------------------------------------------------------

INTERRUPTED_OUTPUT = "data/features/augmented.h5"


@scenario("test_a_repro_killed_mid_write_leaves_no_partial_output_and_recovers", 2)
def interrupt(base: Project, workdir: Path):
    path = copy_project(base.path, workdir / "project")
    output = path / INTERRUPTED_OUTPUT
    log_path = workdir / "killed.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            ["dvc", "repro", "--force", "--single-item", "augment"],
            cwd=path,
            env=project_env(path),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # Wait until the stage is writing its output (a file named after it
        # appears beside it), then kill dvc and the stage at once.
        deadline = time.monotonic() + TIMEOUT
        while not [p for p in output.parent.iterdir() if p.name != output.name and output.name in p.name]:
            if process.poll() is not None:
                raise AssertionError(f"augment finished before it could be killed:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGKILL)
                raise AssertionError(f"augment never started writing:\n{log_path.read_text()}")
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    left = hashlib.sha256(output.read_bytes()).hexdigest() if output.exists() else None
    recovered = repro(path)
    return process.returncode, left, recovered, dvc_status(path), output_files(path)


def test_a_repro_killed_mid_write_leaves_no_partial_output_and_recovers(base, scenarios, request):
    returncode, left, recovered, status, outputs = scenarios.outcome(request)
    assert returncode == -signal.SIGKILL
    # Where the output belongs there is nothing, or the previous output intact.
    assert left in (None, base.outputs[INTERRUPTED_OUTPUT])
    # The next repro brings augment back (rerun, or restored from the run
    # cache), with the same bytes, so nothing after it reruns.
    assert recovered.ran | recovered.cached == {"augment"}, recovered.log
    assert recovered.skipped == set(STAGES) - {"augment"}, recovered.log
    assert UP_TO_DATE in status
    assert differing(base.outputs, outputs) == []
