"""Background jobs on PostgreSQL (docs/decisions/0010).

A job is a row of `kernel.jobs`, inserted by `enqueue` in the transaction of the change
that asks for it: a rolled-back change leaves no job, a committed one is never lost. A
`Worker` (in the server's process by default, or `rapport worker`) claims due jobs with
`FOR UPDATE SKIP LOCKED`, runs their task, deletes them when they succeed, retries them
with exponential backoff when they fail, and keeps them as dead once their attempts are
spent. Jobs run at least once: a task must be safe to run again after a crash.
`Rounds` queue jobs on a schedule beside the worker.
"""

from rapport.kernel.jobs._queue import DeadJob, enqueue, enqueue_many, list_dead_jobs, retry_dead_job
from rapport.kernel.jobs._rounds import HOURLY, Rounds, RoundWork, enqueue_each
from rapport.kernel.jobs._tasks import Handler, Job, JobContext, JsonObject, RetryPolicy, Task, TaskRegistry, tasks
from rapport.kernel.jobs._worker import CHANNEL, UnknownTask, Worker

__all__ = [
    "CHANNEL",
    "HOURLY",
    "DeadJob",
    "Handler",
    "Job",
    "JobContext",
    "JsonObject",
    "RetryPolicy",
    "RoundWork",
    "Rounds",
    "Task",
    "TaskRegistry",
    "UnknownTask",
    "Worker",
    "enqueue",
    "enqueue_each",
    "enqueue_many",
    "list_dead_jobs",
    "retry_dead_job",
    "tasks",
]
