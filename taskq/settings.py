"""Configuration: ``TASKQ_*`` environment variables over an optional TOML file.

Environment wins over the file so that a deployment can keep one file for all services and
override per container. Unset URLs mean the embedded default (a bundled redis-server and a
SQLite file under ``home``), so ``taskq dev`` works on a bare machine.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from taskq import constants
from taskq.core import connections as conns
from taskq.core.budget import RenderLimits
from taskq.core.routing import namespaced_queue
from taskq.errors import ConfigFileMissing

DEFAULT_CONFIG_FILE = Path("config/taskq.toml")


class _TomlSource(PydanticBaseSettingsSource):
    """Reads ``[taskq]`` (or the top level) of the file named by TASKQ_CONFIG."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        explicit = os.environ.get("TASKQ_CONFIG")
        path = Path(explicit) if explicit else DEFAULT_CONFIG_FILE
        if not path.is_file():
            if explicit:
                raise ConfigFileMissing(f"TASKQ_CONFIG points to {path}, which does not exist",
                                        "create that file, or unset TASKQ_CONFIG to use "
                                        "config/taskq.toml")
            return {}
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        section = data.get("taskq", data)
        section = conns.beside_taskq(data, section, str(path))
        unknown = sorted(set(section) - set(self.settings_cls.model_fields))
        if unknown:
            # A typo silently ignored is a setting silently not applied.
            raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(self.settings_cls.model_fields))}")
        return dict(section)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TASKQ_", extra="ignore", frozen=True)

    #: redis-py URL (``redis://``, ``rediss://`` or ``unix://``). None = embedded server.
    redis_url: str | None = None
    #: SQLAlchemy URL. None = SQLite file under ``home``.
    database_url: str | None = None
    #: Where the embedded default keeps its Redis socket, data and SQLite file.
    home: Path = Path(".taskq")
    #: False in deployments: an unset URL is then an error instead of a private embedded
    #: server that no other container would see.
    embedded: bool = True
    #: Seconds before the Redis broker redelivers an unacknowledged message; longer than your
    #: longest job (a redelivered run is refused by the start claim, but waits this long).
    broker_visibility_timeout: int = 3600
    #: Modules with ``@taskq.job`` functions that the Celery app imports.
    imports: Annotated[list[str], NoDecode] = Field(default_factory=list)
    default_queue: str = constants.DEFAULT_QUEUE
    #: Extra named queues to declare (so Flower shows them while idle).
    queues: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(constants.EXAMPLE_QUEUES))
    #: Namespaces triggers and runs may live in; anything else is refused at registration.
    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [constants.DEFAULT_NAMESPACE])
    #: The namespace a Client and the CLI are bound to: they read and change only it.
    namespace: str = constants.DEFAULT_NAMESPACE
    #: An admin Client / CLI sees and changes every namespace (``Client(admin=True)``,
    #: ``taskq --admin``). Direct database or Redis credentials are admin whatever this says.
    admin: bool = False
    #: Credentials of ``taskq events serve`` (set them in the environment, not in files):
    #: a bearer token, and/or the secret of an HMAC-SHA256 signature; both publish into the
    #: ``default`` namespace only (docs/chaining.md, "The HTTP endpoint").
    events_token: SecretStr | None = None
    events_hmac_secret: SecretStr | None = None
    #: Bearer tokens scoped to namespaces: {"name": {"token_env": "VAR", "namespaces":
    #: ["team-a"]}} ("*": every configured namespace). The token is read from VAR when the
    #: server starts; the first namespace is where a request naming none publishes.
    events_tokens: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Webhook signing secrets, each publishing into one namespace: {"name": {"secret_env":
    #: "VAR", "namespace": "team-a"}}.
    events_webhooks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: A signed request's X-Taskq-Timestamp may differ from the server's clock by this much
    #: (s); its delivery id is remembered in Redis as long, so a replay is a duplicate.
    events_signature_window_seconds: int = Field(default=300, ge=1, le=86_400)
    #: Deepest JSON body accepted (``{}`` is 1); deeper is a 400.
    events_max_json_depth: int = Field(default=32, ge=1, le=constants.MAX_FIELDS_DEPTH)
    #: A client must send a request's headers within this (s; also the keep-alive idle
    #: time), and its body within ``events_body_timeout``, or the connection is closed.
    events_header_timeout: float = Field(default=10.0, gt=0)
    events_body_timeout: float = Field(default=30.0, gt=0)
    #: Which other namespaces' runs a namespace's finish triggers may watch:
    #: {"team-a": ["default"]}. Without an entry a namespace sees only its own runs.
    watch_namespaces: dict[str, list[str]] = Field(default_factory=dict)
    #: Named bundles of hook settings: {"name": {"params": {...}, "queue": "...",
    #: "namespace": "..."}}, applied in the order a hook lists them.
    presets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Connections (deployment-time only, never in a hook or trigger spec): notifiers hooks
    #: post to, {"name": {"kind": "webhook"|"slack", "url_env": "VAR", "secret_env":
    #: "VAR"}}, and sources that post to ``/connections/<name>/webhook``, {"name": {"kind":
    #: "git"|"registry"|"dataset", "provider": "github"|..., "secret_env": "VAR",
    #: "namespace": "..."}}; URLs and secrets are read from those variables when used.
    connections: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Agents: other brokers runs can be routed to with ``queue: "<agent>/<queue>"``:
    #: {"name": {"broker_url": "redis://...", "default_queue": "...", "queues": [...]}}.
    #: An empty ``queues`` list allows any queue.
    agents: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: This process's Celery broker, when it differs from ``redis_url`` (a worker of another
    #: agent: it consumes from that agent's broker but writes events to taskq's Redis).
    broker: str | None = None
    #: How many evaluator loops evaluate at once across all workers; each worker consuming
    #: taskq.triggers starts this many beside its pool, the ones beyond it stand by.
    evaluators: int = 1
    #: How long a loop runs before it reloads its rules and reclaims pending entries afresh
    #: (seconds); a warm shutdown ends a slice after the current read.
    evaluator_slice_seconds: float = 10.0
    #: XREADGROUP BLOCK timeout (milliseconds).
    evaluator_block_ms: int = Field(default=1000, ge=1, le=30_000)
    #: A pending entry idle this long belongs to a dead evaluator and is reclaimed (ms).
    claim_idle_ms: int = 15000
    #: Deliveries after which an entry is dead-lettered instead of retried. Deliveries that
    #: ended in an outage (database, Redis or broker away) are not counted.
    max_deliveries: int = 5
    #: Longest wait between retries while an outage holds the evaluator (seconds); the
    #: first wait is 0.5 s and doubles up to this.
    outage_retry_max_seconds: float = Field(default=5.0, gt=0, le=60)
    #: Beat periods (seconds) for the reconciler and the outbox relay.
    reconcile_every: float = 5.0
    relay_every: float = 5.0
    #: Unused since the evaluator runs beside the pool (its worker restarts a dead loop);
    #: still accepted so existing configuration keeps loading.
    keepalive_every: float = 5.0
    #: An event not seen in the stream this long after it was committed is re-emitted (s).
    reconcile_grace_seconds: float = 3.0
    #: An outbox row not published this long after commit is republished by the relay (s).
    relay_grace_seconds: float = 3.0
    #: A run still ``queued`` this long after it was queued (s), whose message is neither in
    #: its queue, nor in the broker's unacknowledged set, nor held by a live worker, is
    #: republished (its message was lost: Redis lost its data, or a worker died between
    #: taking the message and recording it as unacknowledged).
    redeliver_after_seconds: float = Field(default=60.0, gt=0)
    #: Beat period (seconds) of the sweep that looks for such runs.
    redeliver_every: float = 15.0
    #: A run ``queued`` this long (s) on a queue no live worker consumes is marked
    #: ``unschedulable`` by that sweep (0: never).
    unschedulable_after_seconds: float = Field(default=300.0, ge=0)
    #: One trigger's check of one event (its filters and name pattern) may take this long;
    #: past it, the trigger is skipped for that event with the reason recorded (s).
    rule_check_seconds: float = Field(default=0.05, gt=0, le=10)
    #: A trigger whose evaluation fails (raises, or overruns its check budget) this many
    #: times in a row is quarantined with the reason until enabled again (0: never).
    quarantine_after: int = Field(default=5, ge=0, le=1_000_000)
    #: Events (and the join arms done with them) are kept this many days for explain and
    #: replay, then pruned by the reconciler pass in bounded batches (0: kept for ever).
    event_retention_days: float = Field(default=30.0, ge=0, le=36_500)
    #: One time budget for all of a firing's templates and conditions together (s).
    template_seconds: float = Field(default=1.0, gt=0, le=60)
    #: The largest value one template operation may build, and the largest rendered param.
    template_max_value_chars: int = Field(default=65_536, ge=1_024, le=16_777_216)
    #: Everything one firing's templates may build together (a list item counts as one):
    #: the memory bound of a firing.
    template_max_firing_chars: int = Field(default=1_048_576, ge=1_024, le=268_435_456)
    #: Bound (seconds) on recovering the runs of a whole worker that died (SIGKILL, host
    #: loss): its heartbeat goes stale after half of it, then the sweep fails the runs it
    #: was running ("worker lost") and republishes the ones it had prefetched. Independent
    #: of ``broker_visibility_timeout``, which stays longer than the longest job.
    worker_lost_after_seconds: float = Field(default=60.0, ge=4)

    @field_validator("imports", "queues", "namespaces", mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("agents")
    @classmethod
    def _agents_shape(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, conf in value.items():
            if not isinstance(conf.get("broker_url"), str) or not conf["broker_url"]:
                raise ValueError(f"agent {name!r} needs a broker_url")
            queues = conf.get("queues", [])
            if not isinstance(queues, list) or not all(isinstance(q, str) for q in queues):
                raise ValueError(f"agent {name!r}: queues must be a list of queue names")
        return value

    @field_validator("connections")
    @classmethod
    def _connections_shape(cls, value: dict[str, dict[str, Any]]
                           ) -> dict[str, dict[str, Any]]:
        for name, conf in value.items():
            conns.check(name, conf)
        return value

    @field_validator("events_tokens")
    @classmethod
    def _tokens_shape(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, conf in value.items():
            conns.check_token(name, conf)
        return value

    @field_validator("events_webhooks")
    @classmethod
    def _webhooks_shape(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, conf in value.items():
            conns.check_webhook(name, conf)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    # -- derived values -------------------------------------------------------------------

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def redis_socket(self) -> Path:
        return self.home.resolve() / "redis.sock"

    def resolved_redis_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        if not self.embedded:
            raise ValueError("TASKQ_REDIS_URL is not set and TASKQ_EMBEDDED=false")
        return f"unix://{self.redis_socket}"

    def broker_url(self) -> str:
        """Kombu spells a unix socket ``redis+socket://``; redis-py spells it ``unix://``."""
        url = self.broker or self.resolved_redis_url()
        if not url.startswith("unix://"):
            return url
        parts = urlsplit(url)
        query = []
        for key, value in parse_qsl(parts.query):
            query.append(("virtual_host" if key == "db" else key, value))
        auth = f":{parts.password}@" if parts.password else ""
        tail = f"?{urlencode(query)}" if query else ""
        return f"redis+socket://{auth}{parts.path}{tail}"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        if not self.embedded:
            raise ValueError("TASKQ_DATABASE_URL is not set and TASKQ_EMBEDDED=false")
        return f"sqlite:///{self.home.resolve() / 'taskq.db'}"

    @property
    def render_limits(self) -> RenderLimits:
        return RenderLimits(seconds=self.template_seconds,
                            value_chars=self.template_max_value_chars,
                            firing_chars=max(self.template_max_firing_chars,
                                             self.template_max_value_chars))

    def all_queues(self) -> list[str]:
        """Every queue to declare: the named ones, their namespaced twins, taskq's own."""
        base = [self.default_queue, *self.queues]
        names = [namespaced_queue(ns, q) for ns in self.namespaces for q in base]
        return list(dict.fromkeys([*base, *names, constants.TRIGGERS_QUEUE]))


_settings: Settings | None = None


def get_settings() -> Settings:
    """Process-wide settings, read once; ``configure`` replaces them (tests, Client)."""
    global _settings
    if _settings is None:
        _settings = Settings()
    return _settings


def configure(settings: Settings | None = None, **overrides: Any) -> Settings:
    global _settings
    base = settings or Settings()
    # Validate the overrides (model_copy would not), so "a,b" still becomes a list.
    _settings = Settings.model_validate({**base.model_dump(), **overrides}) if overrides else base
    return _settings
