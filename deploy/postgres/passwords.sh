#!/bin/sh
# Sets the password of each Roster service role from the environment
# (ROSTER_PG_<SERVICE>_PASSWORD), after init.sql. The postgres image runs it
# from /docker-entrypoint-initdb.d; by hand: PGDATABASE=roster sh passwords.sh
set -eu
for svc in identity seatbilling rolepolicy audit; do
	var="ROSTER_PG_$(echo "$svc" | tr a-z A-Z)_PASSWORD"
	eval "pw=\${$var:-}"
	if [ -z "$pw" ]; then
		echo "passwords.sh: $var is not set; roster_$svc keeps no password" >&2
		continue
	fi
	psql -v ON_ERROR_STOP=1 -v role="roster_$svc" -v pw="$pw" <<'SQL'
ALTER ROLE :"role" PASSWORD :'pw';
SQL
done
