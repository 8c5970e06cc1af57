#!/usr/bin/env bash
# Hostile traffic against a real `tekton-retry serve` process, printing the peak resident memory
# (VmHWM) of the server under each attack. Not part of CI. Loopback only; each attack runs against
# a fresh server whose Kubernetes API is an in-process fake.
#
#   hack/hostile.sh
#
# The attacks (tests/server/hardening_hostile.rs):
#   1. 1,000 TLS connections presenting a ~60 KB client certificate and sending nothing;
#   2. 300 requests, each with a distinct 1 MB bearer token (30 at a time);
#   3. 100 HTTP/1 connections each trickling a 1.9 MB request head that never ends.
# The goal is a peak of at most 64 MiB under each.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --test server hardening_hostile -- --ignored --nocapture --test-threads 1 2>&1 |
  grep -E '^hostile:|test result|panicked|FAILED'
