"""What a job is and which code runs it: tasks registered by name, and their retry policy."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from rapport.kernel.runtime import Runtime

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Job:
    """One claimed job, as its task sees it."""

    id: UUID
    queue: str
    task: str
    payload: JsonObject
    attempt: int  # this attempt, counting from 1
    max_attempts: int


@dataclass(frozen=True)
class JobContext:
    """What a task runs with: the process's shared services and the job itself."""

    runtime: Runtime
    job: Job


Handler = Callable[[JobContext, JsonObject], Awaitable[None]]


@dataclass(frozen=True)
class Task:
    """A named piece of work. Jobs name their task, so a rename needs the old name kept
    registered until the queue holds no job of it."""

    name: str
    handler: Handler
    queue: str
    max_attempts: int
    timeout_seconds: float


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: the n-th failed attempt waits base·2^(n-1) seconds, up to the
    maximum, stretched by up to a quarter so that jobs failing together do not all retry in
    the same instant."""

    base_seconds: float = 10.0
    max_seconds: float = 3600.0
    jitter: float = 0.25

    def delay(self, attempt: int) -> float:
        exact = min(self.base_seconds * 2.0 ** max(attempt - 1, 0), self.max_seconds)
        return exact * (1 + self.jitter * random.random())


@dataclass
class TaskRegistry:
    """The tasks a process can run, by name. Domains register theirs at import time:

    ```python
    @tasks.task("media.make_thumbnails", queue="media", max_attempts=3)
    async def make_thumbnails(ctx: JobContext, payload: JsonObject) -> None: ...
    ```
    """

    _tasks: dict[str, Task] = field(default_factory=dict)

    def task(
        self, name: str, *, queue: str = "default", max_attempts: int = 5, timeout_seconds: float = 300.0
    ) -> Callable[[Handler], Task]:
        """Register the decorated coroutine as the task `name`; the decorator returns the Task
        to pass to `enqueue`."""
        if max_attempts < 1:
            raise ValueError("a task needs at least one attempt")

        def register(handler: Handler) -> Task:
            if name in self._tasks:
                raise ValueError(f"a task named {name!r} is already registered")
            task = Task(name, handler, queue, max_attempts, timeout_seconds)
            self._tasks[name] = task
            return task

        return register

    def get(self, name: str) -> Task | None:
        return self._tasks.get(name)

    @property
    def queues(self) -> frozenset[str]:
        return frozenset(task.queue for task in self._tasks.values())


# The registry the server and `rapport worker` run.
tasks = TaskRegistry()
