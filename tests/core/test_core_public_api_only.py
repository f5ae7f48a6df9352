"""notifykit and its plugins use their dependencies' public API only.

The HTTP edge and the phone module once read httpx's and phonenumbers' private names for
speed, and had to cap both dependencies below their next release (issue 12). Any private
name read again (an attribute starting with ``_`` on anything but ``self``, or imported)
fails here: in http.py and phone.py with no exception, in every other module of notifykit
and the plugins unless it is one of notifykit's own objects listed in ``OWN_PRIVATE``
(issue 17).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import pkgutil
from pathlib import Path
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


# Private names of notifykit's own objects, read across its own modules: reviewed, and
# none of them a dependency's. Anything else that starts with ``_`` fails below.
OWN_PRIVATE = {
    "notifier._call",  # notifykit.notifier.Notifier, from the verifier and the testing kit
    "notifier._check_open",
    "self._notifier._call",
    "self._notifier._check_open",
    "other._snapshot",  # notifykit.testing.outbox.Outbox
    "parts._replace",  # a urllib SplitResult: namedtuple's public _replace
}
PACKAGES = ["notifykit", "notifykit_veesing", "notifykit_twilio", "notifykit_aliyun"]


def _modules() -> list[str]:
    found = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        found.append(name)
        found.extend(
            info.name for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}.")
        )
    return sorted(found)


def _reflective_private(source: str) -> list[str]:
    """getattr/setattr/hasattr/delattr with a private name spelled as a string."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and node.args[1].value.startswith("_")
            and not node.args[1].value.endswith("__")
            and not (isinstance(node.args[0], ast.Name) and node.args[0].id in ("self", "cls"))
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def _own_import(use: str) -> bool:
    # _notifykit_pytest: notifykit's own pytest11 entry module (private: pytest loads it).
    return use.split(": ", 1)[1].startswith(("from notifykit", "from _notifykit_pytest"))


@pytest.mark.parametrize("module_name", _modules())
def test_no_module_reads_a_dependencys_private_name(module_name: str) -> None:
    spec = importlib.util.find_spec(module_name)
    assert spec is not None and spec.origin is not None
    source = Path(spec.origin).read_text(encoding="utf-8")
    uses = [
        use
        for use in _private_uses(source) + _reflective_private(source)
        if use.split(": ", 1)[1] not in OWN_PRIVATE and not _own_import(use)
    ]
    assert uses == [], f"{module_name}: private names read (a dependency's?): {uses}"


@pytest.mark.parametrize("module", [http, phone], ids=lambda m: m.__name__)
def test_no_private_name_of_another_object_or_module_is_read(module: ModuleType) -> None:
    assert _private_uses(inspect.getsource(module)) == []


def test_the_check_sees_reflective_private_names() -> None:
    source = (
        "def f(self, response):\n"
        "    getattr(response, '_content', None)\n"
        "    getattr(self, '_mine')\n"
        "    hasattr(response, '__len__')\n"
    )
    assert _reflective_private(source) == ["line 2: getattr(response, '_content', None)"]


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
