"""Opening archives lazily as xarray / ArviZ objects, restricted to committed draws.

Only draws that every shard of a run has committed are exposed (the minimum over shards), so a
reader of a running or interrupted job never sees a half-written or missing block. Nothing here
needs Ray.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from ..sampler.archive import (
    DTYPES,
    RunStore,
    internal_group_name,
    open_store,
    read_root,
    run_group_name,
    set_storage_options,
    verify_archive,
)
from ..sampler.archive.schema import LAYOUT_LAYERS
from ..sampler.config import RunSpec
from ..sampler.config.torch_model import Supplied
from ..sampler.models import Model
from ..sampler.rules import UpdateRule
from .flat_layers import flat_theta

if TYPE_CHECKING:
    import arviz as az


def archive_metadata(path: str) -> dict[str, Any]:
    """The archive's root attributes (resolved config, runs, device, schema version).

    Raises ``ArchiveError`` for a path that is not a readable sgdthermo archive. The analysis
    layer reads the archive only through this module.
    """
    return read_root(path)


def open_tree(path: str) -> xr.DataTree:
    """The whole archive as a lazy ``xarray.DataTree`` (plain xarray, no sgdthermo decoding)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_datatree(open_store(path, read_only=True), engine="zarr")


@dataclass
class RunData:
    """One run of an archive: its spec, committed draws and fluctuation sums."""

    path: str
    spec: RunSpec
    store: RunStore  # the run's group, read-only: spec, blocks, shards, commits
    tree: xr.DataTree  # the run's group
    internal: xr.DataTree  # its checkpoint/ and fluctuation/ (the run's group in schema 1)
    draws: int  # committed posterior draws (min over shards)
    warmup_draws: int
    posterior_blocks_done: int  # min over shards
    chunk_draws: int
    code: Supplied | None = None  # a user's module is rebuilt only when this is given

    @property
    def index(self) -> int:
        """Run index."""
        return self.spec.index

    @property
    def label(self) -> str:
        """Sweep-point label."""
        return self.spec.label

    @property
    def complete(self) -> bool:
        """All posterior draws committed (a ``run.until`` run: and it has stopped)."""
        until = self.store.until
        if until is not None:
            return until.stopped and self.draws == until.posterior_draws
        return self.draws == self.spec.run.draws

    def posterior(self) -> xr.Dataset:
        """Committed posterior draws ``theta (chain, draw, coord)`` with chain/draw coordinates.

        θ is flat here whatever the layout: a network stored per layer (layout ``"layers"``) is
        read through a lazy flat view (``flat_layers``); ``inference_data`` gives the layers.
        """
        return self._flat(self._group("posterior", self.draws))

    def _flat(self, group: xr.Dataset) -> xr.Dataset:
        if self.store.layout != LAYOUT_LAYERS:
            return group
        names = [str(name) for name, _, _ in self.store.variables]
        theta = flat_theta([group[name].variable for name in names])
        rest = group.drop_vars(names)
        return rest.assign(theta=theta.assign_coords(chain=group["chain"], draw=group["draw"]))

    def sample_stats(self) -> xr.Dataset:
        """Committed sample statistics (loss, grad_norm, full_loss, lp, diverging).

        Schema 1 archives have ``diverged`` and no ``lp``.
        """
        return self._group("sample_stats", self.draws)

    def _group(self, name: str, n: int) -> xr.Dataset:
        ds = self.tree[name].to_dataset().isel(draw=slice(0, n))
        ds = ds.assign_coords(chain=np.arange(ds.sizes["chain"]), draw=np.arange(n))
        if "coord" in ds.coords and not self.partial:  # 0 … D−1 (schema 2): as schema 1 read
            ds = ds.drop_vars("coord")
        return ds

    @cached_property
    def recorded_coords(self) -> np.ndarray | None:
        """The coordinates of θ its draws record (``run.record``); ``None``: all of them."""
        return self.store.recording().coords

    @property
    def partial(self) -> bool:
        """Whether θ's draws record only a subset of its coordinates."""
        return self.recorded_coords is not None

    def variables(self) -> list[tuple[str, tuple[int, ...], tuple[str, ...], slice]]:
        """θ's named blocks ``(name, shape, dims, coordinates)``; one ``theta`` if none.

        A subset of a network's coordinates (``run.record``) is one ``theta`` too.
        """
        if not self.store.variables or self.partial:
            dim = int(self.tree["posterior"]["theta"].shape[-1])
            return [("theta", (dim,), ("coord",), slice(0, dim))]
        out, lo = [], 0
        for name, shape, dims in self.store.variables:
            n = int(np.prod(shape))
            out.append((str(name), tuple(int(s) for s in shape), tuple(dims), slice(lo, lo + n)))
            lo += n
        return out

    def layers(self) -> list[tuple[str, tuple[int, ...], slice]]:
        """The model's named blocks of all of θ ``(name, shape, coordinates)``; ``[]`` if none.

        Also when the draws record a subset: the engine's sums cover every coordinate.
        """
        out, lo = [], 0
        for name, shape, _ in self.store.variables:
            n = int(np.prod(shape))
            out.append((str(name), tuple(int(s) for s in shape), slice(lo, lo + n)))
            lo += n
        return out

    def named(self, group: xr.Dataset) -> xr.Dataset:
        """``theta (chain, draw, coord)`` split into the model's named variables.

        ``w1 (chain, draw, w1_out, w1_in)`` and so on for networks; unchanged for models with one
        ``theta``. Loads the draws (a view per variable of one array read).
        """
        if not self.store.variables or self.partial:
            return group
        theta = group["theta"]
        values = np.asarray(theta.values)
        lead = values.shape[:2]
        data = {name: (("chain", "draw", *dims), values[..., coords].reshape(*lead, *shape))
                for name, shape, dims, coords in self.variables()}
        return xr.Dataset(data, coords={"chain": theta["chain"], "draw": theta["draw"]})

    def inference_data(self) -> az.InferenceData:
        """Committed draws as ArviZ ``InferenceData`` (posterior, sample_stats, warmup groups).

        Network parameters appear per layer with named dims (``RunData.named``).
        """
        import arviz as az  # 1.4 s of imports, paid only by who asks for InferenceData

        groups: dict[str, Any] = {"posterior": self._layers("posterior", self.draws),
                                  "sample_stats": self.sample_stats()}
        if "warmup_posterior" in self.tree.children:
            groups["warmup_posterior"] = self._layers("warmup_posterior", self.warmup_draws)
            groups["warmup_sample_stats"] = self._group("warmup_sample_stats",
                                                        self.warmup_draws)
        if "constant_data" in self.tree.children:
            groups["constant_data"] = self.tree["constant_data"].to_dataset()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return az.InferenceData(**groups)

    def _layers(self, name: str, n: int) -> xr.Dataset:
        """A posterior group with a network's layers as variables (as stored, or split)."""
        group = self._group(name, n)
        if self.store.layout != LAYOUT_LAYERS:
            return self.named(group)
        names = [str(v) for v, _, _ in self.store.variables]  # in θ's order, not the store's
        return group[names + [str(v) for v in group.data_vars if str(v) not in names]]

    def fluctuation(self, coords: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """Committed fluctuation sums ``[C, blocks, D]`` and the steps of each block ``[blocks]``.

        ``coords`` reads only a block of coordinates (the analysis streams over them).
        """
        k = self.posterior_blocks_done
        fl: Any = self.internal["fluctuation"]
        return (np.asarray(fl["sum"][:, :k, coords].values),
                np.asarray(fl["steps"][:k].values))

    def coordinate_slices(self, coords: slice, fields: int = 1,
                          budget: int = 2**26) -> list[slice]:
        """``coords`` cut into slices of at most ``budget`` bytes of per-block sums.

        ``fields`` float64 numbers per coordinate, chain and block: a layer of any size is read
        a slice at a time.
        """
        start, stop, _ = coords.indices(self.model.dim)
        per_coord = self.spec.run.chains * max(self.posterior_blocks_done, 1) * fields * 8
        width = max(1, budget // per_coord)
        return [slice(lo, min(lo + width, stop)) for lo in range(start, stop, width)]

    def fluctuation_total(self, coords: slice, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ``keep`` chains' fluctuation sums over ``coords``: ``[C', blocks]`` and the steps.

        Read in bounded slices (``coordinate_slices``).
        """
        total: np.ndarray | None = None
        steps = np.zeros(0)
        for part in self.coordinate_slices(coords):
            sums, steps = self.fluctuation(part)
            piece = sums[keep].sum(axis=-1)
            total = piece if total is None else total + piece
        if total is None:
            total = np.zeros((int(keep.sum()), self.posterior_blocks_done))
        return total, steps

    def identity_sums(self, coords: slice = slice(None)) -> np.ndarray | None:
        """Committed sums ``[C, blocks, 3, D]`` of ``θ⊙pg``, ``pg`` and ``½(pg)²`` per block.

        The terms of the rate-weighted stationarity identity (``sampler.engine.Engine.apply``);
        ``None`` for archives written before they were recorded.
        """
        fl: Any = self.internal["fluctuation"]
        if "identity" not in fl:
            return None
        return np.asarray(fl["identity"][:, : self.posterior_blocks_done, :, coords].values)

    def virial_sums(self, coords: slice = slice(None)) -> np.ndarray | None:
        """Committed sums ``[C, blocks, 3, D]`` of ``θ``, ``θ⊙g_B`` and ``g_B`` per block.

        Kept by the engine only when θ is recorded partly
        (``sampler.kernels.general_step.VirialWindow``); ``None`` otherwise.
        """
        fl: Any = self.internal["fluctuation"]
        if "virial" not in fl:
            return None
        return np.asarray(fl["virial"][:, : self.posterior_blocks_done, :, coords].values)

    def final_state(self, name: str) -> np.ndarray:
        """A checkpointed state tensor after the last commit of each shard, ``[C, ...]``.

        ``name`` is ``params`` or ``rule_<field>``; shards with nothing committed give NaN.
        """
        return self.store.state_array(name)

    @cached_property
    def model(self) -> Model:
        """The run's model, rebuilt from the stored config (on CPU, in the run's dtype).

        A user's module (``torch``) is imported only when the archive was opened with
        ``import_model`` (``code`` set), after its source files are checked against the
        SHA-256 the archive stored; otherwise its stand-in (``ArchivedModel``) holds the stored
        facts only, and nothing of the user's runs.
        """
        from ..sampler.models.weight_decay import with_weight_decay

        spec, dtype = self.spec, DTYPES[self.spec.run.dtype]
        if spec.model.kind != "torch":
            model = spec.model.build(spec.run.batch_size, dtype)
        elif self.code is None:
            from ..sampler.models.archived import ArchivedModel

            model = ArchivedModel(self.store.model_facts, self.store.variables, dtype)
        else:
            model = self._imported(dtype)
        return with_weight_decay(model, self.rule.weight_decay)

    def _imported(self, dtype: Any) -> Model:
        """The user's module rebuilt from its source, refused in one line if that changed."""
        from ..sampler.config.torch_model import supplying
        from ..sampler.models.user_code import UserCodeError

        config: Any = self.spec.model  # a TorchConfig (``kind == "torch"``)
        change = config.source_change(self.store.model_facts.get("source_sha256") or {})
        if change is not None:
            raise UserCodeError(f"--import-model: run {self.index}: {change}; its Hessian would "
                                f"be another model's. Restore that file, or analyse without "
                                f"--import-model")
        with supplying(self.code):
            return config.build(self.spec.run.batch_size, dtype)

    @property
    def virial_from_sums(self) -> bool:
        """Whether the virial comes from the engine's sums.

        So it does when θ is recorded partly, or when the model's code is not imported
        (gradients at the draws cannot be evaluated).
        """
        return self.partial or self.model.opaque

    @cached_property
    def rule(self) -> UpdateRule:
        """The run's update rule, rebuilt from the stored config."""
        return self.spec.rule.build(self.spec.run.batch_size)

    @property
    def epoch_steps(self) -> int | None:
        """Steps per epoch ``⌊N/B⌋`` under epoch reshuffling (the partial batch is dropped)."""
        n = self.model.n_examples
        if self.spec.run.sampling != "epoch" or n is None:
            return None
        return n // self.spec.run.batch_size

    def diverged_chains(self) -> np.ndarray:
        """Boolean ``[C]``: chains flagged diverged at any committed draw."""
        if self.draws == 0:
            return np.zeros(self.spec.run.chains, bool)
        stats = self.sample_stats()
        name = "diverging" if "diverging" in stats else "diverged"  # schema 2 / schema 1
        return np.asarray(np.asarray(stats[name].values).any(axis=1))


def open_run(path: str, index: int, tree: xr.DataTree | None = None,
             code: Supplied | None = None) -> RunData:
    """Open run ``index`` of the archive at ``path`` (``code``: see ``open_archive``)."""
    store = RunStore(path, index)
    tree = tree if tree is not None else open_tree(path)
    group: Any = tree[run_group_name(index)]
    internal: Any = tree[internal_group_name(index, store.version)]
    counts = store.committed_draws()
    return RunData(path, store.spec, store, group, internal, counts["posterior"],
                   counts["warmup"], store.posterior_blocks_done(), store.chunk_draws, code)


def check_integrity(path: str) -> None:
    """Raise ``CorruptArchiveError`` (one line) if a committed block fails its checksum."""
    verify_archive(path).raise_if_corrupt()


def open_archive(path: str, storage_options: dict[str, Any] | None = None,
                 import_model: bool = False, model: Any = None, loss: Any = None,
                 data: tuple[Any, Any] | None = None) -> list[RunData]:
    """All runs of an archive.

    Args:
        path: The archive, a folder or an fsspec URL.
        storage_options: fsspec options for a URL, set for this process.
        import_model: Rebuild a user's module (``kind = "torch"``) from the source files its
            config names, for what needs its gradient (Hessian products: ``top_k``, ``pca``).
            Each file is first checked against the SHA-256 stored when the run began. Without
            it (the default) reading an archive runs none of the user's code.
        model: For a run whose module was given in Python (``run_job(config, out,
            model=net)``): the same module again. Giving it (or ``loss``, ``data``) implies
            ``import_model``.
        loss: The loss function given in Python, likewise.
        data: The dataset ``(x, y)`` given in Python, likewise.
    """
    if storage_options is not None:
        set_storage_options(storage_options)
    code = (Supplied(model, loss, data)
            if import_model or any(x is not None for x in (model, loss, data)) else None)
    meta = read_root(path)
    tree = open_tree(path)
    return [open_run(path, r["index"], tree, code) for r in meta["runs"]]
