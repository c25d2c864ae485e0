"""Code rules that a tool can hold: no function body in src/sensorprint over 60 lines.

The import layers of DESIGN.md are held by import-linter (`lint-imports`, configured in
pyproject.toml) and style by ruff; `make lint` runs both, `make test` runs them before pytest.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "sensorprint"
MAX_BODY_LINES = 60
# The simulator is test and demo scaffolding, and the schema is a list of SQL migrations:
# long by nature, and neither holds a decision a court will ask about.
EXEMPT = ("simulate/", "store/schema.py")


def body_length(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the function's last line (0 if none)."""
    body = node.body
    if ast.get_docstring(node, clean=False) is not None:
        body = body[1:]
    if not body:
        return 0
    return node.end_lineno - body[0].lineno + 1


def long_functions(source: str, max_lines: int = MAX_BODY_LINES) -> list[tuple[int, str, int]]:
    """(line, qualified name, body length) of every function or method in `source` longer than `max_lines`."""
    found: list[tuple[int, str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                length = body_length(child)
                if length > max_lines:
                    found.append((child.lineno, name, length))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return sorted(found)


def checked_files() -> list[Path]:
    """Every module of src/sensorprint that the 60-line rule covers."""
    files = sorted(SRC.rglob("*.py"))
    return [f for f in files if not f.relative_to(SRC).as_posix().startswith(EXEMPT)]


def _function(name: str, statements: int, indent: str = "", inner: str = "") -> str:
    """Source of a function with a three-line docstring, `inner` source, then `statements` assignments."""
    pad = indent + "    "
    lines = [f"{indent}def {name}():", f'{pad}"""A docstring', "", f'{pad}over several lines, which do not count."""']
    lines += [inner] if inner else []
    lines += [f"{pad}x{i} = {i}" for i in range(statements)]
    return "\n".join(lines) + "\n"


def test_the_rule_sees_long_bodies_and_skips_docstrings():
    inner = _function("inner", MAX_BODY_LINES + 1, indent="        ").rstrip("\n")
    source = (
        _function("at_limit", MAX_BODY_LINES)
        + "class C:\n"
        + _function("over", MAX_BODY_LINES + 1, indent="    ")
        + _function("host", 0, indent="    ", inner=inner)
    )
    found = long_functions(source)
    assert [(name, length) for _, name, length in found] == [
        ("C.over", MAX_BODY_LINES + 1),
        ("C.host", MAX_BODY_LINES + 5),  # the def line, three docstring lines and the body of `inner`
        ("C.host.inner", MAX_BODY_LINES + 1),
    ]
    assert body_length(ast.parse('def f():\n    """Only a docstring."""\n').body[0]) == 0
    assert body_length(ast.parse("def f():\n    return 1\n").body[0]) == 1


def test_the_rule_covers_the_package():
    files = checked_files()
    assert SRC / "prnu" / "matching.py" in files
    assert not any(f.relative_to(SRC).as_posix().startswith(EXEMPT) for f in files)
    assert not any("simulate" in f.parts for f in files) and SRC / "store" / "schema.py" not in files
    assert SRC / "store" / "case.py" in files


def test_no_function_body_is_longer_than_60_lines():
    offenders = []
    for path in checked_files():
        for line, name, length in long_functions(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(SRC.parents[1]).as_posix()}:{line} {name}: {length} lines")
    if offenders:
        pytest.fail(
            f"{len(offenders)} function bodies longer than {MAX_BODY_LINES} lines (split them):\n"
            + "\n".join(offenders)
        )
