# Headless CRM: production image.
#
#   docker build -t headless-crm .
#   docker run --rm -e CRM_DATABASE_URL=... -e CRM_REDIS_URL=... -e CRM_JWT_SECRET=... headless-crm migrate
#   docker run -d -p 8000:8000 -e ... headless-crm              # API (crm serve)
#   docker run -d -e ... headless-crm worker                    # background worker (crm worker)
#
# Settings come from CRM_* environment variables (see app/settings.py); never bake secrets into the image.

# ---------------------------------------------------------------------------------------------------------
# builder: compilers + a virtualenv in /opt/venv built from the hash-pinned lock file
# ---------------------------------------------------------------------------------------------------------
# Both stages must use the same image: the venv's python is a symlink to /usr/local/bin/python3.11 of the
# base image. The tag is written out (not an ARG) so that hadolint and update bots can read it.
FROM python:3.11.16-slim-bookworm AS builder

# gcc/libc6-dev only matter if some locked dependency has no wheel for the target platform; they never
# reach the runtime stage. DL3008 (pin apt versions) is ignored on purpose: Debian security updates remove
# the superseded versions from the archive, so exact pins would break the build; the compilers are
# build-only and every Python dependency is pinned by hash.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when requirements.lock changes.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock

# The package itself. Editable on purpose: app/migrate.py finds alembic.ini and migrations/ next to the
# app/ package (Path(__file__).parent.parent), so the code must be run from /app, where those live, and not
# from a copy in site-packages. --no-build-isolation builds with the setuptools pinned in the lock file
# instead of fetching an unpinned one.
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e .

# ---------------------------------------------------------------------------------------------------------
# runtime: the venv and the application files, no compilers, non-root
# ---------------------------------------------------------------------------------------------------------
FROM python:3.11.16-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="headless-crm" \
      org.opencontainers.image.description="A headless CRM: a typed JSON API for contacts, companies, leads, deals and the work around them." \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CRM_HOST=0.0.0.0 \
    CRM_PORT=8000 \
    CRM_DATA_DIR=/var/lib/crm

# Fixed uid/gid so volume ownership and Kubernetes runAsUser are predictable. The data dir is the only
# place the app may write; the code and the venv stay root-owned and read-only for it.
RUN groupadd --gid 10001 crm \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/crm --shell /usr/sbin/nologin crm \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/crm

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY pyproject.toml README.md alembic.ini requirements.lock ./
COPY migrations ./migrations
COPY app ./app
# Byte-compile once at build time: at run time the code is read-only and PYTHONDONTWRITEBYTECODE is set.
RUN python -m compileall -q app migrations

USER 10001:10001

EXPOSE 8000

# No curl in slim: ask /healthz with urllib. Only a container running `crm serve` has an HTTP server, so a
# `worker` or `migrate` container reports healthy here instead of being killed as unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; b'serve' in open('/proc/1/cmdline', 'rb').read().split(bytes(1)) or sys.exit(0); r = urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CRM_PORT', '8000'), timeout=4); sys.exit(0 if r.status == 200 else 1)"]

ENTRYPOINT ["crm"]
CMD ["serve"]
