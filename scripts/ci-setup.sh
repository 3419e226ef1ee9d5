#!/usr/bin/env bash
# Machine setup CI needs beyond npm, from Debian's packages: faketime, which the clock-shift
# run (scripts/clock-shift.sh) uses to move every process's clock, and chromium, the browser
# the console's end-to-end test drives with playwright-core (test/console/browser.test.ts;
# playwright's own browser download cannot work here). Idempotent; run as root or with sudo
# available.
set -euo pipefail
missing=()
command -v faketime >/dev/null || missing+=(faketime)
command -v chromium >/dev/null || missing+=(chromium)
if [ "${#missing[@]}" -eq 0 ]; then
  echo "ci-setup: faketime and chromium already installed ($(command -v faketime), $(command -v chromium))"
  exit 0
fi
sudo=''
[ "$(id -u)" -eq 0 ] || sudo='sudo'
echo "ci-setup: installing ${missing[*]} (apt-get update && apt-get install -y ${missing[*]})"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
command -v faketime
command -v chromium
