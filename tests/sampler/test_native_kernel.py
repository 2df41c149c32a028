"""The native diagonal-quadratic path (``sampler/native_diagonal.py``, ``native/diagonal.c``).

Given the same noise it must record what the general step records (draws, losses, gradient
norms, full losses, fluctuation, stationarity and virial sums, final state), with the same
divergence semantics; its careful loop must give the fast loop's bits for every live chain; and
every x86-64 code path the library dispatches to must give the same bits.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import torch
from sgdthermo.sampler import kernels, native
from sgdthermo.sampler.engine import Engine
from sgdthermo.sampler.kernels import fused_linear
from sgdthermo.sampler.kernels.general_step import GeneralStepKernel
from sgdthermo.sampler.kernels.native_block import fluctuation_factor
from sgdthermo.sampler.models import NoiseBatch
from sgdthermo.sampler.models.quadratic import Quadratic
from sgdthermo.sampler.models.regression import LinearRegression
from sgdthermo.sampler.recording import Recording, projection_directions
from sgdthermo.sampler.rules import adam, momentum, momentum_ng, sgd

pytestmark = pytest.mark.skipif(native.unavailable_reason() is not None,
                                reason=f"native kernel unavailable: {native.unavailable_reason()}")

NAMES = ("theta", "loss", "grad_norm", "full_loss", "fluct_sum", "ident_sum", "virial_sum",
         "projection")


def _quadratic(d: int, dtype=torch.float64) -> Quadratic:
    return Quadratic(torch.linspace(0.5, 2.0, d, dtype=dtype),
                     torch.linspace(1.0, 4.0, d, dtype=dtype), batch_size=2)


class _Replay:
    """Pre-drawn standard normals ``z [steps, C, D]``: ``ξ_t = s⊙z_t`` for the general step, and
    the same numbers in the native kernel's ``[tile][S][ct][D]`` order per sub-block."""

    def __init__(self, model: Quadratic, z: torch.Tensor, tile: int) -> None:
        self.scale, self.z, self.tile, self.at = model.diagonal_noise_scale(), z, tile, 0

    def normals(self, generator, s, c, d):
        block = self.z[self.at:self.at + s]
        self.at += s
        return torch.cat([block[:, c0:c0 + self.tile].reshape(-1)
                          for c0 in range(0, c, self.tile)])

    def draw(self, generator, n_chains):
        out = NoiseBatch(self.z[self.at] * self.scale)
        self.at += 1
        return out


def _run(kernel, rule, theta0, z, thin, monkeypatch, start=0, buf=None):
    c, d = theta0.shape
    model = _quadratic(d, theta0.dtype)
    recording = Recording(np.arange(d), projection_directions(d, 2, 0))  # virial sums kept
    engine = Engine(model, rule, 2, "iid", c, kernel=kernel, recording=recording)
    assert engine.kernel_name == kernel
    replay = _Replay(model, z, getattr(engine.fused, "tile", 1))
    if kernel == "native":
        monkeypatch.setattr(engine.fused, "_normals", replay.normals)
    monkeypatch.setattr(model, "draw", replay.draw)
    state = engine.init(torch.Generator().manual_seed(0), 1.0)._replace(params=theta0.clone(),
                                                                       step=start)
    if buf is not None:
        state = state._replace(rule_state=type(state.rule_state)(buf.clone()))
    if kernel == "step":
        return GeneralStepKernel().run_block(engine, torch.Generator(), state, z.shape[0], thin,
                                             guard=True)
    return engine.run_block(torch.Generator(), state, z.shape[0], thin)


@pytest.mark.parametrize("rule,start,thin,c,d", [
    (sgd(0.3), 0, 1, 70, 2), (sgd(0.3), 0, 3, 5, 3), (sgd(0.1), 0, 2, 3, 200),
    (momentum(0.2, mu=0.7), 0, 1, 70, 2), (momentum(0.2, mu=0.7, dampening=0.3), 5, 2, 5, 3),
    (momentum_ng(0.05, n_g=4.0), 7, 3, 3, 200)])
def test_native_path_records_what_the_step_records(rule, start, thin, c, d, monkeypatch):
    """Tiles of 64 chains (70 = 64 + 6), one chain per tile at D = 200, sub-blocks of 5 steps,
    windows of 64 steps crossed (132 steps), PyTorch's undamped first step and a run mid-way."""
    monkeypatch.setattr(fused_linear, "MAX_ELEMENTS", 5 * c * d)
    from sgdthermo.sampler.kernels import native_diagonal
    monkeypatch.setattr(native_diagonal, "MAX_ELEMENTS", 5 * c * d)
    gen = torch.Generator().manual_seed(3)
    theta0 = torch.randn(c, d, generator=gen, dtype=torch.float64)
    z = torch.randn(132, c, d, generator=gen, dtype=torch.float64)
    buf = torch.linspace(-1.0, 1.0, c * d, dtype=torch.float64).view(c, d) if start else None
    ns, nr = _run("native", rule, theta0, z, thin, monkeypatch, start, buf)
    ss, sr = _run("step", rule, theta0, z, thin, monkeypatch, start, buf)
    for name in NAMES:
        torch.testing.assert_close(getattr(nr, name), getattr(sr, name).to(getattr(nr, name)),
                                   rtol=1e-10, atol=1e-11, msg=name)
    assert nr.theta.shape == (c, 132 // thin, d) and not nr.diverged.any()
    torch.testing.assert_close(ns.params, ss.params, rtol=1e-10, atol=1e-12)
    for a, b in zip(ns.rule_state, ss.rule_state, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert ns.step == ss.step == start + 132


def _native_block(theta0, z_seed, steps, rule=None, dead=None):
    c, d = theta0.shape
    model = _quadratic(d, theta0.dtype)
    engine = Engine(model, rule or sgd(3.9), 2, "iid", c, kernel="native")
    state = engine.init(torch.Generator().manual_seed(0), 1.0)._replace(params=theta0.clone())
    if dead is not None:
        state = state._replace(diverged=dead)
    return engine.run_block(torch.Generator().manual_seed(z_seed), state, steps, 1)


def test_native_path_freezes_diverging_chains_and_keeps_live_chains_bits():
    """lr·h = 7.8 > 2 in one coordinate (factor 6.8 per step): in 20 steps chains started at
    1e-3 stay finite and the one started at 1e30 overflows (about step 10). Its tile is re-run
    by the careful loop: every other chain keeps the fast loop's bits (a run where no chain
    overflows), the diverged one is frozen at its last finite θ, flagged from then on, and adds
    nothing; dead on entry, it stays frozen, flagged, and adds nothing."""
    theta0 = torch.full((6, 2), 1e-3, dtype=torch.float32)
    hot = theta0.clone()
    hot[4] = 1e30
    _, calm = _native_block(theta0, 5, 20)
    fs, fr = _native_block(hot, 5, 20)
    live = [0, 1, 2, 3, 5]
    assert not calm.diverged.any() and not fr.diverged[live].any()
    for name in ("theta", "loss", "grad_norm", "full_loss", "fluct_sum", "ident_sum"):
        assert torch.equal(getattr(fr, name)[live], getattr(calm, name)[live]), name
    k = int(fr.diverged[4].int().argmax())
    assert 0 < k and fr.diverged[4, k:].all() and not fr.diverged[4, :k].any()
    frozen = fr.theta[4, k:]
    assert torch.isfinite(frozen).all() and (frozen == fr.theta[4, k - 1]).all()
    assert torch.equal(fs.params[4], fr.theta[4, k - 1]) and bool(fs.diverged[4])
    ds, dr = _native_block(fs.params, 9, 20, dead=fs.diverged)
    assert dr.diverged[4].all() and (dr.theta[4] == fs.params[4]).all()
    assert (dr.ident_sum[4] == 0).all() and (dr.fluct_sum[4] == 0).all()
    assert bool(ds.diverged[4]) and not ds.diverged[live].any()


def test_every_code_path_gives_the_same_bits():
    """The library built for the default ISA only (SSE2) against the dispatched one (AVX-512 or
    AVX2 where the CPU has them): the same bits, short rows and long, both precisions."""
    plain = ctypes.CDLL(str(native.compile_library("diagonal", ("-DNO_CLONES",))))
    for d, dtype in ((2, torch.float32), (37, torch.float64), (300, torch.float32)):
        outs = []
        for lib in (None, plain):
            engine = Engine(_quadratic(d, dtype), momentum(0.05, mu=0.5), 2, "iid", 9,
                            kernel="native")
            if lib is not None:
                fn = getattr(lib, engine.fused._fn.__name__)
                fn.argtypes, fn.restype = engine.fused._fn.argtypes, ctypes.c_int
                engine.fused._fn = fn
            state = engine.init(torch.Generator().manual_seed(1), 1.0)
            outs.append(engine.run_block(torch.Generator().manual_seed(2), state, 150, 2))
        (sa, ra), (sb, rb) = outs
        for name in ("theta", "loss", "grad_norm", "full_loss", "fluct_sum", "ident_sum"):
            assert torch.equal(getattr(ra, name), getattr(rb, name)), (d, name)
        assert torch.equal(sa.params, sb.params) and torch.equal(sa.rule_state[0],
                                                                 sb.rule_state[0])


def test_kernel_choice_and_fallbacks(monkeypatch):
    model = _quadratic(3)
    assert Engine(model, sgd(0.1), 2, "iid", 4).kernel_name == "native"  # the default here
    assert Engine(model, sgd(0.1), 2, "iid", 4, kernel="fused").kernel_name == "fused"
    assert Engine(model, adam(0.01), 2, "iid", 4, kernel="native").kernel_name == "step"
    ls = LinearRegression(torch.randn(20, 3, dtype=torch.float64), torch.randn(20,
                                                                               dtype=torch.float64))
    assert Engine(ls, sgd(0.1), 4, "iid", 4).kernel_name == "native"
    assert Engine(ls, sgd(0.1), 4, "epoch", 4).kernel_name == "lean_native"  # SGD on any data
    assert Engine(ls, sgd(0.1), 4, "epoch", 4, kernel="fused").kernel_name == "lean"
    assert Engine(ls, sgd(0.1), 4, "epoch", 4, kernel="step").kernel_name == "step"
    dense = Quadratic(torch.eye(3, dtype=torch.float64) * 2.0,
                      torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]],
                                   dtype=torch.float64), batch_size=1)
    assert Engine(dense, sgd(0.1), 1, "iid", 4, kernel="native").kernel_name != "native"
    monkeypatch.setenv("SGDTHERMO_NATIVE", "0")
    assert kernels.default_kernel() == "fused"
    assert Engine(model, sgd(0.1), 2, "iid", 4).kernel_name == "fused"
    with pytest.raises(native.NativeUnavailable, match="kernel 'native' cannot run here: "
                                                       "switched off by SGDTHERMO_NATIVE=0"):
        Engine(model, sgd(0.1), 2, "iid", 4, kernel="native")


def test_missing_compiler_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", "no-such-cc")
    monkeypatch.setenv("SGDTHERMO_CACHE_DIR", str(tmp_path))
    with pytest.raises(native.NativeUnavailable, match=r"^no C compiler \('no-such-cc' not found"):
        native.compile_library("diagonal")


def test_fluctuation_factor_reads_each_rule():
    assert torch.allclose(fluctuation_factor(sgd(0.3), 2, torch.float64),
                          torch.full((2,), 0.15, dtype=torch.float64))
    f = fluctuation_factor(momentum_ng(0.05, n_g=4.0), 2, torch.float64)
    mu = 1 - 1 / 4.0  # (1+μ)/(2η)·v² with v = ηb: (1+μ)η/2 per b²
    assert torch.allclose(f, torch.full((2,), (1 + mu) * 0.05 / 2, dtype=torch.float64))


def _regression(kind, d, n, l2, rule, thin, chains, steps, kernel, record=None, theta0=None,
                seed=4):
    from sgdthermo.sampler.jobspec import expand, validate
    from sgdthermo.sampler.shard import build_engine

    model = ({"kind": "mean", "n": n} if kind == "mean" else
             {"kind": kind, "data": {"n": n, "d": d, "condition": 5.0}, "l2": l2})
    run = {"chains": chains, "batch_size": 7, "thin": thin, "burn_in": 0, "dtype": "float64"}
    if record is not None:
        run["record"] = record
    spec = expand(validate({"model": model, "rule": rule, "run": run}))[0]
    if rule["lr"] > 0.5:  # past the stability bound, which build_engine refuses
        engine = Engine(spec.model.build(7, torch.float64, "cpu"), spec.rule.build(7), 7,
                        "iid", chains, kernel=kernel, record_full_loss=False)
    else:
        engine = build_engine(spec, chains, kernel=kernel)
    assert engine.kernel_name == kernel
    gen = torch.Generator().manual_seed(seed)
    state = engine.init(gen, 1.0)
    if theta0 is not None:
        state = state._replace(params=theta0.clone())
    if kernel == "step":
        return GeneralStepKernel().run_block(engine, gen, state, steps, thin, guard=True)
    return engine.run_block(gen, state, steps, thin)


@pytest.mark.parametrize("kind,d,n,l2,rule,thin", [
    ("linear_regression", 13, 300, 0.0, {"kind": "sgd", "lr": 0.05}, 1),
    ("linear_regression", 16, 40, 0.3, {"kind": "sgd", "lr": 0.05}, 3),
    ("linear_regression", 9, 300, 0.1, {"kind": "momentum", "lr": 0.02, "mu": 0.8,
                                        "dampening": 0.2}, 2),
    ("mean", 1, 50, 0.0, {"kind": "momentum_ng", "lr": 0.05, "n_g": 4.0}, 1)])
def test_native_least_squares_records_what_the_step_records(kind, d, n, l2, rule, thin,
                                                             monkeypatch):
    """The same generator gives both paths the same batches (one randint of [S, C, B] is S
    draws of [C, B]); sub-blocks of 6 steps, D not a multiple of the 8 lanes, a ridge term,
    the full loss where N·D is small, and a partial record (virial sums)."""
    from sgdthermo.sampler.kernels import native_regression
    monkeypatch.setattr(native_regression, "MAX_ELEMENTS", 6 * 5 * 7)
    record = {"coords": [0], "projections": 2}
    ns, nr = _regression(kind, d, n, l2, rule, thin, 5, 132, "native", record)
    ss, sr = _regression(kind, d, n, l2, rule, thin, 5, 132, "step", record)
    for name in NAMES:
        a, b = getattr(nr, name), getattr(sr, name)
        assert (a is None) == (b is None), name
        if a is not None:
            torch.testing.assert_close(a, b.to(a), rtol=1e-10, atol=1e-11, msg=name)
    assert (nr.full_loss is not None) == (n * d <= 2**16) and not nr.diverged.any()
    torch.testing.assert_close(ns.params, ss.params, rtol=1e-10, atol=1e-12)
    for a, b in zip(ns.rule_state, ss.rule_state, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_native_least_squares_freezes_diverging_chains_like_the_step():
    """lr far above 2/λ_max: chains started at 1, 1e30 and 1e200 overflow at different steps.
    Records agree until then; the chain is frozen at a finite θ, flagged, and adds nothing
    (the two paths round differently, so the overflow may come one step apart)."""
    theta0 = torch.tensor([1.0, 1e30, 1e200], dtype=torch.float64).unsqueeze(1).expand(3, 4)
    rule = {"kind": "sgd", "lr": 20.0}
    ns, nr = _regression("linear_regression", 4, 64, 0.0, rule, 1, 3, 400, "native",
                         theta0=theta0)
    ss, sr = _regression("linear_regression", 4, 64, 0.0, rule, 1, 3, 400, "step",
                         theta0=theta0)
    assert ns.diverged.tolist() == ss.diverged.tolist() == [True, True, True]
    first_n, first_s = nr.diverged.int().argmax(1), sr.diverged.int().argmax(1)
    assert (first_n - first_s).abs().max() <= 1 and first_n[2] < first_n[1] < first_n[0]
    for c in range(3):
        k = int(min(first_n[c], first_s[c]))
        torch.testing.assert_close(nr.theta[c, :k], sr.theta[c, :k], rtol=1e-9, atol=0)
        frozen = nr.theta[c, first_n[c]:]
        assert torch.isfinite(frozen).all() and (frozen == nr.theta[c, first_n[c] - 1]).all()
        assert nr.diverged[c, first_n[c]:].all()
    assert torch.equal(ns.params, nr.theta[:, -1])


def test_native_least_squares_same_bits_on_every_code_path():
    plain = ctypes.CDLL(str(native.compile_library("regression", ("-DNO_CLONES",))))
    for d in (3, 32, 45):
        outs = []
        for lib in (None, plain):
            from sgdthermo.sampler.jobspec import expand, validate
            from sgdthermo.sampler.shard import build_engine

            spec = expand(validate({
                "model": {"kind": "linear_regression", "data": {"n": 200, "d": d}, "l2": 0.1},
                "rule": {"kind": "momentum", "lr": 0.01},
                "run": {"chains": 6, "batch_size": 5, "dtype": "float32"}}))[0]
            engine = build_engine(spec, 6, kernel="native")
            if lib is not None:
                fn = getattr(lib, engine.fused._fn.__name__)
                fn.argtypes, fn.restype = engine.fused._fn.argtypes, ctypes.c_int
                engine.fused._fn = fn
            gen = torch.Generator().manual_seed(8)
            outs.append(engine.run_block(gen, engine.init(gen, 1.0), 120, 2))
        (sa, ra), (sb, rb) = outs
        for name in ("theta", "loss", "grad_norm", "fluct_sum", "ident_sum"):
            assert torch.equal(getattr(ra, name), getattr(rb, name)), (d, name)
        assert torch.equal(sa.params, sb.params)
