"""The ``terralab`` command: exit codes, messages without tracebacks, reports written."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from terralab import cli

NOTEBOOKS = Path(__file__).parent / "notebooks"
SQUARE = NOTEBOOKS / "square.ipynb"
FAILS = NOTEBOOKS / "fails.ipynb"


def test_run_injects_command_line_and_file_parameters(tmp_path, capsys):
    params = tmp_path / "p.yaml"
    params.write_text("n_points: 3\nscale: 1000\n")
    code = cli.main(
        [
            "run",
            str(SQUARE),
            "-p",
            "scale",
            "0.5",
            "-p",
            "label",
            "007",
            "-f",
            str(params),
            "-o",
            str(tmp_path / "out"),
            "--name",
            "cli_square",
            "--no-progress",
        ]
    )
    assert code == 0
    record = json.loads((tmp_path / "out" / "cli_square.metrics.json").read_text())
    assert record["parameters"] == {"n_points": 3, "scale": 0.5, "label": "007"}  # -p wins over -f
    assert record["metrics"]["total"] == pytest.approx(1.5)
    assert record["metrics"]["label"] == "007"  # declared str: the text is kept, not read as the number 7
    out = capsys.readouterr().out
    assert "cli_square.html" in out and "total = 1.5" in out


def test_failed_run_exits_1_and_names_the_cell(tmp_path, capsys):
    code = cli.main(["run", str(FAILS), "-o", str(tmp_path), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "cell 3" in err and "ValueError: boom" in err
    assert "raise ValueError(message)" in err
    assert str(tmp_path / "fails.html") in err
    assert (tmp_path / "fails.html").exists() and (tmp_path / "fails.ipynb").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "NB", "-p", "scael", "1"], "did you mean 'scale'"),
        (["run", "NB", "-p", "n_points", "three"], "expects int"),
        (["run", "missing.ipynb"], "does not exist"),
        (["run", "NB", "--kernel", "no-such-kernel-xyz"], "is not registered"),
        (["run", "NB", "-f", "BADYAML"], "not valid YAML"),
        (["report", "MISSINGDIR"], "does not exist"),
        (["report", "AFILE"], "is a file, not a folder"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_no_traceback(tmp_path, capsys, argv, message):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("a: [1,\n")
    a_file = tmp_path / "run.metrics.json"
    a_file.write_text("{}")
    subs = {
        "AFILE": str(a_file),
        "NB": str(SQUARE),
        "BADYAML": str(bad_yaml),
        "MISSINGDIR": str(tmp_path / "nope"),
        "missing.ipynb": str(tmp_path / "missing.ipynb"),
    }
    argv = [subs.get(a, a) for a in argv]
    code = cli.main(argv + (["-o", str(tmp_path / "out")] if argv[0] == "run" else []))
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("terralab: error: ") and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_demo_runs_every_notebook_writes_the_index_and_exits_1_on_a_failure(tmp_path, capsys):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for nb in (SQUARE, FAILS):
        (notebooks / nb.name).write_bytes(nb.read_bytes())
    by_notebook = tmp_path / "params.yaml"
    by_notebook.write_text(
        "notebooks/square.ipynb: {n_points: 2, scale: 5}\nfails: {message: demo failure}\n"
    )
    code = cli.main(
        [
            "demo",
            "--notebooks-dir",
            str(notebooks),
            "-o",
            str(tmp_path / "reports"),
            "-f",
            str(by_notebook),
            "--no-progress",
        ]
    )
    assert code == 1
    reports = tmp_path / "reports"
    for name in ("square", "fails"):
        for suffix in (".html", ".ipynb", ".metrics.json"):
            assert (reports / f"{name}{suffix}").exists()
    index = (reports / "index.html").read_text()
    assert '<a href="square.html">square</a>' in index and '<a href="fails.html">fails</a>' in index
    assert ">failed</span>" in index and "demo failure" in index
    assert json.loads((reports / "square.metrics.json").read_text())["metrics"]["total"] == pytest.approx(5.0)
    captured = capsys.readouterr()
    assert "1/2 notebooks ok" in captured.out and "failed: fails" in captured.err


def test_report_rebuilds_the_index(tmp_path, capsys):
    (tmp_path / "x.metrics.json").write_text(
        json.dumps({"name": "x", "status": "ok", "metrics": {"f1": 1.0}})
    )
    assert cli.main(["report", str(tmp_path), "--title", "My runs"]) == 0
    assert "<title>My runs</title>" in (tmp_path / "index.html").read_text()
    assert "(1 run)" in capsys.readouterr().out


def test_report_lists_broken_metrics_files_as_unreadable_and_exits_0(tmp_path, capsys):
    (tmp_path / "good.metrics.json").write_text(json.dumps({"name": "good", "status": "ok", "metrics": {}}))
    (tmp_path / "latin.metrics.json").write_bytes('{"name": "café"}'.encode("latin-1"))
    (tmp_path / "types.metrics.json").write_text(json.dumps({"metrics": "oops", "parameters": [1, 2]}))
    assert cli.main(["report", str(tmp_path)]) == 0
    assert "(3 runs)" in capsys.readouterr().out
    html = (tmp_path / "index.html").read_text()
    assert html.count(">unreadable</span>") == 2


def test_report_in_a_sweep_folder_rebuilds_its_comparison_page(tmp_path, capsys):
    runs = []
    for n in (1, 2):
        run = {"name": f"toy__n-{n}", "notebook": "toy.ipynb", "parameters": {"n": n}, "status": "ok",
               "metrics": {"score": float(n)}, "html": f"toy__n-{n}.html", "attempt": 1}  # fmt: skip
        (tmp_path / f"toy__n-{n}.metrics.json").write_text(json.dumps(run))
        runs.append(run)
    (tmp_path / "sweep.json").write_text(
        json.dumps({"notebook": "toy.ipynb", "grid": {"n": [1, 2]}, "parameters": {}, "runs": runs})
    )
    assert cli.main(["report", str(tmp_path)]) == 0
    assert "(2 runs)" in capsys.readouterr().out
    page = (tmp_path / "index.html").read_text()
    assert "<title>Sweep of toy</title>" in page and 'id="sweep-runs"' in page and 'id="best-run"' in page


def test_catalog_show_of_an_unknown_name_exits_2():
    assert cli.main(["catalog", "show", "no_such_dataset_xyz"]) == 2


def test_catalog_commands_call_the_catalog(monkeypatch, capsys, tmp_path):
    import pandas as pd

    from terralab import catalog

    monkeypatch.setattr(catalog, "table", lambda: pd.DataFrame({"name": ["a_set"], "format": ["csv"]}))
    monkeypatch.setattr(catalog, "describe", lambda name: f"{name}: described")
    monkeypatch.setattr(catalog, "fetch", lambda name: tmp_path / f"{name}.csv")
    assert cli.main(["catalog", "list"]) == 0
    assert cli.main(["catalog", "show", "a_set"]) == 0
    assert cli.main(["catalog", "fetch", "a_set"]) == 0
    out = capsys.readouterr().out
    assert "a_set" in out and "a_set: described" in out and str(tmp_path / "a_set.csv") in out


def test_missing_sub_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2


def test_python_dash_m_terralab_works():
    proc = subprocess.run(
        [sys.executable, "-m", "terralab", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    for option in (
        "-p NAME VALUE",
        "--parameters-file",
        "--output-dir",
        "--show-code",
        "--cell-timeout",
        "--kernel",
        "--no-progress",
        "--name",
    ):
        assert option in proc.stdout


def test_the_command_starts_without_jsonschemas_slow_iri_checker_but_python_sessions_keep_it(tmp_path):
    """The command (argv from sys.argv) blocks the optional rfc3987_syntax import (1.6 s of CPU at start-up);
    calling terralab from Python changes nothing in the caller's session."""
    code = (
        "import sys; from terralab import cli, run; sys.argv = ['terralab', 'report', {out!r}]; "
        "code = cli.main() if {as_command} else cli.main(['report', {out!r}]); "
        "run.read_notebook({nb!r}); print(code, sys.modules.get('rfc3987_syntax', 'absent') is None)"
    )
    for as_command, blocked in ((True, "True"), (False, "False")):
        proc = subprocess.run(
            [sys.executable, "-c", code.format(out=str(tmp_path), nb=str(SQUARE), as_command=as_command)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split()[-2:] == ["0", blocked], proc.stdout


@pytest.mark.parametrize("command", ["run", "demo", "sweep"])
@pytest.mark.parametrize("spelling", ["-o", "--output", "--output-dir"])
def test_every_command_takes_one_output_option_and_the_old_spelling(command, spelling):
    argv = [command] + (["nb.ipynb"] if command != "demo" else []) + [spelling, "s3://bucket/runs"]
    if command == "sweep":
        argv += ["--grid", "n=1,2"]
    args = cli.build_parser().parse_args(argv)
    assert args.output == "s3://bucket/runs"
    assert not hasattr(args, "output_dir")


def test_the_kernel_name_is_one_constant_used_by_every_command_and_function():
    import inspect

    from terralab import options, run, sweep

    assert run.DEFAULT_KERNEL == options.DEFAULT_KERNEL == "terralab"
    parser = cli.build_parser()
    for argv in (["run", "nb.ipynb"], ["demo"], ["sweep", "nb.ipynb", "--grid", "n=1"]):
        assert parser.parse_args(argv).kernel == options.DEFAULT_KERNEL, argv
    for function in (run.run_notebook, run.run_all, run.check_kernel):
        assert inspect.signature(function).parameters["kernel"].default == options.DEFAULT_KERNEL
    # sweep takes the kernel among its checked **options
    assert sweep.SweepOptions().kernel == options.DEFAULT_KERNEL


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "NB", "--cell-timeout", "0"], "argument --cell-timeout: the value must be a positive"),
        (["run", "NB", "--cell-timeout", "soon"], "argument --cell-timeout: the value must be a number"),
        (["demo", "--cell-timeout", "-5"], "argument --cell-timeout: the value must be a positive"),
        (["demo", "--cell-timeout", "inf"], "finite number of seconds, got 'inf'"),
        (["sweep", "NB", "-g", "n=1", "--workers", "0"], "argument --workers: the value must be at least 1"),
        (["sweep", "NB", "-g", "n=1", "--workers", "2.5"], "at least 1 (a whole number), got '2.5'"),
        (["sweep", "NB", "-g", "n=1", "--workers", "many"], "argument --workers:"),
        (["sweep", "NB", "-g", "n=1", "--timeout", "0"], "argument --timeout: the value must be a positive"),
        (["sweep", "NB", "-g", "n=1", "--timeout", "nan"], "argument --timeout:"),
        (["sweep", "NB", "-g", "n=1", "--connect-timeout", "-1"], "argument --connect-timeout:"),
        (["sweep", "NB", "-g", "n=1", "--cell-timeout", "x"], "argument --cell-timeout:"),
    ],
)
def test_bad_numbers_are_refused_with_exit_2_before_anything_runs(tmp_path, capsys, argv, message):
    argv = [str(SQUARE) if a == "NB" else a for a in argv] + ["-o", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text", ["1", "30", "2.5", "1e3"])
def test_good_numbers_are_read_as_seconds(text):
    args = cli.build_parser().parse_args(["run", "nb.ipynb", "--cell-timeout", text])
    assert args.cell_timeout == float(text)


@pytest.mark.parametrize(
    "flags, shown",
    [([], False), (["-v"], True), (["--verbose"], True), (["-q"], False), (["-vv"], True)],
)
@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_shows_what_the_library_logs_and_quiet_keeps_it_out(tmp_path, capsys, flags, shown, where):
    (tmp_path / "x.metrics.json").write_text(json.dumps({"name": "x", "status": "ok", "metrics": {}}))
    argv = [*flags, "report", str(tmp_path)] if where == "before" else ["report", str(tmp_path), *flags]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert ("terralab: INFO: index of 1 run(s) at" in captured.err) is shown, captured.err
    assert "(1 run)" in captured.out, "results still go to stdout"
    assert logging.getLogger("terralab").level == logging.NOTSET, "the level is put back after the command"
    assert not logging.getLogger("terralab").handlers


def test_quiet_and_verbose_together_are_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["-q", "report", "somewhere", "-v"])
    assert exc.value.code == 2
    assert "-q and -v contradict each other" in capsys.readouterr().err


def test_quiet_turns_the_progress_bars_off(tmp_path, monkeypatch, capsys):
    from terralab import run

    seen = {}

    def run_all(*args, **kwargs):
        seen.update(kwargs)
        return []

    monkeypatch.setattr(run, "run_all", run_all)
    assert cli.main(["demo", "-q", "-o", str(tmp_path)]) == 0
    assert seen["progress"] is False
    assert cli.main(["demo", "-o", str(tmp_path)]) == 0
    assert seen["progress"] is True


def test_log_levels_of_the_flags():
    assert cli.log_level(0, False) == logging.WARNING
    assert cli.log_level(1, False) == logging.INFO
    assert cli.log_level(2, False) == cli.log_level(5, False) == logging.DEBUG
    assert cli.log_level(0, True) == logging.ERROR


# --- workflow commands (the terralab.commands entry points) -------------------------------------------
def test_das_commands_are_reached_through_the_terralab_command(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["das", "-h"])
    assert done.value.code == 0
    assert "retrain-classifier" in capsys.readouterr().out
    assert cli.main(["das", "classifier"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["simulator"] == "halfspace" and 0 < metrics["train_accuracy"] <= 1


def test_das_retrain_classifier_writes_a_model_that_loads(tmp_path, capsys):
    from terralab.das.classify import load_classifier

    out = tmp_path / "clf.json"
    argv = [
        "das",
        "retrain-classifier",
        "--scenes",
        "2",
        "--seed",
        "2000",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert cli.main(argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    clf = load_classifier(out)
    assert clf.metrics["train_scenes"] == 2 and clf.metrics["n_train"] > 0
    assert json.loads(out.read_text())["trained_with"].startswith("terralab das retrain-classifier")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["das", "retrain-classifier", "--scenes", "0"], "--scenes: the value must be at least 1"),
        (["das", "retrain-classifier", "--simulator", "moon"], "invalid choice: 'moon'"),
        (["das", "fly"], "invalid choice: 'fly'"),
    ],
)
def test_das_command_bad_input_exits_2_and_writes_nothing(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([*argv, "--out", str(tmp_path / "clf.json")] if "retrain-classifier" in argv else argv)
    assert done.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "clf.json").exists()
