"""The Zarr v3 archive, in one package; a format change happens here only.

``schema`` (names, version, blocks, shards), ``layout`` (pre-allocation by the driver) and
``store`` (``RunStore``: the commit protocol, used read-write by the shard runner and read-only by
the analysis reader).
"""

from __future__ import annotations

from .layout import create_archive
from .schema import (
    DTYPES,
    ROOT_KEY,
    SCHEMA_VERSION,
    ArchiveError,
    archived_job,
    open_store,
    package_version,
    read_root,
    run_group_name,
    shard_bounds,
)
from .store import BlockData, Checkpoint, RunStore

__all__ = ["DTYPES", "ROOT_KEY", "SCHEMA_VERSION", "ArchiveError", "BlockData", "Checkpoint",
           "RunStore", "archived_job", "create_archive", "open_store", "package_version",
           "read_root", "run_group_name", "shard_bounds"]
