#!/bin/sh
# What the official postgres image does on first start: a cluster, the user and database named
# by POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, connections from the network with a
# password; then the server in the foreground on 5432.
set -eu
PGDATA=${PGDATA:-/var/lib/postgresql/data}
BIN=/usr/lib/postgresql/15/bin
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pw=$(mktemp); echo "$POSTGRES_PASSWORD" > "$pw"; chown postgres "$pw"
  su postgres -s /bin/sh -c "$BIN/initdb -D '$PGDATA' -U '$POSTGRES_USER' --pwfile='$pw' \
    -A scram-sha-256 --auth-local=trust -E UTF8" >/dev/null
  rm -f "$pw"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  su postgres -s /bin/sh -c "$BIN/pg_ctl -D '$PGDATA' -w start -o '-c listen_addresses='" >/dev/null
  su postgres -s /bin/sh -c "psql -U '$POSTGRES_USER' -d postgres -v ON_ERROR_STOP=1 \
    -c \"CREATE DATABASE \\\"${POSTGRES_DB:-$POSTGRES_USER}\\\"\"" >/dev/null || true
  su postgres -s /bin/sh -c "$BIN/pg_ctl -D '$PGDATA' -m fast -w stop" >/dev/null
fi
exec su postgres -s /bin/sh -c "exec $BIN/postgres -D '$PGDATA' -c listen_addresses='*'"
