"""Any ``torch.nn.Module`` as a model: C chains of one module, one forward and one reverse pass.

A chain's parameters are one row of ``θ [C, D]``, laid out as ``module.named_parameters()``
in order; each parameter is a variable named as PyTorch names it (``layer1.0.conv1.weight``)
with dims named after its layer (``layer1.0.conv1.out``, ``.in``, ``.kh``, ``.kw``).

The step (``step_grad``) runs ``grad(functional_call)`` under ``vmap`` over the chains: each
chain sees its own parameters, its own buffers and its own minibatch ``[B, ...]``, exactly as C
separate modules would, in one batched forward and reverse pass (batched matmuls, grouped
convolutions: the batched path the built-in networks write by hand). Buffers (BatchNorm's running
statistics, ``num_batches_tracked``) are stacked per chain, updated in place by the module's own
code on a fresh copy each step, and carried by the engine (``ChainState.buffers``), so resume
is bitwise. A module whose forward draws random numbers (Dropout) is run with
``randomness="different"`` under a seed drawn from the shard's generator at every step
(``IndexBatch.seed``): per-chain masks, reproducible on resume.

The minibatch loss is ``(1/B) Σ_b ℓ(f_θ(x_b), y_b) + (l2/2)‖θ‖²`` with ``ℓ`` the per-example
loss (``example_losses.LOSSES`` or the user's).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from .base import Batch, DatasetModel, IndexBatch, indices_of
from .batching import add_ridge, gather_rows
from .example_losses import Loss, cross_entropy
from .lowering import FASTER, lowered
from .network import Variable
from .user_code import UserCodeError

_DIMS = {nn.Linear: ("out", "in"), nn.Bilinear: ("out", "in1", "in2"),
         nn.Conv1d: ("out", "in", "k"), nn.Conv2d: ("out", "in", "kh", "kw"),
         nn.Conv3d: ("out", "in", "kd", "kh", "kw")}


def parameter_variables(module: nn.Module) -> list[Variable]:
    """Each parameter as a ``Variable`` with dims named after its layer."""
    out = []
    for name, p in module.named_parameters():
        prefix, _, leaf = name.rpartition(".")
        owner = module.get_submodule(prefix) if prefix else module
        axes = next((v for k, v in _DIMS.items() if type(owner) is k), None)
        if axes is not None and leaf == "bias":
            axes = axes[:1]
        elif axes is None and leaf in ("weight", "bias") and p.dim() == 1:
            axes = ("channel",)
        if axes is None or len(axes) != p.dim():
            dims = tuple(f"{name}.{i}" for i in range(p.dim()))
        else:
            dims = tuple(f"{prefix or leaf}.{a}" for a in axes)
        out.append(Variable(name, tuple(p.shape), dims))
    return out


class TorchModel(DatasetModel):
    """C chains of a user's module on a dataset (module docstring).

    Args:
        factory: Builds a fresh module (the user's callable with its arguments bound); called
            once per chain under that chain's seed when ``init = "per_chain"``.
        template: A module from ``factory`` (its structure, buffers and shared start).
        x: Inputs ``[N, ...]`` in the run's dtype and device.
        y: Targets ``[N, ...]``.
        loss: Per-example loss ``ℓ(output [B, ...], y [B, ...]) → [B]``.
        l2: Ridge term (l2/2)‖θ‖² (weight decay coupled to the loss).
        init: ``"per_chain"`` (each chain's own module, the module's own initialisation) or
            ``"shared"`` (the template's parameters plus ``run.init_scale`` Gaussian noise).
        facts: What ``describe`` adds (the module reference, arguments and source hash).
    """

    name = "torch"
    opaque = True

    def __init__(self, factory: Callable[[], nn.Module], template: nn.Module, x: Tensor,
                 y: Tensor, loss: Loss, l2: float = 0.0, init: str = "per_chain",
                 facts: dict[str, Any] | None = None) -> None:
        self.factory, self.loss, self.init = factory, loss, init
        self.module = template.to(dtype=x.dtype, device=x.device).train()
        self.params = parameter_variables(self.module)
        self.buffer_shapes = {k: (tuple(b.shape), b.dtype) for k, b in
                              self.module.named_buffers()}
        self.facts = facts or {}
        super().__init__(x, y, dim=sum(v.size for v in self.params), l2=l2)
        self.random_forward = False
        self.batch_dependent = any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                   for m in self.module.modules())
        net = lowered(self.module, x, y, loss is cross_entropy, l2)
        self.lowered = net if net is not None and net.name in FASTER else None

    def probe(self, batch_size: int) -> None:
        """Run the step once for 2 chains on the first examples; ``UserCodeError`` if it fails.

        Finds out whether the forward pass draws random numbers (``random_forward``) and checks
        that the loss gives one finite value per example.
        """
        b = min(max(batch_size, 2 if self.batch_dependent else 1), self.n_examples)
        idx = torch.arange(b, device=self.device).expand(2, -1)
        theta = self.flat(self.module).expand(2, -1).clone()
        shapes = f"x {list(self.x[:b].shape)}, y {list(self.y[:b].shape)}"
        for attempt in range(2):
            try:
                losses, _ = self._losses(self.unflatten(theta), None, gather_rows(self.x, idx),
                                         gather_rows(self.y, idx), 0, False)
                break
            except RuntimeError as err:
                if "random" in str(err) and attempt == 0 and not self.random_forward:
                    self.random_forward = True
                    continue
                raise UserCodeError(f"model.module/model.loss: the forward pass and loss on a "
                                    f"batch ({shapes}) raised: {_first(err)}") from None
            except Exception as err:  # noqa: BLE001 - the user's code may raise anything
                raise UserCodeError(f"model.module/model.loss: the forward pass and loss on a "
                                    f"batch ({shapes}) raised {type(err).__name__}: "
                                    f"{_first(err)}") from None
        if tuple(losses.shape) != (2, b):
            raise UserCodeError(f"model.loss: must return one value per example, shape [{b}] "
                                f"for a batch of {b}, got {list(losses.shape[1:])}")
        if not bool(torch.isfinite(losses).all()):
            raise UserCodeError(f"model.loss: not finite at the initial parameters ({shapes})")

    def variables(self) -> list[Variable]:
        """The parameters, by ``named_parameters()`` name."""
        return list(self.params)

    def flat(self, module: nn.Module) -> Tensor:
        """A module's parameters as one row ``[D]`` in θ's layout."""
        return torch.cat([p.detach().reshape(-1) for p in module.parameters()]).to(
            dtype=self.dtype, device=self.device)

    def unflatten(self, theta: Tensor) -> dict[str, Tensor]:
        """Views ``[R, *shape]`` of θ's rows by parameter name (no copy)."""
        out, start = {}, 0
        for v in self.params:
            out[v.name] = theta[:, start:start + v.size].unflatten(1, v.shape)
            start += v.size
        return out

    def init_params(self, generator: torch.Generator, n_chains: int, scale: float) -> Tensor:
        """Per chain: the callable under a seed from ``generator``, or shared + noise."""
        if self.init == "shared":
            z = torch.randn(n_chains, self.dim, generator=generator, dtype=self.dtype,
                            device=self.device)
            return self.flat(self.module).expand(n_chains, -1) + scale * z
        seeds = torch.randint(0, 2**62, (n_chains,), generator=generator, device=self.device)
        rows = []
        for seed in seeds.tolist():
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                rows.append(self.flat(self.factory()))
        return torch.stack(rows)

    def init_buffers(self, n_chains: int) -> dict[str, Tensor]:
        """The template's buffers, one copy per chain ``[C, ...]``."""
        return {k: b.detach().to(self.device).expand(n_chains, *b.shape).clone()
                for k, b in self.module.named_buffers()}

    def _per_chain(self, with_grad: bool) -> Callable[..., Any]:
        """One chain's mean loss (and gradient): ``(p, b, x, y) → (grads, (loss, losses))``."""

        def mean_loss(p: dict[str, Tensor], b: dict[str, Tensor], xs: Tensor,
                      ys: Tensor) -> tuple[Tensor, Tensor]:
            losses = self.loss(functional_call(self.module, (p, b), (xs,)), ys)
            return losses.mean(), losses.detach()

        return grad_and_value(mean_loss, has_aux=True) if with_grad else mean_loss

    def _vmapped(self, fn: Callable[..., Any], params: dict[str, Tensor],
                 buffers: dict[str, Tensor] | None, x: Tensor, y: Tensor, seed: int | None,
                 shared: bool) -> tuple[Any, dict[str, Tensor]]:
        """``fn`` over the chains, and the buffers after the forward pass.

        Each chain has its own parameters, buffers and batch; the buffers are fresh copies,
        updated in place by the module's own code.
        """
        rows = next(iter(params.values())).shape[0]
        bufs = ({k: b.clone() for k, b in buffers.items()} if buffers is not None
                else self.init_buffers(rows))
        dims = (0, 0, None, None) if shared else (0, 0, 0, 0)
        if not self.random_forward:
            return vmap(fn, in_dims=dims)(params, bufs, x, y), bufs
        with torch.random.fork_rng(devices=[] if self.device.type == "cpu" else [self.device]):
            torch.manual_seed(int(seed or 0))
            return vmap(fn, in_dims=dims, randomness="different")(params, bufs, x, y), bufs

    def _losses(self, params: dict[str, Tensor], buffers: dict[str, Tensor] | None, x: Tensor,
                y: Tensor, seed: int | None, shared: bool) -> tuple[Tensor, dict[str, Tensor]]:
        """Per-example losses ``[R, B]`` and the buffers after the forward pass."""
        (_, losses), bufs = self._vmapped(self._per_chain(False), params, buffers, x, y, seed,
                                          shared)
        return losses, bufs

    def _loss_grad_parts(self, theta: Tensor, buffers: dict[str, Tensor] | None, x: Tensor,
                         y: Tensor, seed: int | None, shared: bool = False
                         ) -> tuple[Tensor, list[Tensor], dict[str, Tensor]]:
        """Mean loss ``[R]``, its gradient per parameter ``[R, n_k]`` and the updated buffers.

        ``vmap(grad(·))`` over the chains (torch.func's ensembling form): measured faster on
        CPU than one reverse pass through a vmapped forward, which copies every weight twice.
        """
        (grads, (loss, _)), bufs = self._vmapped(self._per_chain(True), self.unflatten(theta),
                                                 buffers, x, y, seed, shared)
        parts = [g.flatten(1) for g in grads.values()]
        if self.l2:
            add_ridge(parts, theta, self.l2)
            loss = loss + 0.5 * self.l2 * (theta * theta).sum(-1)
        return loss, parts, bufs

    def _loss_grad(self, theta: Tensor, buffers: dict[str, Tensor] | None, x: Tensor,
                   y: Tensor, seed: int | None,
                   shared: bool = False) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Mean loss ``[R]``, its gradient ``[R, D]`` and the updated buffers."""
        loss, parts, bufs = self._loss_grad_parts(theta, buffers, x, y, seed, shared)
        return loss, torch.cat(parts, 1), bufs

    def step_grad(self, theta: Tensor, buffers: dict[str, Tensor], batch: Batch,
                  with_loss: bool = True) -> tuple[Tensor | None, Tensor, dict[str, Tensor]]:
        """Loss, ``g_B`` and new buffers of every chain from one batched forward/reverse pass.

        A module the built-in networks stand for takes their hand-batched forward where that
        was measured faster (``lowering.FASTER``); otherwise ``vmap`` (``step_grad_parts``).
        """
        if self.lowered is not None:
            return (*self.lowered.minibatch_grad(theta, batch), buffers)
        out, parts, bufs = self.step_grad_parts(theta, buffers, batch, with_loss)
        return out, torch.cat(parts, 1), bufs

    def step_grad_parts(self, theta: Tensor, buffers: dict[str, Tensor], batch: Batch,
                        with_loss: bool = True
                        ) -> tuple[Tensor | None, list[Tensor], dict[str, Tensor]]:
        """``step_grad`` with the gradient per parameter, uncopied (``Model.step_grad_parts``)."""
        idx = indices_of(batch)
        seed = batch.seed if isinstance(batch, IndexBatch) else None
        return self._loss_grad_parts(theta, buffers, gather_rows(self.x, idx),
                                     gather_rows(self.y, idx), seed)

    def minibatch_grad(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Loss and ``g_B`` with fresh buffers (callers that carry none)."""
        if self.lowered is not None:
            return self.lowered.minibatch_grad(theta, batch)
        idx = indices_of(batch)
        seed = batch.seed if isinstance(batch, IndexBatch) else None
        loss, grad, _ = self._loss_grad(theta, None, gather_rows(self.x, idx),
                                        gather_rows(self.y, idx), seed)
        return loss, grad

    def full_loss_grad(self, theta: Tensor, chunk: int = 4096) -> tuple[Tensor, Tensor]:
        """``L`` and ``∇L`` over all examples (in chunks of examples; buffers left unchanged)."""
        loss = theta.new_zeros(theta.shape[0])
        grad = torch.zeros_like(theta)
        for lo in range(0, self.n_examples, chunk):
            xs, ys = self.x[lo:lo + chunk], self.y[lo:lo + chunk]
            li, gi, _ = self._loss_grad(theta, None, xs, ys, 0, shared=True)
            weight = xs.shape[0] / self.n_examples
            loss, grad = loss + weight * li, grad + weight * gi
        return loss, grad

    def full_grad_cheap(self) -> bool:
        """Never: the analysis takes the virial from the engine's minibatch sums."""
        return False

    def example_loss(self, theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """One example's loss for one chain (per-example rules; refused with BatchNorm)."""
        params = self.unflatten(theta.unsqueeze(0))
        p = {k: v[0] for k, v in params.items()}
        out = functional_call(self.module, p, (x.unsqueeze(0),))
        return self.loss(out, y.unsqueeze(0))[0]

    def describe(self) -> dict[str, Any]:
        """Dimension, dataset size, shapes, buffers, the module's reference and ``lowered``.

        ``lowered``: the built-in network whose batched forward the general step takes
        (``mlp``, ``cnn``; null for the ``vmap`` form).
        """
        return {**super().describe(), "shapes": [[v.name, list(v.shape)] for v in self.params],
                "buffers": sorted(self.buffer_shapes), **self.facts,
                "lowered": None if self.lowered is None else self.lowered.name}


def _first(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0][:160]


def reseeded(module: nn.Module) -> Callable[[], nn.Module]:
    """A factory for a module given as an object.

    Each call gives a copy with every layer's own ``reset_parameters()`` run under the current
    seed (the module's own initialisation).
    """

    def build() -> nn.Module:
        fresh = copy.deepcopy(module)
        for m in fresh.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
        return fresh

    return build
