"""A process pool for untrusted work: per-task wall-clock limit, memory cap, crash recovery, ordered results.

`concurrent.futures.ProcessPoolExecutor` cannot do this: a task cannot be killed on a deadline, and one
dead worker breaks the whole pool. Here each worker is a process with a pipe; the parent hands it one task
at a time and waits on all pipes and process sentinels with the nearest deadline as timeout.

- Wall clock: a task past `timeout_s` gets its worker's whole process group SIGKILLed (so a Ghostscript
  child dies with it); the task ends as `"timeout after N s"` and a fresh worker takes the slot.
- Memory: each worker sets `RLIMIT_AS` to `memory_bytes` at start; Python code gets MemoryError (recorded
  as the task's error), native code that aborts is a crash.
- Crash: a worker that dies mid-task (segfault in a C library, OOM kill, os._exit) fails only that task.
- `max_tasks_per_child` recycles workers so leaks in native libraries cannot accumulate.
- Results come back in input order, whatever order workers finish in, so output is deterministic.

Workers start with the `forkserver` method (a clean process: no locks or threads inherited from a
Dagster or CLI parent), or `spawn` where forkserver is unavailable.
"""

import logging
import multiprocessing as mp
import os
import resource
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class TaskOutcome:
    index: int  # position in the input
    ok: bool
    value: Any  # the function's return value when ok
    error: str | None  # reason when not ok: exception text, "timeout after N s", "worker crashed ..."
    seconds: float


def _worker_main(conn: Connection, func: Callable[[Any], Any], memory_bytes: int | None) -> None:
    os.setpgid(0, 0)  # own process group: the parent's kill on timeout also reaches our subprocesses
    if memory_bytes:
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        except (ValueError, OSError):
            pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    conn.send("ready")  # start-up (imports) must not count against the first task's deadline
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        index, payload = msg
        try:
            reply = (index, True, func(payload), None)
        except MemoryError:
            reply = (index, False, None, f"out of memory (worker limit {memory_bytes} bytes)")
        except BaseException as exc:  # noqa: BLE001 - any failure is this task's recorded error
            reply = (index, False, None, f"{type(exc).__name__}: {exc}"[:500])
        try:
            conn.send(reply)
        except MemoryError:
            conn.send((index, False, None, "out of memory while sending the result"))
        except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result
            conn.send((index, False, None, f"result could not be sent: {type(exc).__name__}: {exc}"[:500]))


class _Slot:
    def __init__(self, ctx, func, memory_bytes):
        parent, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child, func, memory_bytes), daemon=True)
        self.proc.start()
        child.close()
        self.conn: Connection = parent
        self.ready = False
        self.task: int | None = None
        self.started = 0.0
        self.done = 0

    def kill(self) -> None:
        pid = self.proc.pid
        if pid is not None:
            for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                try:
                    target()
                    break
                except (ProcessLookupError, PermissionError):
                    continue
        self.proc.join(5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.kill()
        else:
            self.conn.close()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "worker crashed"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"worker crashed ({name})"
    return f"worker exited with code {code}"


def _context():
    methods = mp.get_all_start_methods()
    return mp.get_context("forkserver" if "forkserver" in methods else "spawn")


def run_pool(
    func: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    workers: int = 1,
    timeout_s: float = 120.0,
    memory_bytes: int | None = None,
    max_tasks_per_child: int = 200,
    max_pending: int | None = None,
    boot_timeout_s: float = 120.0,
) -> Iterator[TaskOutcome]:
    """Apply a picklable module-level `func` to each item in worker processes; yield outcomes in input order.

    `items` is consumed lazily: at most `max_pending` (default 4 x workers) tasks are in flight or waiting
    to be yielded, so a chunk's papers are never all in memory at once. A task's clock starts when a
    started worker receives it.
    """
    pool = _Pool(func, max(1, int(workers)), timeout_s, memory_bytes, max_tasks_per_child, boot_timeout_s)
    max_pending = max_pending or 4 * pool.size
    it = iter(items)
    exhausted = False
    queue: list[tuple[int, Any]] = []  # read from `items`, not yet handed to a worker
    finished: dict[int, TaskOutcome] = {}
    next_index = next_yield = 0
    try:
        while True:
            while not exhausted and next_index - next_yield < max_pending and len(queue) < pool.size:
                try:
                    queue.append((next_index, next(it)))
                    next_index += 1
                except StopIteration:
                    exhausted = True
            pool.dispatch(queue)
            while next_yield in finished:
                yield finished.pop(next_yield)
                next_yield += 1
            if not pool.busy():
                if exhausted and not queue:
                    break
                if not queue or pool.idle_ready():
                    continue  # results were just yielded: read more items before waiting
            for outcome in pool.poll():
                finished[outcome.index] = outcome
        while next_yield in finished:
            yield finished.pop(next_yield)
            next_yield += 1
    finally:
        pool.close()


class _Pool:
    def __init__(self, func, size: int, timeout_s: float, memory_bytes: int | None, max_tasks: int, boot_s: float):
        self.func, self.size, self.timeout_s = func, size, timeout_s
        self.memory_bytes, self.max_tasks, self.boot_s = memory_bytes, max_tasks, boot_s
        self.ctx = _context()
        self.boot_failures = 0
        self.slots = [self._new() for _ in range(size)]

    def _new(self) -> _Slot:
        slot = _Slot(self.ctx, self.func, self.memory_bytes)
        slot.started = time.monotonic()  # boot clock until "ready"
        return slot

    def busy(self) -> bool:
        return any(s.task is not None for s in self.slots)

    def idle_ready(self) -> bool:
        """Some worker is started and free (so a queued task can be dispatched without waiting)."""
        return any(s.ready and s.task is None for s in self.slots)

    def dispatch(self, queue: list[tuple[int, Any]]) -> None:
        for i, slot in enumerate(self.slots):
            if not queue or not slot.ready or slot.task is not None:
                continue
            index, payload = queue[0]
            try:
                slot.conn.send((index, payload))
            except (OSError, BrokenPipeError):  # the idle worker died: replace it, keep the task queued
                slot.kill()
                self.slots[i] = self._new()
                continue
            queue.pop(0)
            slot.task, slot.started = index, time.monotonic()

    def poll(self) -> list[TaskOutcome]:
        """Wait for the next event (a result, a worker ready or dead, a deadline); return finished tasks."""
        now = time.monotonic()
        deadlines = [s.started + (self.timeout_s if s.ready else self.boot_s) for s in self.slots
                     if s.task is not None or not s.ready]
        wait_s = max(0.0, min(deadlines) - now) if deadlines else None
        ready = wait([s.conn for s in self.slots] + [s.proc.sentinel for s in self.slots], timeout=wait_s)
        now = time.monotonic()
        out = []
        for i, slot in enumerate(self.slots):
            index, elapsed = slot.task, now - slot.started
            failure = None
            if slot.conn in ready:
                try:
                    msg = slot.conn.recv()
                except (EOFError, OSError):
                    slot.proc.join(1)
                    failure = _describe_exit(slot.proc.exitcode)
                else:
                    if msg == "ready":
                        slot.ready, self.boot_failures = True, 0
                        continue
                    _, ok, value, error = msg
                    out.append(TaskOutcome(index, ok, value, error, elapsed))
                    slot.task = None
                    slot.done += 1
                    if slot.done >= self.max_tasks:
                        slot.stop()
                        self.slots[i] = self._new()
                    continue
            elif slot.proc.sentinel in ready:
                slot.proc.join(1)
                failure = _describe_exit(slot.proc.exitcode)
            elif slot.task is not None and elapsed >= self.timeout_s:
                failure = f"timeout after {self.timeout_s:g} s"
            elif not slot.ready and elapsed >= self.boot_s:
                failure = f"worker did not start within {self.boot_s:g} s"
            if failure is None:
                continue
            slot.kill()
            self.slots[i] = self._new()
            if index is not None:
                out.append(TaskOutcome(index, False, None, failure, elapsed))
            else:  # died while starting: a broken environment, not a bad paper
                self.boot_failures += 1
                if self.boot_failures >= 3 * self.size:
                    raise RuntimeError(
                        f"worker processes keep failing to start ({failure}); a script that starts the pool "
                        "must guard its top level with `if __name__ == '__main__':` (workers re-import it)")
        return out

    def close(self) -> None:
        for slot in self.slots:
            if slot.task is None and slot.ready:
                slot.stop()
            else:
                slot.kill()
