#!/usr/bin/env bash
# A throw-away S3 server for tests and benchmarks: a single-node Ceph cluster (1 mon, 1 OSD,
# 1 radosgw, no mgr) bound to 127.0.0.1, everything in one scratch directory.
#
#   eval "$(scripts/s3-test-server.sh start)"   start it; prints the exports the tests read
#   scripts/s3-test-server.sh env               print those exports again
#   scripts/s3-test-server.sh stop              stop exactly the daemons it started, remove the dir
#   scripts/s3-test-server.sh rgw-stop|rgw-start  stop / restart only radosgw (data survives)
#
# Settings (environment): DDPIPE_S3_DIR (scratch dir, default $TMPDIR/ddpipe-s3-$UID),
# DDPIPE_S3_PORT (radosgw; default the first free from 7480), DDPIPE_S3_MON_PORT (from 3300),
# DDPIPE_S3_OBJECTSTORE (memstore, the default, or bluestore on a sparse file in the dir),
# DDPIPE_S3_MEM_MB (memstore capacity, default 4096).
# Needs the Debian packages ceph-mon ceph-osd radosgw ceph-common ceph-base (scripts/install-deps.sh).
set -euo pipefail

DIR=${DDPIPE_S3_DIR:-${TMPDIR:-/tmp}/ddpipe-s3-$(id -u)}
RGW_PORT=${DDPIPE_S3_PORT:-7480}
MON_PORT=${DDPIPE_S3_MON_PORT:-3300}
# A running server's own ports win (rgw-start, env from another shell).
if [[ -f $DIR/ports ]]; then source "$DIR/ports"; fi
OBJECTSTORE=${DDPIPE_S3_OBJECTSTORE:-memstore}
MEM_MB=${DDPIPE_S3_MEM_MB:-4096}
ACCESS_KEY=ddpipetestaccesskey
SECRET_KEY=ddpipe-test-secret-key-0123456789abcdef
CONF=$DIR/ceph.conf

say() { echo "s3-test-server: $*" >&2; }
die() { say "$*"; exit 1; }

# Never let the caller's environment redirect the daemons to another keyring or cluster.
unset CEPH_KEYRING CEPH_CONF CEPH_ARGS

exports() {
  cat <<EOF
export DDPIPE_S3_TEST_ENDPOINT=http://127.0.0.1:$RGW_PORT
export DDPIPE_S3_TEST_ACCESS_KEY_ID=$ACCESS_KEY
export DDPIPE_S3_TEST_SECRET_ACCESS_KEY=$SECRET_KEY
export DDPIPE_S3_TEST_REGION=us-east-1
export DDPIPE_S3_TEST_DIR=$DIR
EOF
}

in_use() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p=$1
  while in_use "$p"; do p=$((p + 1)); done
  echo "$p"
}

# A recorded daemon that runs (a killed one may linger as a zombie until init reaps it).
alive() {
  local pid stat
  [[ -f $DIR/run/$1.pid ]] || return 1
  pid=$(cat "$DIR/run/$1.pid")
  stat=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ -n $stat && $stat != Z && $stat != X ]]
}

# Starts a daemon in the foreground under setsid, recording its pid (radosgw -f writes none).
spawn() {
  local name=$1
  shift
  setsid "$@" -f -c "$CONF" >>"$DIR/log/$name.out" 2>&1 </dev/null &
  echo $! >"$DIR/run/$name.pid"
}

# Stops one recorded daemon: SIGTERM, then SIGKILL after `grace` seconds.
stop_daemon() {
  local name=$1 grace=${2:-10} pid
  [[ -f $DIR/run/$name.pid ]] || return 0
  pid=$(cat "$DIR/run/$name.pid")
  if alive "$name"; then
    kill -CONT "$pid" 2>/dev/null || true  # a paused daemon cannot handle SIGTERM
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $((grace * 10))); do
      alive "$name" || break
      sleep 0.1
    done
    alive "$name" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/run/$name.pid"
}

# Polls a signed ListBuckets until radosgw answers 200.
wait_for_rgw() {
  local deadline=$((SECONDS + ${1:-60}))
  local empty_sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
  until curl -sf -o /dev/null --max-time 2 --aws-sigv4 "aws:amz:us-east-1:s3" \
      --user "$ACCESS_KEY:$SECRET_KEY" -H "x-amz-content-sha256: $empty_sha256" \
      "http://127.0.0.1:$RGW_PORT/"; do
    alive radosgw || die "radosgw exited; see $DIR/log/radosgw.out and $DIR/log/*.log"
    ((SECONDS < deadline)) || die "radosgw did not answer within ${1:-60} s; see $DIR/log/"
    sleep 0.2
  done
}

start_rgw() {
  alive radosgw && return 0
  spawn radosgw radosgw -n client.rgw.gw -k "$DIR/keyring"
}

write_conf() {
  local fsid=$1
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON_PORT]
public addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
ms bind msgr1 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $DIR/run
log file = $DIR/log/\$name.log
admin socket = $DIR/run/\$name.asok
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
paxos propose interval = 0.1
paxos min wait = 0.01
osd crush chooseleaf type = 0

[mon]
mon data = $DIR/mon
mon initial members = a

[osd]
osd data = $DIR/osd
osd objectstore = $OBJECTSTORE
memstore device bytes = $((MEM_MB * 1024 * 1024))
bluestore block path = $DIR/osd-block
bluestore block create = true
bluestore block size = $((64 * 1024 * 1024 * 1024))
osd max object name len = 256
osd max object namespace len = 64

[client.rgw.gw]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $DIR/rgw
rgw dns name = localhost
# One gateway needs no cache coherence; without the cache a restarted gateway does not wait
# ~30 s on the watch of the one it replaces (kill -9 in the fault tests).
rgw cache enabled = false
# Free the data of deleted and overwritten objects within seconds, not hours (memstore is RAM).
rgw gc obj min wait = 5
rgw gc processor period = 5
rgw gc processor max time = 5
EOF
}

cmd_start() {
  command -v ceph-mon >/dev/null && command -v radosgw >/dev/null ||
    die "Ceph is not installed (apt-get install ceph-mon ceph-osd radosgw ceph-common ceph-base)"
  if alive mon || alive osd || alive radosgw; then
    die "already running in $DIR (scripts/s3-test-server.sh stop first)"
  fi
  # Ports given in the environment must be free; the defaults move to the next free one.
  local port
  for port in ${DDPIPE_S3_PORT:-} ${DDPIPE_S3_MON_PORT:-}; do
    in_use "$port" && die "port $port is in use (DDPIPE_S3_PORT / DDPIPE_S3_MON_PORT)"
  done
  RGW_PORT=${DDPIPE_S3_PORT:-$(free_port 7480)}
  MON_PORT=${DDPIPE_S3_MON_PORT:-$(free_port 3300)}
  rm -rf "$DIR"
  mkdir -p "$DIR"/{run,log,mon,osd,rgw}
  echo "RGW_PORT=$RGW_PORT MON_PORT=$MON_PORT" >"$DIR/ports"
  trap 'stop_daemons; say "start failed; logs kept in $DIR/log"' EXIT
  local fsid osd_uuid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  write_conf "$fsid"

  # Every key up front; ceph-mon --mkfs imports them all, so no `ceph auth add` is needed.
  local kr=$DIR/keyring
  ceph-authtool -C "$kr" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$kr" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
    --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$kr" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' \
    --cap mgr 'allow profile osd' >/dev/null
  ceph-authtool "$kr" --gen-key -n client.rgw.gw --cap mon 'allow rw' --cap osd 'allow rwx' \
    --cap mgr 'allow rw' >/dev/null

  # The monmap fixes the monitor's address (port included): it binds to what the map says.
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" \
    >>"$DIR/log/mkfs.out" 2>&1 || die "monmaptool failed; see $DIR/log/mkfs.out"
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$kr" \
    >>"$DIR/log/mkfs.out" 2>&1 || die "ceph-mon --mkfs failed; see $DIR/log/mkfs.out"
  spawn mon ceph-mon -i a -k "$kr"
  local ceph=(ceph -c "$CONF" -k "$kr" -n client.admin --connect-timeout 20)
  "${ceph[@]}" osd new "$osd_uuid" 0 >/dev/null 2>>"$DIR/log/mkfs.out" ||
    die "the monitor did not come up; see $DIR/log/mon.a.log"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" -k "$kr" >>"$DIR/log/mkfs.out" 2>&1 ||
    die "ceph-osd --mkfs failed; see $DIR/log/mkfs.out"
  spawn osd ceph-osd -i 0 -k "$kr"
  start_rgw
  radosgw-admin -c "$CONF" -k "$kr" -n client.admin user create --uid ddpipe-test \
    --display-name "ddpipe tests" --access-key "$ACCESS_KEY" --secret "$SECRET_KEY" \
    >>"$DIR/log/mkfs.out" 2>&1 || die "radosgw-admin user create failed; see $DIR/log/mkfs.out"
  wait_for_rgw 90
  trap - EXIT
  say "S3 (Ceph RGW) on http://127.0.0.1:$RGW_PORT, state in $DIR"
  exports | tee "$DIR/env"
}

# radosgw first: one whose cluster is gone hangs on SIGTERM.
stop_daemons() {
  stop_daemon radosgw 10
  stop_daemon osd 10
  stop_daemon mon 10
}

cmd_stop() {
  [[ -d $DIR ]] || return 0
  stop_daemons
  rm -rf "$DIR"
  say "stopped"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  env)
    [[ -f $DIR/env ]] && alive radosgw || die "not running in $DIR"
    cat "$DIR/env"
    ;;
  rgw-stop) stop_daemon radosgw "${2:-10}" ;;
  rgw-start) start_rgw; wait_for_rgw 60 ;;
  rgw-pid) cat "$DIR/run/radosgw.pid" ;;
  *) echo "usage: $0 start|stop|env|rgw-stop [grace_s]|rgw-start|rgw-pid" >&2; exit 2 ;;
esac
