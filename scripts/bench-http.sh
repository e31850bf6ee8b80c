#!/usr/bin/env bash
# HTTP load benchmark of the audited access path (docs/BENCHMARKS.md): phivault serve on one
# core, wrk on the other, over HTTPS keep-alive with a physician's bearer token, at care
# teams of 50, 1,000 and 2,500 among PATIENTS (default 10,000) obviously fake patients with
# five Observations each; 1, 16 and 64 connections; "read" (Patient by id) and "mixed"
# (70 % reads, 20 % family search, 10 % Observation create). The ceiling in the same run:
# nginx serving phivault's own Patient response as a static file over TLS, same client.
# Server CPU per request comes from /proc/<pid>/stat; audit rows are counted before/after.
#
#   scripts/bench-http.sh [PATIENTS] [SECONDS]
#
# Needs: wrk, nginx, sqlite3, taskset (Debian packages), and a release build
# (cargo build --release -p phivault -p phivault-bench). Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
PATIENTS=${1:-10000}
SECONDS_PER_RUN=${2:-10}
BIN=target/release
HERE=$(pwd)/scripts/bench-http
WORK=$(mktemp -d /tmp/phivault-bench-http.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
TICKS=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
audit_rows() { sqlite3 "$1/phivault.db" 'SELECT COUNT(*) FROM audit_log'; }

# run_wrk NAME PID URL CONNS SCRIPT DATA: one row of the table.
run_wrk() {
  local name=$1 pid=$2 url=$3 conns=$4 script=$5 data=$6
  local before_cpu before_rows out requests p50 p99 rps cpu_us rows
  before_cpu=$(cpu_ticks "$pid")
  before_rows=$( [ -n "$data" ] && audit_rows "$data" || echo 0)
  out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${SECONDS_PER_RUN}s" --latency ${script:+-s "$script"} "$url" -- "$data" 2>&1)
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  cpu_us=$(awk -v a="$before_cpu" -v b="$(cpu_ticks "$pid")" -v n="$requests" -v t="$TICKS" 'BEGIN {printf "%.0f", (b - a) / t * 1e6 / n}')
  if [ -n "$data" ]; then rows=$(( $(audit_rows "$data") - before_rows )); else rows="-"; fi
  local non2xx
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $4}')
  echo "| $name | $conns | $rps | $p50 | $p99 | $cpu_us | $requests | $rows | ${non2xx:-0} |"
}

echo "| scenario | connections | req/s | p50 | p99 | server CPU µs/request | requests | audit rows added | non-2xx |"
echo "|---|---|---|---|---|---|---|---|---|"
for team in 50 1000 2500; do
  data="$WORK/data-$team"
  "$BIN/phivault" --data-dir "$data" init --insecure-dev-keys >/dev/null
  "$BIN/phivault-bench" seed "$data" "$PATIENTS" "$team" >/dev/null
  port=$((18443 + team % 1000))
  PHIVAULT_LISTEN="127.0.0.1:$port" PHIVAULT_PUBLIC_BASE_URL="https://127.0.0.1:$port" \
    taskset -c 0 "$BIN/phivault" --data-dir "$data" serve >"$WORK/serve-$team.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sk "https://127.0.0.1:$port/fhir/metadata" >/dev/null && break; sleep 0.1; done
  # Warm-up, not reported: page cache, SQLite caches, TLS session setup.
  taskset -c 1 wrk -t1 -c16 -d3s -s "$HERE/mixed.lua" "https://127.0.0.1:$port" -- "$data" >/dev/null 2>&1
  for conns in 1 16 64; do
    run_wrk "read, team $team" "$pid" "https://127.0.0.1:$port" "$conns" "$HERE/read.lua" "$data"
  done
  for conns in 16 64; do
    run_wrk "mixed, team $team" "$pid" "https://127.0.0.1:$port" "$conns" "$HERE/mixed.lua" "$data"
  done
  if [ "$team" = 50 ]; then
    # The ceiling: the same Patient response as a static file, nginx on the same core.
    mkdir -p "$WORK/static"
    curl -sk -H "Authorization: Bearer $(cat "$data/token.txt")" \
      "https://127.0.0.1:$port/fhir/Patient/$(head -1 "$data/team.txt")" >"$WORK/static/patient.json"
    cat >"$WORK/nginx.conf" <<NGINX
user root;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:18999 ssl;
    ssl_certificate $data/tls/cert.pem;
    ssl_certificate_key $data/tls/key.pem;
    root $WORK/static;
    location / { default_type application/fhir+json; try_files /patient.json =404; }
  }
}
NGINX
    taskset -c 0 nginx -c "$WORK/nginx.conf" -g 'daemon off;' &
    npid=$!
    sleep 0.5
    worker=$(pgrep -P "$npid" | head -1) # the worker does the serving
    for conns in 1 16 64; do
      run_wrk "nginx static ($(wc -c <"$WORK/static/patient.json") B)" "$worker" "https://127.0.0.1:18999/patient.json" "$conns" "" ""
    done
    kill "$npid"; wait "$npid" 2>/dev/null || true
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
