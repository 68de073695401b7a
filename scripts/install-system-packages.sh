#!/usr/bin/env bash
# Install the system packages the tests use that pip cannot provide: SoftHSM2, the software HSM
# the PKCS#11 key store is tested against. Idempotent. Without root it only says what to install
# and succeeds, so the tests that need it skip with that reason (under CI=true they fail).
set -euo pipefail

if command -v softhsm2-util >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-packages: softhsm2 is missing; install it as root:" >&2
  echo "  apt-get install softhsm2   (Debian/Ubuntu; or your system's softhsm package)" >&2
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-packages: no apt-get here; install SoftHSM2 (softhsm2-util) yourself" >&2
  exit 0
fi

echo "install-system-packages: installing softhsm2"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends softhsm2 >/dev/null
softhsm2-util --version >/dev/null
