"""Progress of long loops as log lines with rate and ETA (what Dagster's log viewer and a terminal show well),
and the one duration format.

    arXiv_src_2301_001: 1,200/2,592 papers (46.3%), 21.4 papers/s, ETA 1m05s, figures 3,112, errors 3
"""

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def format_duration(seconds: float) -> str:
    """`8s`, `3m07s`, `2h05m` (rounded to the second; past an hour the seconds are left out)."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def _value(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


class ProgressLog:
    """Logs `<name>: <done>/<total> <unit> (<pct>), <rate> <unit>/s, ETA <duration>, <key> <value> ...` at most
    every `interval` seconds (the line that reaches `total` always), quiet in between.

    `update(done, **extra)` after each piece of work, `done` counting up; `extra` values are appended (counts,
    losses). `rates={"images": 64}` also shows 64 images per unit as a rate (images/s beside steps/s). Called as `progress(done, total)` it is a callback for functions that report that pair (downloads,
    the sample bucket). `total=None`: no percentage and no ETA. `scale` shows big counts in another unit
    (bytes as MB: `unit="MB", scale=1e6`). The rate counts from `start` at construction; `start=None` takes the
    first update as the starting point instead (a resumed download: bytes already there are not this run's).
    `emit` takes each line (default: this module's logger; an asset passes `context.log.info`)."""

    def __init__(self, name: str, total: float | None = None, *, unit: str = "items", interval: float = 10.0,
                 scale: float = 1.0, start: float | None = 0, emit: Callable[[str], object] | None = None,
                 rates: dict[str, float] | None = None):
        self.name, self.total, self.unit, self.interval, self.scale = name, total, unit, interval, scale
        self.rates = dict(rates or {})
        self.emit = emit or log.info
        self.start = start
        self.done = start or 0
        self.t0 = self._last = time.monotonic()

    @property
    def new(self) -> float:
        """Work done since the starting point (a resumed download: the bytes fetched in this run)."""
        return self.done - (self.start or 0)

    def __call__(self, done: float, total: float | None = None) -> bool:
        if total is not None:
            self.total = total
        return self.update(done)

    def update(self, done: float, **extra: object) -> bool:
        """Record progress; returns True when a line was emitted."""
        now = time.monotonic()
        self.done = done
        finished = self.total is not None and done >= self.total
        if self.start is None:
            self.start, self.t0, self._last = done, now, now
            if not finished:
                return False
        if now - self._last < self.interval and not finished:
            return False
        line = self.line(done, now - self.t0, **extra)
        self._last = now
        self.emit(line)
        return True

    def rate(self, done: float, elapsed: float) -> float:
        """Units per second (unscaled) since the starting point; subclasses may measure a recent window."""
        return (done - (self.start or 0)) / elapsed if elapsed > 0 else 0.0

    def eta(self, done: float, rate: float) -> float | None:
        if self.total is None or rate <= 0:
            return None
        return max(self.total - done, 0) / rate

    def _count(self, n: float) -> str:
        return f"{n / self.scale:,.1f}" if self.scale != 1 else _value(int(n) if float(n).is_integer() else n)

    def line(self, done: float, elapsed: float, **extra: object) -> str:
        """The text of one progress line (`elapsed`: seconds since the starting point)."""
        rate = self.rate(done, elapsed)
        if self.total is not None:
            pct = 100.0 * done / self.total if self.total else 100.0
            parts = [f"{self.name}: {self._count(done)}/{self._count(self.total)} {self.unit} ({pct:.1f}%)"]
        else:
            parts = [f"{self.name}: {self._count(done)} {self.unit}"]
        parts.append(f"{_rate(rate / self.scale)} {self.unit}/s")
        parts += [f"{_rate(rate * per)} {name}/s" for name, per in self.rates.items()]
        eta = self.eta(done, rate)
        if eta is not None or self.total is not None:
            parts.append(f"ETA {format_duration(eta) if eta is not None else '--'}")
        parts += [f"{k} {_value(v)}" for k, v in extra.items()]
        return ", ".join(parts)
