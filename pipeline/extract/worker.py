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
) -> Iterator[TaskOutcome]:
    """Apply a picklable module-level `func` to each item in worker processes; yield outcomes in input order.

    `items` is consumed lazily: at most `max_pending` (default 4 x workers) tasks are in flight or waiting
    to be yielded, so a chunk's papers are never all in memory at once.
    """
    workers = max(1, int(workers))
    max_pending = max_pending or 4 * workers
    ctx = _context()
    it = iter(items)
    exhausted = False
    slots: list[_Slot] = []
    queue: list[tuple[int, Any]] = []  # read from `items`, not yet handed to a worker
    finished: dict[int, TaskOutcome] = {}
    next_index = 0  # next input index to read
    next_yield = 0
    try:
        slots = [_Slot(ctx, func, memory_bytes) for _ in range(workers)]
        while True:
            # Read ahead only as far as the pending bound allows.
            while not exhausted and next_index - next_yield < max_pending and len(queue) < workers:
                try:
                    queue.append((next_index, next(it)))
                    next_index += 1
                except StopIteration:
                    exhausted = True
            for i, slot in enumerate(slots):
                if slot.task is None and queue:
                    index, payload = queue.pop(0)
                    try:
                        slot.conn.send((index, payload))
                    except (OSError, BrokenPipeError):  # the idle worker died: replace it, requeue
                        slot.kill()
                        slots[i] = slot = _Slot(ctx, func, memory_bytes)
                        slot.conn.send((index, payload))
                    slot.task, slot.started = index, time.monotonic()
            while next_yield in finished:
                yield finished.pop(next_yield)
                next_yield += 1
            busy = [s for s in slots if s.task is not None]
            if not busy:
                if exhausted and not queue:
                    break
                continue
            now = time.monotonic()
            wait_s = max(0.0, min(s.started + timeout_s for s in busy) - now)
            ready = wait([s.conn for s in busy] + [s.proc.sentinel for s in busy], timeout=wait_s)
            now = time.monotonic()
            for i, slot in enumerate(slots):
                if slot.task is None:
                    continue
                index, elapsed = slot.task, now - slot.started
                outcome = None
                if slot.conn in ready:
                    try:
                        _, ok, value, error = slot.conn.recv()
                        outcome = TaskOutcome(index, ok, value, error, elapsed)
                    except (EOFError, OSError):
                        slot.proc.join(1)
                        outcome = TaskOutcome(index, False, None, _describe_exit(slot.proc.exitcode), elapsed)
                        slot.kill()
                        slots[i] = _Slot(ctx, func, memory_bytes)
                    else:
                        slot.task = None
                        slot.done += 1
                        if slot.done >= max_tasks_per_child:
                            slot.stop()
                            slots[i] = _Slot(ctx, func, memory_bytes)
                elif slot.proc.sentinel in ready:
                    slot.proc.join(1)
                    outcome = TaskOutcome(index, False, None, _describe_exit(slot.proc.exitcode), elapsed)
                    slot.kill()
                    slots[i] = _Slot(ctx, func, memory_bytes)
                elif elapsed >= timeout_s:
                    outcome = TaskOutcome(index, False, None, f"timeout after {timeout_s:g} s", elapsed)
                    slot.kill()
                    slots[i] = _Slot(ctx, func, memory_bytes)
                if outcome is not None:
                    finished[index] = outcome
        while next_yield in finished:
            yield finished.pop(next_yield)
            next_yield += 1
    finally:
        for slot in slots:
            if slot.task is None:
                slot.stop()
            else:
                slot.kill()
