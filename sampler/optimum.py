"""A deterministic minimiser of the full-batch loss, for chains started at (and analyses of) θ*."""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from .models import Model


def find_optimum(model: Model, seed: int = 0, max_iter: int = 500,
                 tolerance: float = 1e-10) -> Tensor:
    """θ* ``[D]``: full-batch L-BFGS (strong Wolfe line search) from the model's init at ``seed``.

    For convex models this is the global minimiser; for the MLP a local one, the same every time
    (same seed, same arithmetic), so the sampler and the analysis agree on it.
    """
    start = model.init_params(torch.Generator(model.device).manual_seed(seed), 1, 1.0)[0]
    theta = start.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([theta], max_iter=max_iter, tolerance_grad=tolerance,
                            tolerance_change=1e-14, history_size=50,
                            line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss, grad = model.full_loss_grad(theta.detach()[None])
        theta.grad = grad[0]
        return loss[0]

    for _ in range(10):
        opt.step(closure)
        if model.full_loss_grad(theta.detach()[None])[1].abs().max() < tolerance:
            break
    return theta.detach()


@lru_cache(maxsize=16)
def _cached(key: int, model: Model) -> Tensor:
    return find_optimum(model)


def optimum(model: Model) -> Tensor:
    """``find_optimum`` memoised per model object."""
    return _cached(id(model), model)
