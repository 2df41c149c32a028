"""The analysis of a whole archive: every run's record and the verdict of its seed claim.

``analyze_archive`` computes the ``ArchiveAnalysis`` once; ``text.print_summary``,
``report.render_html`` and ``ArchiveAnalysis.to_json`` render it (terminal, HTML, JSON).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .claims import ClaimResult, evaluate_claims
from .diagnostics.mixing import Thresholds
from .reader import archive_metadata, check_integrity, open_archive
from .record import RunAnalysis, analyze_run


@dataclass
class ArchiveAnalysis:
    """Every run's ``RunAnalysis`` and the claim verdict, with the archive's metadata."""

    archive: str
    meta: dict[str, Any]
    runs: list[RunAnalysis]
    claim: ClaimResult | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN kept; ``to_json`` makes it strict)."""
        return {"archive": self.archive, "runs": [r.as_dict() for r in self.runs],
                "claim": self.claim.as_dict() if self.claim else None}

    def to_json(self) -> Any:
        """The strict-JSON form ``sgdthermo analyze --json`` prints (NaN → null)."""
        return strict_json(self.as_dict())


def analyze_archive(path: str, verify: bool = True, thresholds: Thresholds | None = None,
                    top_k: int = 0, curvature_at: str = "mean", pca: int = 0,
                    import_model: bool = False) -> ArchiveAnalysis:
    """Analyse every run of the archive at ``path`` once, then its claim from those records.

    With ``verify`` every committed block is first checked against its checksum
    (``CorruptArchiveError`` names the first corrupt ones): no number comes from damaged data.
    ``thresholds`` sets what "converged" means (``mixing.Thresholds``): verdicts that assume a
    stationary law are "undecided" for runs that fail it. ``top_k`` and ``curvature_at``: the
    sharpest Hessian directions of every run; ``pca``: variance against flatness along its
    principal components (``record.analyze_run``). ``import_model``: rebuild a user's module
    from its source, checked against the archive, for the Hessian products of ``top_k`` and
    ``pca`` (``reader.open_archive``); without it no user code runs.
    """
    if verify:
        check_integrity(path)
    meta = archive_metadata(path)
    runs = [analyze_run(r, thresholds, top_k, curvature_at, pca)
            for r in open_archive(path, import_model=import_model)]
    return ArchiveAnalysis(path, meta, runs, evaluate_claims(meta["config"].get("claim"), runs))


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return strict_json(value.tolist())
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
