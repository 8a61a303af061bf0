"""terralab.progress: bars draw for a person watching and never in a report run."""

from __future__ import annotations

import io

import pytest

from terralab import progress
from terralab.progress import REPORT_RUN_ENV, progress_bar, show_progress


@pytest.fixture
def interactive(monkeypatch):
    """Outside a report run, with stderr not a terminal (as under pytest)."""
    monkeypatch.delenv(REPORT_RUN_ENV, raising=False)
    monkeypatch.setattr(progress, "_stderr_is_terminal", lambda: False)
    monkeypatch.setattr(progress, "_interactive_kernel", lambda: False)


def _drawn(**kwargs) -> str:
    out = io.StringIO()
    for _ in progress_bar(range(3), desc="steps", file=out, mininterval=0, **kwargs):
        pass
    return out.getvalue()


def test_bar_draws_when_asked_and_stays_silent_when_nobody_watches(interactive):
    assert "steps" in _drawn(enabled=True) and "3/3" in _drawn(enabled=True)
    assert _drawn(enabled=False) == ""
    assert _drawn() == "", "default: no terminal and no kernel, so no bar"


def test_default_draws_in_a_terminal_or_an_interactive_kernel(interactive, monkeypatch):
    monkeypatch.setattr(progress, "_stderr_is_terminal", lambda: True)
    assert show_progress() is True
    monkeypatch.setattr(progress, "_stderr_is_terminal", lambda: False)
    monkeypatch.setattr(progress, "_interactive_kernel", lambda: True)
    assert show_progress() is True


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_report_run_silences_every_bar_whatever_the_caller_asked(interactive, monkeypatch, value):
    monkeypatch.setenv(REPORT_RUN_ENV, value)
    assert progress.in_report_run()
    assert _drawn(enabled=True) == ""
    assert _drawn(enabled=True, disable=False) == "", "tqdm's own disable=False cannot switch it back on"


@pytest.mark.parametrize("value", ["", "0", "false"])
def test_other_values_are_not_a_report_run(interactive, monkeypatch, value):
    monkeypatch.setenv(REPORT_RUN_ENV, value)
    assert not progress.in_report_run()
    assert "3/3" in _drawn(enabled=True)


def test_disabled_bar_accepts_manual_updates_and_postfix(interactive):
    out = io.StringIO()
    with progress_bar(total=2, enabled=False, file=out) as bar:
        bar.update(2)
        bar.set_postfix(loss=0.1)
        bar.set_description("done")
    assert out.getvalue() == ""


def test_import_quietly_silences_only_tqdms_iprogress_warning(tmp_path, monkeypatch, recwarn):
    import warnings

    from tqdm import TqdmWarning

    from terralab.progress import import_quietly

    (tmp_path / "noisy_bars_lib.py").write_text(
        "import warnings\n"
        "from tqdm import TqdmWarning\n"
        "warnings.warn('IProgress not found. Please update jupyter and ipywidgets.', TqdmWarning)\n"
        "warnings.warn('a real problem', UserWarning)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    warnings.simplefilter("always")
    module = import_quietly("noisy_bars_lib")
    assert module.__name__ == "noisy_bars_lib"
    assert [type(w.message) for w in recwarn] == [UserWarning]
    assert not any(issubclass(w.category, TqdmWarning) for w in recwarn)
