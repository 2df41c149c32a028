"""The ``torch`` model table: a user's ``nn.Module``, loss and data (``models.TorchModel``).

In a config the module, the loss and the data are named (files relative to the config); in
Python they may be given as objects (``supplied``), which ``cluster.run_job(model=, loss=,
data=)`` sets for the driver and hands to every actor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from pydantic import Field, field_validator
from torch import nn

from ..models.example_losses import LOSSES
from ..models.tensor_data import check_arrays, load_tensors
from ..models.torch_module import TorchModel, reseeded
from ..models.user_code import UserCodeError, load_callable, ship_sources, source_hash
from .base import _Strict

PYTHON_OBJECT = "<python object>"


class Supplied(NamedTuple):
    """Objects given in Python instead of names in the config (any may be ``None``)."""

    model: nn.Module | None = None
    loss: Any = None
    data: tuple[Any, Any] | None = None
    sources: dict[str, bytes] | None = None  # the named source files, read by the driver


_SUPPLIED: list[Supplied] = [Supplied()]


def supplied() -> Supplied:
    """The objects this process was given (``Supplied()`` when none)."""
    return _SUPPLIED[-1]


@contextlib.contextmanager
def supplying(objects: Supplied | None) -> Iterator[None]:
    """Make ``objects`` what ``TorchConfig.build`` uses while the block runs."""
    _SUPPLIED.append(objects or Supplied())
    try:
        yield
    finally:
        _SUPPLIED.pop()


def set_supplied(objects: Supplied | None) -> None:
    """Set the objects (and shipped sources) for the rest of this process (a shard actor's)."""
    _SUPPLIED[:] = [objects or Supplied()]
    if objects is not None and objects.sources:
        ship_sources(objects.sources)


class TorchDataConfig(_Strict):
    """The dataset of a torch module: a file, or arrays given in Python."""

    file: str | None = Field(None, description="A .npz (arrays X or x, and y), .pt (a dict "
                             "with X or x and y, or a tuple (x, y)) or .csv (features, then the "
                             "target column) file, relative to the config.")


class TorchConfig(_Strict):
    """Any ``torch.nn.Module`` (docs/models.md): sampled as C chains of one module."""

    kind: Literal["torch"] = "torch"
    module: str | None = Field(
        None, description="'net.py:build' (a file relative to the config) or "
        "'package.module:build': a callable returning an nn.Module. Left out: the module given "
        "in Python (run_job(model=...)).")
    args: dict[str, Any] = Field(default_factory=dict,
                                 description="Keyword arguments of the callable.")
    loss: str | None = Field(
        None, description="Per-example loss: cross_entropy (default), mse, or "
        "'file.py:fn' with fn(output [B, ...], y [B, ...]) → [B].")
    l2: float = Field(0.0, ge=0, description="Ridge (l2/2)‖θ‖² on every example: weight decay "
                      "coupled to the loss.")
    init: Literal["per_chain", "shared"] = Field(
        "per_chain", description="per_chain: each chain's parameters from the callable under "
        "its own seed (the module's own initialisation); shared: one module's parameters "
        "(built under model.seed) plus run.init_scale·N(0, I) per chain.")
    seed: int = Field(0, description="Seed of the one module that fixes the structure, the "
                      "buffers' start and (init = shared) the common start.")
    data: TorchDataConfig = Field(default_factory=TorchDataConfig,
                                  description="The dataset ([model.data]).")

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, value: str | None) -> str | None:
        if value is not None and value not in LOSSES and ":" not in value:
            raise ValueError(f"allowed: {', '.join(LOSSES)} or 'file.py:function', "
                             f"got {value!r}")
        return value

    @property
    def loss_scale(self) -> float:
        """Always 1 (scale the loss in your own loss function)."""
        return 1.0

    def references(self) -> dict[str, str]:
        """The user code this table names, by field (``model.module``, ``model.loss``)."""
        out = {}
        if self.module is not None:
            out["model.module"] = self.module
        if self.loss is not None and self.loss not in LOSSES:
            out["model.loss"] = self.loss
        return out

    def source_hashes(self) -> dict[str, str | None]:
        """SHA-256 of each named source file (``resume`` compares them)."""
        return {field: source_hash(ref, field) for field, ref in self.references().items()}

    def source_change(self, stored: dict[str, str | None]) -> str | None:
        """What differs from the sources a run began with, in one phrase, or ``None``.

        Args:
            stored: The archive's ``source_sha256`` by field (``model.module``, ``model.loss``).
        """
        now = self.source_hashes()
        for field, digest in stored.items():
            if digest is not None and now.get(field) != digest:
                ref = self.references().get(field, "?")
                state = "is missing" if now.get(field) is None else "has changed"
                return (f"{field} source {ref!r} {state} since the run began "
                        f"(sha256 {digest[:12]}…)")
        return None

    def _factory(self) -> tuple[Any, str]:
        given = supplied().model
        if self.module is None:
            if given is None:
                raise UserCodeError("model.module: not set, and no module was given in Python "
                                    "(run_job(config, out, model=my_module))")
            return reseeded(given), PYTHON_OBJECT
        fn = load_callable(self.module, "model.module")
        return partial(fn, **self.args), self.module

    def _loss(self) -> Any:
        given = supplied().loss
        if self.loss is None:
            return given if given is not None else LOSSES["cross_entropy"]
        return LOSSES[self.loss] if self.loss in LOSSES else load_callable(self.loss,
                                                                           "model.loss")

    def _data(self) -> tuple[np.ndarray, np.ndarray]:
        if self.data.file is not None:
            return load_tensors(self.data.file)
        given = supplied().data
        if given is None:
            raise UserCodeError("model.data.file: not set, and no data was given in Python "
                                "(run_job(config, out, data=(x, y)))")
        if not isinstance(given, tuple | list) or len(given) != 2:
            raise UserCodeError(f"data: expected a pair (x, y), got {type(given).__name__}")
        return check_arrays(given[0], given[1], "data")

    def build(self, batch_size: int, dtype: torch.dtype = torch.float64,
              device: str | torch.device = "cpu") -> TorchModel:
        """The module's chains on a dtype and device, checked by one probing step."""
        factory, reference = self._factory()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            template = _built(factory, reference)
        _check_module(template, reference)
        x, y = self._data()
        xt = torch.as_tensor(x, dtype=dtype, device=device)
        integer = np.issubdtype(y.dtype, np.integer) or y.dtype == bool
        yt = torch.as_tensor(y, dtype=torch.long if integer else dtype, device=device)
        facts = {"module": reference, "args": self.args,
                 "loss": self.loss or ("<python object>" if supplied().loss else "cross_entropy"),
                 "source_sha256": self.source_hashes()}
        model = TorchModel(factory, template, xt, yt, self._loss(), self.l2, self.init, facts)
        model.probe(batch_size)
        return model


def _built(factory: Any, reference: str) -> nn.Module:
    try:
        module = factory()
    except UserCodeError:
        raise
    except Exception as err:  # noqa: BLE001 - the user's code may raise anything
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise UserCodeError(f"model.module: {reference} raised {type(err).__name__}: "
                            f"{first} (model.args?)") from None
    if not isinstance(module, nn.Module):
        raise UserCodeError(f"model.module: {reference} returned a {type(module).__name__}, "
                            f"not a torch.nn.Module")
    return module


def _check_module(module: nn.Module, reference: str) -> None:
    """Refuse what cannot run as C independent chains, in one line naming the layer."""
    if not any(True for _ in module.parameters()):
        raise UserCodeError(f"model.module: {reference} returned a {type(module).__name__} "
                            f"with no parameters (nothing to sample)")
    for name, m in module.named_modules():
        where = f"{name or 'the module'} ({type(m).__name__})"
        if isinstance(m, nn.SyncBatchNorm):
            raise UserCodeError(f"model.module: {where} syncs statistics across processes, "
                                f"which would mix chains; use BatchNorm or GroupNorm")
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.momentum is None:
            raise UserCodeError(f"model.module: {where} has momentum=None (a cumulative average "
                                f"read on the host), which cannot be kept per chain; set "
                                f"momentum=0.1 or use GroupNorm")
        if isinstance(m, nn.RNNBase):
            raise UserCodeError(f"model.module: {where} keeps cuDNN-flattened weights that "
                                f"cannot be stacked per chain; write the recurrence with "
                                f"nn.Linear / nn.RNNCell")
