"""The Python API a notebook uses: run a config (a mapping or a path) in-process, read it back."""

from __future__ import annotations

import numpy as np
import pytest
from sgdthermo.analysis import analyze_archive, analyze_run, open_archive
from sgdthermo.cluster import ConfigError, run_job

CONFIG = {
    "seed": 5,
    "model": {"kind": "quadratic", "hessian": [1.0, 2.0], "noise_cov": [1.0, 4.0]},
    "rule": {"kind": "sgd", "lr": 0.1},
    "run": {"chains": 4, "draws": 400, "burn_in": 100},
}


@pytest.mark.ray
def test_run_a_mapping_and_read_inference_data_and_the_record(ray_session, tmp_path):
    path = run_job(CONFIG, str(tmp_path / "nb.zarr"), overrides=["rule.lr=0.05"])
    assert path == str(tmp_path / "nb.zarr")
    (run,) = open_archive(path)
    idata = run.inference_data()
    assert idata.posterior["theta"].shape == (4, 400, 2)
    assert run.spec.rule.lr == 0.05  # the override took
    record = analyze_run(run)
    assert record.ok and record.temperatures.virial.shape == (2,)
    assert record.as_dict()["gibbs"]["verdict"] in ("Gibbs", "not Gibbs", "undecided")
    whole = analyze_archive(path)
    assert [r.label for r in whole.runs] == [record.label]
    np.testing.assert_array_equal(whole.runs[0].estimates.diagnostics["theta"]["r_hat"],
                                  record.estimates.diagnostics["theta"]["r_hat"])
    with pytest.raises(Exception, match="already holds an archive; pass --overwrite"):
        run_job(CONFIG, path)  # the CLI's errors, as exceptions with the same words
    assert run_job(CONFIG, path, overwrite=True) == path


def test_bad_config_raises_the_cli_message_before_ray(tmp_path):
    bad = {**CONFIG, "rule": {"kind": "sgd", "lr": float("inf")}}
    with pytest.raises(ConfigError, match=r"^rule.lr: Input should be a finite number"):
        run_job(bad, str(tmp_path / "x.zarr"))
    assert not (tmp_path / "x.zarr").exists()


@pytest.mark.ray
def test_a_relative_path_is_the_drivers_even_when_ray_started_elsewhere(ray_session, tmp_path,
                                                                       monkeypatch):
    """Ray's workers keep the folder Ray started in; the archive goes where the caller is."""
    monkeypatch.chdir(tmp_path)
    small = {**CONFIG, "run": {"chains": 2, "draws": 8, "burn_in": 0}}
    assert run_job(small, "rel.zarr") == "rel.zarr"
    (run,) = open_archive(str(tmp_path / "rel.zarr"))
    assert run.posterior()["theta"].shape == (2, 8, 2)
