"""docs/plugins.md documents every hook spec of ``notifykit.hookspecs``: a heading with the
hook's name, its parameters named in that section, and whether it is firstresult."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pluggy
import pytest

from notifykit import hookspecs

DOC = "plugins.md"


def specs() -> dict[str, Callable[..., Any]]:
    return {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "notifykit_spec")
    }


SPECS = specs()


def test_the_known_hooks_are_found() -> None:
    assert {"register_providers", "register_sandboxes", "register_commands", "on_event"} <= set(
        SPECS
    )


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_is_documented(name: str, sections: Any) -> None:
    found = sections(DOC)
    assert name in found, f"docs/{DOC}: no heading for hook `{name}`"
    text = found[name].text
    for param in inspect.signature(SPECS[name]).parameters:
        assert f"{name}({param}" in text, f"docs/{DOC}: `{name}` does not show parameter {param}"


def test_firstresult_is_stated(sections: Any) -> None:
    hooks = sections(DOC)["Hooks"].text
    pm = pluggy.PluginManager("notifykit")
    pm.add_hookspecs(hookspecs)
    firstresult = sorted(n for n in SPECS if getattr(pm.hook, n).spec.opts["firstresult"])
    if firstresult:
        for name in firstresult:
            assert f"`{name}` is `firstresult`" in hooks, name
    else:
        assert "None of them is `firstresult`" in hooks


def test_every_documented_hook_exists(sections: Any) -> None:
    found = sections(DOC)
    titles = list(found)
    start = titles.index("Hooks")
    end = titles.index("The SmsProvider interface")
    assert set(titles[start + 1 : end]) <= set(SPECS)
