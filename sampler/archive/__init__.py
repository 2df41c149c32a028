"""The Zarr v3 archive, in one package; a format change happens here only.

``schema`` (names, version, blocks, shards), ``layout`` (pre-allocation by the driver) and
``store`` (``RunStore``: the commit protocol, used read-write by the shard runner and read-only by
the analysis reader), ``integrity`` and ``verify`` (checksums of committed data), ``storage``
(local folders and fsspec URLs, their options and errors).
"""

from __future__ import annotations

from typing import Any

# Names are loaded on first use (PEP 562): `status` and the CLI's error handling read the
# storage layer and the schema without the layout, which needs the config, hence torch.
_HOMES = {
    "integrity": ("CorruptArchiveError", "Corruption"),
    "layout": ("create_archive",),
    "schema": ("DTYPES", "ROOT_KEY", "SCHEMA_VERSION", "archived_job", "internal_group_name",
               "package_version", "read_root", "run_group_name", "shard_bounds"),
    "storage": ("ArchiveError", "StorageError", "check_reachable", "filesystem", "is_url",
                "open_store", "remove_tree", "set_storage_options", "storage_errors",
                "storage_options"),
    "store": ("BlockData", "Checkpoint", "RunStore"),
    "verify": ("VerifyReport", "verify_archive"),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    """The public name ``name`` from the module that defines it (imported now)."""
    import importlib

    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = ["DTYPES", "ROOT_KEY", "SCHEMA_VERSION", "ArchiveError", "BlockData", "Checkpoint",
           "CorruptArchiveError", "Corruption", "RunStore", "StorageError", "VerifyReport",
           "verify_archive", "archived_job", "check_reachable", "create_archive",
           "filesystem", "internal_group_name", "is_url", "open_store", "package_version",
           "read_root", "remove_tree",
           "run_group_name", "set_storage_options", "shard_bounds", "storage_errors",
           "storage_options"]
