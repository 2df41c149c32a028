"""Hostile configs, generated: every one is refused in one line (exit 2) before Ray starts, with
nothing written, or is valid; none ends in a traceback.

The corpus mutates every leaf of three base configs (a quadratic, least squares on synthetic
data, the seeds' mean model with a sweep) with values of the wrong kind: non-finite numbers,
booleans, lists and tables where a number is expected, text, and numbers far out of range;
and adds an unknown key to every table. Mutations of a number into ``inf``, ``nan``, a boolean,
a list or a table must be refused; the others may be valid (then the run would start Ray,
which the test stops at that point).
"""

from __future__ import annotations

import copy
import itertools
import tomllib
from pathlib import Path
from typing import Any

import pytest
from sgdthermo.cluster import cli, jobs

BASES = {
    "quadratic": """
name = "q"
[model]
kind = "quadratic"
hessian = [1.0, 2.0]
noise_cov = [1.0, 3.0]
[rule]
kind = "momentum"
lr = 0.1
mu = 0.5
[run]
chains = 2
draws = 10
burn_in = 4
thin = 2
init_scale = 1.0
[cluster]
shard_chains = 2
chunk_draws = 5
""",
    "least_squares": """
[model]
kind = "linear_regression"
l2 = 0.1
[model.data]
n = 64
d = 3
condition = 2.0
noise_std = 0.5
seed = 1
[rule]
kind = "sgd"
lr = 0.05
[run]
chains = 2
draws = 10
burn_in = 0
batch_size = 4
[run.record]
projections = 2
seed = 3
""",
    "mean_sweep": """
[model]
kind = "mean"
n = 20
loc = 1.0
scale = 2.0
[rule]
kind = "sgd"
lr = 0.1
[run]
chains = 2
draws = 10
burn_in = 0
[sweep.grid]
"rule.lr" = [0.1, 0.2]
""",
}
HOSTILE = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan"), "true": True,
           "false": False, "list": [], "table": {"a": 1}}
OTHER = {"text": "x", "huge": 10**30, "negative": -7}


class _RayWouldStart(BaseException):
    """The config got past every check made before Ray starts."""


def _ray_log(line: str) -> bool:
    """A line the session's Ray instance logged into this process's stderr (not ours)."""
    return "(raylet)" in line or "(pid=" in line or line.startswith("\x1b[")


def _leaves(data: dict[str, Any], path: tuple = ()) -> list[tuple[tuple, Any]]:
    out = []
    for key, value in data.items():
        if isinstance(value, dict):
            out += _leaves(value, (*path, key))
        elif isinstance(value, list) and value and isinstance(value[0], int | float):
            out.append(((*path, key, 0), value[0]))  # one element of a list of numbers
        else:
            out.append(((*path, key), value))
    return out


def _tables(data: dict[str, Any], path: tuple = ()) -> list[tuple]:
    return [path] + [t for k, v in data.items() if isinstance(v, dict)
                     for t in _tables(v, (*path, k))]


def _set(data: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(str(value), repr(value))
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + " }"
    return str(value)


def _dump(data: dict[str, Any], prefix: str = "") -> str:
    scalars = [f'"{k}" = {_toml(v)}' for k, v in data.items() if not isinstance(v, dict)]
    text = (f"[{prefix}]\n" if prefix else "") + "\n".join(scalars) + "\n"
    for k, v in data.items():
        if isinstance(v, dict):
            text += _dump(v, f"{prefix}.{k}" if prefix else k)
    return text


def _corpus() -> list[tuple[str, str, dict[str, Any], bool]]:
    """``(base, what, config, must_refuse)`` for every generated case."""
    cases = []
    for name, text in BASES.items():
        base = tomllib.loads(text)
        for path, original in _leaves(base):
            number = isinstance(original, int | float) and not isinstance(original, bool)
            for label, value in itertools.chain(HOSTILE.items(), OTHER.items()):
                must = number and label in HOSTILE or label in ("list", "table")
                cases.append((name, f"{'.'.join(map(str, path))} = {label}",
                              _set(base, path, value), must))
        for table in _tables(base):
            if table and table[-1] in ("grid",):  # sweep keys are free-form
                continue
            cases.append((name, f"{'.'.join(table) or 'top'} gets an unknown key",
                          _set(base, (*table, "no_such_key"), 1.0), True))
    return cases


CORPUS = _corpus()


def test_the_corpus_is_large_and_mostly_hostile():
    assert len(CORPUS) > 300
    assert sum(c[3] for c in CORPUS) > 200


@pytest.mark.parametrize("chunk", range(4))
def test_every_hostile_config_is_one_line_exit_2_with_nothing_written(chunk, tmp_path, capsys,
                                                                     monkeypatch):
    def refuse_ray(*args, **kwargs):
        raise _RayWouldStart

    monkeypatch.setattr(jobs, "init_ray", refuse_ray)
    refused = 0
    for i, (base, what, data, must) in enumerate(CORPUS[chunk::4]):
        config = tmp_path / f"c{i}.toml"
        config.write_text(_dump(data))
        out = tmp_path / f"out{i}.zarr"
        try:
            code = cli.main(["run", str(config), "--out", str(out), "--no-progress"])
        except _RayWouldStart:
            assert not must, f"{base}: {what} was accepted"
            continue
        text = capsys.readouterr().err.strip()
        ours = [line for line in text.splitlines() if not _ray_log(line)]
        assert code == 2, f"{base}: {what}: exit {code}: {text}"
        assert "Traceback" not in text and ours and ours[0].startswith("error:"), \
            f"{base}: {what}: {text}"
        assert len(ours) <= 2, f"{base}: {what}: {text}"  # one line per problem
        assert not out.exists(), f"{base}: {what}: wrote {out}"
        refused += 1
    assert refused > 0


def test_deeply_nested_toml_and_bad_data_files_are_one_line(tmp_path, capsys):
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 3000 + "]" * 3000 + "\n")
    code = cli.main(["run", str(deep), "--out", str(tmp_path / "o.zarr")])
    assert code == 2 and "nested too deeply" in capsys.readouterr().err
    for name, content in (("empty.csv", b""), ("one.csv", b"a\n1\n2\n"),
                          ("bad.npz", b"PK\x03\x04junk"), ("empty.npz", b""),
                          ("latin.csv", b"a,b\n\xff,1\n")):
        (tmp_path / name).write_bytes(content)
        config = tmp_path / f"{name}.toml"
        config.write_text(f'[model]\nkind = "linear_regression"\n[model.data]\n'
                          f'file = "{name}"\n[rule]\nkind = "sgd"\nlr = 0.01\n')
        code = cli.main(["run", str(config), "--out", str(tmp_path / "o.zarr")])
        err = capsys.readouterr().err
        assert code == 2 and "model.data.file" in err and len(err.strip().splitlines()) == 1, err
    parent_is_file = tmp_path / "plain"
    parent_is_file.write_text("x")
    good = tmp_path / "good.toml"
    good.write_text(BASES["quadratic"])
    code = cli.main(["run", str(good), "--out", str(parent_is_file / "a.zarr")])
    assert code == 2 and "is a file, not a directory" in capsys.readouterr().err


def test_too_big_is_refused_with_the_estimate(tmp_path, capsys, monkeypatch):
    good = tmp_path / "good.toml"
    good.write_text(BASES["quadratic"])
    out = str(tmp_path / "a.zarr")
    for overrides, words in ((["run.chains=1000000000"], "shards"),
                             (["run.draws=10000000000", "cluster.chunk_draws=100000"],
                              "GiB free"),
                             (["run.burn_in=1000000000000"], "blocks")):
        code = cli.main(["run", str(good), "--out", out,
                         *[a for o in overrides for a in ("--set", o)]])
        err = capsys.readouterr().err
        assert code == 2 and words in err, err
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(BASES["quadratic"] + '[sweep.grid]\n"rule.lr" = [' +
                     ", ".join(["0.01"] * 40) + ']\n"run.seed_offset" = [' +
                     ", ".join(map(str, range(40))) + "]\n")
    code = cli.main(["run", str(sweep), "--out", out])
    assert code == 2 and "at most 1000 runs per job, got 1,600" in capsys.readouterr().err
    assert not Path(out).exists()
