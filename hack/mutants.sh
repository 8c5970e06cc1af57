#!/usr/bin/env bash
# Mutation testing of the safety-critical code with cargo-mutants: each mutant (a changed operator,
# a function body replaced by a default, a negated condition) is built and the tests that cover
# that code are run; a mutant the tests do not catch is a protection no test checks.
# Not part of CI: on a 2-core machine one mutant costs an incremental build plus its tests.
#
#   hack/mutants.sh AREA [AREA...]     AREA: record planner engine executor authn authz handler
#   MUTANTS_JOBS=2 hack/mutants.sh planner
#   MUTANTS_IN_PLACE=1 hack/mutants.sh record   # mutate this tree and reuse ./target (one job;
#                                               # do not edit or interrupt meanwhile)
#   MUTANTS_QUICK=1 hack/mutants.sh authz       # the product crate's tests only, for any area
#   MUTANTS_ITERATE=1 hack/mutants.sh record    # test again only what the last run did not catch
#
# Areas and the tests run for their mutants (the first failing test stops a run, via nextest):
#   record, planner        the product crate's unit tests and the planner binary (pure code)
#   engine, executor       the above (whole retries of recorded runs against an in-memory API)
#                          plus the sandbox retries: tests/engine (engine_sandbox,
#                          engine_tekton_cases, records_security, recorder_sandbox, hardening_faults)
#   authn, authz, handler  the product crate's unit tests plus the server binary (tests/server)
# With MUTANTS_QUICK=1 every area runs the product crate's tests only: seconds a mutant instead of
# minutes; the numbers in docs/testing.md were measured that way.
#
# Results go to mutants.out/<area>/ (outcomes.json, caught.txt, missed.txt, timeout.txt,
# unviable.txt); docs/testing.md holds the last report and explains each missed mutant that is
# equivalent to the original.
set -euo pipefail
cd "$(dirname "$0")/.."
# No debug info: a mutant's build links several test binaries, and nobody debugs a mutant.
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-0}"

if ! command -v cargo-mutants >/dev/null; then
  cargo install --locked cargo-mutants
fi
if ! command -v cargo-nextest >/dev/null; then
  cargo install --locked cargo-nextest
fi
[ $# -gt 0 ] || { sed -n '6,25p' "$0"; exit 2; }

jobs="${MUTANTS_JOBS:-1}"
place=(--jobs "$jobs")
[ "${MUTANTS_IN_PLACE:-}" = 1 ] && place=(--in-place)
[ "${MUTANTS_ITERATE:-}" = 1 ] && place+=(--iterate)
src=crates/tekton-retry/src
for area in "$@"; do
  extra=()
  case "$area" in
    record)   files=("$src/retry/record/*.rs") ;;
    planner)  files=("$src/retry/planner/*.rs" "$src/retry/plan.rs") ;;
    engine)   files=("$src/retry/engine.rs"); extra=(--test-package tekton-retry-cli) ;;
    executor) files=("$src/retry/executor.rs" "$src/retry/tracked.rs"); extra=(--test-package tekton-retry-cli) ;;
    authn)    files=("$src/server/authn.rs" "$src/server/token_cache.rs"); extra=(--test-package tekton-retry-cli) ;;
    authz)    files=("$src/server/authz.rs"); extra=(--test-package tekton-retry-cli) ;;
    handler)  files=("$src/server/handler.rs" "$src/server/routes.rs"); extra=(--test-package tekton-retry-cli) ;;
    *) echo "unknown area: $area" >&2; exit 2 ;;
  esac
  select=(-p tekton-retry)
  for f in "${files[@]}"; do select+=(-f "$f"); done
  mkdir -p "mutants.out/$area"
  args=("${select[@]}" "${place[@]}" --test-tool nextest --timeout-multiplier 3
        --output "mutants.out/$area")
  # With --test-package the product crate's own tests run too (unit tests, planner binary).
  if [ ${#extra[@]} -gt 0 ] && [ "${MUTANTS_QUICK:-}" != 1 ]; then
    args+=("${extra[@]}" --test-package tekton-retry)
  fi
  list="mutants.out/$area/list.txt"
  cargo mutants --list "${select[@]}" 2>/dev/null > "$list" || true
  echo "== $area: $(wc -l < "$list") mutants"
  # The tally of caught and unviable mutants: a full run starts it over, an iteration (which tests
  # only what was not caught) adds to it.
  tally="mutants.out/$area"
  if [ "${MUTANTS_ITERATE:-}" != 1 ]; then
    rm -f "$tally/caught-all.txt" "$tally/unviable-all.txt"
  fi
  cargo mutants "${args[@]}" || true
  out="mutants.out/$area/mutants.out"
  count() { cat "$@" 2>/dev/null | wc -l; }
  for kind in caught unviable; do
    cat "$tally/$kind-all.txt" "$out/$kind.txt" 2>/dev/null | sort -u > "$tally/$kind-all.new" || true
    mv "$tally/$kind-all.new" "$tally/$kind-all.txt"
  done
  # Only mutants of this tree count (a line moved since an earlier run is a new mutant).
  caught=$(grep -cFxf "$tally/caught-all.txt" "$list" || true)
  unviable=$(grep -cFxf "$tally/unviable-all.txt" "$list" || true)
  missed=$(count "$out/missed.txt")
  timeout=$(count "$out/timeout.txt")
  printf '%-9s %s\n' caught "$caught" missed "$missed" timeout "$timeout" unviable "$unviable"
  viable=$((caught + missed + timeout))
  if [ "$viable" -gt 0 ]; then
    echo "caught / viable: $((100 * caught / viable)) %"
  fi
done
