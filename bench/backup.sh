#!/usr/bin/env bash
# The backup part of bench/run.sh alone (issue 3); see bench/run.sh for options and the method.
exec env BENCH_RESTORE=0 "$(dirname "${BASH_SOURCE[0]}")/run.sh" "$@"
