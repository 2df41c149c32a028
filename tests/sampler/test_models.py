"""Closed-form gradients equal the torch.func reference; data loading and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sgdthermo.sampler.config import CNNConfig, DataConfig, LinearRegressionConfig, MLPConfig
from sgdthermo.sampler.models import (
    DataError,
    DatasetModel,
    IndexBatch,
    LinearRegression,
    LogisticRegression,
    MeanModel,
)

F64 = torch.float64


def _data(n=50, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=F64)
    return x, g


def _models():
    x, g = _data()
    yl = x @ torch.tensor([1.0, -2.0, 0.5], dtype=F64) + torch.randn(50, generator=g, dtype=F64)
    yb = (torch.rand(50, generator=g, dtype=F64) < 0.5).to(F64)
    return [LinearRegression(x, yl, l2=0.1), LogisticRegression(x, yb, l2=0.01),
            MeanModel(torch.randn(30, generator=g, dtype=F64))]


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.name)
def test_closed_forms_equal_torch_func(model):
    g = torch.Generator().manual_seed(1)
    theta = torch.randn(4, model.dim, generator=g, dtype=F64)
    batch = IndexBatch(torch.randint(model.n_examples, (4, 7), generator=g))
    loss, grad = model.minibatch_grad(theta, batch)
    ref_loss, ref_grad = DatasetModel.minibatch_grad(model, theta, batch)
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(grad, ref_grad)
    for ours, ref in zip(model.example_moments(theta, batch),
                         DatasetModel.example_moments(model, theta, batch), strict=True):
        torch.testing.assert_close(ours, ref)
    full, full_grad = model.full_loss_grad(theta)
    ref_full, ref_full_grad = DatasetModel.full_loss_grad(model, theta, chunk=16)
    torch.testing.assert_close(full, ref_full)
    torch.testing.assert_close(full_grad, ref_full_grad)


def _torch_mlp(model, row):
    """The same network as ``nn.Sequential`` with one chain's weights (the reference)."""
    layers = model.layers(row.unsqueeze(0))
    mods = []
    for i in range(1, len(model.hidden) + 2):
        w, b = layers[f"w{i}"][0], layers[f"b{i}"][0]
        lin = torch.nn.Linear(w.shape[1], w.shape[0]).to(w.dtype)
        lin.weight.data.copy_(w)
        lin.bias.data.copy_(b)
        mods += [lin, torch.nn.Tanh()]
    return torch.nn.Sequential(*mods[:-1])


def test_mlp_gradient_equals_module_autograd():
    """The batched forward + one reverse pass for all chains equals nn.Sequential per chain."""
    model = MLPConfig(hidden=[5, 3], n=40).build(batch_size=4, dtype=F64)
    theta = model.init_params(torch.Generator().manual_seed(0), 2, 1.0)
    idx = torch.tensor([[0, 3, 5, 7], [1, 1, 2, 9]])
    loss, grad = model.minibatch_grad(theta, IndexBatch(idx))
    for c in range(2):
        net = _torch_mlp(model, theta[c])
        ref = torch.nn.functional.cross_entropy(net(model.x[idx[c]]), model.y[idx[c]].long())
        ref = ref + 0.5 * model.l2 * sum((p * p).sum() for p in net.parameters())
        ref.backward()
        ref_grad = torch.cat([torch.cat([m.weight.grad.reshape(-1), m.bias.grad])
                              for m in net if isinstance(m, torch.nn.Linear)])
        torch.testing.assert_close(grad[c], ref_grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(loss[c], ref.detach(), rtol=1e-10, atol=1e-12)
    # the functional per-example reference (torch.func) agrees too, and so does the full batch
    ref_loss, ref_grad = DatasetModel.minibatch_grad(model, theta, IndexBatch(idx))
    torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-12)
    full, full_grad = model.full_loss_grad(theta)
    ref_full, ref_full_grad = DatasetModel.full_loss_grad(model, theta, chunk=16)
    torch.testing.assert_close(full_grad, ref_full_grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(full, ref_full, rtol=1e-10, atol=1e-12)


def test_cnn_gradient_equals_per_chain_conv_autograd():
    """Grouped convolutions over chains equal each chain's own conv2d network."""
    model = CNNConfig(channels=[2, 3], hidden=[4], n=30).build(batch_size=3, dtype=F64)
    theta = model.init_params(torch.Generator().manual_seed(1), 3, 1.0)
    idx = torch.tensor([[0, 4, 8], [1, 2, 2], [5, 6, 29]])
    loss, grad = model.minibatch_grad(theta, IndexBatch(idx))
    for c in range(3):
        row = theta[c].clone().requires_grad_(True)
        p = model.layers(row.unsqueeze(0))
        a = model.x[idx[c]].view(3, 1, 8, 8)
        for i in (1, 2):
            a = torch.relu(torch.nn.functional.conv2d(a, p[f"conv{i}_w"][0], p[f"conv{i}_b"][0],
                                                      padding=1))
        a = torch.relu(a.flatten(1) @ p["w1"][0].T + p["b1"][0])
        logits = a @ p["w2"][0].T + p["b2"][0]
        ref = torch.nn.functional.cross_entropy(logits, model.y[idx[c]].long())
        ref = ref + 0.5 * model.l2 * (row * row).sum()
        ref.backward()
        torch.testing.assert_close(grad[c], row.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(loss[c], ref.detach(), rtol=1e-10, atol=1e-12)
    full, full_grad = model.full_loss_grad(theta)
    ref_full, ref_full_grad = DatasetModel.full_loss_grad(model, theta, chunk=16)
    torch.testing.assert_close(full_grad, ref_full_grad, rtol=1e-10, atol=1e-12)
    assert model.dim == sum(v.size for v in model.variables())
    assert [v.name for v in model.variables()] == ["conv1_w", "conv1_b", "conv2_w", "conv2_b",
                                                   "w1", "b1", "w2", "b2"]


def test_network_sizes_reach_1e5_parameters():
    mlp = MLPConfig(hidden=[384, 256]).build(batch_size=32)
    cnn = CNNConfig(channels=[16, 32], hidden=[64]).build(batch_size=32)
    assert mlp.dim == 64 * 384 + 384 + 384 * 256 + 256 + 256 * 10 + 10 == 126_090
    assert cnn.dim == (16 * 9 + 16) + (32 * 16 * 9 + 32) + (2048 * 64 + 64) + (64 * 10 + 10)
    assert cnn.dim > 10**5
    w1 = mlp.variables()[0]
    assert (w1.name, w1.shape, w1.dims) == ("w1", (384, 64), ("w1_out", "w1_in"))


def test_mean_model_minimum_and_noise():
    y = torch.tensor([1.0, 2.0, 4.0, 5.0], dtype=F64)
    m = MeanModel(y)
    _, g = m.full_loss_grad(torch.tensor([[3.0]], dtype=F64))
    assert g.item() == pytest.approx(0.0)
    v = m.example_var(torch.tensor([[3.0]], dtype=F64), IndexBatch(torch.arange(4)[None]))
    assert v.item() == pytest.approx(float(y.var(correction=1)))  # Bessel-corrected
    one = m.example_var(torch.tensor([[3.0]], dtype=F64), IndexBatch(torch.tensor([[3]])))
    assert one.item() == pytest.approx(4.0)  # B = 1: g² = (3 − 5)²


def test_file_data_npz_and_csv(tmp_path):
    x = np.random.default_rng(0).standard_normal((20, 3))
    y = x.sum(1)
    np.savez(tmp_path / "d.npz", X=x, y=y)
    m = LinearRegressionConfig(data=DataConfig(file=str(tmp_path / "d.npz"))).build(1)
    assert m.dim == 3 and m.n_examples == 20
    header = "a,b,target,c"
    rows = np.column_stack([x[:, 0], x[:, 1], y, x[:, 2]])
    np.savetxt(tmp_path / "d.csv", rows, delimiter=",", header=header, comments="")
    cfg = DataConfig(file=str(tmp_path / "d.csv"), target="target", intercept=True)
    m = LinearRegressionConfig(data=cfg).build(1)
    assert m.dim == 4
    torch.testing.assert_close(m.y, torch.as_tensor(y, dtype=F64))


@pytest.mark.parametrize("setup,message", [
    (lambda p: None, "model.data.file: no such file"),
    (lambda p: np.savez(p / "d.npz", X=np.ones((3, 2))), "needs arrays X and y, missing ['y']"),
    (lambda p: np.savez(p / "d.npz", X=np.ones((3, 2)), y=np.ones(4)), "expected X [N, d]"),
    (lambda p: np.savez(p / "d.npz", X=np.full((3, 2), np.nan), y=np.ones(3)), "non-finite"),
])
def test_file_data_errors(tmp_path, setup, message):
    setup(tmp_path)
    cfg = LinearRegressionConfig(data=DataConfig(file=str(tmp_path / "d.npz")))
    with pytest.raises(DataError, match=None) as err:
        cfg.build(1)
    assert message in str(err.value)


def test_a_model_refuses_the_wrong_kind_of_batch():
    """The batch is a tagged union: a dataset model needs indices, a quadratic its noise."""
    from sgdthermo.sampler.config import QuadraticConfig
    from sgdthermo.sampler.models import FullBatch, NoiseBatch

    lin = LinearRegressionConfig().build(2)
    theta = torch.zeros(3, lin.dim, dtype=F64)
    with pytest.raises(TypeError, match="needs example indices, got NoiseBatch"):
        lin.minibatch_grad(theta, NoiseBatch(torch.zeros(3, lin.dim, dtype=F64)))
    quad = QuadraticConfig(hessian=[1.0], noise_cov=[1.0]).build(1)
    with pytest.raises(TypeError, match="got FullBatch"):
        quad.minibatch_grad(torch.zeros(3, 1, dtype=F64), FullBatch())
    _, g = quad.minibatch_grad(torch.zeros(3, 1, dtype=F64), NoiseBatch(torch.ones(3, 1,
                                                                                  dtype=F64)))
    assert torch.equal(g, torch.ones(3, 1, dtype=F64))  # the control: the right kind works


@pytest.mark.parametrize("cfg", [
    {"kind": "linear_regression", "l2": 0.1},
    {"kind": "logistic_regression"},
    {"kind": "quadratic", "hessian": [1.0, 2.0, 3.0], "noise_cov": [1.0, 1.0, 2.0]},
    {"kind": "quadratic", "hessian": [[2.0, 0.5], [0.5, 1.0]], "noise_cov": [1.0, 2.0],
     "loss_scale": 1.4427},
])
def test_gradient_without_the_loss_is_bitwise_the_gradient_with_it(cfg):
    """Unrecorded steps skip the loss; the chain must not change by a single bit."""
    from pydantic import TypeAdapter
    from sgdthermo.sampler.config import ModelConfig

    model = TypeAdapter(ModelConfig).validate_python(cfg).build(4, torch.float32)
    gen = torch.Generator().manual_seed(3)
    theta = torch.randn(5, model.dim, generator=gen)
    batch = (model.draw(gen, 5) if model.n_examples is None else
             IndexBatch(torch.randint(model.n_examples, (5, 4), generator=gen)))
    assert torch.equal(model.minibatch_gradient(theta, batch),
                       model.minibatch_grad(theta, batch)[1])


def _logistic_sgd_norms(lr: float, steps: int = 3000) -> np.ndarray:
    """‖θ‖ of 4 chains of SGD (B = 1) on a ridge logistic regression after ``steps`` steps."""
    from sgdthermo.sampler.config import SGDConfig
    from sgdthermo.sampler.engine import Engine

    x, g = _data(n=40, d=3, seed=3)
    y = (torch.rand(40, generator=g, dtype=F64) < 0.5).to(F64)
    engine = Engine(LogisticRegression(x, y, l2=0.05), SGDConfig(lr=lr).build(), 1, "iid", 4)
    gen = torch.Generator().manual_seed(0)
    state = engine.init(gen, 1.0)
    for _ in range(steps):
        state = engine.step(gen, state, record=False, guard=False)[0]
    return state.params.norm(dim=1).numpy()


def test_logistic_ridge_floor_refuses_a_rate_that_diverges_from_every_start():
    """The bound 2/l2 is where SGD on logistic regression starts to diverge, on both sides.

    ``g_B = l2·θ + bounded``: below 2/l2 = 40 the chains stay bounded (the multiplier
    |1 − lr·l2| < 1 contracts the bounded term), above it ‖θ‖ grows like |1 − lr·l2|^t.
    """
    from sgdthermo.sampler.config import MomentumConfig, SGDConfig
    from sgdthermo.sampler.stability import UnstableError, check_curvature_floor

    x, g = _data(n=40, d=3, seed=3)
    model = LogisticRegression(x, (torch.rand(40, generator=g, dtype=F64) < 0.5).to(F64), l2=0.05)
    check_curvature_floor(model, SGDConfig(lr=39.0).build())
    with pytest.raises(UnstableError, match=r"allowed: 0 < lr < 40, got 41"):
        check_curvature_floor(model, SGDConfig(lr=41.0).build())
    with pytest.raises(UnstableError, match=r"allowed: 0 < lr < 40, got 1e\+308"):
        check_curvature_floor(model, SGDConfig(lr=1e308).build())
    # heavy ball: (1 − d)·l2·lr < 2(1 + μ), μ = 0.5 → lr < 60
    check_curvature_floor(model, MomentumConfig(lr=55.0, mu=0.5).build())
    with pytest.raises(UnstableError, match="allowed: 0 < lr < 60"):
        check_curvature_floor(model, MomentumConfig(lr=65.0, mu=0.5).build())
    check_curvature_floor(LogisticRegression(model.x, model.y, l2=0.0), SGDConfig(lr=1e308).build())
    # the bound is where divergence starts, not a guess: 0.95× stays bounded, 1.05× grows
    assert np.all(_logistic_sgd_norms(38.0) < 1e4)
    assert np.all(_logistic_sgd_norms(42.0) > 1e30)  # (1.1)^3000 times the bounded term
