"""docs/configuration.md documents every configuration key, with its true default.

The pydantic models of ``notifykit.config.Config`` are walked recursively: a section (a
model, a list of models, a table of models) needs a heading ``[path]`` / ``[[path]]``; a
key needs a row in its section's table whose default cell is ``required``, ``none`` or a
TOML value equal to the model's default. Each registered provider type's ``Options`` and
``TemplateOptions`` are checked the same way, under ``Provider type <name>`` and
``Templates for <name>``.
"""

from __future__ import annotations

import re
import tomllib
import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from notifykit.config import Config, ProviderConfig
from notifykit.plugins import get_plugin_manager, provider_types

DOC = "configuration.md"
TYPES = provider_types(get_plugin_manager())


def _model_in(annotation: Any) -> tuple[str, type[BaseModel]] | None:
    """("model" | "list" | "table", Model) when the annotation holds a model, else None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = inner[0] if len(inner) == 1 else annotation
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    if origin is list and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return "list", args[0]
    if origin is dict and args and isinstance(args[1], type) and issubclass(args[1], BaseModel):
        return "table", args[1]
    return None


# The placeholder each table of sections uses in its heading.
PLACEHOLDERS = {"providers": "<instance>"}


def walk(
    model: type[BaseModel], path: str, title: str
) -> Iterator[tuple[str, str, FieldInfo | None]]:
    """(section title, key, field) for each key; field None for a section heading."""
    for name, field in model.model_fields.items():
        if field.exclude:
            continue  # not a file key (``source``)
        full = f"{path}.{name}" if path else name
        found = _model_in(field.annotation)
        if found is None:
            if not path and typing.get_origin(field.annotation) is dict:
                # ``templates``: a table of tables of provider-specific keys.
                yield f"[{full}.<template>.<instance>]", "", None
            else:
                yield title, field.alias or name, field
            continue
        kind, inner = found
        if kind == "model":
            yield f"[{full}]", "", None
            yield from walk(inner, full, f"[{full}]")
        elif kind == "list":
            yield f"[[{full}]]", "", None
            yield from walk(inner, full, f"[[{full}]]")
        else:
            nested = f"{full}.{PLACEHOLDERS[name]}"
            yield f"[{nested}]", "", None
            yield from walk(inner, nested, f"[{nested}]")


def keys() -> list[tuple[str, str, FieldInfo | None]]:
    found = list(walk(Config, "", ""))
    for name, registered in TYPES.items():
        found.append((f"Provider type {name}", "", None))
        found.extend(
            (f"Provider type {name}", k, f) for k, f in registered.cls.Options.model_fields.items()
        )
        template_fields = registered.cls.TemplateOptions.model_fields
        if template_fields:
            found.extend((f"Templates for {name}", k, f) for k, f in template_fields.items())
    return found


KEYS = keys()


def _ids(item: tuple[str, str, FieldInfo | None]) -> str:
    return f"{item[0]} {item[1]}".strip()


def default_cell(row: list[str]) -> str:
    assert len(row) >= 3, f"row {row} needs key, default and meaning"
    return row[1]


def documented_default(cell: str) -> Any:
    if cell == "required":
        return ...
    if cell == "none":
        return None
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"default cell {cell!r}: write required, none, or a TOML value in backticks"
    return tomllib.loads(f"v = {match.group(1)}")["v"]


def true_default(field: FieldInfo) -> Any:
    if field.is_required():
        return ...
    value = field.get_default(call_default_factory=True)
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


def test_the_walk_finds_sections_keys_and_provider_types() -> None:
    titles = {t for t, _, _ in KEYS}
    assert {"[routing.retry]", "[[routing.rules]]", "[providers.<instance>]"} <= titles
    assert {"console", "memory", "veesing", "twilio"} <= set(TYPES)
    assert ("[providers.<instance>]", "type") in {(t, k) for t, k, _ in KEYS}


@pytest.mark.parametrize("item", KEYS, ids=_ids)
def test_key_is_documented_with_its_default(
    item: tuple[str, str, FieldInfo | None], sections: Any
) -> None:
    title, key, field = item
    found = sections(DOC)
    assert title in found, f"docs/{DOC}: no heading '{title}'"
    if field is None:
        return
    rows = {row[0]: row for row in found[title].table_rows()}
    assert f"`{key}`" in rows, f"docs/{DOC}, section '{title}': key `{key}` is not in its table"
    assert documented_default(default_cell(rows[f"`{key}`"])) == true_default(field), (
        f"docs/{DOC}, section '{title}': the default of `{key}` is wrong"
    )


def test_no_documented_key_is_stale(sections: Any) -> None:
    expected: dict[str, set[str]] = {}
    for title, key, field in KEYS:
        expected.setdefault(title, set())
        if field is not None:
            expected[title].add(f"`{key}`")
    for title, section in sections(DOC).items():
        if title in expected:
            documented = {row[0] for row in section.table_rows()}
            assert documented <= expected[title], (title, documented - expected[title])


def test_provider_config_is_type_plus_options() -> None:
    # The walk documents ``type`` only: the rest of the section is the type's options.
    assert set(ProviderConfig.model_fields) == {"type"}
