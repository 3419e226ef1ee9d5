#!/usr/bin/env bash
# Machine setup CI needs beyond npm: Debian's faketime, which the clock-shift run
# (scripts/clock-shift.sh) uses to move every process's clock. Idempotent; run as root or
# with sudo available.
set -euo pipefail
if command -v faketime >/dev/null; then
  echo "ci-setup: faketime already installed ($(command -v faketime))"
  exit 0
fi
sudo=''
[ "$(id -u)" -eq 0 ] || sudo='sudo'
echo "ci-setup: installing faketime (apt-get update && apt-get install -y faketime)"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime
command -v faketime
