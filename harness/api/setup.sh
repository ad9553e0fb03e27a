#!/usr/bin/env bash
# Sets up the API checkers from PyPI in venvs under ~/.cache/cassette (never in the git tree):
#
#   setup.sh validator   openapi-spec-validator (the OpenAPI test), venv api-validator-venv
#   setup.sh fuzz        schemathesis (scripts/api-fuzz), venv api-fuzz-venv
#
# Idempotent; prints the venv's python on stdout. Needs python3 with venv (apt install python3-venv).
set -euo pipefail
CACHE_DIR=${CASSETTE_CACHE_DIR:-$HOME/.cache/cassette}
case "${1:-}" in
  validator) VENV=$CACHE_DIR/api-validator-venv; SPEC='openapi-spec-validator>=0.7,<0.8'; MODULE=openapi_spec_validator ;;
  fuzz) VENV=$CACHE_DIR/api-fuzz-venv; SPEC='schemathesis>=4,<5'; MODULE=schemathesis ;;
  *) echo "usage: setup.sh validator|fuzz" >&2; exit 2 ;;
esac
if ! "$VENV/bin/python" -c "import $MODULE" 2>/dev/null; then
  mkdir -p "$CACHE_DIR"
  python3 -m venv "$VENV" >&2 || { echo "api setup: python3 -m venv failed: apt install python3-venv" >&2; exit 1; }
  "$VENV/bin/pip" install -q "$SPEC" >&2 || { echo "api setup: pip install $SPEC failed" >&2; exit 1; }
fi
echo "$VENV/bin/python"
