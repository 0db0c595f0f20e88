#!/usr/bin/env bash
# Starts the Debian PostgreSQL cluster (no systemd here) and makes an empty test database.
# Prints the URL to use as NOVAFLOW_TEST_POSTGRES_URL.
set -euo pipefail
# Only the URL goes to stdout (the Makefile captures it); everything the tools say goes to stderr.
exec 3>&1 1>&2
cluster=$(pg_lsclusters --no-header | awk 'NR==1 {print $1" "$2}')
if [[ -z "$cluster" ]]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -1)
  pg_createcluster "$version" main >/dev/null
  cluster="$version main"
fi
read -r version name <<<"$cluster"
pg_lsclusters --no-header | awk -v v="$version" -v n="$name" '$1==v && $2==n {print $4}' | grep -q online \
  || pg_ctlcluster "$version" "$name" start 3>&-  # the server must not hold the URL pipe open
port=$(pg_lsclusters --no-header | awk -v v="$version" -v n="$name" '$1==v && $2==n {print $3}')
as_postgres() { if [[ $(id -u) -eq 0 ]]; then su postgres -c "$1"; else sudo -u postgres sh -c "$1"; fi; }
for _ in $(seq 1 100); do as_postgres "psql -p $port -Atc 'select 1'" >/dev/null 2>&1 && break; sleep 0.1; done
as_postgres "psql -p $port -Atc \"select 1 from pg_roles where rolname='novaflow'\"" | grep -q 1 \
  || as_postgres "psql -p $port -qc \"create role novaflow login superuser password 'novaflow'\""
as_postgres "psql -p $port -Atc \"select 1 from pg_database where datname='novaflow_test'\"" | grep -q 1 \
  || as_postgres "psql -p $port -qc 'create database novaflow_test owner novaflow'"
echo "postgresql+psycopg://novaflow:novaflow@127.0.0.1:$port/novaflow_test" >&3
