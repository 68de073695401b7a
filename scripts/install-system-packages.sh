#!/usr/bin/env bash
# Install the system packages the tests and benchmarks use that pip cannot provide: SoftHSM2, the
# software HSM the PKCS#11 key store is tested against, and nginx, the baseline of the file
# benchmarks (bench/). Idempotent, and quick when both are present. Without root it only says what
# to install and succeeds, so the tests that need it skip with that reason (under CI=true they
# fail) and the file benchmarks fail saying to run this script.
set -euo pipefail

missing=()
if ! command -v softhsm2-util >/dev/null 2>&1; then
  missing+=(softhsm2)
fi
# /usr/sbin is not on every user's PATH; the benchmarks look there too.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  missing+=(nginx)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-packages: ${missing[*]} missing; install as root:" >&2
  echo "  apt-get install ${missing[*]}   (Debian/Ubuntu; or your system's packages)" >&2
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-packages: no apt-get here; install ${missing[*]} yourself" >&2
  exit 0
fi

echo "install-system-packages: installing ${missing[*]}"
apt-get update -qq
# RUNLEVEL=1: invoke-rc.d then starts no service, so installing nginx never takes port 80.
RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
  >/dev/null
for package in "${missing[@]}"; do
  case "$package" in
    softhsm2) softhsm2-util --version >/dev/null ;;
    # The benchmarks run their own nginx (bench/nginx.py); none needs the system service.
    nginx) PATH="$PATH:/usr/sbin" nginx -v 2>/dev/null ;;
  esac
done
