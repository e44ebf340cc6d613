"""Run the demo's and the ablation's training runs side by side, in worker processes.

On a CPU, one small training run does not keep every core busy: on 2 cores a step of the demo's
attention network takes 1.55 times as long on one thread as on two, so two runs of one thread
each finish sooner than the same runs one after the other (the full demo: 534 s against about
630 s; the quick demo, whose runs are short, gains nothing: 177 s against 166 s). :func:`run_tasks`
runs tasks that way: ``jobs`` worker processes (``spawn``), each with its share of the threads,
a task starting once the tasks it comes ``after`` have finished. With ``jobs=1`` it runs them in
this process, one after the other, with progress bars; worker processes show none (their bars
would interleave), so the log has a line when each task starts and when it ends.

Numbers computed with one thread differ from those computed with two (sums are split
differently across threads, and training amplifies the difference: one seed's attention mIoU
moved by up to 3 points), so a run of ``jobs=2`` reproduces itself, not a run of ``jobs=1``.

Example:
    >>> tasks = [Task("a", "a", pow, (2, 3)), Task("b", "b", pow, (3, 2), after=("a",))]
    >>> run_tasks(tasks, jobs=1, log=lambda line: None)
    {'a': 8, 'b': 9}
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

__all__ = ["Task", "run_tasks", "default_jobs"]


@dataclass(frozen=True)
class Task:
    """One unit of work.

    Attributes:
        key: Unique name; :func:`run_tasks` returns the results under it.
        label: What the log calls it.
        fn: A module-level function (worker processes receive it by reference).
        args: Its positional arguments (picklable).
        after: Keys of the tasks that must finish first.
    """

    key: str
    label: str
    fn: Callable[..., Any]
    args: tuple = ()
    after: tuple[str, ...] = ()


def default_jobs() -> int:
    """Two workers where there are at least two cores, else one."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _check(tasks: Sequence[Task], jobs: object) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    seen: set[str] = set()
    for task in tasks:
        if task.key in seen:
            raise ValueError(f"tasks: the key {task.key!r} appears twice")
        missing = [k for k in task.after if k not in seen]
        if missing:
            raise ValueError(f"tasks: {task.key!r} comes after {missing}, which must come first")
        seen.add(task.key)


def run_tasks(
    tasks: Sequence[Task],
    jobs: int = 1,
    log: Callable[[str], None] = print,
    prefix: str | None = "run",
    start: float | None = None,
    status: Callable[[Task], str | None] | None = None,
    every: float = 30.0,
) -> dict[str, Any]:
    """Run ``tasks`` (each after the tasks it names), ``jobs`` at a time.

    Args:
        tasks: In an order where every task comes after the tasks it waits for.
        jobs: Worker processes; 1 runs the tasks here, one after the other.
        log: Receives a line per task started (and, with workers, per task finished).
        prefix: First word of the log lines (``[prefix k/n · t s] label``); ``None`` passes
            ``label`` alone, for a caller that adds its own.
        start: ``time.perf_counter()`` the elapsed seconds count from (default: now).
        status: With workers, called every ``every`` seconds for each running task; a string it
            returns (say, the iteration a training run has reached) goes to the log.
        every: Seconds between status lines.

    Returns:
        ``{key: result}``.

    Raises:
        ValueError: Duplicate keys, a task listed before one it waits for, or a bad ``jobs``.
        Exception: The first exception a task raised; the tasks not yet started are dropped.
    """
    _check(tasks, jobs)
    t0 = time.perf_counter() if start is None else start
    n = len(tasks)

    def line(k: int, text: str) -> None:
        elapsed = time.perf_counter() - t0
        log(text if prefix is None else f"[{prefix} {k}/{n} · {elapsed:5.0f} s] {text}")

    results: dict[str, Any] = {}
    if jobs == 1 or n <= 1:
        for k, task in enumerate(tasks, 1):
            line(k, task.label)
            results[task.key] = task.fn(*task.args)
        return results

    import torch

    threads = max(1, torch.get_num_threads() // jobs)
    pending = list(enumerate(tasks, 1))
    running: dict[Future, tuple[int, Task]] = {}
    before = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # the workers inherit it: no interleaved bars
    try:
        with ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(threads,),
        ) as pool:  # fmt: skip
            while pending or running:
                for item in [p for p in pending if all(a in results for a in p[1].after)]:
                    if len(running) >= jobs:
                        break
                    k, task = item
                    pending.remove(item)
                    line(k, f"{task.label} (started)")
                    running[pool.submit(task.fn, *task.args)] = item
                finished, _ = wait(running, timeout=every, return_when=FIRST_COMPLETED)
                if not finished and status is not None:
                    for k, task in running.values():
                        text = status(task)
                        if text:
                            line(k, f"{task.label}: {text}")
                for future in finished:
                    k, task = running.pop(future)
                    error = future.exception()
                    if error is not None:
                        # stop the other workers now rather than wait for their tasks
                        for process in getattr(pool, "_processes", {}).values():
                            process.terminate()
                        pool.shutdown(wait=False, cancel_futures=True)
                        raise error
                    results[task.key] = future.result()
                    line(k, f"{task.label} (done)")
    finally:
        if before is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = before
    return results
