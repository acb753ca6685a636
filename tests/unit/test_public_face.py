"""Each package's public face: what ``__all__`` promises exists, and no one reaches behind it.

Like httpx's ``test_exported_members.py``: a package that names something in ``__all__`` must
export it (a rename that forgets ``__all__`` fails here, not in a user's import). And an AST
walk over ``src/`` finds every import of a ``_``-prefixed module or name from outside the
package that owns it: private means the package may change it without telling anyone.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import affidavit

SRC = Path(affidavit.__file__).parent.parent

#: The packages with a public face (``__all__`` in their ``__init__``).
PUBLIC_PACKAGES = [
    "affidavit.admission",
    "affidavit.attestations",
    "affidavit.attestations.predicates",
    "affidavit.collect",
    "affidavit.envtest",
    "affidavit.ledger",
    "affidavit.operator",
    "affidavit.policy",
]


@pytest.mark.parametrize("name", PUBLIC_PACKAGES)
def test_every_name_in_all_is_exported(name: str) -> None:
    package = importlib.import_module(name)
    exported: list[str] = package.__all__
    assert len(exported) == len(set(exported)), f"{name}.__all__ repeats a name"
    missing = [n for n in exported if not hasattr(package, n)]
    assert missing == [], f"{name}.__all__ names what it does not export"


def _is_package(module: str, src: Path) -> bool:
    return (src.joinpath(*module.split(".")) / "__init__.py").is_file()


def _private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def private_imports(source: str, module: str, *, is_package: bool, src: Path) -> Iterator[str]:
    """Imports in ``module`` of a private module or name owned by a package it is not in."""
    package = module if is_package else module.rpartition(".")[0]
    tree = ast.parse(source)
    for node in ast.walk(tree):
        imported: list[tuple[str, str | None]] = []
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            imported = [(base, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            imported = [(alias.name, None) for alias in node.names]
        else:
            continue
        for target, name in imported:
            if not target.startswith("affidavit"):
                continue
            segments = target.split(".")
            where = next((i for i, s in enumerate(segments) if _private(s)), None)
            if where is not None:
                owner = ".".join(segments[:where])
                what = f"private module {target}"
            elif name is not None and _private(name):
                owner = target if _is_package(target, src) else target.rpartition(".")[0]
                what = f"private name {target}.{name}"
            else:
                continue
            if package != owner and not package.startswith(owner + "."):
                yield f"{module}:{node.lineno}: {what}"


def _modules(src: Path) -> Iterator[tuple[str, Path, bool]]:
    for path in sorted((src / "affidavit").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        yield ".".join(parts[:-1] if is_package else parts), path, is_package


def test_nothing_imports_another_package_s_private_modules_or_names() -> None:
    found = [
        finding
        for module, path, is_package in _modules(SRC)
        for finding in private_imports(
            path.read_text(encoding="utf-8"), module, is_package=is_package, src=SRC
        )
    ]
    assert found == []


def test_the_walk_finds_private_imports_from_outside_and_allows_them_inside() -> None:
    source = (
        "from affidavit.attestations.predicates._base import WireModel\n"
        "from affidavit.policy.combine import _strictest\n"
        "from affidavit.attestations import _HOMES\n"
        "import affidavit.ledger._private\n"
        "from ._sibling import thing\n"
    )
    found = list(private_imports(source, "affidavit.cli.x", is_package=False, src=SRC))
    assert found == [
        "affidavit.cli.x:1: private module affidavit.attestations.predicates._base",
        "affidavit.cli.x:2: private name affidavit.policy.combine._strictest",
        "affidavit.cli.x:3: private name affidavit.attestations._HOMES",
        "affidavit.cli.x:4: private module affidavit.ledger._private",
    ]
    inside = "from affidavit.attestations.predicates._base import WireModel\n"
    assert not list(
        private_imports(
            inside, "affidavit.attestations.predicates.review", is_package=False, src=SRC
        )
    )
    assert not list(
        private_imports(
            "from affidavit.policy.combine import _strictest\n",
            "affidavit.policy.evaluate",
            is_package=False,
            src=SRC,
        )
    )


def test_the_policy_layer_and_collection_load_no_verification_machinery() -> None:
    """``affidavit.attestations`` exports lazily: importing policy (which uses its references)
    or collection (its predicates) pulls in no HTTP client, no database and no verifier."""
    code = (
        "import sys, affidavit.policy, affidavit.collect\n"
        "heavy = ('httpx', 'sqlalchemy', 'kubernetes', 'kopf', 'fastapi',\n"
        "         'affidavit.attestations.verify', 'affidavit.attestations.registry')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"
