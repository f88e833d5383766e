"""The layers, read from the source: model/ is the bottom, analysis/ never imports runners/, no import cycles."""

import ast
import re
from pathlib import Path

from tests.conftest import REPO, run_module_code

PACKAGES = ("model", "runners", "analysis")
IMPORTED_BY_NAME = re.compile(r"^(?:model|runners|analysis)(?:\.\w+)+:\w+$")


def is_module(name: str) -> bool:
    path = Path(REPO, *name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def project_imports() -> dict[str, set[str]]:
    """Module -> project modules it imports anywhere (top level or inside functions)."""
    graph = {}
    for package in PACKAGES:
        for file in sorted((REPO / package).rglob("*.py")):
            module = ".".join(file.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            imported = set()
            for node in ast.walk(ast.parse(file.read_text(), str(file))):
                if isinstance(node, ast.Import):
                    imported |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    # `from package import module` imports that module; the package's __init__ runs too, but
                    # as the parent every submodule has, not as an edge a module chose
                    names = {f"{node.module}.{alias.name}" for alias in node.names}
                    submodules = {name for name in names if is_module(name)}
                    imported |= submodules or {node.module}
                elif isinstance(node, ast.Constant) and IMPORTED_BY_NAME.match(str(node.value)):
                    imported.add(node.value.partition(":")[0])  # "module:Class", loaded with importlib
            graph[module] = {name for name in imported if name.split(".")[0] in PACKAGES and name != module}
    modules = set(graph)
    return {module: {name for name in targets if name in modules} for module, targets in graph.items()}


def test_lower_layers_never_import_higher_ones():
    allowed = {"model": {"model"}, "analysis": {"model", "analysis"}, "runners": {"model", "runners", "analysis"}}
    offending = [(module, target) for module, targets in project_imports().items() for target in targets
                 if target.split(".")[0] not in allowed[module.split(".")[0]]]
    assert offending == []


def test_no_module_imports_one_that_imports_it():
    graph = project_imports()
    cycles, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_graph_is_read():
    """Guard against a parser that finds nothing: known edges must be there."""
    graph = project_imports()
    assert "model.records" in graph["analysis.load"] and "model.plan" in graph["runners.train"]
    assert {"runners.harness.canary", "runners.harness.policy"} <= graph["runners.harness.session"]
    assert {"model.torch_model", "model.tf_model", "model.keras_model"} <= graph["model.implementations"]
    assert Path(REPO / "model" / "implementations.py").exists()


def test_ray_is_imported_by_the_ray_executor_only():
    """Ray is an optional dependency: the local sweep, the runs and the analysis must work without it."""
    importers = []
    for package in PACKAGES:
        for file in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_text(), str(file))):
                names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
                if any(name.split(".")[0] == "ray" for name in names):
                    importers.append(file.relative_to(REPO).as_posix())
    assert sorted(set(importers)) == ["runners/harness/cluster.py"]


def test_without_ray_the_ray_executor_is_refused_in_one_line():
    done = run_module_code("import sys; sys.modules['ray'] = None  # as if not installed\n"
                           "from runners.compare import app; app(['--executor', 'ray'])", check=False)
    assert done.returncode != 0 and done.stderr.strip().splitlines() == [
        "error: --executor ray needs Ray: pip install -e '.[cluster]'"]


def test_the_linter_passes():
    """ruff, as configured in pyproject.toml (also `make lint`)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]


def test_the_model_layer_needs_no_cli_library():
    for file in sorted((REPO / "model").glob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            assert not [name for name in names if name.split(".")[0] in ("typer", "click", "rich")], file.name
