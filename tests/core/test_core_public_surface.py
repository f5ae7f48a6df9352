"""The public surface, tier by tier (httpx's tests/test_exported_members.py, per tier).

Tier 1, the application API: ``notifykit.__all__``, listed in docs/index.md. Tier 2, what
plugin authors may rely on: the module list in docs/plugins.md. Everything else is
internal. A name added to or removed from a tier shows up here, and so in review.
"""

from __future__ import annotations

import ast
import importlib
import re
import types
from pathlib import Path

import pytest

import notifykit
from notifykit import errors

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


# -- tier 1: notifykit ---------------------------------------------------------------------------


def test_all_is_sorted_unique_and_importable() -> None:
    assert notifykit.__all__ == sorted(set(notifykit.__all__))
    for name in notifykit.__all__:
        exec(f"from notifykit import {name}", {})  # the import statement itself


def test_every_public_name_of_notifykit_is_in_all() -> None:
    public = {
        name
        for name, value in vars(notifykit).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    public.discard("annotations")  # bound by ``from __future__ import annotations``
    assert sorted(public - set(notifykit.__all__)) == []


def test_the_whole_error_tree_is_exported_from_notifykit() -> None:
    for name in errors.__all__:
        assert name in notifykit.__all__, name
        assert getattr(notifykit, name) is getattr(errors, name)
    from notifykit import NotifyKitError, ProviderUnavailable

    assert issubclass(ProviderUnavailable, NotifyKitError)


def _index_names() -> list[str]:
    text = (DOCS / "index.md").read_text(encoding="utf-8")
    section = text.split("## The public API", 1)[1].split("\n## ", 1)[0]
    names = []
    for line in section.splitlines():
        if line.startswith("| `"):
            first_column = line.split("|")[1]
            names.extend(re.findall(r"`(\w+)`", first_column))
    return names


def test_docs_index_lists_exactly_the_application_api() -> None:
    listed = _index_names()
    assert len(listed) == len(set(listed)), "a name is listed twice in docs/index.md"
    assert sorted(listed) == sorted(notifykit.__all__)


def test_the_error_tree_reexport_imports_nothing_but_the_standard_library() -> None:
    """Exporting the errors from ``notifykit`` costs no import of its own: the module's
    top-level imports are the standard library's (models only under TYPE_CHECKING)."""
    source = Path(errors.__file__).read_text(encoding="utf-8")
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.col_offset == 0
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import) and node.col_offset == 0
        for alias in node.names
    }
    assert imported <= {"__future__", "collections", "typing"}, imported


# -- tier 2: docs/plugins.md ---------------------------------------------------------------------

_ITEM = re.compile(r"^- `(notifykit[\w.]*)` \((whole module|these names only)\): (.*)$")


def _plugin_tier() -> dict[str, tuple[bool, list[str]]]:
    text = (DOCS / "plugins.md").read_text(encoding="utf-8")
    section = text.split("## What plugin authors may rely on", 1)[1].split("\n## ", 1)[0]
    tier: dict[str, tuple[bool, list[str]]] = {}
    for line in section.splitlines():
        found = _ITEM.match(line)
        if found:
            module, kind, names = found.groups()
            assert module not in tier, f"{module} listed twice"
            tier[module] = (kind == "whole module", re.findall(r"`(\w+)`", names))
    return tier


TIER_2 = _plugin_tier()


def test_the_plugin_tier_is_listed() -> None:
    assert {"notifykit.provider", "notifykit.errors", "notifykit.http"} <= set(TIER_2)


@pytest.mark.parametrize("module_name", sorted(TIER_2))
def test_each_plugin_tier_module_matches_its_listing(module_name: str) -> None:
    whole, listed = TIER_2[module_name]
    module = importlib.import_module(module_name)
    exported = list(module.__all__)
    for name in exported:
        assert hasattr(module, name), f"{module_name}.__all__ names a missing {name}"
    if whole:
        assert listed == exported, f"docs/plugins.md: {module_name} is not its __all__"
    else:
        assert set(listed) <= set(exported), f"{module_name}: listed but not exported"
    assert len(listed) == len(set(listed))


def _plugin_imports() -> list[tuple[str, str, str]]:
    """(file, module, name) for every notifykit name the plugins' own code imports."""
    found = []
    for path in sorted(ROOT.glob("plugins/*/notifykit_*/**/*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == (
                "notifykit"
            ):
                for alias in node.names:
                    found.append((str(path.relative_to(ROOT)), node.module or "", alias.name))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "notifykit":
                        found.append((str(path.relative_to(ROOT)), alias.name, "*"))
    return found


def test_the_plugins_import_only_tier_1_and_tier_2_names() -> None:
    imports = _plugin_imports()
    assert imports, "no plugin imports found: the glob is wrong"
    outside = [
        f"{file}: from {module} import {name}"
        for file, module, name in imports
        if not (
            (module == "notifykit" and name in notifykit.__all__)
            or (module in TIER_2 and name in TIER_2[module][1])
        )
    ]
    assert outside == [], "plugins reach past the plugin interface (docs/plugins.md)"
