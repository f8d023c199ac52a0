"""The package's layout keeps its plan: small modules, short functions, and imports that point down the data flow
(cli -> methods -> {fast, gradients} -> passes -> graph, model data, runtime, io, sequences)."""

import ast
import pathlib

import pytest

import onnxism

PACKAGE = pathlib.Path(onnxism.__file__).resolve().parent
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
#: Packages below ``methods`` (what they may not import), and the pairs that may not import each other.
BELOW_METHODS = ("graph", "passes", "fast", "gradients", "model", "runtime", "io", "sequences")
APART = (("fast", "gradients"),)


def _relative(path):
    return path.relative_to(PACKAGE).as_posix()


def _imported_packages(path):
    """The onnxism subpackages ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    here = path.relative_to(PACKAGE).parts[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[:len(here) - node.level + 1] if node.level > 1 else here
            parts = list(base) + (node.module.split(".") if node.module else [])
            if parts:
                found.add(parts[0])
            elif node.names:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("onnxism."):
            found.add(node.module.split(".")[1])
    return found


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_modules_are_short(path):
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_functions_are_short(path):
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_imports_point_down(path):
    package = path.relative_to(PACKAGE).parts[0] if len(path.relative_to(PACKAGE).parts) > 1 else None
    imported = _imported_packages(path)
    if package in BELOW_METHODS:
        assert "methods" not in imported and "cli" not in imported
    for first, second in APART:
        if package == first:
            assert second not in imported
        if package == second:
            assert first not in imported
    if package == "graph":
        assert not imported & {"passes", "model", "fast", "gradients", "methods", "cli"}


def test_no_module_imports_torch_or_tensorflow_at_import_time():
    heavy = {"torch", "tensorflow", "tf2onnx", "keras"}
    for path in MODULES:
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not {name.split(".")[0] for name in names} & heavy, _relative(path)


def test_every_package_folder_is_installed():
    """pyproject.toml lists the packages by hand (the converters install as onnxism_converters): every folder with
    an ``__init__.py`` must be among them, or an installed copy would miss it."""
    import re

    text = (PACKAGE.parent / "pyproject.toml").read_text()
    start = text.index("packages = [")
    listed = set(re.findall(r'"([\w.]+)"', text[start:text.index("]", start)]))
    folders = {".".join(path.parent.relative_to(PACKAGE.parent).parts) for path in PACKAGE.rglob("__init__.py")}
    converters = PACKAGE.parent / "converters"
    folders |= {".".join(("onnxism_converters",) + path.parent.relative_to(converters).parts)
                for path in converters.rglob("__init__.py")}
    assert listed == folders
