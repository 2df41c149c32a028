"""The Zarr v3 archive, in one package; a format change happens here only.

``schema`` (names, version, blocks, shards), ``layout`` (pre-allocation by the driver) and
``store`` (``RunStore``: the commit protocol, used read-write by the shard runner and read-only by
the analysis reader), ``integrity`` and ``verify`` (checksums of committed data), ``storage``
(local folders and fsspec URLs, their options and errors).
"""

from __future__ import annotations

from .integrity import CorruptArchiveError, Corruption
from .layout import create_archive
from .schema import (
    DTYPES,
    ROOT_KEY,
    SCHEMA_VERSION,
    archived_job,
    internal_group_name,
    package_version,
    read_root,
    run_group_name,
    shard_bounds,
)
from .storage import (
    ArchiveError,
    StorageError,
    check_reachable,
    filesystem,
    is_url,
    open_store,
    remove_tree,
    set_storage_options,
    storage_errors,
    storage_options,
)
from .store import BlockData, Checkpoint, RunStore
from .verify import VerifyReport, verify_archive

__all__ = ["DTYPES", "ROOT_KEY", "SCHEMA_VERSION", "ArchiveError", "BlockData", "Checkpoint",
           "CorruptArchiveError", "Corruption", "RunStore", "StorageError", "VerifyReport",
           "verify_archive", "archived_job", "check_reachable", "create_archive",
           "filesystem", "internal_group_name", "is_url", "open_store", "package_version",
           "read_root", "remove_tree",
           "run_group_name", "set_storage_options", "shard_bounds", "storage_errors",
           "storage_options"]
