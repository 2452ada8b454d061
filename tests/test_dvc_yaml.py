"""dvc.yaml declares what each stage really uses.

A stage's deps must name its script and every library module the script
imports, directly or through other modules (and the ``__init__.py`` of every
package on the way, which runs on import), so that editing a module reruns
exactly the stages that run its code. Its params are what the stage reads:
a whole section of params.yaml where it hands the section on, a key
(``data.dataset_dir``) where it reads one, so that changing a key reruns
exactly the stages that read it.
"""

import ast
import re
from pathlib import Path

import pytest
import yaml

from tests.support.paths import ROOT, committed_params

PIPELINE = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
PARAMS = committed_params()


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rainforest"):
            modules.add(node.module)
            # "from rainforest import metrics" imports the module rainforest.metrics.
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names if alias.name.startswith("rainforest"))
    return {m for m in modules if _source(m).exists()}


def _source(module: str) -> Path:
    # rainforest.detect -> rainforest/detect/__init__.py; rainforest.model -> rainforest/model.py
    path = ROOT / module.replace(".", "/")
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _import_closure(script: Path) -> set[str]:
    seen: set[str] = set()
    pending = _imported_modules(script)
    while pending:
        module = pending.pop()
        if module not in seen:
            seen.add(module)
            # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
            parts = module.split(".")
            pending |= {".".join(parts[:i]) for i in range(1, len(parts))} - seen
            pending |= _imported_modules(_source(module))
    return {str(_source(module).relative_to(ROOT)) for module in seen}


@pytest.mark.parametrize("stage", sorted(PIPELINE))
def test_deps_list_script_and_every_imported_module(stage):
    declared = {dep for dep in PIPELINE[stage]["deps"] if isinstance(dep, str)}
    script = f"stages/{stage}.py"
    assert script in declared
    code_deps = {dep for dep in declared if dep.startswith("rainforest/") and dep.endswith(".py")}
    assert code_deps == _import_closure(ROOT / script)


@pytest.mark.parametrize("stage", sorted(PIPELINE))
def test_params_are_existing_sections_or_keys(stage):
    for name in PIPELINE[stage].get("params", []):
        assert isinstance(name, str), f"{stage}: params must list sections or keys of params.yaml, got {name!r}"
        section, _, key = name.partition(".")
        assert isinstance(PARAMS.get(section), dict), f"{stage}: {section} is not a section of params.yaml"
        assert not key or key in PARAMS[section], f"{stage}: {name} is not a key of params.yaml"


def _params_read(script: Path) -> set[str]:
    # Every `settings.<section>.<key>` in the stage script, and every `settings.<section>` handed on whole.
    tree = ast.parse(script.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    read = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "settings":
            parent = parents.get(node)
            read.add(f"{node.attr}.{parent.attr}" if isinstance(parent, ast.Attribute) else node.attr)
    return read


@pytest.mark.parametrize("stage", sorted(set(PIPELINE) - {"check"}))
def test_a_stage_reads_exactly_the_params_it_declares(stage):
    assert _params_read(ROOT / "stages" / f"{stage}.py") == set(PIPELINE[stage].get("params", []))


def test_check_validates_every_section_before_every_other_stage():
    # It reads none itself: run_stage validates every section it declares, and a change to any reruns it.
    assert _params_read(ROOT / "stages/check.py") == set()
    assert PIPELINE["check"]["params"] == list(PARAMS)
    (stamp,) = PIPELINE["check"]["outs"]
    assert stamp == {"metrics/settings_checked.txt": {"cache": False, "persist": True}}
    for stage in set(PIPELINE) - {"check"}:
        assert "metrics/settings_checked.txt" in PIPELINE[stage]["deps"], stage


def test_every_section_is_read_by_some_stage():
    declared = {name.partition(".")[0] for stage in PIPELINE.values() for name in stage.get("params", [])}
    assert set(PARAMS) == declared


def test_the_pipeline_page_names_each_stages_sections_and_library_call():
    # docs/pipeline.md's table: stage, params sections, the one library call.
    page = (ROOT / "docs" / "pipeline.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| ((?:`[\w.]+`(?:, )?)+) \| `([\w.]+)` \|$", page, re.MULTILINE)
    assert sorted(stage for stage, _, _ in rows) == sorted(PIPELINE)
    for stage, params, call in rows:
        assert re.findall(r"`([\w.]+)`", params) == PIPELINE[stage]["params"], stage
        module, function = call.rsplit(".", 1)
        imports = rf"^from {re.escape(module)} import (?:\w+, )*{function}\b"
        assert re.search(imports, (ROOT / "stages" / f"{stage}.py").read_text(), re.MULTILINE), stage
