"""The ``terralab`` command: catalog, run, demo, sweep, report.

::

    terralab catalog list | show NAME | fetch NAME
    terralab run NOTEBOOK [-p NAME VALUE]... [-f params.yaml] [-o DIR_OR_URL] [--name NAME] [--show-code]
                 [--cell-timeout S] [--kernel NAME] [--no-progress]
    terralab demo [-o reports] [-f params_by_notebook.yaml] [--notebooks-dir notebooks] [--no-progress]
    terralab report DIR_OR_URL [--title TITLE]
    terralab sweep NOTEBOOK --grid NAME=V1,V2 ... [-p NAME VALUE]... [-o DIR_OR_URL] [--scheduler ADDRESS]
                   [--workers N] [--retry-failed | --fresh] [--timeout S] (see `terralab sweep --help`)

Every command takes ``-v`` (what terralab is doing: runs started and finished, downloads, the cluster;
``-vv`` adds details such as parameters and where each dataset was found) and ``-q`` (errors only, no
progress bars). They may come before or after the command's name. Library messages go through
``logging`` (loggers ``terralab.*``), so a Python session chooses its own level the same way.

Exit codes: 0 success; 1 a notebook ran and failed (its report is written); 2 bad input or set-up (a
``terralab.errors`` message on stderr, no traceback); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM).

``-o/--output`` of run, demo and sweep (``--output-dir``: the old spelling of run and demo, still accepted),
and the folder of report, may be an fsspec URL (``s3://bucket/runs``); credentials come from the environment
(see ``terralab.storage``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .options import add_kernel_option, add_output_option, count_option, seconds_option

EXIT_OK, EXIT_RUN_FAILED, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


def _print_table(frame: Any) -> None:
    import pandas as pd

    if isinstance(frame, pd.DataFrame):
        with pd.option_context(
            "display.max_rows",
            None,
            "display.max_columns",
            None,
            "display.width",
            200,
            "display.max_colwidth",
            60,
        ):
            print(
                frame.to_string(index=False) if isinstance(frame.index, pd.RangeIndex) else frame.to_string()
            )
    else:
        print(frame)


# --- catalog ---------------------------------------------------------------------------------------
def _cmd_catalog_list(args: argparse.Namespace) -> int:
    from . import catalog

    _print_table(catalog.table())
    return EXIT_OK


def _cmd_catalog_show(args: argparse.Namespace) -> int:
    from . import catalog

    print(catalog.describe(args.name))
    return EXIT_OK


def _cmd_catalog_fetch(args: argparse.Namespace) -> int:
    from . import catalog

    print(catalog.fetch(args.name))
    return EXIT_OK


# --- run / demo / report ---------------------------------------------------------------------------
def _print_result(result: Any, *, stream=None) -> None:
    stream = stream or sys.stdout
    if result.ok:
        print(f"ok      {result.name}  ({result.duration_s:.1f} s)  {result.html}", file=stream)
        for key, value in result.metrics.items():
            from .report import format_value

            print(f"          {key} = {format_value(value)}", file=stream)
    else:
        source = (result.error or {}).get("source")
        print(
            f"FAILED  {result.name}  ({result.duration_s:.1f} s)  at {result.describe_error()}", file=stream
        )
        if source:
            print(f"          failing cell starts: {source}", file=stream)
        print(f"          report with the error: {result.html}", file=stream)


def _cmd_run(args: argparse.Namespace) -> int:
    from . import run

    texts: dict[str, str] = {}
    for name, value in args.parameter or []:
        texts[name] = value
    params = run.parse_parameter_text(args.notebook, texts) if texts else {}
    result = run.run_notebook(
        args.notebook,
        params,
        args.output,
        name=args.name,
        kernel=args.kernel,
        show_code=args.show_code,
        cell_timeout_s=args.cell_timeout,
        progress=not args.no_progress,
        parameters_file=args.parameters_file,
    )
    _print_result(result, stream=sys.stdout if result.ok else sys.stderr)
    print(
        f"          notebook: {result.output_notebook}\n          metrics:  {result.metrics_json}",
        file=sys.stdout if result.ok else sys.stderr,
    )
    return EXIT_OK if result.ok else EXIT_RUN_FAILED


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import run
    from .errors import ParameterError

    by_notebook: dict[str, Any] = {}
    if args.parameters_file:
        by_notebook = run.load_parameters_file(args.parameters_file)
        bad = [k for k, v in by_notebook.items() if v is not None and not isinstance(v, dict)]
        if bad:
            raise ParameterError(
                f"{args.parameters_file} must map each notebook to a mapping of parameters "
                f"(like `notebooks/x.ipynb: {{name: value}}`); not a mapping: {', '.join(bad)}"
            )
    results = run.run_all(
        args.notebooks_dir,
        args.output,
        by_notebook,
        kernel=args.kernel,
        cell_timeout_s=args.cell_timeout,
        progress=not args.no_progress,
        on_result=_print_result,
    )
    from . import storage

    failed = [r for r in results if not r.ok]
    index = (
        storage.join(args.output, "index.html")
        if storage.is_url(args.output)
        else Path(args.output) / "index.html"
    )
    print(f"{len(results) - len(failed)}/{len(results)} notebooks ok; index: {index}")
    if failed:
        print(f"failed: {', '.join(r.name for r in failed)}", file=sys.stderr)
        return EXIT_RUN_FAILED
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from . import compare, report, storage

    fs, root = storage.filesystem(args.directory)
    if fs.isfile(f"{root}/sweep.json"):
        # A sweep's folder: its index is the comparison page, rebuilt from sweep.json and the runs' files.
        path = compare.write_comparison(args.directory, title=args.title)
        state = json.loads(fs.cat_file(f"{root}/sweep.json").decode("utf-8"))
        n = len(state.get("runs") or [])
    else:
        path = report.build_index(args.directory, title=args.title)
        n = len(report.load_runs(args.directory))
    print(f"{path}  ({n} run{'s' if n != 1 else ''})")
    return EXIT_OK


# --- sweep -----------------------------------------------------------------------------------------
def _add_sweep_parser(subparsers) -> None:
    """``terralab sweep``: its options, and ``_cmd_sweep`` to run it."""
    p = subparsers.add_parser(
        "sweep",
        help="run a notebook over a parameter grid on Dask and compare the runs",
        description="Run NOTEBOOK once per point of the grid on a Dask cluster (a LocalCluster here unless "
        "--scheduler is given) and write the runs, sweep.json and a comparison index.html to -o. An "
        "interrupted sweep (Ctrl-C, SIGTERM, a killed client) resumes when the same command is run again.",
    )
    p.add_argument("notebook", help="the notebook to sweep")
    p.add_argument(
        "--grid",
        "-g",
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help="a grid parameter and its values (repeat for more parameters)",
    )
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a parameter set to the same value in every run",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="address of a running Dask scheduler (tcp://HOST:8786); default a LocalCluster here",
    )
    add_output_option(
        p,
        default=None,
        help="folder or fsspec URL (s3://…, gs://…) for the outputs; default reports/sweep-<notebook>",
    )
    p.add_argument(
        "--workers",
        type=count_option(),
        default=None,
        metavar="N",
        help="worker processes of the LocalCluster (default: one per run, at most one per core)",
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="rerun only the grid points without a successful run in the output's sweep.json "
        "(the grid comes from there when no --grid is given)",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="run every grid point, even when the output holds an unfinished attempt of the same sweep "
        "(by default that attempt is resumed: points that succeeded are kept)",
    )
    p.add_argument("--metric", default=None, help="headline metric that picks the best run in the report")
    add_kernel_option(p)
    p.add_argument(
        "--cell-timeout", type=seconds_option(), default=None, metavar="SECONDS", help="per-cell time limit"
    )
    p.add_argument(
        "--timeout",
        type=seconds_option(),
        default=None,
        metavar="SECONDS",
        help="time limit of the whole sweep; unfinished runs are marked failed",
    )
    p.add_argument(
        "--connect-timeout",
        type=seconds_option(),
        default=10.0,
        metavar="SECONDS",
        help="seconds to wait for --scheduler (default 10)",
    )
    p.add_argument("--show-code", action="store_true", help="keep code cells in the HTML reports")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_sweep)


def _cmd_sweep(args: argparse.Namespace) -> int:
    """Run ``terralab sweep`` from parsed arguments; prints one line per run.

    Exit code 1 if any run failed.
    """
    from .errors import ParameterError
    from .params import parse_parameter_text
    from .sweep import parse_grid, sweep

    if not args.grid and not args.retry_failed:
        raise ParameterError("give at least one --grid NAME=V1,V2")
    grid = parse_grid(args.notebook, args.grid) if args.grid else None
    fixed = parse_parameter_text(args.notebook, dict(args.parameter)) if args.parameter else None

    def announce(attempt: dict[str, Any]) -> None:
        if attempt["mode"] == "resume":
            print(
                f"resuming the unfinished sweep (attempt {attempt['attempt']}): {attempt['kept']} grid "
                f"point(s) already done are kept, {attempt['todo']} to run (--fresh runs them all again)",
                flush=True,
            )
        elif attempt["mode"] == "retry-failed":
            print(
                f"attempt {attempt['attempt']}: {attempt['kept']} successful run(s) kept, "
                f"{attempt['todo']} to run again",
                flush=True,
            )

    try:
        result = sweep(
            args.notebook,
            grid,
            parameters=fixed,
            scheduler=args.scheduler,
            output=args.output,
            n_workers=args.workers,
            retry_failed=args.retry_failed,
            fresh=args.fresh,
            timeout_s=args.timeout,
            connect_timeout_s=args.connect_timeout,
            cell_timeout_s=args.cell_timeout,
            kernel=args.kernel,
            show_code=args.show_code,
            metric=args.metric,
            progress=not args.no_progress,
            on_start=announce,
        )
    except KeyboardInterrupt:
        print(
            "the sweep was stopped; runs that finished are kept in its sweep.json. Run the same command "
            "again to resume it",
            file=sys.stderr,
            flush=True,
        )
        raise
    for run in result.runs:
        line = f"{run.status:7s} {run.name}"
        if run.status != "ok":
            line += f"  — {run.describe_error()}"
        print(line)
    print(f"{len(result.runs) - len(result.failed)}/{len(result.runs)} runs ok · comparison: {result.index}")
    if result.failed:
        print(
            f"rerun the failed ones with: terralab sweep {args.notebook} "
            + " ".join(f"--grid {g}" for g in args.grid)
            + f" -o {result.output} --retry-failed"
        )
        return 1
    return 0


# --- parser ----------------------------------------------------------------------------------------
def _add_run_options(p: argparse.ArgumentParser) -> None:
    add_kernel_option(p)
    p.add_argument(
        "--cell-timeout",
        type=seconds_option(),
        default=None,
        metavar="S",
        help="fail the run when one cell runs longer than S seconds (default: no limit)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_run_parser(sub) -> None:
    """``terralab run``: its options, and ``_cmd_run`` to run it."""
    run_p = sub.add_parser(
        "run",
        help="execute one notebook with parameters; write its .ipynb, .html and .metrics.json",
        description="Execute NOTEBOOK with papermill on the terralab kernel and write OUTPUT/<name>.ipynb, "
        "<name>.html (code hidden unless --show-code) and <name>.metrics.json. Exits 1 when a cell fails "
        "(the report is still written), 2 on bad input such as an undeclared parameter.",
    )
    run_p.add_argument("notebook", help="path of the .ipynb")
    run_p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="set a parameter; VALUE is read as YAML (30, 0.5, true, [1, 2]) unless the "
        "parameter is declared str. Repeatable; overrides -f",
    )
    run_p.add_argument(
        "-f", "--parameters-file", metavar="FILE", help="YAML file with a mapping of parameters"
    )
    add_output_option(
        run_p,
        default="reports",
        help="folder or fsspec URL (s3://bucket/runs; credentials from the environment); default: reports",
    )
    run_p.add_argument("--name", help="base name of the outputs (default: the notebook's file name)")
    run_p.add_argument("--show-code", action="store_true", help="keep the code cells in the HTML")
    _add_run_options(run_p)
    run_p.set_defaults(func=_cmd_run)


def _add_demo_parser(sub) -> None:
    """``terralab demo``: its options, and ``_cmd_demo`` to run it."""
    demo = sub.add_parser(
        "demo",
        help="run every notebook in notebooks/ on its defaults, then write the index",
        description="Run every notebook of --notebooks-dir (default notebooks/) on its embedded defaults, "
        "write each report and OUTPUT/index.html. A failing notebook does not stop the others; the exit "
        "code is 1 if any failed.",
    )
    add_output_option(demo, default="reports", help="folder or fsspec URL for the reports; default: reports")
    demo.add_argument(
        "-f",
        "--parameters-file",
        metavar="FILE",
        help="YAML mapping notebook → parameters, e.g. `notebooks/x.ipynb: {n: 3}`",
    )
    demo.add_argument("--notebooks-dir", default="notebooks", metavar="DIR", help="default: notebooks")
    _add_run_options(demo)
    demo.set_defaults(func=_cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``terralab`` (one sub-command per verb)."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="terralab",
        description="terralab — a research workbench for machine learning on Earth-sensing data.",
    )
    parser.add_argument("--version", action="version", version=f"terralab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    cat = sub.add_parser("catalog", help="list, describe and fetch the datasets of data_catalog.yaml")
    cat_sub = cat.add_subparsers(dest="catalog_command", metavar="ACTION")
    cat_sub.required = True
    cat_sub.add_parser("list", help="one line per dataset").set_defaults(func=_cmd_catalog_list)
    show = cat_sub.add_parser("show", help="everything the catalog says about one dataset")
    show.add_argument("name")
    show.set_defaults(func=_cmd_catalog_show)
    fetch = cat_sub.add_parser("fetch", help="get a verified local copy and print its path")
    fetch.add_argument("name")
    fetch.set_defaults(func=_cmd_catalog_fetch)

    _add_run_parser(sub)
    _add_demo_parser(sub)

    rep = sub.add_parser(
        "report",
        help="(re)build DIR/index.html over the runs in DIR (a folder or an fsspec URL such as "
        "s3://bucket/runs); in a sweep's folder, its comparison page",
    )
    rep.add_argument("directory", metavar="DIR_OR_URL")
    rep.add_argument("--title", help="page title")
    rep.set_defaults(func=_cmd_report)

    _add_sweep_parser(sub)
    _add_workflow_commands(sub)
    _add_verbosity(parser, default=True)
    for command in sub.choices.values():
        if command.prefix_chars != "\0":  # a workflow's commands parse their own options
            _add_verbosity(command, default=False)
    return parser


#: Entry-point group of workflow commands: ``name = "module:main"`` gives ``terralab NAME …``, handed the rest
#: of the command line as ``main(argv) -> exit code`` (the core names no workflow).
COMMANDS_GROUP = "terralab.commands"


def _add_workflow_commands(sub) -> None:
    """``terralab das …`` and any other workflow's commands, from the ``terralab.commands`` entry points."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        if ep.name in sub.choices:
            continue
        p = sub.add_parser(
            ep.name,
            help=f"the {ep.name} workflow's commands (terralab {ep.name} -h)",
            add_help=False,
            prefix_chars="\0",  # every argument, -h included, goes to the workflow's own parser
        )
        p.add_argument("workflow_args", nargs=argparse.REMAINDER)
        p.set_defaults(func=lambda args, ep=ep: ep.load()(args.workflow_args))


def _add_verbosity(parser: argparse.ArgumentParser, *, default: bool) -> None:
    """``-v``/``-q`` on the main parser and, without defaults of their own, after each command's name."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if default else argparse.SUPPRESS,
        help="say what terralab is doing (-vv: and the details)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=False if default else argparse.SUPPRESS,
        help="errors only: no progress bars, no warnings",
    )


def log_level(verbose: int, quiet: bool) -> int:
    """The ``logging`` level of the ``terralab`` loggers for ``-v`` given ``verbose`` times and ``-q``."""
    if quiet:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


@contextlib.contextmanager
def _log_to_stderr(level: int) -> Iterator[None]:
    """Send the ``terralab`` loggers' messages of ``level`` and above to stderr while a command runs."""
    logger = logging.getLogger("terralab")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("terralab: %(levelname)s: %(message)s [%(name)s]"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _skip_slow_optional_imports() -> None:
    """Start-up of the ``terralab`` command (not of a Python session that imports terralab).

    Reading a notebook imports nbformat, which imports jsonschema, whose optional IRI format checker compiles
    a Lark grammar on import (``rfc3987_syntax``: about 1.6 s of CPU, most of ``terralab run``'s start-up).
    terralab validates notebooks with fastjsonschema and never checks IRIs, so the command goes without it;
    jsonschema treats the module as optional.
    """
    sys.modules.setdefault("rfc3987_syntax", None)


def _terminate(signum, frame):
    from .kernels import Interrupted

    raise Interrupted(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``terralab`` console script; returns the exit code.

    SIGTERM (what ``kill``, a batch scheduler or a container runtime sends) stops a command the way Ctrl-C
    does: kernels are stopped, temporary files removed, an earlier run's files kept; exit code 143
    (130 for Ctrl-C).
    """
    import signal
    import threading

    from .errors import TerralabError

    if argv is None:
        _skip_slow_optional_imports()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quiet and args.verbose:
        parser.error("-q and -v contradict each other: give one of them")
    if args.quiet and hasattr(args, "no_progress"):
        args.no_progress = True
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with _log_to_stderr(log_level(args.verbose, args.quiet)):
            return int(args.func(args) or 0)
    except TerralabError as exc:
        print(f"terralab: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        if getattr(exc, "signum", None) == signal.SIGTERM:
            print("terralab: terminated", file=sys.stderr)
            return EXIT_TERMINATED
        print("terralab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
