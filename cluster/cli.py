"""The ``sgdthermo`` command line: run, resume, status, verify, analyze, report.

Every user error (bad config, unknown kind, unstable rate, missing file, not an archive) prints one
clear message naming the field, the allowed values and what was given, and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape

from .errors import JobInterrupted, ShardFailed
from .signals import handle_sigterm, was_terminated

# Everything else is imported where a command needs it: `--help` and a SIGTERM during
# start-up are answered before torch, Ray and Zarr load (about 2 s).
err_console = Console(stderr=True, soft_wrap=True)


# What a user's input can raise: one line, exit 2. ConfigError, ArchiveError (StorageError)
# and DataError are ValueErrors; catching that base keeps torch out of light commands.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, ConnectionError)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that its flush at exit does not raise again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sgdthermo", description="SGD as MCMC: run chains on Ray, "
                                "archive them in Zarr, measure temperatures, test Gibbs.")
    storage = argparse.ArgumentParser(add_help=False)
    storage.add_argument("--storage-option", dest="storage_options", action="append",
                         default=[], metavar="KEY=VALUE",
                         help="an fsspec option for an archive URL, e.g. "
                              "endpoint_url=http://127.0.0.1:9000 (repeatable; TOML values)")
    judging = argparse.ArgumentParser(add_help=False)
    judging.add_argument("--r-hat-max", type=float, default=None, metavar="R",
                         help="largest rank-normalised R-hat of a converged run (default 1.01)")
    judging.add_argument("--ess-min", type=float, default=None, metavar="N",
                         help="smallest bulk and tail ESS of a converged run (default 400)")
    sharp = argparse.ArgumentParser(add_help=False)
    sharp.add_argument("--top-k", type=int, default=0, metavar="K",
                       help="also the K largest Hessian eigenvalues and the temperatures along "
                            "their eigenvectors and in the complement (Lanczos)")
    sharp.add_argument("--curvature-at", choices=["mean", "optimum"], default="mean",
                       help="where the Hessian is taken: the chains' mean or θ* (L-BFGS)")
    sharp.add_argument("--pca", type=int, default=0, metavar="K",
                       help="also the variance against the loss curvature along the "
                            "trajectory's top K principal components (variance–flatness)")
    sharp.add_argument("--import-model", action="store_true",
                       help="rebuild a user's module (kind = \"torch\") from the source files "
                            "its config names, checked against the SHA-256 the archive "
                            "stored, for the Hessian products of --top-k and --pca; without "
                            "it reading an archive runs none of the user's code")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a job config into a new archive",
                       parents=[storage, judging])
    r.add_argument("config", help="TOML job config")
    r.add_argument("--out", help="archive directory (or fsspec URL); required unless --dry-run")
    r.add_argument("--dry-run", action="store_true",
                   help="print the expanded runs, chain-steps, time measured here and archive "
                        "size, then exit (nothing written, Ray not started)")
    r.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    r.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else local)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set rule.lr=0.05 (repeatable)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing archive")
    r.add_argument("--no-progress", action="store_true", help="no live progress bars")
    r.add_argument("--no-analyze", action="store_true", help="skip the summary at the end")
    r.add_argument("--no-resource-check", action="store_true",
                   help="skip the disk and memory checks against this machine (a bigger cluster)")
    r.add_argument("--force", action="store_true",
                   help="take the archive over from a driver that holds it (one that is gone)")
    s = sub.add_parser("resume", help="continue an interrupted job from its archive", parents=[storage])
    s.add_argument("archive")
    s.add_argument("--address")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--force", action="store_true",
                   help="take the archive over from a driver that holds it (one that is gone)")
    s.add_argument("--repair", action="store_true",
                   help="re-run corrupt committed blocks (bitwise, from their shard's start)")
    v = sub.add_parser("verify", help="check every committed block against its checksum",
                       parents=[storage])
    v.add_argument("archive")
    v.add_argument("--json", action="store_true")
    st = sub.add_parser("status", help="progress of every run of an archive", parents=[storage])
    st.add_argument("archive")
    st.add_argument("--json", action="store_true")
    a = sub.add_parser("analyze", help="diagnostics, temperatures and the Gibbs test per run",
                       parents=[storage, judging, sharp])
    a.add_argument("archive")
    a.add_argument("--json", action="store_true", help="machine-readable output")
    a.add_argument("--no-verify", action="store_true", help="skip the checksum pass")
    rep = sub.add_parser("report", help="write a self-contained HTML report",
                         parents=[storage, judging, sharp])
    rep.add_argument("archive")
    rep.add_argument("-o", "--output", default="report.html")
    rep.add_argument("--no-verify", action="store_true", help="skip the checksum pass")
    return p


def cmd_run(args: argparse.Namespace) -> None:
    """``sgdthermo run`` (``--dry-run``: the plan only)."""
    if args.dry_run:
        from ..analysis.render.tables import output_console
        from .dry_run import dry_run, print_plan

        record = dry_run(args.config, args.overrides, address=args.address)
        if args.json:
            print(json.dumps(record, indent=2))
        else:
            print_plan(record, output_console())
        return
    if not args.out:
        raise ValueError("--out: where the archive goes is required (a directory or fsspec "
                         "URL), got none; or --dry-run to see the plan only")
    from .jobs import run_job, warm_analysis

    if not args.no_analyze:
        _thresholds(args)  # a bad threshold is refused before the run, not after it
        warm_analysis()
    run_job(args.config, args.out, overrides=args.overrides, address=args.address,
            overwrite=args.overwrite, force=args.force,
            resource_check=not args.no_resource_check, progress=not args.no_progress,
            storage_options=_storage_options(args), console=err_console)
    if not args.no_analyze:
        cmd_analyze(argparse.Namespace(archive=args.out, json=False, storage_options=[],
                                       no_verify=True, r_hat_max=args.r_hat_max,
                                       ess_min=args.ess_min))  # just written by this driver


def cmd_resume(args: argparse.Namespace) -> None:
    """``sgdthermo resume``."""
    from .jobs import resume_job

    resume_job(args.archive, address=args.address, force=args.force,
               progress=not args.no_progress, storage_options=_storage_options(args),
               repair=args.repair, console=err_console)


def cmd_status(args: argparse.Namespace) -> None:
    """``sgdthermo status`` (``status.print_status``: the archive read once, nothing rebuilt)."""
    from .status import print_status

    print_status(args.archive, args.json)


def cmd_analyze(args: argparse.Namespace) -> None:
    """``sgdthermo analyze``."""
    from ..analysis.analyze import analyze_archive
    from ..analysis.render.tables import output_console
    from ..analysis.render.text import print_summary

    analysis = analyze_archive(args.archive, verify=not args.no_verify,
                               thresholds=_thresholds(args), top_k=_top_k(args),
                               curvature_at=getattr(args, "curvature_at", "mean"),
                               pca=getattr(args, "pca", 0),
                               import_model=getattr(args, "import_model", False))
    if args.json:
        # streamed chunk by chunk: at 10⁶ coordinates the text is ~200 MB, its pieces 4× that
        json.dump(analysis.to_json(), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print_summary(analysis, output_console())


def cmd_report(args: argparse.Namespace) -> None:
    """``sgdthermo report``."""
    from ..analysis.render.report import write_report

    write_report(args.archive, args.output, verify=not args.no_verify,
                 thresholds=_thresholds(args), top_k=_top_k(args),
                 curvature_at=args.curvature_at, pca=args.pca,
                 import_model=args.import_model)
    err_console.print(f"report written to {escape(args.output)}")


def cmd_verify(args: argparse.Namespace) -> int:
    """``sgdthermo verify``: exit 0 when every committed block matches its checksum, else 1."""
    from ..sampler.archive import verify_archive

    report = verify_archive(args.archive)
    if args.json:
        print(json.dumps({"archive": args.archive, "ok": report.ok,
                          "blocks_checked": report.blocks_checked,
                          "runs_without_checksums": report.unrecorded_runs,
                          "corrupt": [{"run": c.run, "shard": c.shard, "block": c.block,
                                       "reason": c.reason} for c in report.corruptions]},
                         indent=2))
    else:
        for c in report.corruptions:
            print(f"corrupt: {c.describe()}")
        if report.unrecorded_runs:
            print(f"not checked: run(s) {report.unrecorded_runs} were written before checksums")
        verdict = "ok" if report.ok else f"{len(report.corruptions)} corrupt"
        print(f"{verdict}: {report.blocks_checked} committed block(s) checked"
              + ("" if report.ok else f"; `sgdthermo resume --repair {args.archive}` re-runs them"))
    return 0 if report.ok else 1


def _top_k(args: argparse.Namespace) -> int:
    """``--top-k`` (and ``--pca``), refused in one line unless whole numbers ≥ 0."""
    for flag, value, what in (("--top-k", getattr(args, "top_k", 0), "Hessian directions"),
                              ("--pca", getattr(args, "pca", 0), "principal components")):
        if value < 0:
            raise ValueError(f"{flag}: the number of {what}, a whole number ≥ 0; got {value}")
    return int(getattr(args, "top_k", 0))


def _thresholds(args: argparse.Namespace) -> Any:
    """``--r-hat-max`` and ``--ess-min`` as ``mixing.Thresholds`` (which refuses bad values)."""
    from ..analysis.diagnostics.mixing import ESS_MIN, R_HAT_MAX, Thresholds

    return Thresholds(R_HAT_MAX if args.r_hat_max is None else args.r_hat_max,
                      ESS_MIN if args.ess_min is None else args.ess_min)


def _storage_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--storage-option KEY=VALUE`` as a mapping (values read as TOML literals, else text)."""
    from ..sampler.config.base import ConfigError, parse_value

    options: dict[str, Any] = {}
    for item in args.storage_options:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--storage-option: expected KEY=VALUE, got {item!r}")
        options[key.strip()] = parse_value(value)
    return options


COMMANDS: dict[str, Callable[[argparse.Namespace], int | None]] = {
    "run": cmd_run, "resume": cmd_resume, "status": cmd_status, "analyze": cmd_analyze,
    "report": cmd_report, "verify": cmd_verify}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sgdthermo`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    restore = handle_sigterm()  # SIGTERM from the start: "terminated", 143 (ray.init keeps it)
    try:
        from ..sampler.archive.storage import StorageError, set_storage_options

        try:
            if args.command not in ("run", "resume"):  # those merge them with the config's
                set_storage_options(_storage_options(args))
            code = COMMANDS[args.command](args)
        except BrokenPipeError:  # the reader stopped (`| head`): no traceback, SIGPIPE's code
            _quiet_stdout()
            return 141
        except JobInterrupted as err:
            err_console.print(f"[yellow]{escape(str(err))}[/yellow]")
            return err.exit_code
        except ShardFailed as err:
            err_console.print(f"[red]error:[/red] {escape(str(err))}\nCommitted blocks are "
                              f"intact; fix the cause and run `sgdthermo resume`.",
                              highlight=False)
            return 1
        except USER_ERRORS as err:
            err_console.print(f"[red]error:[/red] {escape(str(err))}", highlight=False)
            if isinstance(err, StorageError):  # the client's abandoned requests, collected at
                sys.unraisablehook = lambda _: None  # exit, would print their tracebacks
            return 2
    except KeyboardInterrupt as err:
        terminated = was_terminated(err)
        err_console.print(f"[yellow]{'terminated (SIGTERM)' if terminated else 'interrupted'}"
                          f"[/yellow]")
        return 143 if terminated else 130
    finally:
        restore()
    return code or 0


if __name__ == "__main__":  # python -m sgdthermo.cluster.cli
    sys.exit(main())
