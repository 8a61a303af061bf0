"""terralab.files: writers leave either the whole new file or the old one, never half a file."""

from __future__ import annotations

import stat

import pytest

from terralab.files import atomic_path, atomic_paths, write_json_atomic, write_text_atomic


def test_finished_block_replaces_the_file_with_the_suffix_kept_on_the_temporary(tmp_path):
    target = tmp_path / "sub" / "map.tif"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".tif" and tmp != target
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["map.tif"]


def test_failing_block_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "table.csv"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_several_files_change_together_or_not_at_all(tmp_path):
    names = ["run.ipynb", "run.html", "run.metrics.json"]
    for name in names:
        write_text_atomic(tmp_path / name, f"old {name}")
    with pytest.raises(KeyboardInterrupt), atomic_paths(*(tmp_path / n for n in names)) as temps:
        temps[0].write_text("new")
        raise KeyboardInterrupt  # Ctrl-C half-way: the old three stay, no temporary is left
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    assert all((tmp_path / n).read_text() == f"old {n}" for n in names)

    with atomic_paths(*(tmp_path / n for n in names)) as temps:
        assert [t.suffix for t in temps] == [".ipynb", ".html", ".json"]
        assert all(t.name.startswith(".") for t in temps), "temporaries are hidden"
        for t, n in zip(temps, names):
            t.write_text(f"new {n}")
    assert all((tmp_path / n).read_text() == f"new {n}" for n in names)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    assert stat.S_IMODE((tmp_path / names[0]).stat().st_mode) == 0o644


def test_fsspec_url_is_written_whole_and_leaves_no_hidden_name():
    import fsspec

    fs = fsspec.filesystem("memory")
    url = "memory://terralab-test-files/a/report.html"
    assert write_text_atomic(url, "<p>new</p>") == url
    assert fs.cat_file("/terralab-test-files/a/report.html") == b"<p>new</p>"
    assert fs.ls("/terralab-test-files/a", detail=False) == ["/terralab-test-files/a/report.html"]
    fs.rm("/terralab-test-files", recursive=True)


def test_failing_block_on_an_fsspec_file_system_keeps_the_old_files():
    import fsspec

    fs = fsspec.filesystem("memory")
    root = "/terralab-test-files-fail"
    names = [f"{root}/run.ipynb", f"{root}/run.metrics.json"]
    for name in names:
        write_text_atomic(name, f"old {name}", fs=fs)
    with pytest.raises(RuntimeError), atomic_paths(*names, fs=fs) as temps:
        assert [t.suffix for t in temps] == [".ipynb", ".json"], "scratch files keep the target's suffix"
        temps[0].write_text("new")
        raise RuntimeError("writer failed")
    assert [fs.cat_file(n).decode() for n in names] == [f"old {n}" for n in names]
    assert sorted(fs.ls(root, detail=False)) == sorted(names)
    assert not any(t.exists() for t in temps), "local scratch files are removed"
    fs.rm(root, recursive=True)


def test_json_that_cannot_be_serialised_leaves_the_old_file(tmp_path):
    target = tmp_path / "metrics.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"a": object()})
    assert target.read_text() == '{\n  "a": 1\n}'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_file_url_is_a_local_path(tmp_path):
    write_text_atomic(f"file://{tmp_path}/x/note.txt", "hi")
    assert (tmp_path / "x" / "note.txt").read_text() == "hi"
