"""Every discovered format plugin honours the plugin contract, and core names no format.

The contract (``wharf.core.interfaces.FormatPlugin``): ``name``, ``kinds`` (a non-empty frozenset of core's kinds),
``normalize_name`` (idempotent), ``validate_config`` (rejects settings it does not know with InvalidInput, for every
kind it supports), ``handler(core)`` (an async ``(ctx, scope, receive, send, subpath)`` callable), ``publish``;
optional ``explain`` (groups only), ``upstream_preset`` (proxies only) and ``promote_state`` (taking promotion's
arguments). The package defines ``PLUGIN``.

Core (``src/wharf/core``) must stay format-agnostic: no format name in its code as an identifier or a string
literal. Comments and docstrings may name formats as examples; the check parses the code, so they are skipped.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from wharf.config import Settings
from wharf.core.errors import InvalidInput
from wharf.core.interfaces import KINDS
from wharf.core.services import Core
from wharf.formats import load_plugins

CORE = Path(__file__).resolve().parents[2] / "src" / "wharf" / "core"
PLUGINS = load_plugins()
KNOWN_FORMATS = {"python", "npm", "maven", "cargo", "generic"}
# names a plugin might be asked to normalise: plain, mixed case, separators, scoped, paths, unicode
SAMPLE_NAMES = ["demo", "Demo", "demo-pkg", "demo_pkg", "Demo.Pkg", "a", "x1", "@scope/pkg", "com.example:demo",
                "tools/cli/1.4", "/tools/cli/", "Ünïcode", "name with space", "--", "", "../x"]


def test_formats_are_discovered() -> None:
    assert "python" in PLUGINS and "generic" in PLUGINS
    assert len(PLUGINS) >= 2


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Any:
    c = Core(Settings(data=tmp_path_factory.mktemp("contract") / "data", access_log=False), migrate=True)
    yield c
    c.close()


@pytest.mark.parametrize("fmt", sorted(PLUGINS))
class TestPluginContract:
    def test_package_defines_plugin(self, fmt: str) -> None:
        plugin = PLUGINS[fmt]
        parts = type(plugin).__module__.split(".")
        if parts[:2] != ["wharf", "formats"]:
            pytest.skip("a third-party plugin (found through an entry point)")
        package = importlib.import_module(".".join(parts[:3]))
        assert getattr(package, "PLUGIN", None) is type(plugin)

    def test_attributes(self, fmt: str) -> None:
        plugin = PLUGINS[fmt]
        assert isinstance(plugin.name, str) and re.fullmatch(r"[a-z][a-z0-9]*", plugin.name), plugin.name
        assert plugin.name == fmt
        assert isinstance(plugin.kinds, frozenset) and plugin.kinds, plugin.kinds
        assert plugin.kinds <= set(KINDS), plugin.kinds - set(KINDS)
        assert "hosted" in plugin.kinds or "proxy" in plugin.kinds  # a group needs members of its own format
        for method in ("normalize_name", "validate_config", "handler", "publish"):
            assert callable(getattr(plugin, method, None)), f"{fmt} lacks {method}()"
        if "group" in plugin.kinds:
            assert inspect.iscoroutinefunction(getattr(plugin, "explain", None)), f"{fmt} groups need async explain()"
        if hasattr(plugin, "upstream_preset"):
            assert "proxy" in plugin.kinds
            assert plugin.upstream_preset("no-such-preset-name") is None
        if hasattr(plugin, "promote_state"):  # promotion calls it with these arguments
            params = inspect.signature(plugin.promote_state).parameters
            assert list(params)[:5] == ["core", "source", "destination", "name", "versions"], list(params)
            assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in ("actor", "remote_addr"))

    def test_validate_config_rejects_unknown_settings(self, fmt: str) -> None:
        plugin = PLUGINS[fmt]
        for kind in sorted(plugin.kinds):
            assert isinstance(plugin.validate_config(kind, {}), dict)
            with pytest.raises(InvalidInput) as info:
                plugin.validate_config(kind, {"no_such_setting_42": True})
            assert "no_such_setting_42" in info.value.message

    def test_normalize_name_is_idempotent(self, fmt: str) -> None:
        plugin = PLUGINS[fmt]
        normalized = 0
        for name in SAMPLE_NAMES:
            try:
                once = plugin.normalize_name(name)
            except (InvalidInput, ValueError):
                continue  # not a name in this ecosystem: refusing it is fine
            assert isinstance(once, str)
            assert plugin.normalize_name(once) == once, (name, once)
            normalized += 1
        assert normalized >= 3, f"{fmt} normalised almost none of the sample names"

    def test_handler_is_an_async_callable(self, fmt: str, core: Any) -> None:
        handler = PLUGINS[fmt].handler(core)
        call = handler if inspect.isfunction(handler) or inspect.ismethod(handler) else getattr(handler, "__call__")
        assert inspect.iscoroutinefunction(call)
        assert len(inspect.signature(call).parameters) == 5  # ctx, scope, receive, send, subpath


# -- core names no format ---------------------------------------------------------------------------------------
def format_names_in_code(source: str, formats: set[str]) -> list[tuple[int, str]]:
    """(line, text) of every identifier or non-docstring string literal that names one of ``formats``."""
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                docstrings.add(id(first.value))
    words = "|".join(sorted(map(re.escape, formats)))
    in_text = re.compile(rf"(?i)(?<![a-z0-9])({words})(?![a-z0-9])")
    in_ident = re.compile(rf"(?i)({words})")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if in_text.search(node.value):
                found.append((node.lineno, node.value))
        elif isinstance(node, ast.Name) and in_ident.search(node.id):
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute) and in_ident.search(node.attr):
            found.append((node.lineno, node.attr))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and in_ident.search(node.name):
            found.append((node.lineno, node.name))
        elif isinstance(node, ast.arg) and in_ident.search(node.arg):
            found.append((node.lineno, node.arg))
        elif isinstance(node, ast.keyword) and node.arg and in_ident.search(node.arg):
            found.append((node.lineno, node.arg))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if in_ident.search(alias.name) or (getattr(node, "module", None) and in_ident.search(node.module)):
                    found.append((node.lineno, alias.name))
    return found


def test_the_core_check_finds_format_names() -> None:
    """The scanner itself: code and messages are flagged, comments and docstrings are not."""
    source = '''
"""Module docstring naming npm and Maven is fine."""
# a comment about cargo is fine
def f(x):
    """Generic docstring: fine."""
    if x.format == "npm":  # flagged
        return f"a {x} Maven repository"  # flagged
    python_only = 1  # flagged
    return x.cargo_index  # flagged
'''
    hits = format_names_in_code(source, KNOWN_FORMATS)
    assert sorted(line for line, _text in hits) == [6, 7, 8, 9], hits
    assert format_names_in_code('"""python"""\nx = "pythonic"\n', KNOWN_FORMATS) == []


def test_core_names_no_format() -> None:
    formats = KNOWN_FORMATS | set(PLUGINS)
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        for line, text in format_names_in_code(path.read_text(), formats):
            offenders.append(f"{path.relative_to(CORE.parent)}:{line}: {text!r}")
    assert offenders == [], "core code names a format:\n" + "\n".join(offenders)
