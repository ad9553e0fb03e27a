#!/usr/bin/env bash
# Sets up what the dashboard's browser test needs: Debian's chromium (installed with apt-get when
# missing) and Playwright (PyPI) in a venv under ~/.cache/cassette, which drives it. Idempotent;
# prints the venv's python on stdout, everything else on stderr.
set -euo pipefail
VENV=${CASSETTE_BROWSER_VENV:-$HOME/.cache/cassette/playwright-venv}

# apt-get as root, or through passwordless sudo; otherwise say what to install.
apt_install() {
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo -n); else
      echo "browser setup: $* is missing and this user cannot install it: run 'apt-get install $*' as root" >&2
      exit 1
    fi
  fi
  command -v apt-get >/dev/null || { echo "browser setup: no apt-get here: install $* by hand" >&2; exit 1; }
  echo "browser setup: installing $* with apt-get" >&2
  "${sudo[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >&2
}

find_chromium() { echo "${CASSETTE_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"; }
[ -n "$(find_chromium)" ] || apt_install chromium
[ -n "$(find_chromium)" ] || { echo "browser setup: chromium is still missing after apt-get install chromium" >&2; exit 1; }

if ! "$VENV/bin/python" -c "import playwright" 2>/dev/null; then
  python3 -c "import ensurepip" 2>/dev/null || apt_install python3-venv
  python3 -m venv "$VENV" >&2 || { echo "browser setup: python3 -m venv failed: apt-get install python3-venv" >&2; exit 1; }
  "$VENV/bin/pip" install -q 'playwright>=1.40' >&2
fi
echo "$VENV/bin/python"
