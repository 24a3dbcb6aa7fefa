"""The import graph of octvideo/ points one way: every import, at the top of a module or inside a
function, reaches the module's own layer or one below it.

Layers, bottom to top:

    ops              torch only: imports nothing of octvideo
    models           imports only ops
    errors           every exception (octvideo.errors) and the version (octvideo): import
                     nothing of octvideo
    argtypes         the argparse types the commands and the benchmarks share: imports nothing
                     of octvideo
    signals          signal handlers set for a block (octvideo.signals): imports nothing of
                     octvideo
    measure          interleaved timing and the model calls it times (the study and the
                     benchmarks share it): torch and ops
    paths            output files and checkpoint archives (octvideo.paths), octvideo.allocator,
                     octvideo.lazy
    data             annotations, decoding, datasets; data.config is the data section
    config           the run config, built from data.config's section and the others
    checkpoint_meta  what a checkpoint says about itself (octvideo.checkpoint_meta) and the
                     network a model section describes (octvideo.network)
    engine           training, evaluation, checkpoints, the model zoo, sweeps
    inference        predictor, pipeline, records, renders, export
    bench            measurement harnesses
    cli              the commands: nothing imports octvideo.cli

Lightning is imported by the code that trains only: a command that never trains (predict, export,
data check, data prepare, models) and the worker server's preloaded modules start without it.
"""

from __future__ import annotations

import ast
import importlib
import json
import textwrap
from pathlib import Path

import pytest

from tests.scripts import run_code

PACKAGE = Path(__file__).resolve().parents[1] / "octvideo"

# bottom to top: (layer, the modules it holds, by dotted prefix)
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ops", ("octvideo.ops",)),
    ("models", ("octvideo.models",)),
    ("errors", ("octvideo.errors", "octvideo")),
    ("argtypes", ("octvideo.argtypes",)),
    ("signals", ("octvideo.signals",)),
    ("measure", ("octvideo.measure",)),
    ("paths", ("octvideo.paths", "octvideo.allocator", "octvideo.lazy", "octvideo.streams")),
    ("data", ("octvideo.data",)),
    ("config", ("octvideo.config",)),
    ("checkpoint_meta", ("octvideo.checkpoint_meta", "octvideo.network")),
    ("engine", ("octvideo.engine",)),
    ("inference", ("octvideo.inference",)),
    ("bench", ("octvideo.bench",)),
    ("cli", ("octvideo.cli",)),
)
# layers that import nothing of octvideo, though layers lie below them
LEAVES = ("errors", "argtypes", "signals")

Graph = dict[str, list[tuple[str, int]]]  # module -> (imported module, line)


def layer_of(module: str) -> str | None:
    """The layer holding ``module``: the longest prefix of it named in ``LAYERS``; the bare
    ``octvideo`` matches only itself."""
    best, length = None, -1
    for layer, prefixes in LAYERS:
        for prefix in prefixes:
            fits = module == prefix or (prefix != "octvideo" and module.startswith(prefix + "."))
            if fits and len(prefix) > length:
                best, length = layer, len(prefix)
    return best


def rank(layer: str) -> int:
    return [name for name, _ in LAYERS].index(layer)


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(
    source: str, module: str, is_package: bool, known: set[str]
) -> list[tuple[str, int]]:
    """Every octvideo module ``source`` imports, anywhere in it, with the line.

    ``from P import n`` counts as an import of ``P.n`` when that is a module in ``known``, else of
    ``P``; relative imports are resolved against ``module`` (a package when ``is_package``).
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            targets = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin
                for alias in node.names
            ]
        else:
            continue
        found += [(t, node.lineno) for t in targets if t == "octvideo" or t.startswith("octvideo.")]
    return list(dict.fromkeys(found))  # ``from P import a, b`` of one module counts once


def package_graph(package: Path = PACKAGE) -> Graph:
    files = sorted(package.rglob("*.py"))
    known = {module_name(f, package) for f in files}
    return {
        module_name(f, package): imports_of(
            f.read_text(encoding="utf-8"), module_name(f, package), f.name == "__init__.py", known
        )
        for f in files
    }


def violations(graph: Graph) -> list[str]:
    """One line for each import that points to a higher layer (or out of a leaf layer), and for
    each module of no layer."""
    found = []
    for module, targets in sorted(graph.items()):
        own = layer_of(module)
        if own is None:
            found.append(f"{module} belongs to no layer: add it to LAYERS")
            continue
        for target, line in targets:
            layer = layer_of(target)
            if layer is None:
                found.append(f"{module}:{line} imports {target}, which belongs to no layer")
            elif own in LEAVES and target != module:
                found.append(
                    f"{module}:{line} ({own}) imports {target}: {own} imports nothing of octvideo"
                )
            elif rank(layer) > rank(own):
                found.append(
                    f"{module}:{line} ({own}) imports {target} ({layer}), a layer above its own"
                )
    return found


def test_no_import_in_octvideo_points_to_a_higher_layer():
    graph = package_graph()
    assert {"octvideo.ops", "octvideo.errors", "octvideo.cli"} <= set(graph)
    assert violations(graph) == []


def test_an_upward_import_is_reported_naming_the_module_the_line_and_both_layers():
    graph = {
        "octvideo.models.weights": [("octvideo.ops", 24), ("octvideo.paths", 26)],
        "octvideo.paths": [("octvideo.errors", 37)],
    }
    assert violations(graph) == [
        "octvideo.models.weights:26 (models) imports octvideo.paths (paths), a layer above its own"
    ]


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("octvideo.ops.pair", "octvideo.errors"),  # ops imports nothing of octvideo
        ("octvideo.models.cost", "octvideo.config"),  # models imports only ops
        ("octvideo.data.check", "octvideo.cli"),  # nothing below cli imports it
        ("octvideo.engine.zoo", "octvideo.inference.predictor"),  # inference sits on engine
        ("octvideo.config", "octvideo.engine.build"),
        ("octvideo.bench.predict", "octvideo.cli.inference"),
        ("octvideo.bench.models", "octvideo.cli"),  # argparse types come from argtypes
        ("octvideo.engine.sweep", "octvideo.bench.models"),  # the study measures via measure
        ("octvideo.measure.steps", "octvideo.engine.build"),
        ("octvideo.checkpoint_meta", "octvideo.engine.checkpoint"),
    ],
)
def test_each_rule_of_the_issue_is_an_upward_edge(module, target):
    assert len(violations({module: [(target, 1)]})) == 1


@pytest.mark.parametrize("target", ["octvideo.ops", "octvideo", "octvideo.paths"])
def test_errors_imports_nothing_of_octvideo_though_ops_lies_below(target):
    assert violations({"octvideo.errors": [(target, 3)]}) == [
        f"octvideo.errors:3 (errors) imports {target}: errors imports nothing of octvideo"
    ]


def test_argtypes_imports_nothing_of_octvideo():
    assert violations({"octvideo.argtypes": [("octvideo.errors", 9)]}) == [
        "octvideo.argtypes:9 (argtypes) imports octvideo.errors: argtypes imports nothing of "
        "octvideo"
    ]


def test_a_module_of_no_layer_is_reported():
    assert violations({"octvideo.plugins": []}) == [
        "octvideo.plugins belongs to no layer: add it to LAYERS"
    ]


def test_imports_inside_functions_and_relative_imports_are_read():
    source = (
        "from . import build\n"
        "from ..cli.args import positive_int\n"
        "import octvideo.data.decoding as decoding\n"
        "def run():\n"
        "    from octvideo.cli import main\n"
        "    from octvideo import __version__\n"
    )
    known = {"octvideo.engine.build", "octvideo.cli.args", "octvideo.cli", "octvideo.data.decoding"}
    assert imports_of(source, "octvideo.engine.sweep", False, known) == [
        ("octvideo.engine.build", 1),
        ("octvideo.cli.args", 2),
        ("octvideo.data.decoding", 3),
        ("octvideo.cli", 5),
        ("octvideo", 6),
    ]


def test_the_graph_is_read_from_the_files_of_a_package(tmp_path):
    package = tmp_path / "octvideo"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "paths.py").write_text("")
    (package / "models" / "__init__.py").write_text("from .weights import load\n")
    (package / "models" / "weights.py").write_text(
        "def load():\n    from octvideo.paths import check\n"
    )
    graph = package_graph(package)
    assert graph["octvideo.models"] == [("octvideo.models.weights", 1)]
    assert violations(graph) == [
        "octvideo.models.weights:2 (models) imports octvideo.paths (paths), a layer above its own"
    ]


# In a fresh interpreter: each step, then which of Lightning's packages are imported after it.
_WITHOUT_LIGHTNING = textwrap.dedent(
    """
    import contextlib, importlib, io, json, sys
    from octvideo.cli import main
    from octvideo.data.workers import PRELOAD

    def lightning():
        return [m for m in ("lightning", "lightning.pytorch") if m in sys.modules]

    found = {}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(["predict", "--help"])  # builds every command's parser
    found["octvideo predict --help"] = lightning()
    for name in dict.fromkeys([
        *PRELOAD,
        "octvideo.inference.pipeline",
        "octvideo.inference.export",
        "octvideo.data.check",
        "octvideo.data.prepare",
        "octvideo.engine.checkpoint",
        "octvideo.engine.build",
        "octvideo.data",
        "octvideo.engine",
    ]):
        importlib.import_module(name)
        found[f"import {name}"] = lightning()
    print(json.dumps(found))
    """
)


def test_the_commands_that_never_train_and_the_worker_server_start_without_lightning():
    # Lightning adds about 0.8 s to the start of each command and of the worker server
    done = run_code(_WITHOUT_LIGHTNING)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert "import octvideo.inference.pipeline" in found
    assert found == {step: [] for step in found}


@pytest.mark.parametrize("package", ["octvideo.data", "octvideo.engine"])
def test_each_public_name_of_a_lazy_package_resolves_and_is_listed(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name).__name__ == name
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018
