"""Where an archive lives: a local folder or an fsspec URL (``s3://``, ``gs://``, ``memory://``).

Every door to the archive's bytes opens here: Zarr stores (``open_store``), the filesystem
of the lease and of overwrites (``filesystem``). Options for the URL's filesystem (an S3
endpoint, a profile, ``anon``) are set once per process with ``set_storage_options``: the
driver sets them from ``--storage-option`` and the config's ``cluster.storage_options``, and
passes them to every actor, which sets them in its own process. Credentials belong in the
environment (``AWS_*``) or the provider's files: options in the config are stored in the
archive with the config, options given on the command line are not.

A failure of the storage itself (no endpoint, no credentials, a missing bucket, no fsspec
package for the protocol) becomes one ``StorageError`` line instead of the client's traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import fsspec
import zarr
import zarr.abc.store
import zarr.core.buffer
import zarr.core.sync
import zarr.storage

_OPTIONS: dict[str, Any] = {}
_LOCAL_PROTOCOLS = {"file", "local", "memory"}  # no bucket to check, no credentials


class ArchiveError(ValueError):
    """A path that is not a usable sgdthermo archive; the message says why."""


class StorageError(ArchiveError):
    """The storage under an archive failed (unreachable, refused, missing); one line."""


def set_storage_options(options: Mapping[str, Any] | None) -> None:
    """Options for every fsspec URL this process opens (replaces the previous ones)."""
    _OPTIONS.clear()
    _OPTIONS.update(options or {})


def storage_options() -> dict[str, Any]:
    """The options set in this process (a copy)."""
    return dict(_OPTIONS)


def is_url(path: str) -> bool:
    """Whether ``path`` is an fsspec URL rather than a local path (``file://`` is local)."""
    return "://" in path and not path.startswith("file://")


def filesystem(path: str) -> tuple[Any, str]:
    """The fsspec filesystem of ``path`` and the archive's root inside it."""
    with storage_errors(path):
        if is_url(path):
            return fsspec.core.url_to_fs(path, **_OPTIONS)
        return fsspec.core.url_to_fs(path.removeprefix("file://"))


def open_store(path: str, read_only: bool = False) -> zarr.abc.store.Store:
    """A Zarr store for a local path or an fsspec URL, with this process's storage options."""
    if is_url(path):
        with storage_errors(path):
            return zarr.storage.FsspecStore.from_url(path, read_only=read_only,
                                                     storage_options=dict(_OPTIONS))
    return zarr.storage.LocalStore(path.removeprefix("file://"), read_only=read_only)


@contextlib.contextmanager
def storage_errors(path: str) -> Iterator[None]:
    """Turn a storage client's exception into one ``StorageError`` line naming ``path``.

    ``FileNotFoundError`` and ``ArchiveError`` pass through (the callers say what a missing
    archive means); so does anything raised for a local path, which is not a storage failure.
    """
    try:
        yield
    except (ArchiveError, FileNotFoundError):
        raise
    except ImportError as err:
        raise StorageError(f"{path!r}: {err} (its fsspec package is missing; for s3:// "
                           f"pip install 'sgdthermo[s3]')") from None
    except Exception as err:  # noqa: BLE001 - every client library has its own exceptions
        if not is_url(path):
            raise
        text = " ".join(str(err).split()) or "no message"
        raise StorageError(f"{path!r}: storage error, {type(err).__name__}: {text[:300]} "
                           f"(check the endpoint, credentials and --storage-option)") from None


def check_reachable(path: str) -> bool:
    """Whether the archive's root exists; raises ``StorageError`` if the storage fails.

    For an object store the bucket (the root's first component) must exist, so that a job is
    refused before it starts rather than when its first block is written.
    """
    fs, root = filesystem(path)
    with storage_errors(path):
        if fs.exists(root):
            return True
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        bucket = root.strip("/").split("/")[0]
        if not _LOCAL_PROTOCOLS & set(protocols) and not fs.exists(bucket):
            raise StorageError(f"{path!r}: bucket {bucket!r} does not exist (or these "
                               f"credentials cannot see it)")
    return False


def remove_tree(path: str) -> None:
    """Delete everything under the archive's root (``run --overwrite``)."""
    fs, root = filesystem(path)
    with storage_errors(path):
        if fs.exists(root):
            fs.rm(root, recursive=True)


def consolidate(path: str | zarr.storage.MemoryStore) -> None:
    """Write the archive's consolidated metadata (after creating it or resizing arrays)."""
    with warnings.catch_warnings():  # consolidated metadata is not yet in the v3 spec
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(open_store(path) if isinstance(path, str) else path)


def write_new(path: str, source: zarr.storage.MemoryStore) -> None:
    """Every key of an archive built in memory, written at once to a new archive at ``path``.

    Creating an archive's arrays one by one on disk costs a round trip each (~0.3 s for a run's
    ~70 arrays); built in memory and written concurrently, a few milliseconds. Refuses
    (``ArchiveError``) where ``path`` already holds a Zarr node.
    """
    target = open_store(path)

    async def copy() -> None:
        if await target.exists("zarr.json"):
            raise ArchiveError(f"{path!r} already holds a Zarr hierarchy; not replacing it")
        keys = [key async for key in source.list()]
        prototype = zarr.core.buffer.default_buffer_prototype()
        values = await asyncio.gather(*(source.get(key, prototype) for key in keys))
        await asyncio.gather(*(target.set(key, value)
                               for key, value in zip(keys, values, strict=True)
                               if value is not None))

    with storage_errors(path):
        zarr.core.sync.sync(copy())
