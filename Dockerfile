# One image for every process: `booking api` (default), `booking worker`,
# `booking scheduler`, `booking migrate`. Build: docker build -t booking-backend:local .

# --- build: install the package and its dependencies into a virtualenv -------------------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"

WORKDIR /src
COPY . .
# Every dependency ships manylinux wheels, so no compiler is needed.
RUN pip install --no-cache-dir . \
    && booking --help > /dev/null

# --- runtime ------------------------------------------------------------------------------
FROM python:3.11-slim

ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Fixed uid/gid so Kubernetes can check runAsNonRoot (securityContext.runAsUser: 10001).
# /app is the working directory and HOME: the only place the app may write
# (Celery beat's schedule file). In Kubernetes it is an emptyDir over a read-only root.
RUN groupadd --system --gid 10001 booking \
    && useradd --system --uid 10001 --gid booking --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin booking \
    && mkdir -p /app \
    && chown booking:booking /app

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /app

EXPOSE 8000

# No HEALTHCHECK here: the same image runs workers and the scheduler, which serve no HTTP.
# docker-compose.yml and the Kubernetes probes check GET /health/ready on the API only.
CMD ["booking", "api", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
