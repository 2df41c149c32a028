"""The pages in docs/ and the README, as a reader uses them: their code blocks still run.

Each page's ```python blocks run in order in one namespace, in a fresh folder, after the
archives the page's own ``sgdthermo run`` commands would have written are made small
(``ARCHIVES``: the page's config, shrunk with overrides). Every ``sgdthermo`` command line of a
```bash block is parsed by the CLI's own parser (an option that no longer exists fails), and
every config file it names exists. Every page the README lists exists, and every page in docs/
is listed.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)
SMALL = ["run.chains=2", "run.draws=8", "run.burn_in=8", "run.thin=1", "sweep.grid={}"]
ARCHIVES = {  # page -> the archives its Python blocks read: (file name, config, overrides)
    "archive.md": [("gibbs.zarr", "configs/quickstart.toml", SMALL + ["rule.lr=0.1"])],
    "your_model.md": [("mynet.zarr", "configs/your_model/mynet.toml", SMALL)],
}


def blocks(page: Path, language: str) -> list[str]:
    """The page's fenced blocks of one language, in order."""
    return [body for lang, body in FENCE.findall(page.read_text()) if lang == language]


def commands(page: Path) -> list[list[str]]:
    """The ``sgdthermo …`` command lines of the page's bash blocks, as argument lists."""
    out = []
    for body in blocks(page, "bash"):
        for line in body.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if "sgdthermo" in words:
                out.append(words[words.index("sgdthermo") + 1:])
    return out


def test_the_readme_lists_every_page_and_every_listed_page_exists():
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"`(docs/[\w.]+\.md)`", readme))
    assert listed == {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_line_parses_and_names_a_config_that_exists(page: Path):
    from sgdthermo.cluster.cli import _parser

    parser = _parser()
    for args in commands(page):
        parser.parse_args(args)  # SystemExit (a failure) on an option that no longer exists
        for word in args:
            if word.endswith(".toml"):
                assert (ROOT / word).exists() or (ROOT / "configs" / word).exists(), word


def test_the_command_check_fails_on_an_unknown_option(tmp_path: Path):
    """Negative control: a page with a removed option fails to parse."""
    from sgdthermo.cluster.cli import _parser

    page = tmp_path / "p.md"
    page.write_text("```bash\nsgdthermo run a.toml --out a.zarr --no-such-option\n```\n")
    with pytest.raises(SystemExit):
        for args in commands(page):
            _parser().parse_args(args)


RUNNABLE = [p for p in PAGES if blocks(p, "python")]


@pytest.mark.ray
@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: p.name)
def test_the_python_blocks_run(page: Path, ray_session, tmp_path: Path, monkeypatch):
    from sgdthermo.cluster import run_job

    monkeypatch.chdir(tmp_path)
    for name, config, overrides in ARCHIVES.get(page.name, []):
        run_job(str(ROOT / config), name, overrides=overrides)
    namespace: dict = {}
    for i, code in enumerate(blocks(page, "python")):
        exec(compile(code, f"{page.name}, python block {i + 1}", "exec"), namespace)  # noqa: S102


def test_a_broken_block_fails(tmp_path: Path):
    """Negative control: a block calling what no longer exists raises."""
    page = tmp_path / "p.md"
    page.write_text("```python\nfrom sgdthermo.analysis import no_such_function\n```\n")
    with pytest.raises((ImportError, AttributeError)):
        exec(blocks(page, "python")[0], {})  # noqa: S102
    assert os.path.exists(page)
