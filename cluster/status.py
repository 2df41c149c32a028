"""``sgdthermo status``: how far every run of an archive has got, and who is running it.

The archive is read once and no run is rebuilt (``sampler.archive.progress``), so neither the
config's models nor torch load; archives from before runs stored their spec fall back to
rebuilding them (``_status_rebuilt``). Only json, rich and the light archive readers are
imported at the top.
"""

from __future__ import annotations

import json
from typing import Any


def print_status(archive: str, as_json: bool = False) -> None:
    """Print the progress of every run of ``archive`` (a table, or JSON with ``as_json``)."""
    from ..sampler.archive.progress import archive_progress
    from .lease import describe, read_lease

    try:
        meta, progress = archive_progress(archive)
        rows = [p.as_dict() for p in progress]
    except KeyError:  # runs written before their attributes held the spec: rebuild them
        meta, rows = _status_rebuilt(archive)
    lease = read_lease(archive)
    complete = all(r["complete"] for r in rows)
    state = ("complete" if complete else "interrupted" if lease is None or lease["stale"]
             else "running")
    driver = None if lease is None else {"owner": lease["owner"],
                                         "heartbeat_age_s": round(lease["age_s"], 1),
                                         "stale": lease["stale"],
                                         "gone": lease.get("gone", False)}
    if as_json:
        print(json.dumps({"archive": archive, "created": meta["created"],
                          "device": meta["device"], "state": state, "driver": driver,
                          "runs": rows}, indent=2))
        return
    from ..analysis.render.tables import fit_tables, output_console

    console = output_console()
    cells = [[str(r["run"]), r["label"], f"{r['shards_done']}/{r['shards']}",
              f"{100 * r['chain_steps'] / max(r['total_chain_steps'], 1):.1f}%",
              ("complete" + (f" ({r['until']})" if "until" in r else "")) if r["complete"] else
              f"{r['until']}; interrupted: sgdthermo resume" if "until" in r and state != "running"
              else
              f"running: {describe(lease)}" if state == "running" and lease is not None else
              "interrupted: sgdthermo resume"] for r in rows]
    for t in fit_tables(f"{archive} ({meta['config']['name']}, created {meta['created']})",
                        ["run", "label", "shards done", "progress", "state"], cells,
                        console.width):
        console.print(t)


def _status_rebuilt(path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Progress of an archive from before runs stored their spec (schema 1): runs rebuilt."""
    from ..sampler.archive import read_root
    from .shards import shard_table
    from .until import until_status

    meta, table = read_root(path), shard_table(path)
    rows = []
    for run in meta["runs"]:
        shards = [sp for sp in table if sp.run == run["index"]]
        rows.append({"run": run["index"], "label": run["label"], "shards": len(shards),
                     "shards_done": sum(sp.done for sp in shards),
                     "chain_steps": sum(sp.chain_steps for sp in shards),
                     "total_chain_steps": sum(sp.chains * sp.steps[-1] for sp in shards),
                     "complete": all(sp.done for sp in shards),
                     **until_status(path, run["index"])})
    return meta, rows
