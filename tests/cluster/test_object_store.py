"""Archives on an object store: a real S3 server (moto's) on 127.0.0.1, driven through the CLI.

Covers ``--storage-option`` and ``cluster.storage_options``, ``--overwrite`` of an ``s3://``
archive, refusing an existing URL without it (exit 2 before Ray starts), a missing bucket, an
unreachable endpoint and a missing fsspec package as one line each, and ``resume`` of a
killed job on S3 being bitwise identical to an uninterrupted one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from sgdthermo.cluster import cli, jobs

CONFIG = """
[model]
kind = "quadratic"
hessian = [1.0, 2.0]
noise_cov = [1.0, 3.0]
[rule]
kind = "sgd"
lr = 0.1
[run]
chains = 4
draws = 60
burn_in = 20
[cluster]
shard_chains = 2
chunk_draws = 20
"""
FAST_FAIL = "config_kwargs={connect_timeout=1, retries={max_attempts=1}}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on a free loopback port with bucket ``bkt``; yields its endpoint."""
    server = shutil.which("moto_server", path=os.path.dirname(sys.executable))
    assert server, "moto_server not installed: pip install -e '.[test]'"
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)], stdout=log,
                            stderr=subprocess.STDOUT)
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")}
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                      AWS_DEFAULT_REGION="us-east-1")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        import s3fs

        s3fs.S3FileSystem(endpoint_url=endpoint).mkdir("bkt")
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _cli(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def _options(endpoint: str) -> list[str]:
    """The endpoint and credentials as ``--storage-option``s (the Ray workers, started before
    this module's server, do not see its environment: the options reach them from the driver)."""
    return ["--storage-option", f"endpoint_url={endpoint}", "--storage-option", "key=test",
            "--storage-option", "secret=test"]


def _no_ray(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("Ray started")

    monkeypatch.setattr(jobs, "init_ray", refuse)


def _write(tmp_path, text=CONFIG, name="job.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _objects(endpoint: str, prefix: str) -> dict[str, bytes]:
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    return {p: fs.cat_file(p) for p in fs.find(prefix) if not p.endswith("lease.json")}


@pytest.mark.ray
def test_run_overwrite_status_analyze_on_s3(ray_session, s3, tmp_path, capsys, monkeypatch):
    url, opts = "s3://bkt/job.zarr", _options(s3)
    code, text = _cli(capsys, "run", _write(tmp_path), "--out", url, *opts,
                      "--no-progress", "--no-analyze")
    assert code == 0, text
    first = _objects(s3, "bkt/job.zarr")
    code, text = _cli(capsys, "status", url, *opts, "--json")
    assert code == 0 and '"state": "complete"' in text
    code, text = _cli(capsys, "analyze", url, *opts, "--json")
    assert code == 0 and '"verdict"' in text

    with monkeypatch.context() as m:  # an existing URL: one line, exit 2, before Ray
        _no_ray(m)
        code, text = _cli(capsys, "run", _write(tmp_path), "--out", url, *opts)
    assert code == 2 and text.count("\n") == 1 and "already holds an archive" in text
    assert _objects(s3, "bkt/job.zarr") == first  # untouched

    import s3fs  # a stray object under the prefix is gone after --overwrite

    s3fs.S3FileSystem(endpoint_url=s3).pipe_file("bkt/job.zarr/stray.txt", b"x")
    code, text = _cli(capsys, "run", _write(tmp_path, CONFIG.replace("lr = 0.1", "lr = 0.2")),
                      "--out", url, *opts, "--overwrite", "--no-progress",
                      "--no-analyze")
    assert code == 0, text
    second = _objects(s3, "bkt/job.zarr")
    assert "bkt/job.zarr/stray.txt" not in second
    assert b'"lr": 0.2' in second["bkt/job.zarr/zarr.json"]


def test_storage_failures_are_one_line_before_ray(s3, tmp_path, capsys, monkeypatch):
    _no_ray(monkeypatch)
    cfg = _write(tmp_path)
    code, text = _cli(capsys, "run", cfg, "--out", "s3://nobucket/x.zarr",
                      "--storage-option", f"endpoint_url={s3}")
    assert code == 2 and text.count("\n") == 1
    assert "bucket 'nobucket' does not exist" in text
    code, text = _cli(capsys, "run", cfg, "--out", "s3://bkt/x.zarr", "--storage-option",
                      "endpoint_url=http://127.0.0.1:1", "--storage-option", FAST_FAIL)
    assert code == 2 and text.count("\n") == 1
    assert "storage error, EndpointConnectionError" in text and "--storage-option" in text
    code, text = _cli(capsys, "status", "gs://bkt/x.zarr")
    assert code == 2 and text.count("\n") == 1 and "gcsfs" in text
    code, text = _cli(capsys, "status", "s3://bkt/x.zarr", "--storage-option", "endpoint_url")
    assert code == 2 and "--storage-option: expected KEY=VALUE, got 'endpoint_url'" in text
    assert _objects(s3, "bkt/x.zarr") == {}


def test_unreachable_endpoint_prints_no_traceback_at_exit(s3):
    """The client's abandoned requests are collected at exit; nothing but the one line shows."""
    proc = subprocess.run(
        [sys.executable, "-m", "sgdthermo.cluster.cli", "status", "s3://bkt/x.zarr",
         "--storage-option", "endpoint_url=http://127.0.0.1:1", "--storage-option", FAST_FAIL],
        capture_output=True, text=True, timeout=120, env=os.environ)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.ray
def test_config_storage_options_and_bitwise_resume_on_s3(ray_session, s3, tmp_path, capsys):
    """Options from ``cluster.storage_options`` reach every actor; a job cut after its first
    blocks and resumed on S3 equals one that never stopped, bit for bit."""
    from conftest import assert_archives_equal
    from sgdthermo.cluster import driver
    from sgdthermo.sampler.archive import set_storage_options
    from sgdthermo.sampler.jobspec import load_job
    from sgdthermo.sampler.shard import ShardRunner

    cfg = _write(tmp_path, CONFIG + f'storage_options = {{ endpoint_url = "{s3}", key = "test", '
                           f'secret = "test" }}\n')
    whole, cut = "s3://bkt/whole.zarr", "s3://bkt/cut.zarr"
    code, text = _cli(capsys, "run", cfg, "--out", whole, "--no-progress", "--no-analyze")
    assert code == 0, text
    set_storage_options({"endpoint_url": s3})  # a driver killed after shard 0's second block
    driver.prepare_archive(load_job(cfg), cut, overwrite=False, device="cpu")
    ShardRunner(cut, 0, 0).run_until(2)
    set_storage_options({})
    code, text = _cli(capsys, "status", cut, *_options(s3))
    assert code == 0 and "interrupted" in text
    code, text = _cli(capsys, "resume", cut, "--no-progress", "--storage-option", FAST_FAIL)
    assert code == 2 and "storage error" in text  # the endpoint is needed to read the config
    code, text = _cli(capsys, "resume", cut, "--no-progress", *_options(s3))
    assert code == 0, text
    set_storage_options({"endpoint_url": s3})
    try:
        assert_archives_equal(whole, cut)
    finally:
        set_storage_options({})
