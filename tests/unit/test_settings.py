"""Settings: TASKQ_* environment over an optional TOML file, and the derived URLs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskq.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """tests/conftest.py exports TASKQ_REDIS_URL and TASKQ_HOME; start from nothing, in a
    directory without config/taskq.toml."""
    for name in list(os.environ):
        if name.startswith("TASKQ_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield


def test_defaults_without_env_or_file() -> None:
    s = Settings()
    assert s.redis_url is None
    assert s.database_url is None
    assert s.imports == []
    assert s.namespaces == ["default"]
    assert s.default_queue == "default"
    assert s.embedded_redis


def test_comma_separated_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKQ_IMPORTS", "workers.examples, my.jobs,,")
    monkeypatch.setenv("TASKQ_NAMESPACES", "default,team-a")
    monkeypatch.setenv("TASKQ_QUEUES", "train")
    s = Settings()
    assert s.imports == ["workers.examples", "my.jobs"]
    assert s.namespaces == ["default", "team-a"]
    assert s.queues == ["train"]


def test_scalar_env_vars_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKQ_EVALUATORS", "4")
    monkeypatch.setenv("TASKQ_RELAY_GRACE_SECONDS", "0.25")
    monkeypatch.setenv("TASKQ_HOME", "/srv/taskq")
    s = Settings()
    assert s.evaluators == 4
    assert s.relay_grace_seconds == 0.25
    assert s.home == Path("/srv/taskq")


def _write_toml(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def test_toml_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = _write_toml(tmp_path / "taskq.toml", "[taskq]\n"
                       'default_queue = "fromfile"\nevaluators = 3\nimports = ["a.b"]\n')
    monkeypatch.setenv("TASKQ_CONFIG", str(path))
    s = Settings()
    assert s.default_queue == "fromfile"
    assert s.evaluators == 3
    assert s.imports == ["a.b"]


def test_unknown_key_in_toml_is_refused_by_name(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """A misspelled setting must not be silently ignored."""
    path = _write_toml(tmp_path / "taskq.toml", "[taskq]\nevaluator = 3\n")
    monkeypatch.setenv("TASKQ_CONFIG", str(path))
    with pytest.raises(ValueError, match=r"unknown setting.*evaluator;"):
        Settings()


def test_embedded_false_refuses_missing_urls() -> None:
    s = Settings(embedded=False)
    with pytest.raises(ValueError, match="TASKQ_REDIS_URL is not set"):
        s.resolved_redis_url()
    with pytest.raises(ValueError, match="TASKQ_DATABASE_URL is not set"):
        s.resolved_database_url()


def test_namespaced_queues_are_declared() -> None:
    """Flower and the broker know a tenant's queues even before its workers start."""
    s = Settings(namespaces=["default", "team-a"], queues=["train"])
    assert set(s.all_queues()) == {"default", "train", "team-a--default", "team-a--train",
                                   "taskq.triggers"}


def test_env_overrides_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One file for all services, overridden per container by environment."""
    path = _write_toml(tmp_path / "taskq.toml", "[taskq]\n"
                       'default_queue = "fromfile"\nevaluators = 3\nimports = "x,y"\n')
    monkeypatch.setenv("TASKQ_CONFIG", str(path))
    monkeypatch.setenv("TASKQ_EVALUATORS", "7")
    monkeypatch.setenv("TASKQ_IMPORTS", "from.env")
    s = Settings()
    assert s.evaluators == 7
    assert s.imports == ["from.env"]
    assert s.default_queue == "fromfile"


def test_toml_top_level_without_section(monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    path = _write_toml(tmp_path / "flat.toml", 'default_queue = "flat"\n')
    monkeypatch.setenv("TASKQ_CONFIG", str(path))
    assert Settings().default_queue == "flat"


def test_default_config_file_in_working_directory(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    _write_toml(tmp_path / "config" / "taskq.toml", '[taskq]\ndefault_queue = "cwd"\n')
    assert Settings().default_queue == "cwd"


def test_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """An explicit TASKQ_CONFIG that points nowhere is a typo, not "use the defaults"."""
    missing = tmp_path / "nope.toml"
    monkeypatch.setenv("TASKQ_CONFIG", str(missing))
    with pytest.raises(FileNotFoundError) as info:
        Settings()
    assert "TASKQ_CONFIG" in str(info.value)
    assert str(missing) in str(info.value)


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValueError, match="frozen"):
        s.default_queue = "other"  # type: ignore[misc]


@pytest.mark.parametrize(("redis_url", "broker"), [
    ("unix:///x/redis.sock?db=3", "redis+socket:///x/redis.sock?virtual_host=3"),
    ("unix:///x/redis.sock", "redis+socket:///x/redis.sock"),
    ("redis://h:6379/2", "redis://h:6379/2"),
    ("rediss://h:6380/0", "rediss://h:6380/0"),
])
def test_broker_url(monkeypatch: pytest.MonkeyPatch, redis_url: str, broker: str) -> None:
    """Kombu and redis-py spell unix sockets differently; both must reach the same DB."""
    monkeypatch.setenv("TASKQ_REDIS_URL", redis_url)
    s = Settings()
    assert s.resolved_redis_url() == redis_url
    assert s.broker_url() == broker


def test_embedded_urls_point_into_home(monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    home = tmp_path / "h"
    monkeypatch.setenv("TASKQ_HOME", str(home))
    s = Settings()
    sock = home.resolve() / "redis.sock"
    assert s.embedded_redis
    assert s.redis_socket == sock
    assert s.resolved_redis_url() == f"unix://{sock}"
    assert s.broker_url() == f"redis+socket://{sock}"
    assert s.resolved_database_url() == f"sqlite:///{home.resolve() / 'taskq.db'}"


def test_relative_home_resolves_against_working_directory(tmp_path: Path) -> None:
    s = Settings()
    assert s.resolved_database_url() == f"sqlite:///{tmp_path.resolve() / '.taskq' / 'taskq.db'}"


def test_explicit_database_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKQ_DATABASE_URL", "postgresql://u@h/db")
    assert Settings().resolved_database_url() == "postgresql://u@h/db"


def test_all_queues_dedups_and_includes_triggers_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKQ_QUEUES", "train,default,train")
    assert Settings().all_queues() == ["default", "train", "taskq.triggers"]


def test_broker_url_keeps_password_and_db_of_a_unix_socket() -> None:
    """Celery and redis-py must talk to the same database with the same credentials."""
    s = Settings(redis_url="unix://:pw@/x/redis.sock?db=3")
    assert s.broker_url() == "redis+socket://:pw@/x/redis.sock?virtual_host=3"


def test_configure_validates_overrides() -> None:
    from taskq.settings import configure

    assert configure(Settings(), imports="a, b").imports == ["a", "b"]
