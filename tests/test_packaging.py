"""`pip install .` (a built wheel) provides every subpackage and the console script."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_wheel_contains_and_imports_subpackages(tmp_path):
    """Built from a copy of the tree: setuptools' ``build/`` never keeps stale modules in the
    wheel, and the checkout is left as it was."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".venv", "build", ".git", "__pycache__", "*.zarr", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("sgdthermo-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("sgdthermo/sampler/engine.py", "sgdthermo/sampler/models/mlp.py",
                   "sgdthermo/sampler/archive/store.py",
                   "sgdthermo/sampler/rules/adaptive.py", "sgdthermo/cluster/cli.py",
                   "sgdthermo/analysis/render/report.py"):
        assert module in names, module
    packages = sorted(str(p.parent.relative_to(ROOT)) for top in ("sampler", "analysis",
                                                                   "cluster")
                      for p in (ROOT / top).rglob("__init__.py"))
    missing = [p for p in packages if f"sgdthermo/{p}/__init__.py" not in names]
    assert missing == [], f"subpackages left out of the wheel (pyproject.toml): {missing}"
    assert any(n.endswith("entry_points.txt") for n in names)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    code = ("import sgdthermo.sampler.engine, sgdthermo.cluster.cli, "
            "sgdthermo.analysis.render.report; print(sgdthermo.sampler.engine.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                         capture_output=True, text=True, env={"PYTHONPATH": str(target)})
    assert out.stdout.strip().startswith(str(target))
