#!/usr/bin/env bash
# Install a hash-pinned lock file and this project (editable) into a virtual environment:
#   tools/install-deps.sh .venv requirements-dev.lock
# With uv (seconds; the first `make dev` spends most of its time here) when it can be had, else with pip. Both
# install exactly the lock, every file checked against its hash. INSTALLER=pip skips uv.
set -euo pipefail
venv=$1
lock=$2
py=$venv/bin/python

pip_config() { "$py" -m pip config get "global.$1" 2>/dev/null || true; }

with_uv() {
  local uv
  uv=$(command -v uv || true)
  if [ -z "$uv" ]; then
    "$py" -m pip install --quiet "uv==${UV_VERSION:-0.13.9}" || return 1
    uv=$venv/bin/uv
  fi
  # uv reads no pip.conf: it gets the package sources pip is configured with (a mirror, extra indexes,
  # local wheel folders, a proxy's CA). pip picks the best match over all indexes; uv stops at the first
  # index that knows a package unless told otherwise, which would miss pins only the other one serves.
  # Every file is checked against the lock's hashes, so no index can slip in another package.
  local index extra links
  local -a env=()
  index=${UV_DEFAULT_INDEX:-${PIP_INDEX_URL:-$(pip_config index-url)}}
  extra=${UV_INDEX:-${PIP_EXTRA_INDEX_URL:-$(pip_config extra-index-url)}}
  links=${UV_FIND_LINKS:-${PIP_FIND_LINKS:-$(pip_config find-links)}}
  [ -n "$index" ] && env+=("UV_DEFAULT_INDEX=$index")
  [ -n "$extra" ] && env+=("UV_INDEX=$extra" "UV_INDEX_STRATEGY=${UV_INDEX_STRATEGY:-unsafe-best-match}")
  [ -n "$links" ] && env+=("UV_FIND_LINKS=${links// /,}")
  [ -n "${PIP_CERT:-}" ] && env+=("SSL_CERT_FILE=$PIP_CERT")
  env ${env[@]+"${env[@]}"} "$uv" pip install --quiet --python "$py" --require-hashes -r "$lock" &&
    env ${env[@]+"${env[@]}"} "$uv" pip install --quiet --python "$py" --no-deps --no-build-isolation -e .
}

if [ "${INSTALLER:-uv}" = uv ]; then
  if with_uv; then
    exit 0
  fi
  echo "uv could not install $lock: installing with pip instead" >&2
fi
"$py" -m pip install --quiet --upgrade pip
"$py" -m pip install --quiet --require-hashes -r "$lock"
"$py" -m pip install --quiet --no-deps --no-build-isolation -e .
