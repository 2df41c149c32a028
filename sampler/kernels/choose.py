"""Which step path runs a (model, rule, sampling): the one place that decides.

``"native"`` takes ``native_diagonal`` or ``native_regression`` where one applies (and raises
``NativeUnavailable`` where one applies but its library cannot be built here), else falls back
as ``"fused"`` does; ``"fused"`` takes ``fused_linear`` where it applies, else as ``"lean"``;
``"lean"`` takes ``lean_sgd`` (constant-rate SGD on any dataset model) where it applies, and
``"native"`` or ``"lean_native"`` the same with its step as one C pass (``native_lean``, CPU);
``"step"``, and every case no other path applies to, is the general torch step
(``general_step``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..native import NativeUnavailable
from ..native import unavailable_reason as native_unavailable
from ..recording import Recording
from ..rules import UpdateRule
from .fused_linear import DiagonalLinearKernel
from .general_step import GeneralStepKernel
from .lean_sgd import LeanSGDKernel
from .native_diagonal import NativeDiagonalKernel
from .native_regression import NativeRegressionKernel

if TYPE_CHECKING:
    from ..models import Model

KERNELS = ("native", "fused", "lean_native", "lean", "step")
FusedPath = DiagonalLinearKernel | NativeDiagonalKernel | NativeRegressionKernel
BlockPath = FusedPath | LeanSGDKernel | GeneralStepKernel


def default_kernel() -> str:
    """``"native"`` where its library builds here (a C compiler), else ``"fused"``."""
    return "fused" if native_unavailable() else "native"


def choose(kernel: str | None, model: Model, rule: UpdateRule, batch_size: int, sampling: str,
           record_full_loss: bool, recording: Recording) -> tuple[BlockPath, str]:
    """The block path for ``kernel`` (``None``: ``default_kernel()``) and the name of what runs.

    Returns:
        ``(path, name)``: ``GeneralStepKernel`` and ``"step"`` where no faster path applies.

    Raises:
        ValueError: ``kernel`` is not one of ``KERNELS``.
        NativeUnavailable: ``"native"`` applies but its library cannot be built here.
    """
    kernel = default_kernel() if kernel is None else kernel
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {list(KERNELS)}, got {kernel!r}")
    if kernel == "native":
        try:
            path: FusedPath | None = (
                NativeDiagonalKernel.build(model, rule, sampling, record_full_loss, recording)
                or NativeRegressionKernel.build(model, rule, batch_size, sampling,
                                                record_full_loss, recording))
        except NativeUnavailable as err:
            raise NativeUnavailable(f"kernel 'native' cannot run here: {err}") from None
        if path is not None:
            return path, "native"
    if kernel in ("native", "fused"):
        path = DiagonalLinearKernel.build(model, rule, sampling, record_full_loss, recording)
        if path is not None:
            return path, "fused"
    if kernel in ("native", "lean_native") and model.device.type == "cpu":
        try:
            lean = LeanSGDKernel.build(model, rule, sampling, recording, native=True)
        except NativeUnavailable as err:
            raise NativeUnavailable(f"kernel {kernel!r} cannot run here: {err}") from None
        if lean is not None:
            return lean, "lean_native"
    if kernel in ("native", "fused", "lean_native", "lean"):
        lean = LeanSGDKernel.build(model, rule, sampling, recording)
        if lean is not None:
            return lean, "lean"
    return GeneralStepKernel(), "step"
