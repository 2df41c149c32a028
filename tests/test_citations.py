"""Nothing shipped points where a user cannot follow: no issue numbers, no THEORY.md, nothing
outside the repository; and every shipped config says what it costs to run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted([*ROOT.glob("sampler/**/*.py"), *ROOT.glob("analysis/**/*.py"),
                  *ROOT.glob("cluster/**/*.py"), *ROOT.glob("configs/**/*.toml"),
                  *ROOT.glob("configs/**/*.md"), *ROOT.glob("docs/*.md"),
                  ROOT / "README.md"])
OUTSIDE = re.compile(r"\bissues? ?#?\d+|(?-i:THEORY\.md)|\.\./shared|\bseeds? 00\d", re.IGNORECASE)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_citation_outside_the_repository(path):
    hits = [f"{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1)
            if OUTSIDE.search(line)]
    assert not hits, hits


def test_the_pattern_catches_each_kind():
    """Negative control."""
    for text in ("(issue 10, part 3)", "see THEORY.md O3", "`../shared/seeds/`", "seed 004"):
        assert OUTSIDE.search(text), text


@pytest.mark.parametrize("path", sorted(ROOT.glob("configs/**/*.toml")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_config_states_its_cost(path):
    head = path.read_text().split("\nname = ")[0]
    assert re.search(r"^# Cost: \d+ run\(s\), [\d.]+·10\S+ chain-steps; ", head, re.M), path


THEORY = ROOT / "docs" / "theory.md"
CITED = re.compile(r"docs/theory\.md,? (?:identit(?:y|ies)|laws?) ([A-Z]\w*(?:, [A-Z]\w*)*)")


def labels() -> set[str]:
    """The labels of the identities and laws table in docs/theory.md."""
    return set(re.findall(r"^\| ([A-Z]\w*) \|", THEORY.read_text(), re.M))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cited_theory_label_exists(path):
    """A docstring or config citing ``docs/theory.md law S1`` names a label the page has."""
    cited = {label for group in CITED.findall(path.read_text()) for label in group.split(", ")}
    assert cited <= labels(), cited - labels()


def test_the_label_check_sees_a_missing_label():
    """Negative control."""
    assert labels() >= {"O1", "O3", "R", "S1", "L", "G0"}
    found = CITED.findall("as docs/theory.md identity Q9 says")
    assert found == ["Q9"] and not set(found) <= labels()
