"""terralab.files: writers leave either the whole new file or the old one, never half a file."""

from __future__ import annotations

import stat

import pytest

from terralab.files import atomic_path, atomic_paths, write_text_atomic


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
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_several_files_change_together_or_not_at_all(tmp_path):
    names = ["run.ipynb", "run.html", "run.metrics.json"]
    for name in names:
        write_text_atomic(tmp_path / name, f"old {name}")
    with pytest.raises(KeyboardInterrupt):
        with atomic_paths(*(tmp_path / n for n in names)) as temps:
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
