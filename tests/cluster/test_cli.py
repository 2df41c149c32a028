"""Every documented error path: one clear message (field, allowed values, given value), exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import zarr
from sgdthermo.cluster import cli, driver
from sgdthermo.sampler import native
from sgdthermo.sampler.archive import ROOT_KEY
from sgdthermo.sampler.jobspec import load_job

from tests.conftest import make_archive, quadratic_config

GOOD = """
name = "t"
[model]
kind = "quadratic"
hessian = [1.0, 2.0]
noise_cov = [1.0, 1.0]
[rule]
kind = "sgd"
lr = 0.1
[run]
chains = 2
draws = 10
burn_in = 0
"""


def write(tmp_path: Path, text: str, name: str = "c.toml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("edit,expected", [
    (('lr = 0.1', 'lr = "fast"'), ["rule.lr", "valid number", "'fast'"]),
    (('kind = "quadratic"', 'kind = "cubic"'),
     ["model", "'quadratic'", "'mlp'", "'cubic'"]),
    (('kind = "sgd"', 'kind = "lbfgs"'), ["rule", "'sgd'", "'rmsprop'", "'lbfgs'"]),
    (('chains = 2', 'chain = 2'), ["run.chain: unknown field (got 2); allowed: batch_size, "
                                    "burn_in, chains, draws"]),
    (('lr = 0.1', 'lr = 0.1\nmomentum = 0.8'), ["rule.momentum: unknown field (got 0.8); "
                                                  "allowed: kind, lr, schedule"]),
    (('chains = 2', 'chains = 0'), ["run.chains", "greater than 0", "(got 0)"]),
    (('lr = 0.1', 'lr = 1.5'), ["rule.lr", "unstable", "lr < 1", "got 1.5"]),
    (('burn_in = 0', 'burn_in = 3\nthin = 2'), ["run.burn_in must be a multiple of run.thin",
                                                 "got 3"]),
    (('hessian = [1.0, 2.0]', 'hessian = [1.0, -2.0]'), ["model.hessian", "positive definite"]),
    (('noise_cov = [1.0, 1.0]', 'noise_cov = [1.0]'), ["model.noise_cov", "expected shape"]),
    (('name = "t"', 'name = "t"\n[sweep.zip]\n"rule.lr" = [0.1, 0.2]\n"run.batch_size" = [1]'),
     ["sweep.zip", "same length"]),
    (('name = "t"', 'name = "t"\n[sweep.grid]\n"rule.lr" = [0.1, -1.0]'),
     ["sweep point 1", "rule.lr", "greater than 0", "-1.0"]),
    (('name = "t"', 'name = "t"\n[sweep.grid]\n"optimizer.lr" = [0.1]'),
     ["sweep key 'optimizer.lr'", "model., rule. or run."]),
    (('name = "t"', 'name = "t" ]['), ["not valid TOML"]),
    (('name = "t"', 'name = "t"\nclaim = "alpha"'), ["claim must be one of", "'gibbs_alpha'",
                                                      "got 'alpha'"]),
])
def test_bad_config(tmp_path, capsys, edit, expected):
    out_dir = tmp_path / "out.zarr"
    code, text = run_cli(capsys, "run", write(tmp_path, GOOD.replace(*edit, 1)), "--out",
                         str(out_dir))
    assert code == 2, text
    assert "Traceback" not in text
    for part in expected:
        assert part in text, (part, text)
    assert not out_dir.exists()  # nothing written


def test_missing_config_and_data_file(tmp_path, capsys):
    code, text = run_cli(capsys, "run", str(tmp_path / "nope.toml"), "--out", "x.zarr")
    assert code == 2 and "config: no such file" in text
    cfg = GOOD.replace('kind = "quadratic"\nhessian = [1.0, 2.0]\nnoise_cov = [1.0, 1.0]',
                       'kind = "linear_regression"\ndata = { file = "missing.npz" }')
    code, text = run_cli(capsys, "run", write(tmp_path, cfg), "--out", str(tmp_path / "o"))
    assert code == 2 and "model.data.file: no such file" in text and "missing.npz'" in text


def test_bad_set_override(tmp_path, capsys):
    code, text = run_cli(capsys, "run", write(tmp_path, GOOD), "--out", "x", "--set", "rule.lr")
    assert code == 2 and "--set: expected key=value, got 'rule.lr'" in text
    job = load_job(write(tmp_path, GOOD), ["rule.lr=0.05", "run.sampling=iid", "seed=3"])
    assert job.rule.lr == 0.05 and job.seed == 3


def test_set_on_a_swept_key_is_refused_not_ignored(capsys):
    """The quickstart sweeps rule.lr: an override of it would be shadowed for every run."""
    from pathlib import Path

    quickstart = str(Path(__file__).resolve().parents[2] / "configs" / "quickstart.toml")
    for given in ("rule.lr=25", "rule={kind = 'sgd', lr = 0.1}"):
        code, text = run_cli(capsys, "run", quickstart, "--out", "x.zarr", "--set", given)
        assert code == 2 and len(text.strip().splitlines()) == 1, text
        assert "[sweep.grid] sets 'rule.lr' for every run (= [0.05, 0.2])" in text, text
    # fields beside the swept one are applied; emptying the sweep lets the value through,
    # where it meets the same stability check as the file
    job = load_job(quickstart, ["rule.kind=momentum", "rule.mu=0.5"])
    assert job.rule.kind == "momentum" and job.sweep.grid["rule.lr"] == [0.05, 0.2]
    code, text = run_cli(capsys, "run", quickstart, "--out", "x.zarr",
                         "--set", "sweep.grid={}", "--set", "rule.lr=25")
    assert code == 2 and "rule.lr: 25.0 is unstable for this model" in text, text


def test_existing_archive_needs_overwrite(tmp_path, capsys):
    path = make_archive(tmp_path, quadratic_config([1.0], [1.0], {"kind": "sgd", "lr": 0.1},
                                                   chains=2, draws=10, burn_in=0))
    code, text = run_cli(capsys, "run", write(tmp_path, GOOD), "--out", path)
    assert code == 2 and "already holds an archive; pass --overwrite" in text
    assert zarr.open_group(path, mode="r").attrs[ROOT_KEY]["config"]["name"] == "job"  # intact
    job = load_job(write(tmp_path, GOOD))
    driver.prepare_archive(job, path, overwrite=True, device="cpu")
    assert zarr.open_group(path, mode="r").attrs[ROOT_KEY]["config"]["name"] == "t"


def test_out_path_that_is_not_an_archive_is_never_touched(tmp_path, capsys):
    victim = tmp_path / "thesis"
    victim.mkdir()
    (victim / "chapter1.tex").write_text("precious")
    for extra in ([], ["--overwrite"]):
        code, text = run_cli(capsys, "run", write(tmp_path, GOOD), "--out", str(victim), *extra)
        assert code == 2 and "is not a sgdthermo archive; refusing to touch it" in text
    assert (victim / "chapter1.tex").read_text() == "precious"


@pytest.mark.parametrize("command", [["status"], ["analyze"], ["resume"], ["report", "-o",
                                                                             "r.html"]])
def test_commands_refuse_non_archives(tmp_path, capsys, command):
    code, text = run_cli(capsys, command[0], str(tmp_path / "missing"), *command[1:])
    assert code == 2 and "is not a sgdthermo archive" in text
    plain = tmp_path / "plain.zarr"
    zarr.open_group(str(plain), mode="w")
    code, text = run_cli(capsys, command[0], str(plain), *command[1:])
    assert code == 2 and "a Zarr group but not a sgdthermo archive" in text


def test_newer_schema_is_refused(tmp_path, capsys):
    path = make_archive(tmp_path, quadratic_config([1.0], [1.0], {"kind": "sgd", "lr": 0.1},
                                                   chains=2, draws=10, burn_in=0))
    root = zarr.open_group(path, mode="r+")
    meta = dict(root.attrs[ROOT_KEY])
    meta["schema_version"] = 99
    root.attrs[ROOT_KEY] = meta
    code, text = run_cli(capsys, "status", path)
    assert code == 2 and "has archive schema 99, newer than" in text and "upgrade" in text


def test_unreachable_address_is_a_clear_error(tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionError("Failed to connect to Ray cluster at 10.255.255.1:6379")

    monkeypatch.setattr(driver.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(driver.ray, "init", refuse)
    code, text = run_cli(capsys, "run", write(tmp_path, GOOD), "--out", str(tmp_path / "o"),
                         "--address", "10.255.255.1:6379")
    assert code == 2 and "--address: cannot join the Ray cluster at '10.255.255.1:6379'" in text
    assert not (tmp_path / "o").exists()


def test_cuda_requested_without_gpu(ray_session, tmp_path, capsys):
    cfg = GOOD + '[cluster]\ndevice = "cuda"\n'
    code, text = run_cli(capsys, "run", write(tmp_path, cfg), "--out", str(tmp_path / "o"))
    assert code == 2 and "cluster.device: 'cuda' requested but the Ray cluster has no GPU" in text


@pytest.mark.ray
def test_run_status_analyze_report_end_to_end(ray_session, tmp_path, capsys):
    out = str(tmp_path / "e2e.zarr")
    code, text = run_cli(capsys, "run", write(tmp_path, GOOD), "--out", out, "--no-progress",
                         "--set", "run.draws=200")
    assert code == 0, text
    assert "sgdthermo analysis" in text and "Gibbs" in text
    code, text = run_cli(capsys, "status", out, "--json")
    assert code == 0 and '"complete": true' in text
    code, text = run_cli(capsys, "analyze", out, "--json")
    assert code == 0 and '"verdict"' in text
    check_json_contract(text)
    code, text = run_cli(capsys, "report", out, "-o", str(tmp_path / "r.html"))
    assert code == 0 and (tmp_path / "r.html").read_text().startswith("<!doctype html>")


def check_json_contract(text: str) -> None:
    """``analyze --json``: strict JSON (no NaN) with the documented names (issue 6, §3)."""
    import json

    def no_constants(name):
        raise AssertionError(f"non-strict JSON constant {name}")

    result = json.loads(text, parse_constant=no_constants)
    run = result["runs"][0]
    g = run["gibbs"]
    assert g["verdict"] in ("Gibbs", "not Gibbs", "undecided")
    assert g["p_value"] is None or 0 <= g["p_value"] <= 1
    assert [c["name"] for c in g["components"]] == ["equal temperatures", "no coupling", "shape"]
    for c in g["components"]:
        assert {"status", "statistic", "df", "p_value", "reason"} <= set(c)
    assert {"virial", "virial_se", "fluctuation", "fluctuation_se", "z", "agree"} <= set(
        run["temperature"])
    assert {"variance_z", "iat", "measured_iat", "iat_se"} <= set(run["theory"])


@pytest.mark.ray
def test_shard_failure_is_reported_and_resumable(ray_session, tmp_path, capsys):
    """A data file that vanishes after validation fails the shard, not the archive."""
    import numpy as np

    data = tmp_path / "d.npz"
    np.savez(data, X=np.random.default_rng(0).standard_normal((50, 2)), y=np.zeros(50))
    cfg = GOOD.replace('kind = "quadratic"\nhessian = [1.0, 2.0]\nnoise_cov = [1.0, 1.0]',
                       f'kind = "linear_regression"\ndata = {{ file = "{data}" }}')
    out = str(tmp_path / "f.zarr")
    job = load_job(write(tmp_path, cfg))
    driver.prepare_archive(job, out, overwrite=False, device="cpu")
    data.unlink()
    code, text = run_cli(capsys, "resume", out, "--no-progress")
    assert code == 1 and "run 0 shard 0 failed" in text and "no such file" in text
    assert "sgdthermo resume" in text
    code, text = run_cli(capsys, "status", out, "--json")
    assert code == 0 and '"complete": false' in text


def test_relative_data_file_resolves_against_the_config_folder(tmp_path, monkeypatch):
    import numpy as np

    (tmp_path / "cfg").mkdir()
    np.savez(tmp_path / "cfg" / "d.npz", X=np.ones((5, 2)), y=np.zeros(5))
    cfg = GOOD.replace('kind = "quadratic"\nhessian = [1.0, 2.0]\nnoise_cov = [1.0, 1.0]',
                       'kind = "linear_regression"\ndata = { file = "d.npz" }')
    monkeypatch.chdir(tmp_path)
    job = load_job(write(tmp_path / "cfg", cfg))
    assert job.model.data.file == str((tmp_path / "cfg" / "d.npz").resolve())


def test_a_bad_spectrum_is_one_line(tmp_path, capsys):
    """A union field (list or spectrum table) reports the member that applies, in one line."""
    cfg = GOOD.replace("hessian = [1.0, 2.0]", "hessian = { d = 2, first = 1.0, last = -1.0 }")
    assert cfg != GOOD
    code, text = run_cli(capsys, "run", write(tmp_path, cfg), "--out", str(tmp_path / "o.zarr"))
    assert code == 2 and text.strip().count("\n") == 0, text
    assert "model.hessian.last" in text and "greater than 0" in text and "-1.0" in text
    assert not (tmp_path / "o.zarr").exists()


def test_resume_of_a_native_run_without_a_compiler_is_one_line(tmp_path, capsys, monkeypatch):
    """Runs are continued by the engine path that wrote them: a run written by the native
    kernel is refused (exit 2, before Ray starts) where the kernel cannot be built; on a GPU
    the archive names the fused path, which the native kernel is the CPU form of."""
    job = load_job(write(tmp_path, GOOD))
    path = str(tmp_path / "a.zarr")
    driver.prepare_archive(job, path, overwrite=False, device="cpu")
    kernel = zarr.open_group(path, mode="r")["run_000"].attrs["sgdthermo_run"]["kernel"]
    assert kernel == ("native" if native.unavailable_reason() is None else "fused")
    monkeypatch.setenv("SGDTHERMO_NATIVE", "0")
    code, text = run_cli(capsys, "resume", path)
    if kernel == "native":
        assert code == 2 and "written by the native kernel, which cannot run here (switched " \
                             "off by SGDTHERMO_NATIVE=0)" in text and len(text.splitlines()) == 1
    gpu = str(tmp_path / "g.zarr")
    driver.prepare_archive(job, gpu, overwrite=False, device="cuda")
    assert zarr.open_group(gpu, mode="r")["run_000"].attrs["sgdthermo_run"]["kernel"] == "fused"
