#!/usr/bin/env bash
# Sets up what the dashboard's browser test needs: Playwright (PyPI) in a venv under
# ~/.cache/cassette, driving Debian's chromium (apt install chromium). Idempotent; prints the
# venv's python on stdout.
set -euo pipefail
VENV=${CASSETTE_BROWSER_VENV:-$HOME/.cache/cassette/playwright-venv}
CHROMIUM=${CASSETTE_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ]; then
  echo "browser setup: no chromium on this machine: apt install chromium" >&2
  exit 1
fi
if ! "$VENV/bin/python" -c "import playwright" 2>/dev/null; then
  python3 -m venv "$VENV" >&2 || { echo "browser setup: python3 -m venv failed: apt install python3-venv" >&2; exit 1; }
  "$VENV/bin/pip" install -q 'playwright>=1.40' >&2
fi
echo "$VENV/bin/python"
