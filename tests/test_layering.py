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


MATH = ["sampler/models", "sampler/rules", "sampler/linear_forms.py", "sampler/engine.py",
        "sampler/stability.py", "sampler/minibatch.py"]
ARRAY_FUNCTIONS = ["analysis/estimators.py", "analysis/contrast_tests.py", "analysis/gibbs.py",
                   "analysis/temperature.py", "analysis/theory.py", "analysis/theory_diagonal.py",
                   "analysis/convergence.py"]


def _files(parts: list[str]) -> list[Path]:
    out: list[Path] = []
    for part in parts:
        p = ROOT / part
        out += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    return out


def test_the_math_knows_no_config_and_no_pydantic():
    """Models, rules and the engine never import the config (pydantic) layer: it builds them."""
    bad = [f"{p.relative_to(ROOT)} imports {n}" for p in _files(MATH)
           for n in imports(p, p.relative_to(ROOT).parts[0])
           if any(n == f or n.startswith(f + ".") for f in ("pydantic", "sgdthermo.sampler.config"))]
    assert bad == []


def test_estimators_take_arrays_not_archives():
    """Temperatures, the Gibbs test and theory are tested on arrays: no reader, no zarr."""
    bad = [f"{p.relative_to(ROOT)} imports {n}" for p in _files(ARRAY_FUNCTIONS)
           for n in imports(p, "analysis")
           if n in ("sgdthermo.analysis.reader", "zarr", "xarray")]
    assert bad == []


def test_only_the_archive_package_touches_zarr():
    users = sorted(str(p.relative_to(ROOT)) for pkg in ("sampler", "analysis", "cluster")
                   for p in (ROOT / pkg).rglob("*.py")
                   if any(n == "zarr" or n.startswith("zarr.") for n in imports(p, pkg)))
    assert users == ["sampler/archive/layout.py", "sampler/archive/schema.py",
                     "sampler/archive/storage.py", "sampler/archive/store.py",
                     "sampler/archive/until_state.py"]


def test_only_the_storage_module_opens_filesystems():
    """Every door to an archive's bytes takes the process's storage options (``storage``)."""
    users = sorted(str(p.relative_to(ROOT)) for pkg in ("sampler", "analysis", "cluster")
                   for p in (ROOT / pkg).rglob("*.py")
                   if any(n == "fsspec" or n.startswith("fsspec.") for n in imports(p, pkg)))
    assert users == ["sampler/archive/storage.py"]


CLASSES = {"Quadratic", "LinearRegression", "LogisticRegression", "MeanModel", "MLP",
           "ScaledModel", "GLM", "DatasetModel", "UpdateRule"}


def _isinstance_targets(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "isinstance" and len(node.args) == 2):
            names |= {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
            names |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
    return names


def test_no_isinstance_on_models_rules_or_their_configs():
    """The engine, stability, theory and claims ask the model or rule; they never switch on type."""
    bad = []
    for pkg in ("sampler", "analysis"):
        for p in sorted((ROOT / pkg).rglob("*.py")):
            hit = {n for n in _isinstance_targets(p) if n in CLASSES or n.endswith("Config")}
            if hit:
                bad.append(f"{p.relative_to(ROOT)}: {sorted(hit)}")
    assert bad == []


def test_the_isinstance_check_sees_a_type_switch(tmp_path):
    """Negative control."""
    f = tmp_path / "x.py"
    f.write_text("if isinstance(model, Quadratic | ScaledModel) or isinstance(r, cfg.SGDConfig):"
                 "\n    pass\n")
    assert _isinstance_targets(f) >= {"Quadratic", "ScaledModel", "SGDConfig"}


def test_claims_need_no_type_ignores():
    """Claims read typed records (``RunAnalysis``, ``RuleConfig.param``), not unions by hand."""
    bad = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / "analysis" / "claims").glob("*.py"))
           for i, line in enumerate(p.read_text().splitlines(), 1) if "type: ignore" in line]
    assert bad == []
