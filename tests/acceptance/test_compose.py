"""docker-compose.yml and the Dockerfile, checked for what a user relies on.

No Docker engine is needed: the files are parsed (YAML merge keys resolved, as Compose does)
and compared with taskq's own settings, so a renamed setting or a new queue without a
worker fails here instead of in someone's deployment.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from taskq import constants
from taskq.core.routing import namespaced_queue
from taskq.settings import Settings

pytestmark = pytest.mark.acceptance

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
#: Where the Dockerfile puts the project; compose paths under it map to ROOT.
IMAGE_WORKDIR = "/app"
#: TASKQ_* variables that are not Settings fields: the pointer to the TOML file.
NOT_FIELDS = {"TASKQ_CONFIG"}
#: ${VAR}, ${VAR:?message} or ${VAR?message}: a value taken from the environment with no
#: default (a default would be a literal credential in the file).
REQUIRED_ENV_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}$")
#: ${VAR:-default} / ${VAR-default}, resolved to the default the way Compose would.
ENV_REF_WITH_DEFAULT = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-)([^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE.open() as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict) and data.get("services"), "docker-compose.yml has no services"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def argv(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def option(args: list[str], short: str | None, long: str) -> str | None:
    """The value of ``-X value``, ``-Xvalue``, ``--long value`` or ``--long=value``."""
    for i, arg in enumerate(args):
        if arg == long or (short and arg == short):
            return args[i + 1] if i + 1 < len(args) else None
        if arg.startswith(f"{long}="):
            return arg.split("=", 1)[1]
        if short and arg.startswith(short) and len(arg) > len(short) and arg[1] != "-":
            return arg[len(short):]
    return None


def celery_subcommand(args: list[str]) -> str | None:
    """``worker``/``beat``/``flower``/... for a celery command line, else None."""
    if not args or Path(args[0]).name != "celery":
        return None
    skip_next = False
    for arg in args[1:]:
        if skip_next:
            skip_next = False
        elif arg in ("-A", "--app", "-b", "--broker", "--workdir", "--config"):
            skip_next = True
        elif not arg.startswith("-"):
            return arg
    return None


def of_kind(services: dict[str, dict[str, Any]], kind: str) -> dict[str, list[str]]:
    return {name: argv(svc) for name, svc in services.items()
            if celery_subcommand(argv(svc)) == kind}


def consumed_queues(services: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Queue name -> the worker services consuming it."""
    out: dict[str, list[str]] = {}
    for name, args in of_kind(services, "worker").items():
        queues = option(args, "-Q", "--queues")
        assert queues, f"worker service {name!r} has no -Q: it would consume only 'celery'"
        for queue in queues.split(","):
            out.setdefault(queue.strip(), []).append(name)
    return out


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def taskq_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items()
            if any(k.startswith("TASKQ_") for k in environment(svc))}


def interpolate_defaults(value: str) -> str:
    return ENV_REF_WITH_DEFAULT.sub(lambda m: m.group(3), value).replace("$$", "$")


@pytest.fixture(scope="module")
def deployed_settings(services: dict[str, dict[str, Any]]) -> Settings:
    """Settings as a worker container sees them: its TASKQ_* variables plus the TOML file
    that TASKQ_CONFIG names (a path in the image, mapped back onto this checkout)."""
    env = environment(services["evaluator"])
    config = env.get("TASKQ_CONFIG")
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("TASKQ_")]:
            mp.delenv(key)
        for key, value in env.items():
            if key.startswith("TASKQ_"):
                mp.setenv(key, interpolate_defaults(value))
        if config:
            assert config.startswith(f"{IMAGE_WORKDIR}/"), config
            local = ROOT / config.removeprefix(f"{IMAGE_WORKDIR}/")
            assert local.is_file(), f"TASKQ_CONFIG={config} but {local} does not exist"
            mp.setenv("TASKQ_CONFIG", str(local))
        return Settings()


def test_every_queue_has_a_worker(services, deployed_settings: Settings) -> None:
    consumers = consumed_queues(services)
    wanted = [*deployed_settings.queues, deployed_settings.default_queue,
              constants.TRIGGERS_QUEUE]
    missing = [q for q in wanted if q not in consumers]
    assert not missing, f"no compose service consumes {missing}; consumed: {sorted(consumers)}"


def test_every_example_job_queue_has_a_worker(services, deployed_settings: Settings) -> None:
    consumers = consumed_queues(services)
    assert deployed_settings.imports, "TASKQ_IMPORTS is empty: workers would run no jobs"
    jobs = []
    for module_name in deployed_settings.imports:
        module = importlib.import_module(module_name)
        jobs += [obj.taskq_job for obj in vars(module).values() if hasattr(obj, "taskq_job")]
    assert jobs, f"{deployed_settings.imports} define no @taskq.job"
    for job in jobs:
        queue = namespaced_queue(job.namespace, job.queue)
        assert queue in consumers, f"job {job.name!r} runs on {queue!r}, which no worker consumes"


def test_the_evaluator_has_room_for_its_loops_and_the_periodic_tasks(
        services, deployed_settings: Settings) -> None:
    slots = 0
    for name in consumed_queues(services)[constants.TRIGGERS_QUEUE]:
        concurrency = option(argv(services[name]), "-c", "--concurrency")
        assert concurrency, f"{name}: set -c explicitly (the default is the host's CPU count)"
        slots += int(concurrency)
    assert slots >= deployed_settings.evaluators + 1, (
        f"{slots} pool slots on {constants.TRIGGERS_QUEUE} for {deployed_settings.evaluators} "
        "evaluator loop(s): reconcile and relay would wait behind them")


def test_exactly_one_beat(services) -> None:
    beats = of_kind(services, "beat")
    assert len(beats) == 1, f"beat services: {sorted(beats)}"
    (name,) = beats
    replicas = services[name].get("deploy", {}).get("replicas", 1)
    assert replicas == 1
    schedule = option(beats[name], "-s", "--schedule")
    assert schedule, "beat needs -s on a volume, or it loses its schedule state on restart"
    mounts = [str(v).split(":")[1] for v in services[name].get("volumes", []) if ":" in str(v)]
    assert any(schedule.startswith(f"{m.rstrip('/')}/") for m in mounts), (schedule, mounts)


def test_flower_requires_basic_auth_from_the_environment(services) -> None:
    flowers = of_kind(services, "flower")
    assert flowers, "no flower service"
    for name, args in flowers.items():
        auth = option(args, None, "--basic-auth")
        assert auth, f"{name}: flower without --basic-auth is open to anyone"
        assert REQUIRED_ENV_REF.match(auth), (
            f"{name}: --basic-auth={auth!r} must be a ${{VAR}} reference without a default")
        assert services[name].get("ports"), f"{name}: port not published"


def test_every_celery_command_uses_the_taskq_app(services) -> None:
    celery = {name: argv(svc) for name, svc in services.items()
              if argv(svc) and Path(argv(svc)[0]).name == "celery"}
    assert set(of_kind(services, "worker")) | set(of_kind(services, "beat")) <= set(celery)
    for name, args in celery.items():
        assert option(args, "-A", "--app") == "taskq.app", f"{name}: {shlex.join(args)}"


def test_migrate_runs_first(services) -> None:
    assert argv(services["migrate"]) == ["taskq", "db", "upgrade"]
    assert str(services["migrate"].get("restart", "no")) == "no"
    dependants = {**of_kind(services, "worker"), **of_kind(services, "beat"),
                  **of_kind(services, "flower")}
    for name in dependants:
        depends = services[name].get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        assert depends.get("migrate", {}).get("condition") == "service_completed_successfully", (
            f"{name} may start before the schema exists")
        assert depends.get("redis", {}).get("condition") == "service_healthy", name


def test_redis_persists_with_aof(services) -> None:
    args = argv(services["redis"])
    assert option(args, None, "--appendonly") == "yes", shlex.join(args)
    assert services["redis"].get("volumes"), "redis data must be on a volume"


def test_compose_variables_are_real_settings(services) -> None:
    seen = set()
    for name, svc in taskq_services(services).items():
        for key in environment(svc):
            if not key.startswith("TASKQ_") or key in NOT_FIELDS:
                continue
            seen.add(key)
            field = key.removeprefix("TASKQ_").lower()
            assert field in Settings.model_fields, (
                f"{name}: {key} is not a setting (taskq silently ignores it)")
    assert {"TASKQ_REDIS_URL", "TASKQ_DATABASE_URL"} <= seen, (
        "without them every container would start its own embedded Redis and SQLite")


def test_dockerfile_variables_are_real_settings() -> None:
    text = DOCKERFILE.read_text()
    for key in set(re.findall(r"\b(TASKQ_[A-Z0-9_]+)=", text)) - NOT_FIELDS:
        assert key.removeprefix("TASKQ_").lower() in Settings.model_fields, key
    assert re.search(r"^USER\s+(?!root\b|0\b)\S+", text, re.M), "the image must not run as root"
