"""The one rule of dependency: ``cluster → analysis → sampler``, never back (README, Layout).

Every module's imports are read from its source (``ast``, nothing is imported), so the test
fails on a forbidden edge even in code that no other test runs: ``sampler`` imports neither
``analysis`` nor ``cluster`` nor Ray; ``analysis`` never imports ``cluster`` or Ray.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "sampler": ("sgdthermo.analysis", "sgdthermo.cluster", "ray"),
    "analysis": ("sgdthermo.cluster", "ray"),
}


def imports(path: Path, package: str) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    rel = path.relative_to(ROOT / package).with_suffix("")
    here = ["sgdthermo", package, *rel.parts[:-1]]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                out.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                out.add(node.module)
    return out


def offending(package: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imports(path, package):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[package]):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    return bad


@pytest.mark.parametrize("package", list(FORBIDDEN))
def test_no_import_crosses_a_forbidden_edge(package):
    assert offending(package) == []


def test_the_check_sees_relative_imports(tmp_path, monkeypatch):
    """Negative control: a relative import of analysis from sampler is caught."""
    fake = tmp_path / "sampler" / "models"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("from ...analysis import gibbs\nimport ray\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert sorted(offending("sampler")) == ["sampler/models/bad.py imports ray",
                                            "sampler/models/bad.py imports sgdthermo.analysis"]


def test_analysis_reads_the_archive_only_through_the_reader():
    users = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "analysis").rglob("*.py")
                   if any(n == "sgdthermo.sampler.archive" or
                          n.startswith("sgdthermo.sampler.archive.")
                          for n in imports(p, "analysis")))
    assert users == ["analysis/reader.py"]
