"""Structure checks: functions stay short enough to read at once.

The import-layering contract lives in ``pyproject.toml`` (``[tool.importlinter]``) and is
checked by ``make lint`` with import-linter's ``lint-imports``; this file checks what
import-linter cannot: the length of every function in ``src/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "mulligan"
MAX_LINES = 80

# Functions allowed past MAX_LINES, each with the reason. Keep this list short and honest.
ALLOWED: dict[str, str] = {}


def _function_lengths(root: Path) -> dict[str, int]:
    """``path:qualname`` -> number of lines, for every function and method under ``root``."""
    lengths: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(root.parent).as_posix()
        _walk(tree, rel, "", lengths)
    return lengths


def _walk(node: ast.AST, rel: str, prefix: str, out: dict[str, int]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                end = child.end_lineno or child.lineno
                out[f"{rel}:{name}"] = end - child.lineno + 1
            _walk(child, rel, f"{name}.", out)
        else:
            _walk(child, rel, prefix, out)


def test_no_function_is_longer_than_the_limit() -> None:
    too_long = {
        name: n
        for name, n in _function_lengths(SRC).items()
        if n > MAX_LINES and name not in ALLOWED
    }
    assert not too_long, (
        f"functions over {MAX_LINES} lines (split them, or list one in ALLOWED with a reason): "
        + ", ".join(f"{name} ({n})" for name, n in sorted(too_long.items()))
    )


def test_allowed_long_functions_still_exist_and_are_long() -> None:
    lengths = _function_lengths(SRC)
    stale = [name for name in ALLOWED if lengths.get(name, 0) <= MAX_LINES]
    assert not stale, f"ALLOWED lists functions that are gone or short now: {stale}"


def test_the_length_check_sees_nested_functions_and_methods(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    body = "\n".join("    x = 1" for _ in range(MAX_LINES + 5))
    (pkg / "m.py").write_text(
        f"class C:\n  def long(self):\n{body}\n"
        f"def outer():\n  def inner():\n{body}\n  return inner\n",
        encoding="utf-8",
    )
    lengths = _function_lengths(pkg)
    assert lengths["pkg/m.py:C.long"] > MAX_LINES
    assert lengths["pkg/m.py:outer.inner"] > MAX_LINES
