"""`pip install .` (a built wheel) provides every subpackage and the console script."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_wheel_contains_and_imports_subpackages(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("sgdthermo-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("sgdthermo/sampler/engine.py", "sgdthermo/sampler/models/mlp.py",
                   "sgdthermo/sampler/archive/store.py",
                   "sgdthermo/sampler/rules/adaptive.py", "sgdthermo/cluster/cli.py",
                   "sgdthermo/analysis/report.py"):
        assert module in names, module
    assert any(n.endswith("entry_points.txt") for n in names)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    code = ("import sgdthermo.sampler.engine, sgdthermo.cluster.cli, sgdthermo.analysis.render.report;"
            "print(sgdthermo.sampler.engine.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                         capture_output=True, text=True, env={"PYTHONPATH": str(target)})
    assert out.stdout.strip().startswith(str(target))
