"""A user's own nn.Module (``kind = "torch"``) equals C separate torch.optim copies, step for step.

The module, its loss and its data are written here as a user would write them (a file the config
names), and the chains are built through the config (``jobspec``) and the engine the shard runs.
Each comparison feeds both sides the same minibatch indices (those the engine drew), in float64:
the only differences are rounding, about 1e-15 per step, amplified over 12 steps by at most
``(1 + η‖H‖)^12`` — far below the tolerance 1e-9. A copy with a 1 % different rate differs by
more than 1e-6 (the negative control).
"""

from __future__ import annotations

import copy
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sgdthermo.sampler.jobspec import expand, job_from_mapping
from sgdthermo.sampler.shard import build_engine

NET = textwrap.dedent('''
    import torch
    from torch import nn


    def build(width=6, norm="group", drop=0.0):
        layers = [nn.Conv2d(1, 4, 3, padding=1)]
        layers += [nn.GroupNorm(2, 4) if norm == "group" else nn.Identity(), nn.ReLU(),
                   nn.Flatten(), nn.Linear(4 * 16, width)]
        if norm == "batch":
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.Tanh())
        if drop:
            layers.append(nn.Dropout(drop))
        layers.append(nn.Linear(width, 3))
        return nn.Sequential(*layers)
''')

STEPS, CHAINS, LR, L2, B = 12, 3, 0.1, 0.01, 8


@pytest.fixture
def user_files(tmp_path: Path) -> Path:
    """net.py and train.npz: images [64, 1, 4, 4] and labels in {0, 1, 2}."""
    (tmp_path / "net.py").write_text(NET)
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "train.npz", X=rng.standard_normal((64, 1, 4, 4)),
             y=rng.integers(0, 3, 64))
    return tmp_path


def torch_job(folder: Path, rule: dict, **model) -> dict:
    """A job config naming the user's files (relative to ``folder``)."""
    return {"model": {"kind": "torch", "module": "net.py:build", "l2": L2,
                      "data": {"file": "train.npz"}} | model,
            "rule": rule, "run": {"chains": CHAINS, "draws": 4, "burn_in": 0,
                                  "batch_size": B}}


def to_toml(table: dict, prefix: str = "") -> str:
    """A config of nested tables, strings and numbers as TOML text."""
    lines, tables = [], []
    for key, value in table.items():
        if isinstance(value, dict):
            tables.append(to_toml(value, f"{prefix}{key}."))
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    head = [f"[{prefix[:-1]}]"] if prefix else []
    return "\n".join(head + lines) + "\n" + "".join(tables)


def _engine(folder: Path, rule: dict, **model):
    job = job_from_mapping(torch_job(folder, rule, **model), base=folder)
    return build_engine(expand(job)[0], CHAINS)


def _copies(engine, state) -> list[torch.nn.Module]:
    """C separate modules holding the chains' initial parameters and buffers."""
    out = []
    for c in range(CHAINS):
        m = copy.deepcopy(engine.model.module)
        torch.nn.utils.vector_to_parameters(state.params[c].clone(), m.parameters())
        for name, b in m.named_buffers():
            b.copy_(state.buffers[name][c])
        out.append(m.train())
    return out


def _step_both(engine, state, generator, copies, optims):
    batch, perm = engine.draw(generator, state)
    state = engine.apply(state, batch, perm)[0]
    x, y = engine.model.x, engine.model.y
    for c, (m, opt) in enumerate(zip(copies, optims, strict=True)):
        idx = batch.indices[c]
        opt.zero_grad()
        F.cross_entropy(m(x[idx]), y[idx]).backward()
        opt.step()
    return state


RULES = {  # our rule (with the model's l2 = L2 unless given) → the torch.optim copy
    "sgd": ({"kind": "sgd", "lr": LR},
            lambda p, lr: torch.optim.SGD(p, lr=lr, weight_decay=L2)),
    "sgd weight_decay": ({"kind": "sgd", "lr": LR, "weight_decay": 0.02},
                         lambda p, lr: torch.optim.SGD(p, lr=lr, weight_decay=L2 + 0.02)),
    "momentum": ({"kind": "momentum", "lr": LR, "mu": 0.9, "dampening": 0.2},
                 lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, dampening=0.2,
                                               weight_decay=L2)),
    "nesterov": ({"kind": "momentum", "lr": LR, "mu": 0.8, "nesterov": True,
                  "weight_decay": 0.02},
                 lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.8, nesterov=True,
                                               weight_decay=L2 + 0.02)),
    "adam": ({"kind": "adam", "lr": 0.01},
             lambda p, lr: torch.optim.Adam(p, lr=lr / LR * 0.01, weight_decay=L2)),
    "adamw": ({"kind": "adamw", "lr": 0.01, "weight_decay": 0.05},
              lambda p, lr: torch.optim.AdamW(p, lr=lr / LR * 0.01, weight_decay=0.05)),
}


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("norm", ["group", "batch"])
def test_chains_equal_separate_torch_optim_copies(user_files: Path, name: str, norm: str):
    rule, make_opt = RULES[name]
    l2 = 0.0 if name == "adamw" else L2  # AdamW's copy has no coupled term
    engine = _engine(user_files, rule, args={"norm": norm}, l2=l2)
    generator = torch.Generator().manual_seed(11)
    state = engine.init(generator, 1.0)
    assert len({tuple(state.params[c, :5].tolist()) for c in range(CHAINS)}) == CHAINS
    copies = _copies(engine, state)
    control = copy.deepcopy(copies[0])
    optims = [make_opt(list(m.parameters()), LR) for m in copies]
    control_opt = make_opt(list(control.parameters()), LR * 1.01)
    for _ in range(STEPS):
        rewind = generator.get_state()
        idx = engine.draw(generator, state)[0].indices[0]
        generator.set_state(rewind)
        control_opt.zero_grad()
        F.cross_entropy(control(engine.model.x[idx]), engine.model.y[idx]).backward()
        control_opt.step()
        state = _step_both(engine, state, generator, copies, optims)
    for c, m in enumerate(copies):
        theirs = torch.nn.utils.parameters_to_vector(m.parameters()).detach()
        np.testing.assert_allclose(state.params[c].numpy(), theirs.numpy(), rtol=0, atol=1e-9)
        for name, b in m.named_buffers():  # BatchNorm's running statistics, per chain
            np.testing.assert_allclose(state.buffers[name][c].numpy(), b.numpy(), atol=1e-9)
    if norm == "batch":
        assert int(state.buffers["5.num_batches_tracked"][0]) == STEPS
    wrong = torch.nn.utils.parameters_to_vector(control.parameters()).detach()
    assert float((wrong - state.params[0]).abs().max()) > 1e-6  # the negative control


def test_dropout_masks_differ_per_chain_and_replay(user_files: Path):
    """Dropout draws per chain from the shard's stream: same θ and batch, different losses;
    the same generator state gives the same step again."""
    engine = _engine(user_files, {"kind": "sgd", "lr": LR}, args={"drop": 0.5, "norm": "none"})
    assert engine.model.random_forward
    generator = torch.Generator().manual_seed(5)
    state = engine.init(generator, 1.0)
    state = state._replace(params=state.params[:1].expand(CHAINS, -1).clone())
    batch, perm = engine.draw(generator, state)
    batch = batch._replace(indices=batch.indices[:1].expand(CHAINS, -1))
    first = engine.apply(state, batch, perm)
    again = engine.apply(state, batch, perm)
    assert len(set(first[1].tolist())) == CHAINS  # every chain its own mask
    assert torch.equal(first[0].params, again[0].params)
    other = engine.apply(state, batch._replace(seed=batch.seed + 1), perm)
    assert not torch.equal(first[0].params, other[0].params)


def test_layers_are_named_variables(user_files: Path):
    model = _engine(user_files, {"kind": "sgd", "lr": LR}).model
    names = {v.name: v.dims for v in model.variables()}
    assert names["0.weight"] == ("0.out", "0.in", "0.kh", "0.kw")
    assert names["0.bias"] == ("0.out",) and names["1.weight"] == ("1.channel",)
    assert names["4.weight"] == ("4.out", "4.in") and names["6.bias"] == ("6.out",)
    assert model.dim == sum(p.numel() for p in model.module.parameters())


def test_shared_init_is_one_module_plus_noise(user_files: Path):
    engine = _engine(user_files, {"kind": "sgd", "lr": LR}, init="shared")
    zero = engine.init(torch.Generator().manual_seed(0), 0.0).params
    assert torch.equal(zero[0], zero[1])
    noisy = engine.init(torch.Generator().manual_seed(0), 0.1).params
    assert 0.05 < float((noisy - zero).std()) < 0.2


BAD = {  # what a user gets wrong → words the one line must hold
    "missing file": ({"module": "nets.py:build"}, ["model.module", "no such file", "nets.py"]),
    "missing callable": ({"module": "net.py:buld"}, ["model.module", "no 'buld'", "build"]),
    "not a module": ({"module": "net.py:not_a_module"},
                     ["model.module", "returned a int", "not a torch.nn.Module"]),
    "no parameters": ({"module": "net.py:empty"}, ["model.module", "no parameters"]),
    "bad args": ({"args": {"widht": 3}}, ["model.module", "TypeError", "widht", "model.args"]),
    "output vs y": ({"loss": "mse"}, ["model.module/model.loss", "x [8, 1, 4, 4]", "y [8]"]),
    "loss not per example": ({"loss": "net.py:mean_loss"},
                             ["model.loss", "one value per example", "[8]", "got []"]),
    "unknown loss": ({"loss": "hinge"}, ["model.loss", "cross_entropy, mse", "'hinge'"]),
    "bad init": ({"init": "zeros"}, ["model.init", "'per_chain'", "'zeros'"]),
    "momentum None": ({"module": "net.py:cumulative_bn"},
                      ["model.module", "momentum=None", "GroupNorm"]),
    "non-finite data": ({"data": {"file": "nan.npz"}}, ["model.data.file", "non-finite"]),
    "data keys": ({"data": {"file": "keys.npz"}}, ["model.data.file", "X (or x) and y",
                                                     "inputs"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_before_anything_runs(user_files: Path, capsys, monkeypatch,
                                                    case: str):
    """Each mistake: one line naming the field, exit 2, nothing written, Ray never started."""
    from sgdthermo.cluster import cli, jobs

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started for a bad config")

    monkeypatch.setattr(jobs, "init_ray", no_ray)

    (user_files / "net.py").write_text(NET + textwrap.dedent('''
        def not_a_module():
            return 3

        def empty():
            return nn.ReLU()

        def mean_loss(output, y):
            return nn.functional.cross_entropy(output, y)

        def cumulative_bn():
            return nn.Sequential(nn.Flatten(), nn.Linear(16, 4), nn.BatchNorm1d(4, momentum=None))
    '''))
    x = np.random.default_rng(0).standard_normal((64, 1, 4, 4))
    np.savez(user_files / "nan.npz", X=np.where(x > 2, np.nan, x), y=np.zeros(64))
    np.savez(user_files / "keys.npz", inputs=x, y=np.zeros(64))
    model, words = BAD[case]
    cfg = torch_job(user_files, {"kind": "sgd", "lr": LR})
    cfg["model"].update(model)
    (user_files / "job.toml").write_text(to_toml(cfg))
    out = user_files / "out.zarr"
    code = cli.main(["run", str(user_files / "job.toml"), "--out", str(out)])
    text = capsys.readouterr().err.strip()
    assert code == 2, text
    assert len(text.splitlines()) == 1, text
    for word in words:
        assert word in text, (word, text)
    assert not out.exists()


def test_per_example_rules_refuse_batchnorm(user_files: Path):
    """A module with BatchNorm in training mode has no per-example gradient: refused in one
    line; the same rule on the GroupNorm module runs."""
    from sgdthermo.sampler.config.base import ConfigError

    rule = {"kind": "rmsprop_per_example", "lr": 0.01}
    with pytest.raises(ConfigError, match="rule.kind: 'rmsprop_per_example' needs per-example"):
        _engine(user_files, rule, args={"norm": "batch"})
    engine = _engine(user_files, rule, args={"norm": "group"})
    generator = torch.Generator().manual_seed(0)
    state, record = engine.run_block(generator, engine.init(generator, 1.0), 4, 2)
    assert torch.isfinite(state.params).all()


@pytest.mark.parametrize(("x", "y", "words"), [
    (np.zeros((0, 3)), np.zeros(0), "same number of examples (at least 1)"),
    (np.zeros((4, 3)), np.zeros(5), "x [4, 3] and y [5]"),
    (np.zeros((4, 3)), np.float64(1.0), "y must have a first axis"),
    (np.zeros((4, 3), dtype=complex), np.zeros(4), "x must hold real numbers"),
    (np.array([["a"] * 3] * 4), np.zeros(4), "x must hold real numbers"),
    (np.zeros((4, 3)), np.array([0.0, np.inf, np.nan, 1.0]), "y contains 2 non-finite"),
])
def test_data_given_in_python_is_checked_in_one_line(x, y, words):
    """``run_job(data=(x, y))`` and data files go through the same check (``check_arrays``)."""
    from sgdthermo.sampler.models.data import DataError
    from sgdthermo.sampler.models.tensor_data import check_arrays

    with pytest.raises(DataError) as err:
        check_arrays(x, y)
    assert words in str(err.value) and "\n" not in str(err.value)
