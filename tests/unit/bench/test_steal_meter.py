"""The host-steal share that benchmarks save beside their figures (``bench.common``)."""

from __future__ import annotations

from pathlib import Path

from bench.common import StealMeter


def _stat(path: Path, user: int, idle: int, steal: int) -> None:
    # user nice system idle iowait irq softirq steal guest guest_nice
    path.write_text(f"cpu  {user} 0 0 {idle} 0 0 0 {steal} 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\n")


def test_share_is_steal_over_all_jiffies_since_creation(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    _stat(stat, user=1000, idle=5000, steal=100)
    meter = StealMeter(stat)
    _stat(stat, user=1150, idle=5800, steal=150)  # 150 + 800 + 50 = 1000 jiffies passed
    assert meter.share() == 50 / 1000


def test_unreadable_stat_gives_zero(tmp_path: Path) -> None:
    meter = StealMeter(tmp_path / "missing")
    assert meter.share() == 0.0
