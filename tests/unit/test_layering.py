"""The layers of ARCHITECTURE.md hold: ``tui -> rules -> store``, and neither ``rules``
nor ``store`` imports Textual or Rich. The contracts live in ``pyproject.toml``
(``[tool.importlinter]``); this runs them with import-linter's ``lint-imports`` as CI
does, so ``make test`` fails on an import that breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert command, "import-linter is not installed (it is in the test extra)"
    return subprocess.run(
        [command, "--config", str(root / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=root,
        # The packages of this checkout, not whichever the environment has installed.
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=300,
    )


def test_the_contracts_are_the_architectures() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = {c["name"]: c for c in config["contracts"]}
    layers = [c for c in contracts.values() if c["type"] == "layers"]
    assert [c["layers"] for c in layers] == [["tui", "rules", "store"]]
    [forbidden] = [c for c in contracts.values() if c["type"] == "forbidden"]
    assert set(forbidden["source_modules"]) == {"rules", "store"}
    assert {"textual", "rich"} <= set(forbidden["forbidden_modules"])


def test_imports_keep_the_layers() -> None:
    out = _lint_imports(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("store/bad_layer.py", "import rules.errors\n", "Layers"),
        ("rules/bad_layer.py", "from tui import exits\n", "Layers"),
        ("rules/bad_layer.py", "def f() -> None:\n    import textual.app\n", "Textual"),
    ],
)
def test_an_import_against_the_layers_breaks_a_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    """The check has teeth: a copy of the packages with one import against the layers
    (even one inside a function) fails it, naming the contract."""
    for package in ("tui", "rules", "store"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / module).write_text(line)
    out = _lint_imports(tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 broken" in out.stdout
    assert any(broken in row and "BROKEN" in row for row in out.stdout.splitlines())
