# One image for every process: `booking api` (default), `booking worker`,
# `booking scheduler`, `booking migrate`. Build: docker build -t booking-backend:local .

# --- build: install exactly what uv.lock pins into a virtualenv ----------------------------
FROM python:3.11-slim AS build

# The same uv release as .ci/run; the lock's format belongs to it.
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1

RUN pip install "uv==${UV_VERSION}"
ENV PATH="/opt/venv/bin:$PATH"

WORKDIR /src
# Dependencies first, from the lock alone, so code changes reuse this layer.
# --frozen: install what uv.lock says, never re-resolve (CI checks the lock is current).
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
# Then the project itself, as a regular (not editable) install, so /src is not needed later.
# Every dependency ships manylinux wheels, so no compiler is needed.
COPY . .
RUN uv sync --frozen --no-dev --no-editable \
    && booking --help > /dev/null

# --- runtime ------------------------------------------------------------------------------
FROM python:3.11-slim

ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Fixed uid/gid so Kubernetes can check runAsNonRoot (securityContext.runAsUser: 10001).
# /app is the working directory and HOME; the app writes nothing there. Its only files are
# under /tmp: the heartbeat file the liveness probe reads (HEARTBEAT_FILE) and, for the API's
# processes, Prometheus' multiprocess files. Celery beat keeps its schedule in memory and
# writes no file. In Kubernetes /tmp is an emptyDir over a read-only root filesystem.
RUN groupadd --system --gid 10001 booking \
    && useradd --system --uid 10001 --gid booking --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin booking \
    && mkdir -p /app \
    && chown booking:booking /app

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /app

EXPOSE 8000

# No HEALTHCHECK here: the same image runs the API, workers and the scheduler, which need
# different checks. docker-compose.yml and the Kubernetes probes check GET /health/ready on
# the API and `booking probe` (the heartbeat file's age) on workers and the scheduler.
CMD ["booking", "api", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
