"""Every setting is declared: read from the environment in fintrack/settings.py, listed in
.env.example, read by the code as `settings.NAME` when it is used (never copied into a module
constant at import, never guessed with a getattr default)."""

import ast
import re
from pathlib import Path

from django.conf import global_settings
from django.conf import settings as django_settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FILE = ROOT / "fintrack" / "settings.py"
APPS = ("fintrack", "users", "banking", "consents", "sync", "analytics", "audit", "sandbox")
# django-environ's readers: env.str("NAME", ...), env.int(...), env("NAME"), environ.Env().str(...).
ENV_READERS = {"str", "int", "float", "bool", "list", "json", "db_url", "db_url_config", "url"}


def _code_files() -> list[Path]:
    """FinTrack's own modules: every app and the project package, without tests and migrations."""
    files = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "tests" in parts or "migrations" in parts or path == SETTINGS_FILE:
                continue
            files.append(path)
    return files


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _env_names_read_by_settings() -> set[str]:
    """Every environment variable fintrack/settings.py reads (all by a literal name)."""
    names = set()
    tree = _tree(SETTINGS_FILE)
    # `_require(name)` passes its caller's literal name on to env.str: its callers are counted.
    helpers = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_require"]
    inside_helpers = {id(node) for helper in helpers for node in ast.walk(helper)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in inside_helpers:
            continue
        func = node.func
        is_reader = (isinstance(func, ast.Attribute) and func.attr in ENV_READERS) or (
            isinstance(func, ast.Name) and func.id in {"env", "_require"}
        )
        if not is_reader or not node.args:
            continue
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id not in {"env", "environ"}
        ):
            continue  # e.g. a list's or a path's own method
        first = node.args[0]
        if isinstance(first, ast.Call) and getattr(first.func, "id", "") == "_require":
            continue  # env.db_url_config(_require("DATABASE_URL")): _require's call is counted
        assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
            f"settings.py line {node.lineno}: an environment variable read by a computed name"
        )
        names.add(first.value)
    return names


def _declared_settings() -> set[str]:
    """Upper-case names fintrack/settings.py assigns."""
    names = set()
    for node in _tree(SETTINGS_FILE).body:
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.If):
            targets = [
                t for sub in ast.walk(node) if isinstance(sub, ast.Assign) for t in sub.targets
            ]
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name) and name.id.isupper():
                    names.add(name.id)
    return names


def _env_example_names() -> set[str]:
    """Variables .env.example lists: `NAME=value`, or `# NAME=value` for an optional one."""
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^(?:#\s*)?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_every_environment_variable_settings_reads_is_listed_in_env_example():
    read = _env_names_read_by_settings()
    # Read by the test runner (pytest's env), not something an operator sets.
    read -= {"FINTRACK_TESTING"}

    assert len(read) > 50  # the parser found the readers
    assert sorted(read - _env_example_names()) == []


def test_env_example_lists_nothing_settings_does_not_read():
    assert sorted(_env_example_names() - _env_names_read_by_settings()) == []


def _settings_reads(tree: ast.Module):
    """(line, name) of every `settings.NAME` read in a module."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "settings"
            and node.attr.isupper()
        ):
            yield node.lineno, node.attr


def test_every_setting_the_code_reads_is_declared():
    known = _declared_settings() | {name for name in dir(global_settings) if name.isupper()}
    undeclared = [
        f"{path.relative_to(ROOT)}:{line} settings.{name}"
        for path in _code_files()
        for line, name in _settings_reads(_tree(path))
        if name not in known
    ]

    assert undeclared == []


def _getattr_on_settings(tree: ast.Module):
    """getattr(settings, NAME, default) calls (`conf`: a settings object passed in)."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) == 3
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in {"settings", "conf"}
        ):
            yield node


def test_no_setting_is_read_through_getattr_with_a_default():
    """A default beside the read hides a setting missing from settings.py (and so from the
    operator). Only per-bank overrides (`f"{BANK}_TEAM_ID"`, empty = the shared value) are read
    by a computed name, and each one of them for every configured bank is declared."""
    declared = _declared_settings()
    guessed = []
    for path in _code_files():
        for call in _getattr_on_settings(_tree(path)):
            name = call.args[1]
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            if isinstance(name, ast.Constant):
                guessed.append(f"{where} getattr(settings, {name.value!r}, …)")
                continue
            suffix = name.values[-1] if isinstance(name, ast.JoinedStr) else None
            assert isinstance(suffix, ast.Constant), f"{where}: a setting read by an unknown name"
            for code in django_settings.BANK_CODES:
                assert f"{code.upper()}{suffix.value}" in declared, where

    assert guessed == []


class _ImportTimeReads(ast.NodeVisitor):
    """`settings.NAME` reads that run when the module is imported: at module level, in class
    bodies, decorators and default arguments; not inside functions (they run when called)."""

    def __init__(self):
        self.reads: list[tuple[int, str]] = []

    def visit_Attribute(self, node):
        self.reads.extend(_settings_reads(ast.Module(body=[ast.Expr(node)], type_ignores=[])))

    def _visit_function(self, node):
        for expression in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
            if expression is not None:
                self.visit(expression)

    visit_FunctionDef = visit_AsyncFunctionDef = _visit_function

    def visit_Lambda(self, node):
        for expression in [*node.args.defaults, *node.args.kw_defaults]:
            if expression is not None:
                self.visit(expression)


# Read at import on purpose: models name the user model (Django's own way), choices list the
# banks the code knows (BANK_CODES: a constant, no operator sets it), and the root URLconf picks
# its routes once, when Django loads it (the sandbox's or none).
IMPORT_TIME_READS_ALLOWED = {
    ("*", "AUTH_USER_MODEL"),
    ("*", "BANK_CODES"),
    ("fintrack/urls.py", "SANDBOX_ENABLED"),
}


def test_no_module_reads_a_setting_when_it_is_imported():
    reads = []
    for path in _code_files():
        visitor = _ImportTimeReads()
        visitor.visit(_tree(path))
        relative = str(path.relative_to(ROOT))
        reads += [
            f"{relative}:{line} settings.{name}"
            for line, name in visitor.reads
            if not {(relative, name), ("*", name)} & IMPORT_TIME_READS_ALLOWED
        ]

    assert reads == []
