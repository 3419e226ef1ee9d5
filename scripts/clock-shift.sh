#!/usr/bin/env bash
# The clock-shift run (`npm run test:clock-shift`, also in .ci/run): the suites and commands
# that hand dates to the travel sandbox, which refuses departed flights, run with every
# process's wall clock moved 400 days ahead by libfaketime. A fixture, bench, README command
# or demo that hard-codes a date instead of computing it from the clock fails here today
# rather than in CI on the day that date goes by.
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

# The suites, from scripts/clock-shift-suites.txt (comments and blank lines skipped). Extra
# arguments go to vitest (.ci/run passes its reporters).
mapfile -t suites < <(grep -v -e '^#' -e '^[[:space:]]*$' scripts/clock-shift-suites.txt)
start=$SECONDS
# test/e2e/demo.test.ts plays the whole demo through the CLI (`airlock demo`, what
# `npm run demo` runs), so the demo command is proved under the shifted clock there.
"${shifted[@]}" npx vitest run "${suites[@]}" "$@"
BENCH_RUNS=3 "${shifted[@]}" npm run --silent bench:saga
echo "clock-shift: passed in $((SECONDS - start)) s"
