#!/usr/bin/env bash
# PostgreSQL point-in-time recovery for phivault with the engine's own tools, end to end:
# a throwaway cluster with WAL archiving, phivault on it, pg_basebackup, writes before and
# after a chosen moment, recovery to that moment (recovery_target_time), then phivault's own
# checks on the recovered database. What docs/CONTINGENCY.md §4a tells a clinic to do.
#
#   scripts/pg-pitr-drill.sh            # needs Debian's postgresql-15 binaries and a build
#
# Runs the cluster as the `postgres` user when started as root (PostgreSQL refuses root).
# Everything is under a temporary directory, removed at the end. Exits non-zero on failure.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
BIN=${BIN:-target/debug}
PHIVAULT=$(realpath "$BIN/phivault")
WORK=$(mktemp -d /tmp/phivault-pitr.XXXXXX)
chmod 755 "$WORK"
PORT=$((20000 + RANDOM % 20000))
RPORT=$((PORT + 1))
export CI=1 PHIVAULT_LOG=error

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
cleanup() {
  as_pg "$PGBIN/pg_ctl" -D "$WORK/primary" -m immediate stop >/dev/null 2>&1 || true
  as_pg "$PGBIN/pg_ctl" -D "$WORK/recovered" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
step() { printf '== %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*"; exit 1; }

mkdir -p "$WORK/wal"
if [ "$(id -u)" = 0 ]; then chown -R postgres "$WORK"; fi
as_pg "$PGBIN/initdb" -D "$WORK/primary" -A trust -U postgres >/dev/null
cat >> "$WORK/primary/postgresql.conf" <<EOF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
wal_level = replica
archive_mode = on
archive_command = 'test ! -f $WORK/wal/%f && cp %p $WORK/wal/%f'
archive_timeout = 5
EOF
as_pg "$PGBIN/pg_ctl" -D "$WORK/primary" -l "$WORK/primary.log" -w start >/dev/null
URL="postgres://postgres@127.0.0.1:$PORT/phivault"
as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres phivault

step "phivault on the cluster, with fake patients"
"$PHIVAULT" init --data-dir "$WORK/pv" --insecure-dev-keys --database "$URL" >/dev/null
bundle() {
  cat > "$WORK/$1.json" <<EOF
{"resourceType": "Bundle", "type": "transaction", "entry": [{"fullUrl": "urn:uuid:$2",
 "resource": {"resourceType": "Patient", "name": [{"family": "$1", "given": ["Test"]}],
   "identifier": [{"system": "urn:mrn", "value": "$3"}]},
 "request": {"method": "POST", "url": "Patient"}}]}
EOF
  "$PHIVAULT" --data-dir "$WORK/pv" import "$WORK/$1.json" >/dev/null
}
bundle Duck 3f0c0d1e-0000-4000-8000-000000000001 123456789

step "base backup (pg_basebackup), then a write before and one after the recovery target"
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U postgres -D "$WORK/base" -Fp -X fetch
bundle Pig 3f0c0d1e-0000-4000-8000-000000000002 223456789
"$PHIVAULT" --data-dir "$WORK/pv" audit checkpoint >/dev/null
# What a backup of the data dir holds at the target: the witness as of then.
cp "$WORK/pv/audit/witness.jsonl" "$WORK/witness-at-target.jsonl"
sleep 1.5
TARGET=$(date -u '+%Y-%m-%d %H:%M:%S.%6N+00')
sleep 1.5
bundle Bunny 3f0c0d1e-0000-4000-8000-000000000003 323456789
"$PHIVAULT" --data-dir "$WORK/pv" audit checkpoint >/dev/null
as_pg psql -q -h 127.0.0.1 -p "$PORT" -U postgres -d phivault -c "SELECT pg_switch_wal()" >/dev/null
sleep 6
as_pg "$PGBIN/pg_ctl" -D "$WORK/primary" -m fast -w stop >/dev/null

step "recovery to $TARGET"
cp -a "$WORK/base" "$WORK/recovered"
sed -i "s/^port = .*/port = $RPORT/" "$WORK/recovered/postgresql.conf"
cat >> "$WORK/recovered/postgresql.conf" <<EOF
port = $RPORT
archive_mode = off
restore_command = 'cp $WORK/wal/%f %p'
recovery_target_time = '$TARGET'
recovery_target_action = 'promote'
EOF
as_pg touch "$WORK/recovered/recovery.signal"
as_pg "$PGBIN/pg_ctl" -D "$WORK/recovered" -l "$WORK/recovered.log" -w start >/dev/null
for _ in $(seq 1 60); do
  state=$(as_pg psql -tA -h 127.0.0.1 -p "$RPORT" -U postgres -d phivault -c "SELECT pg_is_in_recovery()" 2>/dev/null || true)
  [ "$state" = f ] && break
  sleep 0.5
done
[ "$state" = f ] || fail "the recovered cluster did not leave recovery"

step "phivault's checks on the recovered database"
RURL="postgres://postgres@127.0.0.1:$RPORT/phivault"
count() {
  as_pg psql -tA -h 127.0.0.1 -p "$RPORT" -U postgres -d phivault \
    -c "SELECT COUNT(*) FROM resources WHERE resource_type = 'Patient' AND is_current = 1"
}
PATIENTS=$(count)
[ "$PATIENTS" = 2 ] || fail "expected the 2 patients written before the target, found $PATIENTS"
cp "$WORK/witness-at-target.jsonl" "$WORK/pv/audit/witness.jsonl"
PHIVAULT_DATABASE="$RURL" "$PHIVAULT" --data-dir "$WORK/pv" audit verify > "$WORK/verify.txt" || {
  cat "$WORK/verify.txt"; fail "the recovered audit trail does not verify"; }
grep -q "the audit trail is intact" "$WORK/verify.txt" || fail "audit verify did not say intact"
PHIVAULT_DATABASE="$RURL" "$PHIVAULT" --data-dir "$WORK/pv" integrity scan >/dev/null || fail "integrity scan"
echo "recovered to the target: 2 of 3 patients (the write after the target is gone), audit trail intact, every record opens"
