"""The rules of dependency: ``cluster → analysis → sampler``, never back (docs/layout.md).

Every module's imports are read from its source (``ast``, nothing is imported), so the test
fails on a forbidden edge even in code that no other test runs: ``sampler`` imports neither
``analysis`` nor ``cluster`` nor Ray; ``analysis`` never imports ``cluster`` or Ray. Inside
``analysis`` each room imports only what its docstring allows (``ANALYSIS_ROOMS``; imports for
annotations alone, under ``if TYPE_CHECKING:``, do not count).
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


def imports(path: Path, package: str, root: Path | None = None,
            runtime: bool = False) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved).

    ``runtime``: leave out imports under ``if TYPE_CHECKING:`` (annotations only).
    """
    tree = ast.parse(path.read_text())
    if runtime:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
    rel = path.relative_to((root or ROOT) / package).with_suffix("")
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


DOOR = {"reader", "flat_layers"}
ANALYSIS_ROOMS = {  # a room of analysis → the other rooms it may import (its docstring says so)
    "theory": set(),
    "diagnostics": DOOR,
    "law": {"theory", "diagnostics"} | DOOR,
    "calibration": {"theory", "diagnostics", "law"},
    "landscape": {"theory", "diagnostics", "law"} | DOOR,
    "claims": {"theory", "diagnostics", "law", "record"} | DOOR,
    "render": {"theory", "diagnostics", "law", "landscape", "claims", "record", "analyze"} | DOOR,
    "reader": {"flat_layers"},
    "flat_layers": set(),
    "record": {"theory", "diagnostics", "law", "landscape"} | DOOR,
    "analyze": {"diagnostics", "claims", "record"} | DOOR,
}


def room_offences(root: Path) -> list[str]:
    """Imports between rooms of ``analysis`` that ``ANALYSIS_ROOMS`` does not allow."""
    bad = []
    for path in sorted((root / "analysis").rglob("*.py")):
        rel = path.relative_to(root / "analysis")
        if rel.name == "__init__.py" and len(rel.parts) == 1:
            continue  # the package's lazy public API
        room = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for name in imports(path, "analysis", root, runtime=True):
            parts = name.split(".")
            if parts[:2] != ["sgdthermo", "analysis"]:
                continue
            other = parts[2] if len(parts) > 2 else "analysis"
            if other != room and other not in ANALYSIS_ROOMS.get(room, set()):
                bad.append(f"analysis/{rel} ({room}) imports {name}")
    return bad


def test_every_room_of_analysis_is_a_known_one():
    rooms = {p.name if p.is_dir() else p.stem for p in (ROOT / "analysis").iterdir()
             if (p.is_dir() and (p / "__init__.py").exists())
             or (p.suffix == ".py" and p.stem != "__init__")}
    assert rooms == set(ANALYSIS_ROOMS)


def test_each_room_of_analysis_imports_only_what_it_may():
    assert room_offences(ROOT) == []


def test_the_room_check_sees_a_forbidden_import(tmp_path):
    """Negative control: theory importing the reader, and a calibration importing an archive."""
    (tmp_path / "analysis" / "theory").mkdir(parents=True)
    (tmp_path / "analysis" / "theory" / "bad.py").write_text(
        "from typing import TYPE_CHECKING\nfrom ..reader import RunData\n"
        "if TYPE_CHECKING:\n    from ..law.gibbs import GibbsResult\n")
    (tmp_path / "analysis" / "calibration").mkdir()
    (tmp_path / "analysis" / "calibration" / "bad.py").write_text(
        "from sgdthermo.analysis.reader import open_archive\n")
    assert room_offences(tmp_path) == [
        "analysis/calibration/bad.py (calibration) imports sgdthermo.analysis.reader",
        "analysis/theory/bad.py (theory) imports sgdthermo.analysis.reader"]


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
ARRAY_FUNCTIONS = ["analysis/diagnostics/estimators.py", "analysis/law/contrast_tests.py",
                   "analysis/law/gibbs.py", "analysis/law/temperature.py",
                   "analysis/theory/linear.py", "analysis/theory/diagonal.py",
                   "analysis/diagnostics/convergence.py"]


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
