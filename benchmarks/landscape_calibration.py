"""Coverage of the landscape's standard errors, and the sharp-vs-bulk contrast, by simulation.

Each replicate is a whole run through the engine and ``analyze_run`` with its own seed; every
number is compared with the exact stationary law of SGD on a quadratic.

* ``--top-k 1`` on ``h = [2, 1, 0.3]`` (η = 0.2, 16 chains × 2000 draws after 500 steps): the
  z-scores of the virial temperature along the sharpest eigenvector, of the variance
  temperature ``λ·Var`` along it and of the complement's per-coordinate temperature, each
  against ``λ_j v_jᵀSv_j`` (and ``(tr SH − Σ)/(D − K)``). Two noise laws: isotropic, where the
  sharpest direction is hotter than the rest, and Gibbs-exact (``c_i = k(2 − ηh_i)``), where
  all temperatures are equal. The contrast ``(T_1 − T_⊥)/√(SE_1² + SE_⊥²)`` is tested at 5 %:
  its size under the Gibbs law, its power under isotropic noise.
* ``--pca 8`` on an 8-D diagonal quadratic (η = 0.1, 16 chains × 2000 draws): the z-score of
  the flatness exponent ψ against the slope of the exact law, under isotropic noise (ψ ≈ 1,
  variances far apart) and noise shaped like the curvature (ψ ≈ 0, variances within 15 % of
  each other, so the sample components mix), with how often the record flags unresolved
  components.

A calibrated SE gives z with SD ≈ 1 and |z| < 1.96 in about 95 % of replicates. Prints
markdown tables with binomial 95 % intervals.
Usage: ``python benchmarks/landscape_calibration.py [--replicates 200]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sgdthermo.analysis.reader import open_run  # noqa: E402
from sgdthermo.analysis.record import analyze_run  # noqa: E402
from sgdthermo.sampler.in_process import run_here  # noqa: E402

from benchmarks.fdr_calibration import interval  # noqa: E402

SHARP_H, SHARP_ETA = [2.0, 1.0, 0.3], 0.2
FLAT_H = [3.0, 2.0, 1.4, 1.0, 0.7, 0.5, 0.35, 0.25]
FLAT_ETA = 0.1
RUN = {"chains": 16, "draws": 2000, "burn_in": 500}


def _record(cfg: dict, folder: Path, **kw: int) -> dict:
    path = run_here(cfg, folder / f"r{cfg['seed']}.zarr")
    try:
        return analyze_run(open_run(path, 0), **kw).as_dict()
    finally:
        shutil.rmtree(path)


def sharp(seed: int, gibbs: bool, folder: Path) -> dict[str, float]:
    """One replicate's z-scores along the sharpest direction and in the complement."""
    h = np.asarray(SHARP_H)
    noise = (0.5 * (2 - SHARP_ETA * h)).tolist() if gibbs else [1.0] * len(h)
    cfg = {"seed": seed, "model": {"kind": "quadratic", "hessian": SHARP_H, "noise_cov": noise},
           "rule": {"kind": "sgd", "lr": SHARP_ETA}, "run": RUN}
    cv = _record(cfg, folder, top_k=1)["curvature"]
    exact = cv["temperature_exact"][0]
    return {"virial": cv["temperature_z"][0],
            "variance": (cv["temperature_variance"][0] - exact) / cv["temperature_variance_se"][0],
            "complement": cv["complement_temperature_z"],
            "contrast": (cv["temperature"][0] - cv["complement_temperature"])
            / float(np.hypot(cv["temperature_se"][0], cv["complement_temperature_se"]))}


def exact_slope(var: np.ndarray) -> float:
    """The least-squares slope −d log σ²/d log h of the exact variances over FLAT_H."""
    x = np.log(FLAT_H) - np.log(FLAT_H).mean()
    return float(-np.dot(x, np.log(var) - np.log(var).mean()) / np.dot(x, x))


def flat(seed: int, shaped: bool, folder: Path) -> tuple[float, bool]:
    """One replicate's z of ψ against the exact law's slope, and whether all were resolved."""
    h = np.asarray(FLAT_H)
    noise = FLAT_H if shaped else [1.0] * len(h)
    cfg = {"seed": seed, "model": {"kind": "quadratic", "hessian": FLAT_H, "noise_cov": noise},
           "rule": {"kind": "sgd", "lr": FLAT_ETA}, "run": RUN}
    fl = _record(cfg, folder, pca=len(h))["flatness"]
    want = exact_slope(FLAT_ETA * np.asarray(noise) / (h * (2 - FLAT_ETA * h)))
    return (fl["exponent"] - want) / fl["exponent_se"], fl["resolved"]


def _row(name: str, law: str, z: np.ndarray) -> str:
    z = z[np.isfinite(z)]
    return (f"| {name} | {law} | {len(z)} | {np.mean(z):+.3f} | {np.std(z):.3f} | "
            f"{interval(int((np.abs(z) < 1.96).sum()), len(z))} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp())
    n = args.replicates
    print("| estimate | noise law | replicates | mean z | SD of z | |z| < 1.96 (coverage) |")
    print("|---|---|---:|---:|---:|---|")
    contrast = {}
    for law, gibbs in (("isotropic", False), ("Gibbs-exact", True)):
        reps = [sharp((5000 if gibbs else 2000) + i, gibbs, folder) for i in range(n)]
        for key, name in (("virial", "T along v₁ (virial)"), ("variance", "λ₁·Var along v₁"),
                          ("complement", "T_⊥ per coordinate")):
            print(_row(name, law, np.array([r[key] for r in reps])), flush=True)
        contrast[law] = np.array([r["contrast"] for r in reps])
    flagged = {}
    for law, shaped in (("isotropic", False), ("curvature-shaped", True)):
        reps = [flat(3000 + i, shaped, folder) for i in range(n)]
        print(_row("ψ (flatness exponent)", law, np.array([z for z, _ in reps])), flush=True)
        flagged[law] = interval(sum(not ok for _, ok in reps), n)
    print()
    print("| contrast T₁ − T_⊥ at 5 % | replicates | rejected |")
    print("|---|---:|---|")
    for law, what in (("Gibbs-exact", "size"), ("isotropic", "power")):
        z = contrast[law][np.isfinite(contrast[law])]
        print(f"| {law} ({what}) | {len(z)} | {interval(int((np.abs(z) > 1.96).sum()), len(z))} |")
    print()
    print("| ψ's components flagged unresolved | replicates flagged |")
    print("|---|---|")
    for law, text in flagged.items():
        print(f"| {law} | {text} |")


if __name__ == "__main__":
    main()
