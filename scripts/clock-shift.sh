#!/usr/bin/env bash
# The clock-shift run (`npm run test:clock-shift`, also in .ci/run): the suites and commands
# that hand dates to the travel sandbox, which refuses departed flights, run with every
# process's wall clock moved 400 days ahead by libfaketime. A fixture, bench, README command
# or demo that hard-codes a date instead of computing it from the clock fails here today
# rather than in CI on the day that date goes by. `npm run demo` runs as the command itself,
# so test/e2e/demo.test.ts (the same story, plus failure reporting) is not repeated here.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v faketime >/dev/null; then
  echo "clock-shift: faketime is missing (scripts/ci-setup.sh installs it; Debian/Ubuntu: apt-get install faketime, macOS: brew install libfaketime)" >&2
  exit 1
fi

# Only the wall clock moves: timers and timeouts keep running on the real monotonic clock.
shifted=(faketime -f '+400d')
export FAKETIME_DONT_FAKE_MONOTONIC=1

# faketime is an LD_PRELOAD library: where it cannot attach (a static binary, a stripped
# environment) it silently changes nothing, and this run would prove nothing.
now=$(node -p 'Date.now()')
ahead=$("${shifted[@]}" node -p 'Date.now()')
if (((ahead - now) / 86400000 < 399)); then
  echo "clock-shift: faketime did not move node's clock (got $(node -p "new Date($ahead).toISOString()"))" >&2
  exit 1
fi
echo "clock-shift: running with the clock at $("${shifted[@]}" node -p 'new Date().toISOString()')"

home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
start=$SECONDS
"${shifted[@]}" npx vitest run \
  test/saga \
  test/steps \
  test/tools/travel.test.ts \
  test/e2e/readme.test.ts \
  test/e2e/cli-dev.test.ts
mkdir "$home/demo"
AIRLOCK_HOME="$home/demo" "${shifted[@]}" npm run --silent demo >"$home/demo.log" 2>&1 || {
  cat "$home/demo.log" >&2
  echo "clock-shift: npm run demo failed" >&2
  exit 1
}
echo "clock-shift: npm run demo: $(grep -m1 'Summary:' "$home/demo.log")"
BENCH_RUNS=3 "${shifted[@]}" npm run --silent bench:saga
echo "clock-shift: passed in $((SECONDS - start)) s"
