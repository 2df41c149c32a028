"""Nested R-hat and superchains: the definition, the starts, and a run before and after mixing.

* ``nested_r_hat`` equals its definition (Margossian et al. 2024, eq. 17–19) written out with
  loops on random draws, to 1e-12; constant chains have none (NaN); bad groupings are refused.
* ``run.superchains``: the chains of one superchain share θ₀ exactly, different superchains do
  not, and the starts do not depend on how the chains are split into shards.
* Through the pipeline: 16 superchains of 8 short chains on a quadratic (slowest relaxation
  20 steps, integrated time about 39), started far apart (init_scale 10). Without burn-in,
  100 draws still carry the starts: expected nR̂ ≈ √(1 + 4/6) ≈ 1.3, asserted > 1.1 (the
  negative control). After 400 burn-in steps, 200 draws: at stationarity B_ν/W_ν ≈
  (τ/n)/M ≈ 0.024, nR̂ ≈ 1.012, asserted < 1.05.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sgdthermo.analysis.diagnostics.nested_rhat import nested_r_hat
from sgdthermo.analysis.reader import open_run
from sgdthermo.analysis.record import analyze_run
from sgdthermo.sampler.config.base import ConfigError
from sgdthermo.sampler.jobspec import validate
from sgdthermo.sampler.shard import ShardRunner

from tests.conftest import make_archive, run_local


def _by_definition(x: np.ndarray, k: int) -> float:
    """Eq. 17–19 of Margossian et al. (2024) for one coordinate ``x [C, n]``, with loops."""
    c, n = x.shape
    m = c // k
    groups = [x[j * m:(j + 1) * m] for j in range(k)]
    super_means = [g.mean() for g in groups]
    overall = sum(super_means) / k
    b = sum((s - overall) ** 2 for s in super_means) / (k - 1)
    w = 0.0
    for g in groups:
        means = [row.mean() for row in g]
        between = sum((mu - np.mean(means)) ** 2 for mu in means) / (m - 1) if m > 1 else 0.0
        within = sum(sum((v - row.mean()) ** 2 for v in row) / (n - 1) for row in g) / m
        w += (between + within) / k
    return float(np.sqrt(1 + b / w))


@pytest.mark.parametrize("k, m", [(4, 3), (2, 1), (5, 2)])
def test_nested_r_hat_is_its_definition(k: int, m: int):
    rng = np.random.default_rng(k * 10 + m)
    x = rng.standard_normal((k * m, 30, 3)) + rng.standard_normal((k * m, 1, 3))
    got = nested_r_hat(x, k)
    want = [_by_definition(x[..., j], k) for j in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_degenerate_input_has_a_defined_outcome():
    assert np.isnan(nested_r_hat(np.ones((4, 10, 1)), 2)).all()
    with pytest.raises(ValueError, match="divide"):
        nested_r_hat(np.zeros((6, 10, 1)), 4)
    with pytest.raises(ValueError, match="≥ 2"):
        nested_r_hat(np.zeros((6, 10, 1)), 1)


def _job(superchains: int, chains: int = 8, burn_in: int = 0, draws: int = 40) -> dict:
    return {"seed": 2, "model": {"kind": "quadratic", "hessian": [1.0, 0.5],
                                 "noise_cov": [1.0, 1.0]},
            "rule": {"kind": "sgd", "lr": 0.1},
            "run": {"chains": chains, "draws": draws, "burn_in": burn_in, "init_scale": 10.0,
                    "superchains": superchains},
            "cluster": {"shard_chains": 3}}


def test_superchains_share_their_start_whatever_the_shards(tmp_path: Path):
    starts = []
    for shard_chains, name in ((3, "a.zarr"), (8, "b.zarr")):
        job = _job(4) | {"cluster": {"shard_chains": shard_chains}}
        path = make_archive(tmp_path, job, name)
        runners = [ShardRunner(path, 0, s) for s in range(-(-8 // shard_chains))]
        starts.append(torch.cat([r._start()[1].params for r in runners]))
    a, b = starts
    assert torch.equal(a, b)
    for g in range(4):
        assert torch.equal(a[2 * g], a[2 * g + 1])  # one start per superchain
    assert len({tuple(row.tolist()) for row in a}) == 4


def test_superchains_must_divide_the_chains():
    with pytest.raises((ConfigError, ValueError), match="run.superchains must divide"):
        validate(_job(3))


def test_nested_r_hat_flags_unmixed_superchains_and_passes_mixed_ones(tmp_path: Path):
    early = analyze_run(open_run(run_local(tmp_path, _job(16, 128, 0, 100), "e.zarr"), 0))
    late = analyze_run(open_run(run_local(tmp_path, _job(16, 128, 400, 200), "l.zarr"), 0))
    e, lt = early.as_dict()["nested_r_hat"], late.as_dict()["nested_r_hat"]
    assert e["superchains"] == 16 and e["chains_per_superchain"] == 8
    assert e["max"] > 1.1, e
    assert lt["max"] < 1.05, lt
    assert len(lt["theta"]) == 2
