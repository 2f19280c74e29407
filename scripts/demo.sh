#!/usr/bin/env bash
# Installs Mailwright and starts a demo server: embedded store, self-signed TLS, domain
# example.test, a demo user whose password is printed, every listener on 127.0.0.1 ports 10000+.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m pip install -q .
exec python3 -m mailwright demo "$@"
