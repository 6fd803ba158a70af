"""The layers and the direction of imports (docs/DESIGN.md §2, STYLE.md "Layers"):

- every module of the backend imports;
- the domain (app/models, app/services) imports nothing of the delivery layers (wechat/,
  mobile_api/, jobs/, app/web/, app/bridge/), and the WeChat sandbox nothing of the backend;
- no import cycle between our modules (module-level imports; ``if TYPE_CHECKING:`` blocks are
  for type checkers only);
- no import inside a function of one of our modules, except those listed below with a reason.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "wechat", "mobile_api", "jobs")
DOMAIN = ("app.models", "app.services")
DELIVERY = ("wechat", "mobile_api", "jobs", "app.web", "app.bridge")

# Files whose functions import our modules on purpose.
FUNCTION_IMPORTS_ALLOWED_IN = {
    # Flask's app factory and the packages' register(app): blueprints, CLI groups and
    # extensions are imported when an app is built, so importing a package builds nothing.
    "app/__init__.py": "the app factory (create_app) registers blueprints and command groups",
    "app/web/__init__.py": "register(app): the web blueprints",
    "app/web/h5/__init__.py": "register(app): the official-account pages' blueprints",
    "app/bridge/__init__.py": "register(app): the bridge's blueprint and command group",
    "mobile_api/__init__.py": "register(app): the mini-program API's blueprints",
    # Process entry points build the app inside main().
    "jobs/worker.py": "the worker's main() builds the app",
    "jobs/cron.py": "the cron process's main() builds the app",
    "app/banner.py": "make run's banner builds the app to read the seeded people",
    # Command-line groups load what a command needs when it runs (``flask --help`` stays light,
    # and a command's heavy dependencies — the demo seed, the simulator — load only for it).
    "app/cli.py": "command groups", "app/bridge/cli.py": "flask bridge", "app/demo/cli.py": "flask seed-demo",
    "wechat/cli.py": "flask wechat", "wechat/doctor.py": "flask doctor", "jobs/cli.py": "flask jobs",
}
# Single imports still inside functions, each with why it is left there.
FUNCTION_IMPORTS_LEFT: dict = {}
# Cycles still held together, each with why.
CYCLES_LEFT: dict = {}


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            if parts[-1] == "__main__":
                continue
            found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported module of ours, line, inside a function) for each import in ``module``."""
    path, is_package = MODULES[module]
    found = []

    def targets(node) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            stem = ".".join(base + ([node.module] if node.module else []))
        else:
            stem = node.module
        return [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in MODULES else stem for alias in node.names]

    def visit(node, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for name in targets(child):
                    if name.split(".")[0] in PACKAGES and name != module:
                        found.append((name, child.lineno, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


IMPORTS = {module: _imports(module) for module in MODULES}


def _under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_every_module_imports():
    failed = []
    for module in MODULES:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - the report names each failure
            failed.append(f"{module}: {exc!r}")
    assert failed == []


def test_the_domain_imports_no_delivery_layer():
    offenders = [f"{module}:{line} imports {name}" for module in MODULES if _under(module, DOMAIN)
                 for name, line, _ in IMPORTS[module] if _under(name, DELIVERY)]
    assert offenders == []


def test_the_sandbox_imports_nothing_of_the_backend():
    offenders = [f"{module}:{line} imports {name}" for module in MODULES if _under(module, ("wechat.sandbox",))
                 for name, line, _ in IMPORTS[module] if not _under(name, ("wechat.sandbox",))]
    assert offenders == []


def test_no_function_level_imports_of_our_modules_beyond_the_listed_ones():
    offenders = []
    for module, imports in IMPORTS.items():
        path = MODULES[module][0].relative_to(ROOT).as_posix()
        if path in FUNCTION_IMPORTS_ALLOWED_IN:
            continue
        for name, line, in_function in imports:
            if in_function and (path, name) not in FUNCTION_IMPORTS_LEFT:
                offenders.append(f"{path}:{line} imports {name} inside a function")
    assert offenders == [], "import at module level, or list it here with the reason it must stay"


def test_the_listed_exceptions_still_exist():
    """An entry nobody needs any more is removed from the lists (they only shrink)."""
    present = {(MODULES[m][0].relative_to(ROOT).as_posix(), name)
               for m, imports in IMPORTS.items() for name, _, inside in imports if inside}
    assert [key for key in FUNCTION_IMPORTS_LEFT if key not in present] == []
    files = {path for path, _ in present}
    assert [path for path in FUNCTION_IMPORTS_ALLOWED_IN if path not in files] == []


def _cycles() -> list[frozenset[str]]:
    graph = {m: {name for name, _, inside in IMPORTS[m] if not inside and name in MODULES} for m in MODULES}
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def connect(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in graph:
        if v not in index:
            connect(v)
    return found


def test_no_import_cycles_between_our_modules():
    cycles = [sorted(c) for c in _cycles() if c not in CYCLES_LEFT]
    assert cycles == []
