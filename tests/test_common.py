"""forge_common: the atomic write, the progress line and the duration format every package uses."""

import os
import stat

import pytest

from forge_common import ProgressLog, atomic_write, format_duration


def test_atomic_write_replaces_whole_files_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "sub" / "a.json"
    assert atomic_write(target, '{"v": 1}') == target and target.read_text() == '{"v": 1}'
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # readable by others, unlike a bare mkstemp file
    atomic_write(target, lambda tmp: tmp.write_bytes(b"2"), fsync=False)
    assert target.read_bytes() == b"2"

    def half_then_fail(tmp):
        tmp.write_bytes(b"half a fi")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"2"  # the old content, whole
    assert os.listdir(target.parent) == ["a.json"]  # no temporary file left behind


def test_progress_lines_have_rate_and_eta_and_are_throttled():
    lines = []
    p = ProgressLog("chunk", 500_000_000, unit="MB", scale=1e6, interval=3600, emit=lines.append)
    assert p.line(250_000_000, 10.0) == "chunk: 250.0/500.0 MB (50.0%), 25.0 MB/s, ETA 10s"
    assert not p.update(1) and not lines  # within the interval: quiet
    assert p.update(500_000_000) and len(lines) == 1  # the last one always
    q = ProgressLog("train", unit="steps", emit=lines.append)
    assert q.line(30, 15.0, d_loss=0.51234, images=960) == "train: 30 steps, 2.0 steps/s, d_loss 0.5123, images 960"
    assert "ETA --" in ProgressLog("x", 10).line(0, 1.0)


def test_progress_rate_counts_from_the_first_update_of_a_resumed_job():
    p = ProgressLog("c", 100, start=None, emit=lambda line: None)
    p(40, 100)  # what a resumed download already had
    p.t0 -= 10  # ten seconds later ...
    p.update(60)
    assert p.new == 20 and p.rate(60, 10.0) == 2.0


def test_durations():
    assert [format_duration(s) for s in (0.4, 8, 187, 7505)] == ["0s", "8s", "3m07s", "2h05m"]
