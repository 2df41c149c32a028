"""The fused diagonal-quadratic path and the per-block divergence check of the general step.

The fused path (``sampler/fused_linear.py``) must record what the general step records, given the
same noise: the same draws, losses, gradient norms, full losses, fluctuation and stationarity sums,
and the same divergence semantics (frozen at the last finite θ, flagged, contributing nothing).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sgdthermo.sampler.engine import Engine
from sgdthermo.sampler.jobspec import expand, validate
from sgdthermo.sampler.kernels import fused_linear
from sgdthermo.sampler.kernels.general_step import GeneralStepKernel
from sgdthermo.sampler.models import NoiseBatch
from sgdthermo.sampler.models.quadratic import Quadratic
from sgdthermo.sampler.recording import Recording, projection_directions
from sgdthermo.sampler.rules import momentum, momentum_ng, sgd
from sgdthermo.sampler.shard import build_engine


def _quadratic(d: int = 3, dtype=torch.float64) -> Quadratic:
    h = torch.linspace(0.5, 2.0, d, dtype=dtype)
    return Quadratic(h, torch.linspace(1.0, 4.0, d, dtype=dtype), batch_size=2)


class _Replay:
    """Feeds the same pre-drawn noise to both paths: ``draw_steps`` for the fused one and
    ``draw`` (one step at a time) for the general one."""

    def __init__(self, model: Quadratic, noise: torch.Tensor) -> None:
        self.model, self.noise, self.at = model, noise, 0

    def draw_steps(self, generator, n_steps, n_chains):
        out = self.noise[self.at:self.at + n_steps].transpose(0, 1)
        self.at += n_steps
        return out

    def draw(self, generator, n_chains):
        out = NoiseBatch(self.noise[self.at])
        self.at += 1
        return out


def _run(kernel: str, lr: float, theta0: torch.Tensor, noise: torch.Tensor, steps: int,
         thin: int, monkeypatch, rule=None, start: int = 0) -> tuple:
    model = _quadratic(theta0.shape[1], theta0.dtype)
    d = theta0.shape[1]  # record every coordinate as a "subset" (virial sums) and 2 projections
    recording = Recording(np.arange(d), projection_directions(d, 2, 0))
    engine = Engine(model, rule or sgd(lr), 2, "iid", theta0.shape[0], kernel=kernel,
                    recording=recording)
    replay = _Replay(model, noise)
    monkeypatch.setattr(model, "draw_steps", replay.draw_steps)
    monkeypatch.setattr(model, "draw", replay.draw)
    state = engine.init(torch.Generator().manual_seed(0), 1.0)._replace(params=theta0.clone(),
                                                                       step=start)
    if start:  # a run already under way: a non-zero momentum buffer
        buf = torch.linspace(-1.0, 1.0, theta0.numel(), dtype=theta0.dtype).view_as(theta0)
        state = state._replace(rule_state=type(state.rule_state)(buf))
    if kernel == "step":  # the guarded step itself (a rewind would not rewind the replay)
        return engine, GeneralStepKernel().run_block(engine, torch.Generator(), state, steps,
                                                     thin, guard=True)
    return engine, engine.run_block(torch.Generator(), state, steps, thin)


@pytest.mark.parametrize("thin", [1, 3])
def test_fused_path_records_what_the_step_records(thin, monkeypatch):
    monkeypatch.setattr(fused_linear, "MAX_ELEMENTS", 5 * 4 * 3)  # sub-blocks of 5 steps
    gen = torch.Generator().manual_seed(1)
    theta0 = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    noise = torch.randn(24, 4, 3, generator=gen, dtype=torch.float64)
    fused_engine, (fs, fr) = _run("fused", 0.3, theta0, noise, 24, thin, monkeypatch)
    step_engine, (ss, sr) = _run("step", 0.3, theta0, noise, 24, thin, monkeypatch)
    assert fused_engine.kernel_name == "fused" and step_engine.kernel_name == "step"
    for name in ("theta", "loss", "grad_norm", "full_loss", "fluct_sum", "ident_sum",
                 "virial_sum", "projection"):
        torch.testing.assert_close(getattr(fr, name), getattr(sr, name).to(getattr(fr, name)),
                                   rtol=1e-12, atol=1e-12, msg=name)
    assert fr.theta.shape == (4, 24 // thin, 3) and not fr.diverged.any()
    torch.testing.assert_close(fs.params, ss.params, rtol=1e-12, atol=1e-12)
    assert fs.step == ss.step == 24


@pytest.mark.parametrize("rule,start,thin", [
    (momentum(0.2, mu=0.7), 0, 1), (momentum(0.2, mu=0.7, dampening=0.3), 0, 3),
    (momentum(0.2, mu=0.7, dampening=0.3), 5, 2), (momentum_ng(0.05, n_g=4.0), 0, 1),
    (momentum_ng(0.05, n_g=4.0), 7, 3)])
def test_fused_heavy_ball_records_what_the_step_records(rule, start, thin, monkeypatch):
    """PyTorch momentum (first step b = g undamped) and the seeds' N_g form, from the first step
    or mid-run with a non-zero buffer: the same draws, sums and final rule state."""
    monkeypatch.setattr(fused_linear, "MAX_ELEMENTS", 5 * 4 * 3)  # sub-blocks of 5 steps
    gen = torch.Generator().manual_seed(6)
    theta0 = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    noise = torch.randn(24, 4, 3, generator=gen, dtype=torch.float64)
    fe, (fs, fr) = _run("fused", 0.0, theta0, noise, 24, thin, monkeypatch, rule, start)
    se, (ss, sr) = _run("step", 0.0, theta0, noise, 24, thin, monkeypatch, rule, start)
    assert fe.kernel_name == "fused" and se.kernel_name == "step"
    for name in ("theta", "loss", "grad_norm", "full_loss", "fluct_sum", "ident_sum",
                 "virial_sum", "projection"):
        torch.testing.assert_close(getattr(fr, name), getattr(sr, name).to(getattr(fr, name)),
                                   rtol=1e-10, atol=1e-12, msg=name)
    torch.testing.assert_close(fs.params, ss.params, rtol=1e-10, atol=1e-12)
    for a, b in zip(fs.rule_state, ss.rule_state, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_fused_path_freezes_diverging_chains_like_the_step(monkeypatch):
    """lr·h > 2 diverges (factor 6.8 per step); chains started at 1, 1e30, 1e200 overflow at
    different steps (about 370, 330 and 130).

    The two paths factor the step differently (``a⊙θ + b`` against ``θ − Λ⊙(h⊙θ + ξ)``, whose
    intermediate ``Λ⊙h⊙θ`` can overflow one step earlier), so a chain may be frozen one step
    apart; before that the records agree, and after it each path holds its chain at a finite θ.
    """
    monkeypatch.setattr(fused_linear, "MAX_ELEMENTS", 7 * 3 * 3)  # sub-blocks of 7 steps
    theta0 = torch.tensor([1.0, 1e30, 1e200], dtype=torch.float64).unsqueeze(1).expand(3, 3)
    noise = torch.randn(400, 3, 3, generator=torch.Generator().manual_seed(2),
                        dtype=torch.float64)
    _, (fs, fr) = _run("fused", 3.9, theta0, noise, 400, 1, monkeypatch)
    _, (ss, sr) = _run("step", 3.9, theta0, noise, 400, 1, monkeypatch)
    assert fs.diverged.tolist() == ss.diverged.tolist() == [True, True, True]
    first_f = fr.diverged.int().argmax(1)
    first_s = sr.diverged.int().argmax(1)
    assert (first_f - first_s).abs().max() <= 1
    assert first_f[2] < first_f[1] < first_f[0]
    for c in range(3):
        k = int(min(first_f[c], first_s[c]))
        torch.testing.assert_close(fr.theta[c, :k], sr.theta[c, :k], rtol=1e-12, atol=0)
        assert fr.diverged[c, first_f[c]:].all() and not fr.diverged[c, :first_f[c]].any()
        frozen = fr.theta[c, first_f[c]:]
        assert torch.isfinite(frozen).all() and (frozen == frozen[0]).all()
        assert (frozen[0] == fr.theta[c, first_f[c] - 1]).all()  # the last θ it reached
    assert torch.isfinite(fs.params).all()
    assert torch.equal(fs.params, fr.theta[:, -1])



def test_fused_path_only_for_stateless_constant_rate_rules_on_diagonal_models():
    def kernel(model, rule, sampling="iid"):
        job = validate({"model": model, "rule": rule, "run": {"sampling": sampling}})
        return build_engine(expand(job)[0], 2, kernel="fused").kernel_name

    diag = {"kind": "quadratic", "hessian": [1.0, 2.0], "noise_cov": [1.0, 9.0]}
    dense = {"kind": "quadratic", "hessian": [[1.0, 0.2], [0.2, 2.0]], "noise_cov": [1.0, 9.0]}
    assert kernel(diag, {"kind": "sgd", "lr": 0.1}) == "fused"
    assert kernel(dense, {"kind": "sgd", "lr": 0.1}) == "step"
    assert kernel(diag, {"kind": "momentum", "lr": 0.1}) == "fused"
    assert kernel(diag, {"kind": "momentum_ng", "lr": 0.01}) == "fused"
    assert kernel(diag, {"kind": "preconditioned", "lr": 0.1}) == "step"
    assert kernel(diag, {"kind": "rmsprop", "lr": 0.01}) == "step"
    assert kernel(diag, {"kind": "sgd", "lr": 0.1}, "full") == "step"
    assert kernel({"kind": "linear_regression", "data": {"n": 32, "d": 2}},
                  {"kind": "sgd", "lr": 0.1}) == "lean"  # constant-rate SGD on a dataset
    assert kernel({"kind": "linear_regression", "data": {"n": 32, "d": 2}},
                  {"kind": "momentum", "lr": 0.1}) == "step"


def test_unguarded_block_with_rollback_equals_the_guarded_block():
    """A chain diverging mid-block: the optimistic pass is rewound and re-run guarded; the result
    is bit for bit the guarded block (and the generator ends in the same state)."""
    job = validate({"model": {"kind": "linear_regression", "data": {"n": 64, "d": 3}},
                    "rule": {"kind": "sgd", "lr": 0.05}, "run": {"batch_size": 4}})
    engine = build_engine(expand(job)[0], 3, kernel="step")  # the general step's rollback
    ga, gb = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    state = engine.init(ga, 1.0)
    engine.init(gb, 1.0)
    params = state.params.clone()
    params[1] = 1.7e308  # x·θ overflows at the first step
    state = state._replace(params=params)
    sa, ra = engine.run_block(ga, state, 30, 5)
    sb, rb = GeneralStepKernel().run_block(engine, gb, state, 30, 5, guard=True)
    assert sa.diverged.tolist() == [False, True, False]
    for name in ("theta", "loss", "grad_norm", "diverged", "fluct_sum", "ident_sum"):
        torch.testing.assert_close(getattr(ra, name), getattr(rb, name), rtol=0, atol=0,
                                   equal_nan=True, msg=name)
    assert torch.equal(sa.params, sb.params)
    assert torch.equal(ga.get_state(), gb.get_state())


def test_unguarded_block_equals_guarded_block_when_nothing_diverges():
    job = validate({"model": {"kind": "logistic_regression", "data": {"n": 64, "d": 3}},
                    "rule": {"kind": "adam", "lr": 0.01}, "run": {"batch_size": 4}})
    engine = build_engine(expand(job)[0], 4)
    ga, gb = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    state = engine.init(ga, 1.0)
    engine.init(gb, 1.0)
    sa, ra = engine.run_block(ga, state, 20, 2)
    sb, rb = GeneralStepKernel().run_block(engine, gb, state, 20, 2, guard=True)
    for name in ("theta", "loss", "grad_norm", "fluct_sum", "ident_sum"):
        torch.testing.assert_close(getattr(ra, name), getattr(rb, name), rtol=0, atol=0,
                                   equal_nan=True, msg=name)
    assert torch.equal(sa.rule_state.exp_avg_sq, sb.rule_state.exp_avg_sq)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [1, 2, 3, 8])
def test_swap_leading_is_a_bitwise_transpose(d, dtype):
    """Rows of 1–8 bytes move as one integer (a tiled transpose); NaN payloads, signed zeros and
    infinities survive bit for bit; other widths take the plain strided copy."""
    from sgdthermo.sampler.kernels.fused_linear import swap_leading
    x = torch.randn(37, 129, d, generator=torch.Generator().manual_seed(d), dtype=dtype)
    flat = x.view(-1)
    flat[:4] = torch.tensor([float("nan"), -0.0, float("inf"), -float("inf")], dtype=dtype)
    bits = torch.int32 if dtype == torch.float32 else torch.int64
    flat.view(bits)[4] = 0x7F800001 if dtype == torch.float32 else 0x7FF0000000000001  # sNaN
    out = swap_leading(x)
    assert out.is_contiguous() and out.shape == (129, 37, d)
    want = x.transpose(0, 1).contiguous()
    assert torch.equal(out.view(bits), want.view(bits))
