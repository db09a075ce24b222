#!/usr/bin/env bash
# Installs the PostgreSQL server binaries that roster.dev/pkg/pgtest runs
# (from Debian's "postgresql" package, under /usr/lib/postgresql/<ver>/bin).
#
# pgtest starts its own throwaway server per test binary, so the cluster the
# package creates and starts is not used by anything; it is stopped right
# after installation so it does not hold port 5432 or memory. Safe to run
# repeatedly: when the binaries are already there it changes nothing (in
# particular it leaves an existing, possibly wanted, cluster running).
#
# CI should also export ROSTER_REQUIRE_POSTGRES=1 so that tests fail, instead
# of skipping, if PostgreSQL is still unusable.
set -euo pipefail

# as_root runs a command as root, through sudo when we are not root already.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

have_postgres() {
	compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

if have_postgres; then
	echo "install-postgres: already installed: $(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -n 1)"
	exit 0
fi

as_root apt-get update
as_root env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y --no-install-recommends postgresql

# The package's post-install starts a "main" cluster where an init system is
# available; pgtest does not need it.
as_root service postgresql stop >/dev/null 2>&1 || true

if ! have_postgres; then
	echo "install-postgres: installed the postgresql package, but found no /usr/lib/postgresql/*/bin/postgres" >&2
	exit 1
fi
echo "install-postgres: installed: $(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -n 1)"
