"""The report in a real headless browser (Debian's Chromium): no broken image, no empty plot,
nothing wider than the window, and a screenshot.

A script appended to a copy of the report measures the page once it has loaded and writes the
result into the title, which ``--dump-dom`` prints: images that did not decode, images with
almost no coloured pixels (every figure draws its data in colour; an empty axes is black on
white), and the page's width against the window's. A negative control puts a broken image, an
empty matplotlib axes and an over-wide block into a copy and checks that each is caught.

CI installs Chromium (``.ci/run``) and sets ``SGDTHERMO_REQUIRE_BROWSER=1``, so there the test
fails rather than skips when the browser is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from sgdthermo.analysis.analyze import analyze_archive
from sgdthermo.analysis.render.plots import to_png
from sgdthermo.analysis.render.report import render_html

from tests.conftest import quadratic_config, run_local

CHECK = """<script>
window.addEventListener('load', () => {
  const res = {images: 0, broken: 0, empty: 0, page_width: document.documentElement.scrollWidth,
               window_width: window.innerWidth, sections: document.querySelectorAll('h2').length,
               toc_links: document.querySelectorAll('nav a').length};
  for (const im of document.images) {
    res.images++;
    if (!im.complete || im.naturalWidth === 0) { res.broken++; continue; }
    const c = document.createElement('canvas');
    c.width = im.naturalWidth; c.height = im.naturalHeight;
    const g = c.getContext('2d'); g.drawImage(im, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let colour = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (Math.max(d[i], d[i+1], d[i+2]) - Math.min(d[i], d[i+1], d[i+2]) > 60) colour++;
    }
    if (colour < 0.001 * d.length / 4) res.empty++;
  }
  document.title = 'CHECK:' + JSON.stringify(res);
});
</script>"""
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1280,2400"]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("SGDTHERMO_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium not installed (`apt-get install chromium`)")
        pytest.skip("Chromium not installed (`apt-get install chromium`)")
    return found


def _measure(browser: str, page: Path, tmp_path: Path) -> dict:
    checked = tmp_path / f"checked_{page.name}"
    checked.write_text(page.read_text().replace("</body>", CHECK + "</body>"))
    profile = tmp_path / f"profile_{page.stem}"
    dom = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}",
                          "--virtual-time-budget=20000", "--dump-dom", checked.as_uri()],
                         capture_output=True, text=True, timeout=180)
    found = re.search(r"<title>CHECK:(.*?)</title>", dom.stdout)
    assert found, dom.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A sweep over η of SGD on the seeds' 2-D quadratic, 16 chains (rank plots, sweep)."""
    tmp = tmp_path_factory.mktemp("browser")
    cfg = quadratic_config([1.0, 1.0], [1.0, 4.0], {"kind": "sgd", "lr": 0.05}, chains=16,
                           draws=1500, burn_in=300)
    cfg["cluster"] = {"shard_chains": 16, "chunk_draws": 500}
    cfg["sweep"] = {"grid": {"rule.lr": [0.05, 0.2, 0.6]}}
    path = run_local(tmp, cfg)
    page = tmp / "report.html"
    page.write_text(render_html(analyze_archive(path)))
    return page


def test_report_renders_in_chromium_without_defects(report, tmp_path):
    browser = _chromium()
    res = _measure(browser, report, tmp_path)
    assert res["images"] >= 3 * 5 + 1, res  # per run: pair, temperatures, ACF, ESS, trace/rank
    assert res["broken"] == 0 and res["empty"] == 0, res
    assert res["page_width"] <= res["window_width"], res
    assert res["toc_links"] >= 4 and res["sections"] >= 5, res
    shot = tmp_path / "report.png"
    subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp_path / 'shot'}",
                    f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=180)
    assert shot.exists() and shot.stat().st_size > 20_000  # a page, not a blank window


def test_the_browser_check_catches_each_defect(report, tmp_path):
    """Negative control: a broken image, an empty axes and an over-wide block are each seen."""
    browser = _chromium()
    fig, _ = plt.subplots(figsize=(4, 3))
    empty = to_png(fig)
    bad = report.read_text().replace(
        "</body>", "<img src='data:image/png;base64,AAAA'>"
        f"<img src='data:image/png;base64,{empty}'>"
        "<div style='width:3000px'>wide</div></body>")
    page = tmp_path / "bad.html"
    page.write_text(bad)
    res = _measure(browser, page, tmp_path)
    assert res["broken"] == 1 and res["empty"] == 1, res
    assert res["page_width"] > res["window_width"], res


@pytest.fixture(scope="module")
def sweep_pages(tmp_path_factory) -> dict[str, Path]:
    """Two sweeps the report once drew badly: a rule × batch grid (series pooled across
    rules, overlapping rule ticks) and a 1-D model (an empty β-ratio panel)."""
    tmp = tmp_path_factory.mktemp("sweeps")
    rules = [{"kind": "sgd", "lr": 0.05}, {"kind": "preconditioned", "lr": 0.05, "power": 1}]
    grid = quadratic_config([1.0, 1.0], [1.0, 9.0], rules[0], chains=8, draws=2000,
                            burn_in=1000, thin=5)
    grid["sweep"] = {"grid": {"run.batch_size": [1, 4], "rule": rules}}
    one = {"seed": 1, "model": {"kind": "mean", "n": 20}, "rule": {"kind": "sgd", "lr": 0.1},
           "run": {"chains": 8, "draws": 2000, "burn_in": 200, "init_scale": 0.0},
           "cluster": {"shard_chains": 8, "chunk_draws": 2000},
           "sweep": {"grid": {"rule.lr": [0.1, 0.2, 0.4]}}}
    pages = {}
    for name, cfg in (("grid", grid), ("one", one)):
        page = tmp / f"{name}.html"
        page.write_text(render_html(analyze_archive(run_local(tmp, cfg, f"{name}.zarr"))))
        pages[name] = page
    return pages


def test_sweep_panels_render_without_an_empty_one(sweep_pages, tmp_path):
    browser = _chromium()
    grid, one = sweep_pages["grid"].read_text(), sweep_pages["one"].read_text()
    for key in ("run.batch_size", "rule"):  # three panels per swept key, each its own image
        for what in ("temperatures", "beta ratio", "Gibbs p"):
            assert f"alt='{what} against {key}'" in grid
    assert "alt='temperatures against rule.lr'" in one and "beta ratio against" not in one
    for page in sweep_pages.values():
        res = _measure(browser, page, tmp_path)
        assert res["broken"] == 0 and res["empty"] == 0, res
        assert res["page_width"] <= res["window_width"], res
