"""The model protocol: per-example losses evaluated for C chains at once.

Every model works on a flat parameter tensor ``theta`` of shape ``[C, D]`` (one row per chain), so
that rules and the engine never need to know a model's structure. A model exposes

* ``minibatch_grad(theta, batch)``: the minibatch loss ``[C]`` and gradient ``[C, D]``,
  ``g_B = (1/B) Σ_{i∈batch} ∇ℓ_i``;
* ``example_var(theta, batch)``: an unbiased estimate of the per-example gradient variance
  ``Σ_1,ii(θ)`` ``[C, D]`` (what the preconditioned rules estimate ``σ_i²`` from);
* ``example_sq(theta, batch)``: the batch mean of squared per-example gradients
  ``(1/B) Σ_b (∇ℓ_b)_i²`` ``[C, D]`` (per-example RMSProp);
* ``full_loss_grad(theta)``: the full-batch loss ``L = (1/N) Σ_i ℓ_i`` and ``∇L``;
* ``linear_gradient(batch_size, sampling)``: where the gradient is exactly linear in θ, the
  ``LinearGradient`` (H, θ*, noise covariance ``C̄(Σ)``, per-example σ²) that exact theory and
  the stability checks use; ``None`` otherwise.

Dataset models derive all three from one per-example loss ``ℓ(θ, x, y)`` with ``torch.func``
(``grad`` and ``vmap``); subclasses may override them with closed forms, which the tests check
against the ``torch.func`` versions.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.func import grad, vmap

from ..linear_forms import LinearGradient
from .batching import gather_rows


class IndexBatch(NamedTuple):
    """Example indices of a minibatch, ``[C, B]`` (dataset models), and the step's seed.

    The seed is set for a model whose forward pass draws random numbers (``TorchModel`` with
    Dropout), else ``None``.
    """

    indices: Tensor
    seed: int | None = None

    def select(self, chains: slice) -> IndexBatch:
        """The same randomness restricted to a slice of chains."""
        return IndexBatch(self.indices[chains], self.seed)


class NoiseBatch(NamedTuple):
    """Additive gradient noise already scaled to the minibatch, ``[C, D]`` (synthetic noise)."""

    noise: Tensor

    def select(self, chains: slice) -> NoiseBatch:
        """The same randomness restricted to a slice of chains."""
        return NoiseBatch(self.noise[chains])


class SurrogateBatch(NamedTuple):
    """``N(0, 1)`` weights ``[C, N]`` of the Gaussian surrogate of a minibatch (``gaussian``)."""

    weights: Tensor

    def select(self, chains: slice) -> SurrogateBatch:
        """The same randomness restricted to a slice of chains."""
        return SurrogateBatch(self.weights[chains])


class FullBatch(NamedTuple):
    """No randomness: the deterministic full-batch gradient (``full``)."""

    def select(self, chains: slice) -> FullBatch:
        """Itself (there is nothing per chain)."""
        return self


Batch = IndexBatch | NoiseBatch | SurrogateBatch | FullBatch
"""The randomness one step consumes: exactly one of the four kinds (a tagged union)."""


def indices_of(batch: Batch) -> Tensor:
    """The example indices of an ``IndexBatch``; a ``TypeError`` for any other kind."""
    if not isinstance(batch, IndexBatch):
        raise TypeError(f"a dataset model's minibatch needs example indices, got "
                        f"{type(batch).__name__}")
    return batch.indices


class Model:
    """Base class of all models. Subclasses set ``dim`` and implement the gradient methods."""

    name: str = "model"
    dim: int
    n_examples: int | None = None  # None: synthetic noise, no dataset
    constant_noise: bool = False  # per-example gradient covariance independent of θ
    opaque: bool = False  # user code: an archive's reader never rebuilds it (engine sums instead)
    gradient_available: bool = True  # False for an archive's stand-in of a user's module
    random_forward: bool = False  # the minibatch gradient draws random numbers (a seed per step)
    dtype: torch.dtype
    device: torch.device

    def init_params(self, generator: torch.Generator, n_chains: int, scale: float) -> Tensor:
        """Initial parameters ``[C, D]``: ``θ₀ = scale · z``, ``z ~ N(0, I)``."""
        z = torch.randn(n_chains, self.dim, generator=generator, dtype=self.dtype,
                        device=self.device)
        return scale * z

    def draw(self, generator: torch.Generator, n_chains: int) -> NoiseBatch:
        """Synthetic minibatch noise ``[C, D]`` (models without a dataset only)."""
        raise NotImplementedError(f"model {self.name!r} has a dataset: the engine draws indices")

    def draw_steps(self, generator: torch.Generator, n_steps: int, n_chains: int) -> Tensor:
        """The noise of ``n_steps`` steps at once, ``[C, S, D]`` (synthetic-noise models)."""
        return torch.stack([self.draw(generator, n_chains).noise for _ in range(n_steps)], 1)

    def diagonal_hessian(self) -> Tensor | None:
        """``h [D]`` if ``L(θ) = ½Σ_i h_iθ_i²`` and ``g_B = h⊙θ + ξ``, else ``None``.

        ``ξ`` is additive noise drawn by ``draw_steps``; the minibatch loss is ``L + ξᵀθ``.
        """
        return None

    def diagonal_noise_scale(self) -> Tensor | None:
        """``s [D]`` if the noise ``ξ`` of ``diagonal_hessian`` is ``s⊙z`` with ``z ~ N(0, I)``."""
        return None

    def all_examples(self, n_chains: int) -> IndexBatch:
        """A batch holding every example once, for every chain (dataset models only)."""
        raise NotImplementedError(f"model {self.name!r} has no dataset")

    def example_grads(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Per-example losses ``[C, B]`` and gradients ``[C, B, D]`` (dataset models only)."""
        raise NotImplementedError(f"model {self.name!r} has no dataset")

    def surrogate_noise(self, theta: Tensor, weights: Tensor, batch_size: int) -> Tensor:
        """Gaussian surrogate noise ``N(0, Σ_1(θ)/B)`` (dataset models only)."""
        raise NotImplementedError(f"model {self.name!r} has no dataset")

    def dataset(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(X, y)`` as float64 arrays, or ``None`` for synthetic noise."""
        return None

    def minibatch_grad(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Minibatch loss ``[C]`` and gradient ``[C, D]``."""
        raise NotImplementedError

    def init_buffers(self, n_chains: int) -> dict[str, Tensor]:
        """Per-chain state a forward pass updates (BatchNorm's running statistics); ``{}``."""
        return {}

    def step_grad(self, theta: Tensor, buffers: dict[str, Tensor], batch: Batch,
                  with_loss: bool = True) -> tuple[Tensor | None, Tensor, dict[str, Tensor]]:
        """The engine's step: loss (``None`` unless ``with_loss``), ``g_B`` and new buffers."""
        if not with_loss:
            return None, self.minibatch_gradient(theta, batch), buffers
        loss, g = self.minibatch_grad(theta, batch)
        return loss, g, buffers

    def step_grad_parts(self, theta: Tensor, buffers: dict[str, Tensor], batch: Batch,
                        with_loss: bool = True
                        ) -> tuple[Tensor | None, list[Tensor], dict[str, Tensor]]:
        """``step_grad`` with ``g_B`` as consecutive blocks ``[C, n_k]`` of θ's coordinates.

        Models whose gradient comes in pieces (a module's layers) return them uncopied; the
        default is one block.
        """
        loss, g, buffers = self.step_grad(theta, buffers, batch, with_loss)
        return loss, [g], buffers

    def minibatch_gradient(self, theta: Tensor, batch: Batch) -> Tensor:
        """The minibatch gradient alone (models override it to skip the loss's arithmetic).

        Must equal ``minibatch_grad(theta, batch)[1]`` bit for bit.
        """
        return self.minibatch_grad(theta, batch)[1]

    def example_var(self, theta: Tensor, batch: Batch) -> Tensor:
        """Unbiased estimate of the per-example gradient variance ``Σ_1,ii(θ)``, ``[C, D]``."""
        raise NotImplementedError

    def example_sq(self, theta: Tensor, batch: Batch) -> Tensor:
        """Batch mean of squared per-example gradients, ``[C, D]``."""
        raise NotImplementedError

    def full_loss_grad(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """Full-batch loss ``[C]`` and gradient ``[C, D]``."""
        raise NotImplementedError

    def full_grad_cheap(self) -> bool:
        """Whether evaluating the full-batch loss at every recorded draw is cheap."""
        return self.n_examples is None or self.n_examples * self.dim <= 2**16

    def exact_hessian(self) -> np.ndarray | None:
        """``H [D, D]`` (float64) when the loss is exactly quadratic, else ``None``."""
        return None

    def linear_gradient(self, batch_size: int, sampling: str) -> LinearGradient | None:
        """The exact linear-gradient form of minibatch gradients, or ``None`` (module docstring)."""
        return None

    def glm_parts(self) -> tuple[np.ndarray, np.ndarray, float, Any] | None:
        """``(X, y, l2, r)`` of a GLM, ``∇ℓ_i = x_i·r(x_iᵀθ, y_i) + l2·θ`` (``r`` on numpy).

        ``None`` for other models; exact laws of SGD on small GLMs invert its per-example maps.
        """
        return None

    def example_affine(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(P [N, D, D], r [N, D])`` when every per-example gradient is ``g_i = P_iθ − r_i``.

        ``None`` for models without a finite dataset or with a non-affine gradient.
        """
        return None

    def curvature_floor(self) -> float | None:
        """``m`` when every minibatch gradient is ``m·θ + b(θ)`` with ``‖b‖`` bounded, else ``None``.

        Far from the origin such a loss is a quadratic of curvature m in every direction, so a
        rate that makes the recursion on ``m·I`` unstable makes every chain diverge.
        """
        return None

    def variables(self) -> list[Any]:
        """θ's coordinates as named variables (``network.Variable``); ``[]``: one ``theta``."""
        return []

    def arrays(self) -> dict[str, np.ndarray]:
        """The model's defining arrays, stored as arrays in the archive (``run/model/``)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable facts the analysis layer needs (dimension, dataset size)."""
        return {"name": self.name, "dim": self.dim, "n_examples": self.n_examples}


class DatasetModel(Model):
    """A model defined by a per-example loss ``ℓ(θ, x, y)`` on a dataset ``(X, y)``.

    Args:
        x: Inputs ``[N, ...]``.
        y: Targets ``[N, ...]``.
        l2: Ridge term added to every example, ``ℓ_i + (l2/2)‖θ‖²``.
    """

    n_examples: int

    def __init__(self, x: Tensor, y: Tensor, dim: int, l2: float = 0.0) -> None:
        self.x, self.y, self.dim, self.l2 = x, y, dim, l2
        self.n_examples = int(x.shape[0])
        self.dtype, self.device = x.dtype, x.device

    def example_loss(self, theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """Per-example loss ``ℓ(θ, x, y)`` for one chain (``θ: [D]``), without the ridge term."""
        raise NotImplementedError

    def _ridged(self, theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
        return self.example_loss(theta, x, y) + 0.5 * self.l2 * (theta * theta).sum()

    def example_grads(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Per-example losses ``[C, B]`` and gradients ``[C, B, D]`` via ``torch.func``."""
        idx = indices_of(batch)
        xb, yb = gather_rows(self.x, idx), gather_rows(self.y, idx)
        per_example = vmap(vmap(_value_and_grad(self._ridged), in_dims=(None, 0, 0)))
        grads, losses = per_example(theta, xb, yb)
        return losses, grads

    def minibatch_grad(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Minibatch loss and gradient, ``g_B = (1/B) Σ_b ∇ℓ_b``, batched over chains."""
        idx = indices_of(batch)
        xb, yb = gather_rows(self.x, idx), gather_rows(self.y, idx)

        def batch_loss(th: Tensor, xs: Tensor, ys: Tensor) -> Tensor:
            return vmap(self._ridged, in_dims=(None, 0, 0))(th, xs, ys).mean()

        grads, losses = vmap(_value_and_grad(batch_loss))(theta, xb, yb)
        return losses, grads

    def example_moments(self, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Batch mean and batch mean of squares of the per-example gradients, ``[C, D]`` each."""
        _, grads = self.example_grads(theta, batch)
        return grads.mean(dim=1), grads.square().mean(dim=1)

    def example_var(self, theta: Tensor, batch: Batch) -> Tensor:
        """``Σ_b (∇ℓ_b − g_B)² / (B − 1)`` for B ≥ 2 (unbiased for Σ_1,ii(θ)).

        With B = 1 there is no within-batch spread; the estimate is then ``g_B²``, unbiased for
        ``Σ_1,ii(θ) + (∂_iL)²``, which near stationarity is ``Σ_1,ii`` up to O(η)
        (docs/theory.md identity O1).
        """
        mean, mean_sq = self.example_moments(theta, batch)
        b = indices_of(batch).shape[1]
        if b == 1:
            return mean_sq
        return (mean_sq - mean.square()).clamp_min(0) * (b / (b - 1))

    def example_sq(self, theta: Tensor, batch: Batch) -> Tensor:
        """``(1/B) Σ_b (∇ℓ_b)_i²``."""
        return self.example_moments(theta, batch)[1]

    def all_examples(self, n_chains: int) -> IndexBatch:
        """A batch holding every example once, for every chain."""
        idx = torch.arange(self.n_examples, device=self.device)
        return IndexBatch(idx.expand(n_chains, -1))

    def dataset(self) -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)`` as float64 arrays."""
        return self.x.double().cpu().numpy(), self.y.double().cpu().numpy()

    def surrogate_noise(self, theta: Tensor, weights: Tensor, batch_size: int) -> Tensor:
        """``ξ = Σ_i z_i (∇ℓ_i − ∇L) / √(N·B)``: Gaussian with covariance ``Σ_1(θ)/B`` given θ."""
        _, grads = self.example_grads(theta, self.all_examples(theta.shape[0]))
        centred = grads - grads.mean(dim=1, keepdim=True)
        return torch.einsum("cn,cnd->cd", weights, centred) / (
            self.n_examples * batch_size) ** 0.5

    def full_loss_grad(self, theta: Tensor, chunk: int = 4096) -> tuple[Tensor, Tensor]:
        """Full-batch ``L`` and ``∇L``, accumulated over example chunks to bound memory."""
        loss = theta.new_zeros(theta.shape[0])
        g = torch.zeros_like(theta)
        for start in range(0, self.n_examples, chunk):
            xs, ys = self.x[start:start + chunk], self.y[start:start + chunk]

            def chunk_loss(th: Tensor, xs: Tensor = xs, ys: Tensor = ys) -> Tensor:
                return vmap(self._ridged, in_dims=(None, 0, 0))(th, xs, ys).sum()

            gi, li = vmap(_value_and_grad(chunk_loss))(theta)
            loss, g = loss + li, g + gi
        return loss / self.n_examples, g / self.n_examples


def _value_and_grad(fn: Any) -> Any:
    """``torch.func.grad`` returning ``(grad, value)`` via ``has_aux``."""

    def wrapped(*args: Tensor) -> tuple[Tensor, Tensor]:
        value = fn(*args)
        return value, value.detach()

    return grad(wrapped, has_aux=True)
