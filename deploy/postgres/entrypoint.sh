#!/bin/sh
# The image's entrypoint: initialise an empty data volume once, then run the server in
# the foreground as PID 1 (it gets the stop signal itself: Dockerfile's STOPSIGNAL).
#   docker run -e POSTGRES_PASSWORD=... -v pgdata:/var/lib/postgresql/data mnist-postgres
# Arguments are the server's own (`-c name=value`); the image runs as `postgres`.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=mnist}" "${POSTGRES_DB:=mnist}"

log() { printf 'mnist-postgres: %s\n' "$*" >&2; }

# The app role's password: a secret's file first (it never shows in `docker inspect`),
# else the variable. Needed only to initialise.
password() {
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    cat "$POSTGRES_PASSWORD_FILE"
  elif [ -n "${POSTGRES_PASSWORD:-}" ]; then
    printf '%s' "$POSTGRES_PASSWORD"
  else
    log "set POSTGRES_PASSWORD_FILE or POSTGRES_PASSWORD to initialise the database"
    exit 1
  fi
}

initialise() {
  secret=$(password)
  log "initialising $PGDATA: role and database $POSTGRES_USER/$POSTGRES_DB"
  # Inside the container the superuser connects over the socket as its own OS user
  # (peer); every network client needs a password (scram-sha-256).
  initdb --pgdata="$PGDATA" --username=postgres --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  # A temporary server on the socket only: nothing reaches it over TCP (the health check
  # stays red) until the role exists.
  pg_ctl --pgdata="$PGDATA" --wait --silent -o "-c listen_addresses=''" start
  printf '%s\n' 'CREATE ROLE :"role" LOGIN PASSWORD :'"'"'secret'"'"';' \
    'CREATE DATABASE :"db" OWNER :"role";' \
    | psql --quiet --no-psqlrc --set ON_ERROR_STOP=1 --username=postgres --dbname=postgres \
        --set role="$POSTGRES_USER" --set db="$POSTGRES_DB" --set secret="$secret" >/dev/null
  pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
}

# PG_VERSION is initdb's last file but one; a volume holding it was initialised.
[ -s "$PGDATA/PG_VERSION" ] || initialise
exec postgres -D "$PGDATA" "$@"
