"""run_tasks: dependencies, worker processes, errors, status lines."""

import operator
import os
import time

import pytest

from seenet.demo.jobs import Task, default_jobs, run_tasks


def test_one_after_the_other():
    lines = []
    tasks = [Task("a", "first", pow, (2, 5)), Task("b", "second", max, (3, 9), after=("a",))]
    assert run_tasks(tasks, 1, lines.append, "x") == {"a": 32, "b": 9}
    assert [line.split("] ")[1] for line in lines] == ["first", "second"]
    assert lines[0].startswith("[x 1/2 · ") and lines[1].startswith("[x 2/2 · ")
    assert run_tasks(tasks, 1, lines.append, None) == {"a": 32, "b": 9}
    assert lines[-2:] == ["first", "second"]


def test_workers_respect_the_order_and_restore_the_environment():
    before = os.environ.get("TQDM_DISABLE")
    lines = []
    tasks = [
        Task("a", "a", time.sleep, (0.5,)),
        Task("b", "b", pow, (2, 3)),
        Task("c", "c", pow, (3, 3), after=("a",)),
    ]
    assert run_tasks(tasks, 2, lines.append, None) == {"a": None, "b": 8, "c": 27}
    assert lines.index("c (started)") > lines.index("a (done)")
    assert {"a (started)", "b (started)", "b (done)", "c (done)"} <= set(lines)
    assert os.environ.get("TQDM_DISABLE") == before


def test_status_lines_while_tasks_run():
    lines = []
    tasks = [Task("a", "sleeper", time.sleep, (1.0,)), Task("b", "other", pow, (1, 1))]
    run_tasks(tasks, 2, lines.append, None, status=lambda task: f"{task.key} busy", every=0.2)
    assert "sleeper: a busy" in lines


def test_a_failing_task_stops_the_run():
    tasks = [Task("a", "a", operator.truediv, (1, 0)), Task("b", "b", time.sleep, (30,))]
    t0 = time.perf_counter()
    with pytest.raises(ZeroDivisionError):
        run_tasks(tasks, 2, lambda line: None)
    assert time.perf_counter() - t0 < 20  # the sleeping worker was stopped, not waited for
    with pytest.raises(ZeroDivisionError):
        run_tasks(tasks[:1], 1, lambda line: None)


def test_bad_input():
    with pytest.raises(ValueError, match="jobs"):
        run_tasks([], 0)
    with pytest.raises(ValueError, match="twice"):
        run_tasks([Task("a", "a", pow, (1, 1)), Task("a", "a", pow, (1, 1))])
    with pytest.raises(ValueError, match="must come first"):
        run_tasks([Task("a", "a", pow, (1, 1), after=("b",)), Task("b", "b", pow, (1, 1))])
    assert default_jobs() in (1, 2)
