"""The HTTP edge and the phone module use their dependencies' public API only.

They once read httpx's and phonenumbers' private names for speed, and had to cap both
dependencies below their next release (issue 12). Any private name read again (an
attribute starting with ``_`` on anything but ``self``, or imported) fails here.
"""

from __future__ import annotations

import ast
import inspect
from types import ModuleType

import pytest

from notifykit import http, phone


def _private_uses(source: str) -> list[str]:
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            if node.attr.startswith("__") and node.attr.endswith("__"):
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names if a.name.startswith("_")]
            module_name = node.module or ""
            private_module = any(
                part.startswith("_") and not part.endswith("__") for part in module_name.split(".")
            )
            if names or private_module:
                found.append(f"line {node.lineno}: from {module_name} import {names}")
    return found


@pytest.mark.parametrize("module", [http, phone], ids=lambda m: m.__name__)
def test_no_private_name_of_another_object_or_module_is_read(module: ModuleType) -> None:
    assert _private_uses(inspect.getsource(module)) == []


def test_the_check_sees_private_names() -> None:
    """The check itself, on the shortcuts http.py and phone.py once took."""
    source = (
        "from phonenumbers import phonenumberutil as _util\n"
        "from phonenumbers.phonenumberutil import _extract_country_code\n"
        "def f(self, request, client):\n"
        "    self._cache = request.headers._list\n"
        "    return client._merge_url, _util._MIN_LENGTH_FOR_NSN, len(request)\n"
    )
    assert sorted(_private_uses(source)) == sorted(
        [
            "line 2: from phonenumbers.phonenumberutil import ['_extract_country_code']",
            "line 4: request.headers._list",
            "line 5: client._merge_url",
            "line 5: _util._MIN_LENGTH_FOR_NSN",
        ]
    )
