"""dvc.yaml declares what each stage really uses.

A stage's deps must name its script and every library module the script
imports, directly or through other modules, so that editing a module reruns
exactly the stages that run its code. Its params must exist in params.yaml.
"""

import ast
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
    return {m for m in modules if (ROOT / (m.replace(".", "/") + ".py")).exists()}


def _import_closure(script: Path) -> set[str]:
    seen: set[str] = set()
    pending = _imported_modules(script)
    while pending:
        module = pending.pop()
        if module not in seen:
            seen.add(module)
            pending |= _imported_modules(ROOT / (module.replace(".", "/") + ".py"))
    return {module.replace(".", "/") + ".py" for module in seen}


@pytest.mark.parametrize("stage", sorted(PIPELINE))
def test_deps_list_script_and_every_imported_module(stage):
    declared = {dep for dep in PIPELINE[stage]["deps"] if isinstance(dep, str)}
    script = f"stages/{stage}.py"
    assert script in declared
    code_deps = {dep for dep in declared if dep.startswith("rainforest/") and dep.endswith(".py")}
    assert code_deps == _import_closure(ROOT / script)


def _lookup(params: dict, dotted: str):
    value = params
    for part in dotted.split("."):
        value = value[part]
    return value


@pytest.mark.parametrize("stage", sorted(PIPELINE))
def test_params_are_single_existing_keys(stage):
    for key in PIPELINE[stage].get("params", []):
        assert isinstance(key, str), f"{stage}: params must list single keys, got {key!r}"
        value = _lookup(PARAMS, key)
        assert not isinstance(value, dict), f"{stage}: {key} is a whole section; list its keys"


def test_every_param_is_read_by_some_stage():
    def leaves(tree, prefix=""):
        for name, value in tree.items():
            if isinstance(value, dict):
                yield from leaves(value, f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}"

    declared = {key for stage in PIPELINE.values() for key in stage.get("params", [])}
    assert set(leaves(PARAMS)) == declared
