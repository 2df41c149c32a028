"""The lean SGD path (``kernels.lean_sgd``) against the general step, on every model it takes.

Same seed, same draws: the chains agree to rounding (the lean update rounds ``θ − η·g`` once,
the general step ``θ + (−η·g)`` twice, and the networks' lean gradient is ``vmap(grad)`` instead
of one reverse pass), so θ agrees to 1e-10 after 30 float64 steps, and every stored sum (the
fluctuation, the three identity sums, the virial sums) to 1e-9 relative. A run where one chain
diverges mid-block freezes that chain in both paths; a lean archive resumes bitwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sgdthermo.sampler.jobspec import expand, validate
from sgdthermo.sampler.native import unavailable_reason
from sgdthermo.sampler.shard import ShardRunner, build_engine

from tests.conftest import archive_arrays, make_archive, run_local

MODELS = {
    "logistic": {"kind": "logistic_regression", "data": {"n": 64, "d": 3}},
    "mlp": {"kind": "mlp", "hidden": [6], "n": 60},
    "cnn": {"kind": "cnn", "channels": [2], "hidden": [4], "n": 60},
}


NATIVE = unavailable_reason("lean") is None
KERNELS = ["lean", pytest.param("lean_native", marks=pytest.mark.skipif(
    not NATIVE, reason=f"no native kernel here: {unavailable_reason('lean')}"))]


def _engines(model: dict, record: dict | None = None, kernel: str = "lean"):
    run = {"batch_size": 4, **({"record": record} if record else {})}
    spec = expand(validate({"model": model, "rule": {"kind": "sgd", "lr": 0.1}, "run": run}))[0]
    return build_engine(spec, 3, kernel=kernel), build_engine(spec, 3, kernel="step")


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("record", [None, {"every": 2}])
def test_lean_equals_the_general_step_to_rounding(name: str, record, kernel: str):
    lean, step = _engines(MODELS[name], record, kernel)
    assert lean.kernel_name == kernel and step.kernel_name == "step"
    out = []
    for engine in (lean, step):
        gen = torch.Generator().manual_seed(4)
        state = engine.init(gen, 1.0)
        out.append(engine.run_block(gen, state, 30, 5))
    (sa, ra), (sb, rb) = out
    np.testing.assert_allclose(sa.params.numpy(), sb.params.numpy(), rtol=0, atol=1e-10)
    for field in ("theta", "loss", "grad_norm", "fluct_sum", "ident_sum", "virial_sum"):
        a, b = getattr(ra, field), getattr(rb, field)
        assert (a is None) == (b is None), field
        if a is not None:
            scale = float(b.abs().max()) or 1.0
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-9 * scale,
                                       err_msg=field)
    assert (ra.virial_sum is not None) == (record is not None)


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_diverging_chain_is_frozen_as_in_the_general_step(kernel: str):
    lean, step = _engines({"kind": "linear_regression", "data": {"n": 64, "d": 3}}, None,
                          kernel)
    results = []
    for engine in (lean, step):
        gen = torch.Generator().manual_seed(0)
        state = engine.init(gen, 1.0)
        state = state._replace(params=state.params * torch.tensor([[1.0], [1e308], [1.0]],
                                                                  dtype=torch.float64))
        results.append(engine.run_block(gen, state, 10, 2))
    (sa, ra), (sb, rb) = results
    assert sa.diverged.tolist() == sb.diverged.tolist() == [False, True, False]
    np.testing.assert_allclose(sa.params[[0, 2]].numpy(), sb.params[[0, 2]].numpy(), atol=1e-10)
    assert torch.isfinite(sa.params).all()
    np.testing.assert_allclose(ra.ident_sum[[0, 2]].numpy(), rb.ident_sum[[0, 2]].numpy(),
                               rtol=1e-9)
    assert float(ra.ident_sum[1].abs().max()) == float(rb.ident_sum[1].abs().max())


def test_a_lean_archive_resumes_bitwise(tmp_path: Path):
    job = {"model": MODELS["mlp"], "rule": {"kind": "sgd", "lr": 0.1},
           "run": {"chains": 4, "draws": 24, "burn_in": 8, "batch_size": 4},
           "cluster": {"shard_chains": 2, "chunk_draws": 8}}
    whole = run_local(tmp_path, job)
    split = make_archive(tmp_path, job, "split.zarr")
    for shard in (0, 1):
        assert ShardRunner(split, 0, shard).engine.kernel_name == ("lean_native" if NATIVE
                                                                   else "lean")
        ShardRunner(split, 0, shard).run_until(2)
        ShardRunner(split, 0, shard).run_until(10**9)
    a, b = archive_arrays(whole), archive_arrays(split)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_large_blocks_are_reused_where_glibc_allocates():
    """``sampler.allocator``: applied on glibc (Linux), a no-op elsewhere."""
    import platform

    from sgdthermo.sampler.allocator import reuse_large_blocks

    assert reuse_large_blocks() == (platform.libc_ver()[0] == "glibc")


@pytest.mark.skipif(not NATIVE, reason="no native kernel here")
def test_the_guarded_native_block_equals_the_unguarded_one_bit_for_bit():
    """The C pass with divergence checked gives a kept chain the very bits of the unguarded pass
    (the engine reruns a block guarded only when a chain diverged)."""
    lean, _ = _engines(MODELS["mlp"], {"every": 3}, "lean_native")
    out = []
    for guard in (False, True):
        gen = torch.Generator().manual_seed(9)
        state = lean.init(gen, 1.0)
        out.append(lean.lean.run_block(lean, gen, state, 12, 4, guard))
    (sa, ra), (sb, rb) = out
    assert torch.equal(sa.params, sb.params)
    for field in ("theta", "fluct_sum", "ident_sum", "virial_sum", "loss"):
        assert torch.equal(getattr(ra, field), getattr(rb, field)), field
