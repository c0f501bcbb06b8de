"""The layout is the architecture: each room imports only what ARCHITECTURE.md's map allows, the
debugging commands reach data only through the HTTP API, and no product code knows the demo."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = set(sys.stdlib_module_names)


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, absolute, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def offenders(package: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    bad = {}
    for path in modules(package):
        hits = sorted(m for m in imports_of(path) if any(m == f or m.startswith(f + ".") for f in forbidden))
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    return bad


def test_the_sdk_imports_only_the_standard_library_and_itself():
    bad = {}
    for path in modules("xray_sdk"):
        outside = sorted(m for m in imports_of(path) if m.split(".")[0] not in STDLIB | {"xray_sdk", "__future__"})
        if outside:
            bad[str(path.relative_to(ROOT))] = outside
    assert bad == {}


@pytest.mark.parametrize(
    "room, forbidden",
    [
        ("xray_server/ingest", ("xray_server.query", "xray_server.analysis", "xray_server.web")),
        (
            "xray_server/query",
            ("xray_server.ingest", "xray_server.analysis", "xray_server.web", "xray_server.artifacts"),
        ),
        ("xray_server/analysis", ("xray_server.ingest", "xray_server.web")),
        (
            "xray_server/artifacts",
            ("xray_server.ingest", "xray_server.query", "xray_server.analysis", "xray_server.web"),
        ),
        (
            "xray_server/storage",
            (
                "xray_server.ingest",
                "xray_server.query",
                "xray_server.analysis",
                "xray_server.web",
                "xray_server.artifacts",
            ),
        ),
        (
            "xray_server/schemas",
            (
                "xray_server.ingest",
                "xray_server.query",
                "xray_server.analysis",
                "xray_server.web",
                "xray_server.storage",
                "xray_server.artifacts",
            ),
        ),
        ("xray_server", ("xray_cli", "xray_demo")),
    ],
)
def test_each_room_imports_only_what_the_map_allows(room, forbidden):
    assert offenders(room, forbidden) == {}


def test_the_debugging_commands_reach_data_only_through_the_http_api():
    for name in ("debugging.py", "api.py", "render.py", "options.py", "export.py", "read.py"):
        path = ROOT / "xray_cli" / name
        assert not [m for m in imports_of(path) if m.startswith("xray_server")], name


def test_only_the_demo_command_imports_the_demo():
    importers = {
        str(p.relative_to(ROOT))
        for package in ("xray_sdk", "xray_server", "xray_cli", "bench")
        for p in modules(package)
        if any(m.startswith("xray_demo") for m in imports_of(p))
    }
    assert importers == {"xray_cli/demo.py"}


def _code_words(path: Path) -> set[str]:
    """Names and string constants of a module, docstrings left out (they may give examples)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    words: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.update(re.findall(r"[A-Za-z_]+", node.value))
        elif isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.Attribute):
            words.add(node.attr)
    return {w.lower() for w in words}


def test_no_product_code_knows_the_demo_scenario():
    scenario = {"asin", "competitor", "category"}
    found = {
        str(p.relative_to(ROOT)): sorted(_code_words(p) & scenario)
        for package in ("xray_sdk", "xray_server", "xray_cli")
        for p in modules(package)
    }
    assert {k: v for k, v in found.items() if v} == {}


def test_the_shared_vocabulary_imports_nothing_else_of_the_sdk():
    """The contract is a leaf: the server, a generator of another language's vocabulary and any
    other client read it alone, without the SDK's serializer or delivery."""
    outside = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imports_of(path) if m.startswith("xray_sdk") and not m.startswith("xray_sdk.contract")
        )
        for path in modules("xray_sdk/contract")
    }
    assert {k: v for k, v in outside.items() if v} == {}


def test_importing_the_contract_runs_nothing_else_of_the_sdk():
    """`import xray_sdk.contract...` runs the package's `__init__` first: it must load nothing
    (no client, no delivery thread, no exit hook in every gunicorn worker), and the SDK's public
    names still answer when used, the decorator `step` among them."""
    code = (
        "import atexit, sys\n"
        "hooks = []\n"
        "atexit.register = lambda f, *a, **k: hooks.append(f)\n"
        "import xray_sdk.contract.vocabulary, xray_sdk.contract.limits, xray_sdk.contract.metrics\n"
        "loaded, hooked = sorted(m for m in sys.modules if m.startswith('xray_sdk')), len(hooks)\n"
        "import xray_sdk, xray_sdk.steps\n"
        "print(loaded, hooked, callable(xray_sdk.step), xray_sdk.Client.__name__, len(hooks) > hooked)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.split("] ")[0] + "]" == str(
        [
            "xray_sdk",
            "xray_sdk.contract",
            "xray_sdk.contract.bounds",
            "xray_sdk.contract.limits",
            "xray_sdk.contract.metrics",
            "xray_sdk.contract.vocabulary",
        ]
    )
    # No exit hook from the contract; the client's own, once it is used.
    assert out.split("] ")[1].split() == ["0", "True", "Client", "True"]


def test_no_public_name_of_the_sdk_is_also_one_of_its_modules():
    """Importing a submodule sets the package's attribute of that name: a module `summarize.py`
    would replace the function `xray_sdk.summarize` as soon as anything imported it."""
    import xray_sdk

    clashes = [name for name in xray_sdk.__all__ if (ROOT / "xray_sdk" / f"{name}.py").exists()]
    clashes += [name for name in xray_sdk.__all__ if (ROOT / "xray_sdk" / name).is_dir()]
    assert clashes == []
