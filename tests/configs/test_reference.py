"""The config reference (docs/config.md) is generated from the schema and cannot drift.

The page's generated part must equal what ``sampler.config.reference`` writes now, every field
of every table must have a description (its entry), and every field must appear in the page.
A table with an undescribed field is caught (the negative control).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from sgdthermo.sampler.config.reference import BEGIN, END, markdown, tables, undescribed

PAGE = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def test_the_page_is_the_generated_reference():
    text = PAGE.read_text()
    generated = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert generated == markdown().strip(), (
        "docs/config.md is out of date: python -m sgdthermo.sampler.config.reference")


def test_every_field_has_a_description():
    assert undescribed() == []


def test_every_field_of_every_table_has_an_entry():
    text = PAGE.read_text()
    missing = [f"{m.__name__}.{name}" for _, m in tables() for name in m.model_fields
               if f"| `{name}` |" not in text]
    assert missing == []
    assert len(tables()) >= 30  # models, rules and their nested tables were all walked


def test_an_undescribed_field_is_caught():
    class Inner(BaseModel):
        """An inner table."""

        bare: int = 0

    class Outer(BaseModel):
        """A table."""

        described: int = Field(0, description="Has one.")
        inner: Inner = Inner()

    assert undescribed(Outer) == ["Outer.inner", "Inner.bare"]
    assert "| `bare` | int | `0` |  |" in markdown(Outer)
