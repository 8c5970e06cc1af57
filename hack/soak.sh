#!/usr/bin/env bash
# A 10-minute mixed-traffic soak of tekton-retry on the in-process sandbox.
# Not part of CI. Everything listens on 127.0.0.1 only and every loop stops at the deadline.
#
#   hack/soak.sh                 # 10 minutes, 6 workers
#   SOAK_SECONDS=120 SOAK_WORKERS=4 hack/soak.sh
#
# It runs the ignored test `tests/engine/hardening_soak.rs::mixed_traffic_soak`: each worker creates a
# run that fails, then sends a dry run, a malformed body, a forbidden retry, three racing
# retries and a retry of the succeeded run, reads discovery, and deletes the run. It fails on any
# 5xx or unexpected answer, or if resident memory in the second half is not flat: the last sample
# may exceed the half-way sample by at most a quarter plus 32 MiB (the rule is the test's; this
# text only repeats it). A line with RSS and the answer count is printed every 15 s.
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_SECONDS="${SOAK_SECONDS:-600}"
export SOAK_WORKERS="${SOAK_WORKERS:-6}"
echo "soak: ${SOAK_SECONDS}s with ${SOAK_WORKERS} workers (loopback only)"
exec cargo test --locked --test engine -- --ignored --nocapture --test-threads 1 hardening_soak::mixed_traffic_soak
