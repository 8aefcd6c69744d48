"""Every Redis key, stream, group and queue name taskq uses, in one place.

Keeping them together means an operator can audit what taskq writes to a shared Redis, and a
test can flush exactly taskq's state.
"""

from __future__ import annotations

PREFIX = "taskq"

#: The event log: every run-status change (and later model/dataset/custom events).
EVENTS_STREAM = f"{PREFIX}:events"
#: Consumer group shared by all evaluators; each entry goes to exactly one of them.
EVALUATOR_GROUP = f"{PREFIX}:evaluators"
#: Entries that could not be decoded, or were delivered too often, are moved here with a reason.
DEAD_LETTER_STREAM = f"{PREFIX}:events:dead"
#: Each pending entry's own last evaluation error (stream id -> error), the reason its dead
#: letter gives if it comes to that; removed when the entry is acked or dead-lettered.
EVENT_FAILURES = f"{PREFIX}:events:failures"
#: Approximate cap on the event stream (XADD MAXLEN ~). The database keeps the full history.
EVENTS_STREAM_MAXLEN = 1_000_000

#: Bumped (INCR) on every trigger change, so evaluators reload rules without a restart.
TRIGGERS_VERSION = f"{PREFIX}:triggers:version"
#: Sorted set of live evaluator loops (member = consumer name, score = last heartbeat).
EVALUATORS_LIVE = f"{PREFIX}:evaluators:live"
#: Evaluators an outage holds (member -> JSON: state, since, reason, held, at), for
#: ``taskq status``.
EVALUATORS_HEALTH = f"{PREFIX}:evaluators:health"
#: Lock held by the reconciler so that two beats never re-emit concurrently.
RECONCILE_LOCK = f"{PREFIX}:lock:reconcile"
#: A single-runner lock's lease (seconds): its holder renews it while the body runs, so a
#: holder killed outright frees it within about this long, not after the pass's timeout.
LOCK_LEASE_SECONDS = 10.0
#: Lock held by the outbox relay.
RELAY_LOCK = f"{PREFIX}:lock:relay"
#: Stream position up to which the reconciler has confirmed database events.
RECONCILE_STREAM_CURSOR = f"{PREFIX}:reconcile:stream-cursor"
#: ``<prefix>:<namespace>:<delivery>``: signed webhook deliveries seen by ``taskq events
#: serve``, each kept (SET EX) as long as its signature is accepted.
INGEST_SEEN_PREFIX = f"{PREFIX}:ingest:seen"
#: Deepest published ``fields`` (``{}`` is 1): the event envelope adds two levels and its
#: serialiser stops at about 250; the HTTP endpoint's own limit may only be lower.
MAX_FIELDS_DEPTH = 64
#: A token the reconciler keeps here and in SQL: gone from Redis means Redis lost its data.
REDIS_EPOCH = f"{PREFIX}:epoch"
#: Lock held by the sweep that republishes queued runs whose message was lost.
REDELIVER_LOCK = f"{PREFIX}:lock:redeliver"
#: A worker's liveness: ``WORKER_ALIVE_PREFIX + hostname``, refreshed by the worker with a
#: time to live; gone means the worker died (its running runs are failed "worker lost").
WORKER_ALIVE_PREFIX = f"{PREFIX}:worker:alive:"
#: One key per queue, refreshed by the heartbeat of every live worker consuming it.
QUEUE_CONSUMED_PREFIX = f"{PREFIX}:queue:consumed:"

#: Celery queue of the trigger-evaluation task and taskq's own periodic tasks.
TRIGGERS_QUEUE = "taskq.triggers"
DEFAULT_QUEUE = "default"
DEFAULT_NAMESPACE = "default"
#: Queue names of the example jobs; declared so Flower lists them even when idle.
EXAMPLE_QUEUES = ("train", "gpu", "viz", "services")

#: Celery task names.
EVALUATE_TASK = "taskq.evaluate"
RECONCILE_TASK = "taskq.reconcile"
RELAY_TASK = "taskq.relay_outbox"
REDELIVER_TASK = "taskq.redeliver_lost"
PIPELINES_TICK_TASK = "taskq.pipelines.tick"
JOB_TASK_PREFIX = "taskq.job."

#: The tag of a run started by ``taskq run JOB --trigger``: its events fire nothing.
LOCAL_TAG = "local"

#: Celery message header that marks a task as a taskq run.
RUN_HEADER = "taskq_run"
#: Set when the run's ``queued`` status was committed with its outbox row (the usual path),
#: so after_task_publish need not write it again.
QUEUED_HEADER = "taskq_queued"
#: A re-enqueued run's incarnation (absent: 0); the start claim refuses any other.
INCARNATION_HEADER = "taskq_incarnation"

#: Entity polling (models, datasets, runs): one poller at a time, and its beat task.
POLL_LOCK = f"{PREFIX}:lock:poll"
POLL_TASK = "taskq.poll_entities"
#: Beat period of the poll task (seconds); each family is polled when its own frequency,
#: stored in the database, says it is due.
POLL_TICK_SECONDS = 2.0
#: Built-in jobs of entity triggers: a ``schedule_function`` call, and the scheduler loop
#: that ``TriggerScheduler.start_remotely`` runs.
FUNCTION_JOB = "taskq.function"
SCHEDULER_JOB = "taskq.trigger-scheduler"
SERVICES_QUEUE = "services"
#: Set in the environment of a scheduler script a worker re-runs for ``start_remotely()``
#: (its value: the scheduler's run), where ``start_remotely()`` runs ``start()``.
SCHEDULER_RUN_ENV = "TASKQ_SCHEDULER_RUN"
#: A ``schedule_function`` defined in the scheduler script (``__main__``) is called by
#: ``TriggerScheduler.start()`` in that process, as ClearML does: its calls are runs on this
#: queue, which no Celery worker consumes (the outbox marks them sent without sending).
IN_PROCESS_PREFIX = "__main__:"
SCHEDULER_CALLS_QUEUE = "taskq.scheduler-calls"


def job_task_name(job: str) -> str:
    return f"{JOB_TASK_PREFIX}{job}"

#: Most rows one list call returns (runs, models, datasets): a larger limit is refused, not
#: passed to the database (SQLite cannot hold an integer past 2**63).
MAX_LIST_LIMIT = 10_000
