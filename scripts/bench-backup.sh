#!/usr/bin/env bash
# Backup and restore throughput against the engines' own tools, on the same data, in one run.
#
#   scripts/bench-backup.sh PATIENTS      # resources = PATIENTS x 6 (a Patient, 5 Observations)
#
# Needs a release build (cargo build --release -p phivault -p phivault-bench), sqlite3, zstd,
# pg_dump and psql (Debian packages), and PostgreSQL at PHIVAULT_TEST_POSTGRES_URL (default
# postgres://postgres@127.0.0.1:5432/postgres). Prints a Markdown table for docs/BENCHMARKS.md.
# Everything it makes is under a temporary directory and a scratch database, removed at the end.
set -euo pipefail

PATIENTS=${1:-17000}
BIN=${BIN:-target/release}
ADMIN_URL=${PHIVAULT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
BASE_URL=${ADMIN_URL%/*}
WORK=$(mktemp -d /tmp/phivault-bench-backup.XXXXXX)
DB1=phivault_bench_backup_a_$$
DB2=phivault_bench_backup_b_$$
cleanup() {
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB1" -c "DROP DATABASE IF EXISTS $DB2" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
export CI=1 PHIVAULT_LOG=error

# Seconds (3 decimals) that a command takes.
seconds() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l | xargs printf '%.3f'
}
rate() { echo "$1 / $2" | bc -l | xargs printf '%.0f'; }
mb() { echo "$1 / 1000000" | bc -l | xargs printf '%.1f'; }

"$BIN/phivault" init --data-dir "$WORK/live" --insecure-dev-keys >/dev/null
"$BIN/phivault-bench" seed "$WORK/live" "$PATIENTS" 1 >/dev/null
"$BIN/phivault" --data-dir "$WORK/live" audit checkpoint >/dev/null
LIVE_DB="$WORK/live/phivault.db"
sqlite3 "$LIVE_DB" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
RESOURCES=$(sqlite3 "$LIVE_DB" "SELECT COUNT(*) FROM resources")
DB_BYTES=$(stat -c %s "$LIVE_DB")

# SQLite: the engine's online backup, then zstd (what a careful admin would script).
SQLITE_BACKUP=$(seconds sqlite3 "$LIVE_DB" ".backup '$WORK/copy.db'")
SQLITE_ZSTD=$(seconds zstd -q -3 "$WORK/copy.db" -o "$WORK/copy.db.zst")
SQLITE_BOTH=$(echo "$SQLITE_BACKUP + $SQLITE_ZSTD" | bc -l | xargs printf '%.3f')
SQLITE_ZST_BYTES=$(stat -c %s "$WORK/copy.db.zst")

# phivault on SQLite: a full backup, then one after a few changes (incremental).
PV_FULL=$(seconds "$BIN/phivault" --data-dir "$WORK/live" backup create --to "$WORK/repo")
REPO_BYTES=$(du -sb "$WORK/repo" | cut -f1)
"$BIN/phivault" --data-dir "$WORK/live" audit checkpoint >/dev/null
PV_INCR=$(seconds "$BIN/phivault" --data-dir "$WORK/live" backup create --to "$WORK/repo")
REPO_BYTES_2=$(du -sb "$WORK/repo" | cut -f1)
PV_VERIFY=$(seconds "$BIN/phivault" --data-dir "$WORK/live" backup verify --repo "$WORK/repo" --read-data)
PV_RESTORE=$(seconds "$BIN/phivault" --data-dir "$WORK/restored" backup restore --from "$WORK/repo" --key "$WORK/live/backup/backup.key")
SQLITE_RESTORE=$(seconds sh -c "zstd -q -d '$WORK/copy.db.zst' -o '$WORK/back.db'")
PV_DRILL=$(seconds "$BIN/phivault" --data-dir "$WORK/live" backup drill --repo "$WORK/repo")

# PostgreSQL: the same data, restored across engines into an empty database; then its own
# pg_dump | zstd next to phivault's backup of it, and both restores.
psql -q "$ADMIN_URL" -c "CREATE DATABASE $DB1" -c "CREATE DATABASE $DB2" >/dev/null
PV_TO_PG=$(seconds "$BIN/phivault" --data-dir "$WORK/on-pg" backup restore --from "$WORK/repo" --key "$WORK/live/backup/backup.key" --database "$BASE_URL/$DB1")
PG_DUMP=$(seconds sh -c "pg_dump -Fp '$BASE_URL/$DB1' | zstd -q -3 > '$WORK/dump.sql.zst'")
PG_DUMP_BYTES=$(stat -c %s "$WORK/dump.sql.zst")
mkdir -p "$WORK/on-pg/backup" && cp "$WORK/live/backup/backup.key" "$WORK/on-pg/backup/"
PV_PG_FULL=$(seconds "$BIN/phivault" --data-dir "$WORK/on-pg" backup create --to "$WORK/repo-pg")
PG_RESTORE=$(seconds sh -c "zstd -q -d -c '$WORK/dump.sql.zst' | psql -q '$BASE_URL/$DB2'")
psql -q "$ADMIN_URL" -c "DROP DATABASE $DB2" -c "CREATE DATABASE $DB2" >/dev/null
PV_PG_RESTORE=$(seconds "$BIN/phivault" --data-dir "$WORK/on-pg-2" backup restore --from "$WORK/repo-pg" --key "$WORK/live/backup/backup.key" --database "$BASE_URL/$DB2")

cat <<EOF
$PATIENTS patients, $RESOURCES resources, SQLite database $(mb "$DB_BYTES") MB; $(nproc) cores, $(date -u +%Y-%m-%d)

| measure | time | MB/s of database | resources/s | stored |
|---|---|---|---|---|
| SQLite \`.backup\` + \`zstd -3\` | $SQLITE_BOTH s | $(rate "$DB_BYTES/1000000" "$SQLITE_BOTH") | $(rate "$RESOURCES" "$SQLITE_BOTH") | $(mb "$SQLITE_ZST_BYTES") MB |
| \`phivault backup create\`, SQLite, first (full) | $PV_FULL s | $(rate "$DB_BYTES/1000000" "$PV_FULL") | $(rate "$RESOURCES" "$PV_FULL") | $(mb "$REPO_BYTES") MB |
| \`phivault backup create\`, SQLite, next (incremental) | $PV_INCR s | | | +$(mb "$((REPO_BYTES_2 - REPO_BYTES))") MB |
| \`phivault backup verify --read-data\` (2 backups) | $PV_VERIFY s | | | |
| \`zstd -d\` of the SQLite copy (its restore) | $SQLITE_RESTORE s | | | |
| \`phivault backup restore\` into SQLite (checked, trail verified) | $PV_RESTORE s | $(rate "$DB_BYTES/1000000" "$PV_RESTORE") | $(rate "$RESOURCES" "$PV_RESTORE") | |
| \`phivault backup drill\` (restore + compare with live) | $PV_DRILL s | | | |
| \`phivault backup restore\` SQLite backup into PostgreSQL | $PV_TO_PG s | | $(rate "$RESOURCES" "$PV_TO_PG") | |
| \`pg_dump \| zstd -3\` | $PG_DUMP s | | $(rate "$RESOURCES" "$PG_DUMP") | $(mb "$PG_DUMP_BYTES") MB |
| \`phivault backup create\`, PostgreSQL, full | $PV_PG_FULL s | | $(rate "$RESOURCES" "$PV_PG_FULL") | |
| \`zstd -d \| psql\` (restore of the dump) | $PG_RESTORE s | | $(rate "$RESOURCES" "$PG_RESTORE") | |
| \`phivault backup restore\` into PostgreSQL | $PV_PG_RESTORE s | | $(rate "$RESOURCES" "$PV_PG_RESTORE") | |
EOF
