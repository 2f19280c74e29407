#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine (as root), then runs lint
# (ruff), type checks (mypy) and the whole pytest suite, on SQLite and on PostgreSQL.
# docs/development.md says how this is checked on a machine that never saw the project
# (scripts/clean-debian-check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# --- Debian packages: real peers for the interop tests -------------------------------------------
# One package a line (keeps parallel additions easy to merge). --no-install-recommends below:
# what a test needs from a Recommends is listed here itself.
pkgs=(
  swaks
  libnet-ssleay-perl  # swaks's STARTTLS/TLS (only a Recommends of swaks)
  fetchmail
  isync               # mbsync
  haproxy
  procps
  iproute2            # ip netns: the outbound journey between network namespaces
  openssl             # the openssl command: TLS interop tests
  opendkim
  opendkim-tools
  dovecot-imapd       # the oracle of the corpus tests (tests/corpus/oracle.py)
  dovecot-pop3d
  git
  gcc                 # the power-loss test builds its LD_PRELOAD fsync tracer
  libc6-dev
  spamassassin        # the spam filter's external-engine tests and bench.spam
  spamd
  spamc
  rspamd
  redis-server        # rspamd's statistics backend in those tests
  dovecot-sieve       # Pigeonhole's sieve-test: the oracle of tests/sieve/test_differential.py
  sieve-connect       # a real ManageSieve client (tests/sieve/test_managesieve_socket.py)
  pebble              # Let's Encrypt's ACME test CA (tests/acme)
  unbound             # a real validating resolver for [dns] dnssec = "trust-ad" (tests/transport)
  chromium            # the web interface's browser tests (Playwright drives it: tests/support/browser.py)
)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ! command -v psql >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- PostgreSQL: trust on loopback (throwaway test server), start it if not running ------------
if [ "$(id -u)" = 0 ] && ls /etc/postgresql/*/main >/dev/null 2>&1; then
  ver=$(ls /etc/postgresql | sort -V | tail -n1)
  hba=/etc/postgresql/$ver/main/pg_hba.conf
  if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main reload 2>/dev/null || true
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
fi
# Every store test runs on both backends: without PostgreSQL the run stops here, it does not
# quietly test SQLite alone (MAILWRIGHT_TEST_POSTGRES=0 says so on purpose).
if [ "${MAILWRIGHT_TEST_POSTGRES:-1}" != 0 ]; then
  if ! command -v pg_isready >/dev/null 2>&1 || ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "test.sh: PostgreSQL is not answering on 127.0.0.1:5432 (run as root to have it" \
         "installed and started, or set MAILWRIGHT_TEST_POSTGRES=0 to test SQLite only)" >&2
    exit 1
  fi
  export MAILWRIGHT_TEST_POSTGRES=1
  export MAILWRIGHT_TEST_DSN=${MAILWRIGHT_TEST_DSN:-postgresql://postgres@127.0.0.1:5432/postgres}
fi

# --- Python dependencies -----------------------------------------------------------------------
python3 -m pip install -q -e '.[test]'

# --- lint, types, tests ------------------------------------------------------------------------
echo "test.sh: ruff"
python3 -m ruff check src tests bench
echo "test.sh: mypy"
python3 -m mypy
echo "test.sh: pytest"
# Skipped tests are listed at the end; a skip that tests/skip-allowlist.txt does not allow (with
# its reason) fails the run (tests/conftest.py).
export MAILWRIGHT_SKIP_ALLOWLIST="$PWD/tests/skip-allowlist.txt"
python3 -m pytest -q -p no:cacheprovider "$@"
