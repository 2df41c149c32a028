"""The lean SGD step as one C pass per block of coordinates (``native/lean.c``).

``kernels.lean_sgd`` calls it once per piece of the gradient (a layer) instead of three or four torch
passes: ``w0 += g², (w1 += θ), θ ← θ − η·g`` with each operand read once.
Its arithmetic rounds ``θ − η·g`` as two operations (no fused multiply-add), so it is a path of
its own (``"lean_native"``): an archive it wrote is continued by it.
"""

from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from ..native import library

_P, _I64 = ctypes.c_void_p, ctypes.c_int64
_SUFFIX = {torch.float32: "_f32", torch.float64: "_f64"}


class NativeLeanStep:
    """The compiled step for one dtype (raises ``NativeUnavailable`` where it cannot build)."""

    def __init__(self, dtype: torch.dtype, lr: float) -> None:
        if dtype not in _SUFFIX:
            raise ValueError(f"the native lean step runs in float32 or float64, got {dtype}")
        self._fn = getattr(library("lean"), "lean_step" + _SUFFIX[dtype])
        self._real = ctypes.c_float if dtype == torch.float32 else ctypes.c_double
        self._fn.argtypes = [_I64, _I64, _P, _I64, _P, _I64, _P, _I64, _I64, ctypes.c_int32,
                             self._real]
        self._fn.restype = None
        self.lr, self.size = self._real(lr), torch.empty((), dtype=dtype).element_size()

    def __call__(self, theta: Tensor, lo: int, g: Tensor, window: Tensor, virial: bool) -> None:
        """One step on coordinates ``[lo, lo + n)`` of ``θ [C, D]`` and ``window [C, K, D]``.

        In place, on the CPU, with the gradient piece ``g [C, n]``.
        """
        g = g.contiguous()
        c, n = g.shape
        assert theta.is_contiguous() and window.is_contiguous() and theta.device.type == "cpu"
        self._fn(c, n, theta.data_ptr() + lo * self.size, theta.stride(0), g.data_ptr(),
                 g.stride(0), window.data_ptr() + lo * self.size, window.stride(0),
                 window.stride(1), int(virial), self.lr)
