"""Recording metrics and the index over runs (no kernel needed: runs are written as metrics.json files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from terralab import report
from terralab.errors import InvalidInputError, OutputLocationError


@pytest.fixture(autouse=True)
def _fresh_metrics(monkeypatch):
    monkeypatch.setattr(report, "_METRICS", {})
    monkeypatch.delenv(report.METRICS_ENV, raising=False)


# --- record ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, expected",
    [
        (np.float32(0.5), 0.5),
        (np.int64(7), 7),
        (np.bool_(True), True),
        (float("nan"), None),
        (float("inf"), "inf"),
        (np.array([1, 2, 3]), [1, 2, 3]),
        ({"a": np.float64(1.5), 2: [np.int32(1)]}, {"a": 1.5, "2": [1]}),
        (pd.Timestamp("2021-03-01"), "2021-03-01T00:00:00"),
        ((1, "x"), [1, "x"]),
    ],
)
def test_record_converts_values_to_plain_json(value, expected):
    report.record("m", value)
    stored = report.metrics()["m"]
    assert stored == expected
    json.dumps(stored)  # must be serialisable as is


def test_record_returns_the_value_unchanged():
    frame = pd.DataFrame({"a": [1]})
    assert report.record("t", frame) is frame


def test_record_stores_a_dataframe_as_a_table_with_its_index():
    frame = pd.DataFrame({"f1": [0.8, 0.9]}, index=pd.Index(["rice", "forest"], name="class"))
    report.record("per_class", frame)
    table = report.metrics()["per_class"]
    assert table == {"type": "table", "columns": ["class", "f1"], "data": [["rice", 0.8], ["forest", 0.9]]}


def test_record_refuses_tables_above_the_cell_limit():
    big = pd.DataFrame(np.zeros((report.MAX_TABLE_CELLS + 1, 1)))
    with pytest.raises(InvalidInputError, match="too large"):
        report.record("big", big)
    with pytest.raises(InvalidInputError, match="too large"):
        report.record("big", np.zeros(report.MAX_TABLE_CELLS + 1))
    report.record("ok", pd.DataFrame(np.zeros((report.MAX_TABLE_CELLS, 1))))


@pytest.mark.parametrize("name", ["", "  ", None, 3])
def test_record_refuses_a_name_that_is_not_text(name):
    with pytest.raises(InvalidInputError, match="non-empty string"):
        report.record(name, 1)


def test_record_refuses_values_it_cannot_store():
    with pytest.raises(InvalidInputError, match="cannot record a value of type object"):
        report.record("x", object())


def test_record_merges_into_the_metrics_file_atomically(tmp_path, monkeypatch):
    target = tmp_path / "run.metrics.json"
    target.write_text(json.dumps({"name": "run", "metrics": {"earlier": 1}}))
    monkeypatch.setenv(report.METRICS_ENV, str(target))
    report.record("f1", 0.9)
    report.record("f1", 0.95)  # replaces
    report.record("rmse", 2.0)
    data = json.loads(target.read_text())
    assert data["name"] == "run"
    assert data["metrics"] == {"earlier": 1, "f1": 0.95, "rmse": 2.0}
    assert [p.name for p in tmp_path.iterdir()] == ["run.metrics.json"], "temporary files left behind"


def test_record_replaces_a_corrupt_metrics_file(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "run.metrics.json"
    target.parent.mkdir()
    target.write_text("{half a fi")
    monkeypatch.setenv(report.METRICS_ENV, str(target))
    report.record("n", 3)
    assert json.loads(target.read_text()) == {"metrics": {"n": 3}}


def test_write_json_atomic_keeps_the_old_file_when_serialisation_fails(tmp_path):
    target = tmp_path / "x.json"
    report.write_json_atomic(target, {"a": 1})
    with pytest.raises(TypeError):
        report.write_json_atomic(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_metrics_from_notebook_reads_recorded_outputs():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={report.METRIC_MIME: {"name": "a", "value": 1}}),
        nbformat.v4.new_output("stream", text="hello"),
        nbformat.v4.new_output(
            "display_data", data={report.METRIC_MIME: json.dumps({"name": "b", "value": [1]})}
        ),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("x"), cell]
    assert report.metrics_from_notebook(nb) == {"a": 1, "b": [1]}


# --- index -----------------------------------------------------------------------------------------
def _write_run(directory: Path, name: str, **fields) -> None:
    record = {
        "name": name,
        "notebook": "notebooks/demo.ipynb",
        "parameters": {},
        "defaults": {"bands": "RGBN", "epochs": 5},
        "status": "ok",
        "started": "2024-01-01T00:00:00+00:00",
        "duration_s": 1.25,
        "metrics": {},
        "error": None,
        "html": f"{name}.html",
        "output_notebook": f"{name}.ipynb",
    }
    record.update(fields)
    (directory / f"{name}.metrics.json").write_text(json.dumps(record))


@pytest.fixture()
def runs_dir(tmp_path):
    _write_run(
        tmp_path,
        "a_rgbn",
        metrics={
            "f1": 0.80,
            "rmse": 3.0,
            "n_points": 10,
            "per_class": {"type": "table", "columns": ["c"], "data": [[1]]},
        },
    )
    _write_run(
        tmp_path, "b_rgbne", parameters={"bands": "RGBNE"}, metrics={"f1": 0.85, "rmse": 2.5, "n_points": 12}
    )
    _write_run(
        tmp_path,
        "c_broken",
        parameters={"bands": "RGBNES"},
        status="failed",
        metrics={"f1": 0.99},
        error={"cell_index": 4, "execution_count": 5, "ename": "ValueError", "evalue": "bad <band>"},
    )
    _write_run(tmp_path, "d_nothing", notebook="notebooks/other.ipynb", defaults={}, metrics={})
    (tmp_path / "e_running.metrics.json").write_text(json.dumps({"metrics": {"f1": 0.5}}))
    (tmp_path / "f_garbage.metrics.json").write_text("{nope")
    return tmp_path


def test_load_runs_has_one_row_per_metrics_file(runs_dir):
    runs = report.load_runs(runs_dir)
    assert list(runs["name"]) == ["a_rgbn", "b_rgbne", "c_broken", "d_nothing", "e_running", "f_garbage"]
    assert list(runs["status"]) == ["ok", "ok", "failed", "ok", "incomplete", "unreadable"]
    by_name = runs.set_index("name")
    assert by_name.loc["b_rgbne", "param.bands"] == "RGBNE"  # override beats default
    assert by_name.loc["a_rgbn", "param.bands"] == "RGBN"
    assert by_name.loc["b_rgbne", "metric.f1"] == 0.85
    assert by_name.loc["c_broken", "error"] == "cell 4 (In [5]): ValueError: bad <band>"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"name": "café", "status": "ok"}'.encode("latin-1"), "not UTF-8"),
        (b'{"name": "r", "status": "ok", "metrics": "oops"}', "field 'metrics' is text, expected a mapping"),
        (b'{"name": "r", "status": "ok", "parameters": [1, 2]}', "field 'parameters' is a list"),
        (b'{"name": "r", "status": "ok", "duration_s": true}', "field 'duration_s' is true/false"),
        (b"[1, 2]", "not a mapping but a list"),
        (b'{"name": "r", "status": "ok", "metrics": {"f1": 0.9', "Expecting"),  # truncated
    ],
    ids=["latin-1", "metrics-text", "parameters-list", "duration-bool", "a-list", "truncated"],
)
def test_a_broken_metrics_file_is_listed_as_unreadable_beside_the_good_runs(tmp_path, content, problem):
    """Issue 10: a non-UTF-8 file or wrong field types crashed the whole index; now they read like a
    truncated file: one "unreadable" row saying what is wrong, and the other runs as usual."""
    _write_run(tmp_path, "good", metrics={"f1": 0.8})
    (tmp_path / "broken.metrics.json").write_bytes(content)
    runs = report.load_runs(tmp_path).set_index("name")
    assert runs.loc["good", "status"] == "ok" and runs.loc["good", "metric.f1"] == 0.8
    assert runs.loc["broken", "status"] == "unreadable"
    assert problem in runs.loc["broken", "error"]
    html = report.build_index(tmp_path).read_text()
    assert ">unreadable</span>" in html and "2 runs: 1 ok, 1 not ok" in html


def test_hidden_files_beside_the_runs_are_not_runs(tmp_path):
    """A run in progress records into a hidden file; temporaries are hidden too. None of them is a run."""
    _write_run(tmp_path, "done")
    (tmp_path / ".done.metrics.json.abc123.tmp.json").write_text("{}")
    (tmp_path / ".x.metrics.json").write_text("{}")
    assert list(report.load_runs(tmp_path)["name"]) == ["done"]


def test_load_runs_of_a_file_says_it_is_not_a_folder(tmp_path):
    _write_run(tmp_path, "r")
    with pytest.raises(OutputLocationError, match="is a file, not a folder"):
        report.load_runs(tmp_path / "r.metrics.json")


def test_load_runs_of_an_empty_directory_is_empty(tmp_path):
    runs = report.load_runs(tmp_path)
    assert len(runs) == 0 and "status" in runs.columns


def test_load_runs_of_a_missing_directory_says_so(tmp_path):
    with pytest.raises(OutputLocationError, match="does not exist"):
        report.load_runs(tmp_path / "nope")


def test_best_run_follows_the_metric_direction_and_ignores_failed_runs(runs_dir):
    runs = report.load_runs(runs_dir)
    best = report.best_runs(runs)
    assert runs.loc[best["f1"], "name"] == "b_rgbne"  # c_broken has 0.99 but failed
    assert runs.loc[best["rmse"], "name"] == "b_rgbne"
    assert "n_points" not in best  # no direction known from the name
    assert runs.loc[report.best_runs(runs, {"n_points": "min"})["n_points"], "name"] == "a_rgbn"


@pytest.mark.parametrize(
    "name, way",
    [
        ("rmse", "min"),
        ("val_loss", "min"),
        ("rice_f1", "max"),
        ("overall_accuracy", "max"),
        ("n_vehicles", None),
        ("MAE_week", "min"),
    ],
)
def test_metric_direction_reads_the_name(name, way):
    assert report.metric_direction(name) == way


def test_build_index_writes_a_self_contained_sortable_page(runs_dir):
    path = report.build_index(runs_dir, title="Rice runs")
    assert path == runs_dir / "index.html"
    html = path.read_text()
    assert "<title>Rice runs</title>" in html
    for name in ("a_rgbn", "b_rgbne", "c_broken", "d_nothing"):
        assert f'<a href="{name}.html">{name}</a>' in html
    # grouped by notebook; failed, incomplete and unreadable runs are listed with their status
    assert html.count('class="tl sortable"') == 3  # demo, other, unknown notebook
    assert ">failed</span>" in html and ">incomplete</span>" in html and ">unreadable</span>" in html
    assert "ValueError: bad &lt;band&gt;" in html  # escaped
    assert 'href="a_rgbn.html#metric-per_class">table 1×1</a>' in html
    assert "<script>" in html and 'addEventListener("click"' in html
    assert not re.search(r'(src|href)="https?://', html), "the index must not need the network"
    assert "6 runs: 3 ok, 3 not ok" in html


def test_index_marks_the_best_run_per_metric(runs_dir):
    html = report.build_index(runs_dir).read_text()
    row = re.search(r"<tr><td><a href=\"b_rgbne.html\">.*?</tr>", html).group(0)
    assert row.count('class="num best"') == 2  # f1 and rmse
    row_a = re.search(r"<tr><td><a href=\"a_rgbn.html\">.*?</tr>", html).group(0)
    assert "best" not in row_a


def test_index_over_no_runs_still_renders(tmp_path):
    html = report.build_index(tmp_path).read_text()
    assert "no runs found" in html


def test_run_summary_lists_parameters_metrics_and_the_error():
    html = report.run_summary_html(
        {
            "name": "r",
            "notebook": "n.ipynb",
            "status": "failed",
            "duration_s": 2.0,
            "started": "t",
            "parameters": {"epochs": 3},
            "defaults": {"epochs": 5, "bands": "RGBN"},
            "metrics": {"f1": 0.8123456, "scores": {"type": "table", "columns": ["a"], "data": [[1]] * 60}},
            "error": {"cell_index": 2, "execution_count": 3, "ename": "KeyError", "evalue": "'x'"},
        }
    )
    assert '<td class="tl-override">3</td>' in html  # the overridden value is marked
    assert "<td>RGBN</td>" in html or '<td class="">RGBN</td>' in html
    assert ">0.8123<" in html
    assert 'id="metric-scores"' in html and "10 more rows" in html
    assert "Failed at cell 2 (In [3]): KeyError" in html


@pytest.mark.parametrize(
    "value, text",
    [
        (0.85463, "0.8546"),
        (43.9215, "43.92"),
        (12345.678, "12345.7"),
        (7, "7"),
        (True, "true"),
        (None, ""),
        (1.5e-7, "1.5e-07"),
    ],
)
def test_format_value_is_short_and_readable(value, text):
    assert report.format_value(value) == text


def test_written_reports_are_readable_by_others(tmp_path):
    from terralab.files import write_json_atomic, write_text_atomic

    write_json_atomic(tmp_path / "a.json", {})
    write_text_atomic(tmp_path / "a.html", "x")
    for p in tmp_path.iterdir():
        assert p.stat().st_mode & 0o044 == 0o044


def test_index_lists_only_parameters_that_were_set_or_differ(tmp_path):
    _write_run(
        tmp_path, "r1", parameters={}, defaults={"bands": "RGBN", "epochs": 5, "seed": 0}, metrics={"f1": 0.5}
    )
    _write_run(
        tmp_path,
        "r2",
        parameters={"epochs": 9},
        defaults={"bands": "RGBN", "epochs": 5, "seed": 0},
        metrics={"f1": 0.6},
    )
    html = (report.build_index(tmp_path)).read_text()
    header = html.split("<tbody>")[0]
    assert ">epochs<" in header  # set for one run, so it differs
    assert ">bands<" not in header and ">seed<" not in header  # shared defaults stay in each run's report
    assert ">f1<" in header


def test_best_run_of_a_signed_error_is_the_one_closest_to_zero():
    import pandas as pd

    runs = pd.DataFrame(
        {
            "status": ["ok", "ok", "ok"],
            "metric.count_error_pct": [-28.6, 4.0, 12.5],
            "metric.rmse": [3.0, 2.0, 5.0],
        }
    )
    best = report.best_runs(runs)
    assert best["count_error_pct"] == 1
    assert best["rmse"] == 1


def test_dict_and_list_metrics_read_as_short_text():
    text = report.format_value({"precision": 0.47533333, "n_missed": 0, "names": ["a", "b"]})
    assert text == "precision: 0.4753, n_missed: 0, names: [a, b]"


# --- pages: one number rule, templates, escaping -----------------------------------------------------
def test_every_page_uses_one_number_rule_where_nan_and_infinity_are_text():
    from terralab import compare, pages

    assert report.is_number is pages.is_number and compare.is_number is pages.is_number
    assert [pages.is_number(v) for v in (1, -2.5, np.float64(0.1), 0.0)] == [True] * 4
    assert [pages.is_number(v) for v in (float("nan"), float("inf"), -np.inf, True, None, "1")] == [False] * 6
    html = report.table_html({"type": "table", "columns": ["v"], "data": [[1.5], [float("nan")]]})
    assert (
        '<td class="num">1.5</td>' in html and "<td>nan</td>" in html
    )  # NaN: shown, not aligned as a number


def test_a_missing_duration_is_an_empty_cell_not_nan(tmp_path):
    _write_run(tmp_path, "a", duration_s=None, status="failed")
    _write_run(tmp_path, "b", duration_s=2.04)
    html = report.build_index(tmp_path).read_text()
    assert ">nan<" not in html and '<td class="num" data-sort="2.0">2</td>' in html


def test_pages_escape_every_value_from_a_run(tmp_path):
    from terralab import compare

    evil = '<script>alert("x")</script>'
    _write_run(tmp_path, "a", notebook=evil, parameters={"bands": evil}, metrics={"f1": 0.5, evil: 1})
    index = report.build_index(tmp_path, title=evil).read_text()
    summary = report.run_summary_html(json.loads((tmp_path / "a.metrics.json").read_text()))
    page = compare.comparison_html(
        report.load_runs(tmp_path), {"bands": [evil]}, title=evil, notebook=evil, fixed={"x": evil}
    )
    for html in (index, summary, page):
        assert "<script>alert" not in html and "&lt;script&gt;alert(" in html
    assert index.count("<script>") == 1 and page.count("<script>") == 1  # only the sorting script


def test_templates_are_read_as_package_resources():
    from importlib.resources import files

    from terralab import pages

    shipped = sorted(p.name for p in files("terralab").joinpath(pages.TEMPLATES).iterdir())
    assert {"page.html.j2", "index.html.j2", "comparison.html.j2", "run_summary.html.j2"} <= set(shipped)
    for name in shipped:
        assert pages.template(name).render is not None  # each one compiles
    assert pages.template("page.html.j2").environment.autoescape is True
