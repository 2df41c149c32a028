"""Everything that runs chains on one device; no Ray and no analysis here.

* ``config`` (pydantic) validates a job and builds its models and rules: its tagged unions are the
  one list of kinds. ``jobspec`` loads TOML and expands sweeps into runs.
* ``models`` and ``rules`` are the math: each owns its loss/update, its fluctuation term and, where
  it has one, its exact linear form; neither imports ``config``.
* ``engine`` advances C chains together; ``stability`` and ``linear_forms`` refuse settings that
  certainly diverge, from the rule's and model's own forms.
* ``archive`` is the Zarr schema and the commit protocol (``RunStore``); ``shard`` runs one shard
  of one run through it, idempotently.
"""
