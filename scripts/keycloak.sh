#!/usr/bin/env bash
# Keycloak for novaflow, for development and tests: `kc.sh start-dev` (HTTP on 127.0.0.1, H2),
# the realm `novaflow` imported from deploy/keycloak/novaflow-realm.json.
#
#   scripts/keycloak.sh start   install what is missing, start, wait until the realm answers;
#                               prints url=... realm=... pid=... (key=value lines) on stdout
#   scripts/keycloak.sh stop    stop the Keycloak started with the same data dir
#
# Environment:
#   KEYCLOAK_PORT            HTTP port (default 8180)
#   KEYCLOAK_DATA_DIR        this run's directory: Keycloak's data (database, imported realm),
#                            its log and pid file; emptied at each start, so runs share no
#                            state (default .state/keycloak)
#   NOVAFLOW_KEYCLOAK_CACHE  where the distribution is kept (default ~/.cache/novaflow/keycloak)
#   KEYCLOAK_ADMIN_USER / KEYCLOAK_ADMIN_PASSWORD   the master realm's admin (default admin/admin;
#                            a development server listening on 127.0.0.1 only)
#   KEYCLOAK_START_TIMEOUT   seconds to wait for the realm (default 180)
#
# Installs (as root, Debian) what is missing: a Java 17+ runtime, Maven, unzip, curl. The
# distribution comes from Maven Central (org.keycloak:keycloak-quarkus-dist:26.5.6:zip).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
VERSION=26.5.6
REALM=novaflow
PORT=${KEYCLOAK_PORT:-8180}
DATA_DIR=${KEYCLOAK_DATA_DIR:-$REPO/.state/keycloak}
CACHE=${NOVAFLOW_KEYCLOAK_CACHE:-$HOME/.cache/novaflow/keycloak}
DIST=$CACHE/keycloak-$VERSION
REALM_FILE=$REPO/deploy/keycloak/novaflow-realm.json
PID_FILE=$DATA_DIR/keycloak.pid
TIMEOUT=${KEYCLOAK_START_TIMEOUT:-180}

# Only the key=value lines go to stdout (callers parse them); the rest goes to stderr.
exec 3>&1 1>&2
say() { echo "keycloak.sh: $*"; }
die() { say "$*"; exit 1; }

running_pid() {
  local pid
  [[ -f $PID_FILE ]] || return 1
  pid=$(cat "$PID_FILE")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

java_ok() {
  command -v java >/dev/null || return 1
  local major
  major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  [[ -n $major && $major -ge 17 ]]
}

install_tools() {
  local missing=()
  java_ok || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  command -v unzip >/dev/null || missing+=(unzip)
  command -v curl >/dev/null || missing+=(curl)
  ((${#missing[@]})) || return 0
  say "installing ${missing[*]}"
  local sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

install_keycloak() {
  mkdir -p "$CACHE"
  # One installer at a time (parallel test sessions share the cache).
  exec 9>"$CACHE/.lock"
  flock 9
  if [[ ! -x $DIST/bin/kc.sh ]]; then
    local zip=$CACHE/keycloak-quarkus-dist-$VERSION.zip
    if [[ ! -s $zip ]]; then
      say "fetching keycloak-quarkus-dist $VERSION from Maven Central"
      mvn -q -B dependency:copy -Dartifact="org.keycloak:keycloak-quarkus-dist:$VERSION:zip" \
        -DoutputDirectory="$CACHE" || die "Maven could not fetch keycloak-quarkus-dist $VERSION"
    fi
    rm -rf "$CACHE/unzip.tmp"
    unzip -q "$zip" -d "$CACHE/unzip.tmp"
    mv "$CACHE/unzip.tmp/keycloak-$VERSION" "$DIST"
    rm -rf "$CACHE/unzip.tmp"
  fi
  # The lock is held until this server answers: the first start-dev augments the shared
  # distribution (lib/quarkus, ~15 s), which two servers must not do at once.
}

start() {
  if pid=$(running_pid); then
    die "already running (pid $pid, data dir $DATA_DIR): scripts/keycloak.sh stop first"
  fi
  install_tools
  install_keycloak
  # A fresh home per run: its data/ holds the database and the realm to import; the rest is
  # the shared distribution's (kc.home.dir is where Keycloak looks for data/ and providers/).
  rm -rf "$DATA_DIR"
  mkdir -p "$DATA_DIR/home/data/import"
  ln -s "$DIST/providers" "$DATA_DIR/home/providers"
  ln -s "$DIST/themes" "$DATA_DIR/home/themes"
  ln -s "$DIST/conf" "$DATA_DIR/home/conf"
  # lib/ too: Keycloak finds its build (lib/quarkus) under its home; without it, every start
  # would build the server again (~15 s).
  ln -s "$DIST/lib" "$DATA_DIR/home/lib"
  cp "$REALM_FILE" "$DATA_DIR/home/data/import/"
  local url=http://127.0.0.1:$PORT
  # Its own session (process group), so `stop` ends kc.sh and its java together.
  KC_BOOTSTRAP_ADMIN_USERNAME=${KEYCLOAK_ADMIN_USER:-admin} \
    KC_BOOTSTRAP_ADMIN_PASSWORD=${KEYCLOAK_ADMIN_PASSWORD:-admin} \
    setsid "$DIST/bin/kc.sh" start-dev "-Dkc.home.dir=$DATA_DIR/home" \
    --http-port="$PORT" --http-host=127.0.0.1 --hostname="$url" --import-realm \
    </dev/null >"$DATA_DIR/keycloak.log" 2>&1 3>&- 9>&- &
  local pid=$!
  echo "$pid" >"$PID_FILE"
  local discovery=$url/realms/$REALM/.well-known/openid-configuration
  local deadline=$((SECONDS + TIMEOUT))
  until curl -sf -o /dev/null "$discovery"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -30 "$DATA_DIR/keycloak.log"
      rm -f "$PID_FILE"
      die "Keycloak exited while starting; see $DATA_DIR/keycloak.log"
    fi
    if ((SECONDS >= deadline)); then
      tail -30 "$DATA_DIR/keycloak.log"
      stop
      die "the realm $REALM did not answer within ${TIMEOUT}s"
    fi
    sleep 0.5
  done
  flock -u 9
  {
    echo "url=$url"
    echo "realm=$REALM"
    echo "issuer=$url/realms/$REALM"
    echo "pid=$pid"
    echo "pid_file=$PID_FILE"
    echo "log=$DATA_DIR/keycloak.log"
    echo "admin_user=${KEYCLOAK_ADMIN_USER:-admin}"
    echo "admin_password=${KEYCLOAK_ADMIN_PASSWORD:-admin}"
  } >&3
}

stop() {
  local pid
  pid=$(running_pid) || { rm -f "$PID_FILE"; return 0; }
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) die "usage: scripts/keycloak.sh [start|stop]" ;;
esac
