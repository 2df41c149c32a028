"""A user's module built of the layers the built-in networks know equals the built-in kind.

The ``mlp`` and ``cnn`` kinds compute the general step's gradient by one reverse pass through a
hand-batched forward (batched matmuls, grouped convolutions over the chains); the ``torch`` kind
runs ``vmap(grad(functional_call))`` of the user's ``nn.Sequential``. The same network on the same
data, from the same θ and the same minibatch indices, must give the same chains to rounding under
both the general step (momentum) and the lean SGD path, and the same per-coordinate sums. θ's
layouts agree (``named_parameters()`` order is the built-in order). The ``torch`` kind's general
step takes the built-in batched form where the module is one the built-in networks stand for
and that form was measured faster (``models.lowering``); the tests run both forms. A
network with a different activation differs by far more than the tolerance (the negative
control), and modules the built-in networks cannot stand for are not lowered.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from sgdthermo.sampler.jobspec import expand, job_from_mapping, validate
from sgdthermo.sampler.shard import build_engine

NET = textwrap.dedent('''
    from torch import nn

    ACT = {"tanh": nn.Tanh, "relu": nn.ReLU}


    def mlp(n_in, hidden, n_out, act="tanh"):
        return nn.Sequential(nn.Linear(n_in, hidden), ACT[act](), nn.Linear(hidden, n_out))


    def cnn(channels, hidden, n_out, act="relu"):
        return nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, channels, 3, padding=1),
                             ACT[act](), nn.Flatten(), nn.Linear(channels * 64, hidden),
                             ACT[act](), nn.Linear(hidden, n_out))
''')

BUILTIN = {"mlp": {"kind": "mlp", "hidden": [5], "activation": "tanh", "n": 50},
           "cnn": {"kind": "cnn", "channels": [2], "hidden": [4], "activation": "relu", "n": 50}}
RULES = {"sgd": {"kind": "sgd", "lr": 0.1},
         "momentum": {"kind": "momentum", "lr": 0.05, "mu": 0.9}}
CHAINS, B = 3, 6


def _engines(folder: Path, name: str, rule: dict, act: str | None = None):
    """The built-in engine and the torch-kind engine of the same network on the same data."""
    run = {"chains": CHAINS, "batch_size": B, "draws": 4, "burn_in": 0}
    spec = expand(validate({"model": BUILTIN[name], "rule": rule, "run": run}))[0]
    builtin = build_engine(spec, CHAINS)
    m = builtin.model
    np.savez(folder / "data.npz", X=m.x.numpy(), y=m.y.long().numpy())
    (folder / "net.py").write_text(NET)
    cfg = BUILTIN[name]
    args = ({"n_in": int(m.x.shape[1]), "hidden": cfg["hidden"][0], "n_out": m.n_classes}
            if name == "mlp" else
            {"channels": cfg["channels"][0], "hidden": cfg["hidden"][0], "n_out": m.n_classes})
    args["act"] = act or cfg["activation"]
    user = {"model": {"kind": "torch", "module": f"net.py:{name}", "args": args, "l2": m.l2,
                      "data": {"file": "data.npz"}}, "rule": rule, "run": run}
    mine = build_engine(expand(job_from_mapping(user, base=folder))[0], CHAINS)
    return builtin, mine


def _run(engine, params: torch.Tensor):
    gen = torch.Generator().manual_seed(11)
    state = engine.init(gen, 1.0)._replace(params=params.clone())
    gen = torch.Generator().manual_seed(5)
    return engine.run_block(gen, state, 24, 6)


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_a_sequential_module_equals_the_builtin_network(tmp_path: Path, name: str, rule: str,
                                                        lower: bool):
    from sgdthermo.sampler.models.lowering import FASTER, lowered

    builtin, mine = _engines(tmp_path, name, RULES[rule])
    m = mine.model
    assert m.describe()["lowered"] == (name if name in FASTER else None)
    m.lowered = lowered(m.module, m.x, m.y, True, m.l2) if lower else None
    assert not lower or m.lowered.name == name
    assert [v.shape for v in builtin.model.variables()] == [v.shape
                                                           for v in mine.model.variables()]
    expected = {"sgd": ("lean", "lean_native"), "momentum": ("step",)}[rule]
    assert builtin.kernel_name in expected and mine.kernel_name in expected
    theta0 = builtin.init(torch.Generator().manual_seed(2), 1.0).params
    (sa, ra), (sb, rb) = _run(builtin, theta0), _run(mine, theta0)
    assert float((sa.params - theta0).abs().max()) > 1e-3  # the chains moved
    np.testing.assert_allclose(sb.params.numpy(), sa.params.numpy(), rtol=0, atol=1e-10)
    for field in ("theta", "loss", "grad_norm", "fluct_sum", "ident_sum"):
        a, b = getattr(ra, field), getattr(rb, field)
        scale = float(a.abs().max()) or 1.0
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-9 * scale,
                                   err_msg=field)


def test_a_different_activation_is_told_apart(tmp_path: Path):
    builtin, mine = _engines(tmp_path, "mlp", RULES["sgd"], act="relu")
    theta0 = builtin.init(torch.Generator().manual_seed(2), 1.0).params
    (sa, _), (sb, _) = _run(builtin, theta0), _run(mine, theta0)
    assert float((sa.params - sb.params).abs().max()) > 1e-6


UNLOWERED = {
    "mixed activations": "nn.Sequential(nn.Linear(64, 5), nn.Tanh(), nn.Linear(5, 5), "
                         "nn.ReLU(), nn.Linear(5, 10))",
    "a buffer": "nn.Sequential(nn.Linear(64, 5), nn.BatchNorm1d(5), nn.Tanh(), "
                "nn.Linear(5, 10))",
    "no bias": "nn.Sequential(nn.Linear(64, 5, bias=False), nn.Tanh(), nn.Linear(5, 10))",
    "a 5×5 convolution": "nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 2, 5, "
                         "padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(128, 10))",
    "not Sequential": "nn.ModuleDict({'a': nn.Linear(64, 10)})",
}


@pytest.mark.parametrize("case", sorted(UNLOWERED))
def test_other_modules_keep_the_vmap_form(case: str):
    from sgdthermo.sampler.models.lowering import lowered
    from torch import nn

    module = eval(UNLOWERED[case])  # noqa: S307 - the literal modules above
    x, y = torch.randn(20, 64, dtype=torch.float64), torch.randint(0, 10, (20,))
    assert lowered(module, x, y, True, 0.0) is None
    mlp = nn.Sequential(nn.Linear(64, 5), nn.Tanh(), nn.Linear(5, 10))
    assert lowered(mlp, x, y, True, 0.0) is not None
    assert lowered(mlp, x, y, False, 0.0) is None  # another loss
    assert lowered(mlp, x, y.double(), True, 0.0) is None  # real-valued targets
