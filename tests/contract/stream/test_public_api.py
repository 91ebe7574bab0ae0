"""The package surface: what `__all__` promises, and that nothing else of gateproof is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import gateproof.contract.stream as stream

PACKAGE_DIR = Path(stream.__file__).parent


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(stream) if not name.startswith("_")}
    assert set(stream.__all__) == public
    assert sorted(stream.__all__, key=str.casefold) == sorted(set(stream.__all__), key=str.casefold)


def test_every_exported_name_is_documented() -> None:
    for name in stream.__all__:
        if name != "RULES":
            assert getattr(stream, name).__doc__, name


def test_imports_stay_inside_the_package() -> None:
    """The load generator imports this package in its own process: it must not drag in other parts."""
    sources = sorted(PACKAGE_DIR.glob("*.py"))
    assert len(sources) >= 5
    for source in sources:
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{source.name}: relative import"
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                top = module.partition(".")[0]
                if top == "gateproof":
                    # the shared wire rules (bounded JSON parsing) are the one import from outside
                    allowed = (
                        module.startswith("gateproof.contract.stream") or module == "gateproof.contract._wire"
                    )
                    assert allowed, f"{source.name} imports {module}"
                else:
                    assert top in {"__future__", "abc", "codecs", "collections", "dataclasses", "enum", "json",
                                   "types", "typing"}, f"{source.name} imports {module}"  # fmt: skip


def test_importing_the_package_stays_light() -> None:
    """What the load generator's process pays for the grammar: no HTTP client, schema or fuzzer."""
    import subprocess
    import sys

    probe = (
        "import sys, gateproof.contract.stream; "
        "print(sorted(m for m in ('httpx', 'httpcore', 'jsonschema', 'schemathesis', 'requests') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert loaded.stdout.strip() == "[]"
