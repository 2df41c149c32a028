"""Per-layer rows against exact answers: a two-layer quadratic written as a user's module.

``ℓ_i(θ) = Σ_k ½h_kθ_k² − ξ_i·θ`` with θ split into layers ``a`` (3 coordinates) and ``b`` (2).
Under SGD at rate η and batch B each coordinate's stationary temperature is exactly
``T_k = η s_k/(2 − ηh_k)`` with ``s_k = Var(ξ_k)/B`` (the 1-D law, per coordinate), so the layer
temperature is their mean and ``β_b/β_a = T_a/T_b``. Both must agree within 4 of their SEs; the
negative control, the ratio the other way round, must not.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from sgdthermo.analysis.analyze import analyze_archive

from tests.conftest import run_local

H = {"a": [1.0, 0.5, 2.0], "b": [0.8, 1.5]}
LR, B = 0.3, 2

MODULE = textwrap.dedent(f'''
    import torch
    from torch import nn


    class TwoLayers(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(torch.zeros(3))
            self.b = nn.Parameter(torch.zeros(2))
            self.register_buffer("h", torch.tensor({H["a"] + H["b"]}), persistent=False)

        def forward(self, xi):
            theta = torch.cat([self.a, self.b])
            return 0.5 * (self.h * theta**2).sum() - xi @ theta


    def build():
        return TwoLayers()


    def passthrough(output, y):
        return output
''')


def test_layer_temperatures_and_beta_ratio_match_exact_theory(tmp_path: Path):
    (tmp_path / "two.py").write_text(MODULE)
    xi = np.random.default_rng(2).standard_normal((300, 5)) * [1.0, 0.5, 1.5, 2.0, 0.7]
    xi -= xi.mean(0)
    np.savez(tmp_path / "xi.npz", x=xi, y=np.zeros(300))
    job = {"model": {"kind": "torch", "module": f"{tmp_path}/two.py:build",
                     "loss": f"{tmp_path}/two.py:passthrough", "init": "shared",
                     "data": {"file": str(tmp_path / "xi.npz")}},
           "rule": {"kind": "sgd", "lr": LR},
           "run": {"chains": 16, "draws": 2000, "burn_in": 100, "batch_size": B, "thin": 2}}
    record = analyze_archive(run_local(tmp_path, job)).as_dict()["runs"][0]
    layers = {row["name"]: row for row in record["layers"]}
    assert list(layers) == ["a", "b"] and layers["a"]["size"] == 3
    s = xi.var(0) / B
    h = np.array(H["a"] + H["b"])
    exact = LR * s / (2 - LR * h)
    t_exact = {"a": exact[:3].mean(), "b": exact[3:].mean()}
    for name, row in layers.items():
        assert abs(row["t_fluct"] - t_exact[name]) < 4 * row["t_fluct_se"], (name, row)
        assert row["max_r_hat"] < 1.05 and row["groups"] >= 20
    ratio, se = layers["b"]["beta_ratio"], layers["b"]["beta_ratio_se"]
    assert abs(ratio - t_exact["a"] / t_exact["b"]) < 4 * se, (ratio, se)
    assert abs(ratio - t_exact["b"] / t_exact["a"]) > 4 * se  # the negative control
    assert layers["a"]["beta_ratio"] == 1.0


def test_a_partly_recorded_network_still_gets_every_layer(tmp_path: Path):
    """``run.record`` keeps every 7th coordinate: the layer rows cover all of θ (the engine's
    sums), their convergence columns the recorded coordinates of each layer."""
    from sgdthermo.analysis.reader import open_archive

    job = {"model": {"kind": "mlp", "hidden": [6], "n": 100}, "rule": {"kind": "sgd", "lr": 0.1},
           "run": {"chains": 4, "draws": 100, "burn_in": 20, "batch_size": 8,
                   "record": {"every": 7}}}
    path = run_local(tmp_path, job)
    rows = analyze_archive(path).as_dict()["runs"][0]["layers"]
    run = open_archive(path)[0]
    assert [r["name"] for r in rows] == ["w1", "b1", "w2", "b2"]
    assert sum(r["size"] for r in rows) == run.model.dim == 6 * 64 + 6 + 10 * 6 + 10
    temps = analyze_archive(path).runs[0].estimates.temperatures
    assert np.isclose(rows[0]["t_fluct"], temps.fluctuation[:384].mean(), rtol=1e-12)
    assert all(np.isfinite(r["max_r_hat"]) for r in rows)  # each layer holds recorded coords


def test_degenerate_layer_statistics_are_nan_not_errors():
    """A layer with zero temperature (no gradient reaches it), one batch, or no finite
    diagnostic: the ratio, SE and extremes are NaN, built directly."""
    from sgdthermo.analysis.law.layers import _extreme, _ratio, _se

    assert all(np.isnan(v) for v in _ratio(np.array([1.0, 2.0]), np.zeros(2)))
    assert np.isnan(_se(np.array([3.0])))
    assert np.isnan(_extreme([[np.nan, np.nan]], np.nanmax))
    assert np.isnan(_extreme(None, np.nanmin))
    r, se = _ratio(np.array([2.0, 2.0, 2.0]), np.array([1.0, 1.0, 1.0]))
    assert r == 2.0 and se == 0.0  # no spread: an exact ratio


def test_layer_sums_are_read_in_bounded_slices_and_add_up(tmp_path: Path):
    """A layer's fluctuation total, read a slice at a time, equals the whole read summed."""
    from sgdthermo.analysis.reader import open_run

    cfg = {"seed": 1, "model": {"kind": "quadratic", "hessian": [1.0, 0.5, 2.0, 0.3, 0.8],
                                "noise_cov": [1.0] * 5},
           "rule": {"kind": "sgd", "lr": 0.1},
           "run": {"chains": 4, "draws": 60, "burn_in": 0},
           "cluster": {"chunk_draws": 20}}
    run = open_run(run_local(tmp_path, cfg), 0)
    one_coordinate = 4 * 3 * 8  # chains × blocks × float64
    parts = run.coordinate_slices(slice(1, 5), budget=2 * one_coordinate)
    assert parts == [slice(1, 3), slice(3, 5)]
    assert run.coordinate_slices(slice(1, 5), budget=1) == [slice(i, i + 1) for i in range(1, 5)]
    keep = np.array([True, False, True, True])
    total, steps = run.fluctuation_total(slice(1, 5), keep)
    whole, whole_steps = run.fluctuation(slice(1, 5))
    np.testing.assert_allclose(total, whole[keep].sum(axis=-1), rtol=1e-12)
    np.testing.assert_array_equal(steps, whole_steps)
    assert total.shape == (3, 3)
    assert run.coordinate_slices(slice(2, 2)) == []  # an empty layer: nothing read, zeros
    empty, _ = run.fluctuation_total(slice(2, 2), keep)
    np.testing.assert_array_equal(empty, np.zeros((3, 3)))
