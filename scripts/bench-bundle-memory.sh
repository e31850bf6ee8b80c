#!/usr/bin/env bash
# Memory under hostile Bundles (issue 13 item 5; docs/BENCHMARKS.md): the server's resident
# set before, during and after POSTs of a 100,000-entry transaction (about 22 MB, refused by
# the 10,000-entry cap), of an accepted 10,000-entry batch, and of four of each at once.
#
#   scripts/bench-bundle-memory.sh
#
# Needs curl, python3 and a release build (cargo build --release -p phivault -p phivault-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release
WORK=$(mktemp -d /tmp/phivault-bench-mem.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
data="$WORK/data"
"$BIN/phivault" --data-dir "$data" init --insecure-dev-keys >/dev/null
"$BIN/phivault-bench" seed "$data" 100 10 >/dev/null
port=18777
PHIVAULT_LISTEN="127.0.0.1:$port" PHIVAULT_PUBLIC_BASE_URL="https://127.0.0.1:$port" \
  ${PHIVAULT_BENCH_ENV:-} "$BIN/phivault" --data-dir "$data" serve >"$WORK/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sk "https://127.0.0.1:$port/fhir/metadata" >/dev/null && break; sleep 0.1; done
patient=$(head -1 "$data/team.txt")
python3 - "$WORK" "$patient" <<'PY'
import json, sys
work, patient = sys.argv[1], sys.argv[2]
def bundle(kind, n):
    entries = [{
        "fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}",
        "resource": {"resourceType": "Observation", "status": "final",
                     "code": {"text": "pulse"}, "subject": {"reference": f"Patient/{patient}"}},
        "request": {"method": "POST", "url": "Observation"}} for i in range(n)]
    return {"resourceType": "Bundle", "type": kind, "entry": entries}
for name, kind, n in [("big", "transaction", 100_000), ("cap", "batch", 10_000)]:
    with open(f"{work}/{name}.json", "w") as f:
        json.dump(bundle(kind, n), f)
PY
rss() { awk '/VmRSS/ {printf "%.0f MiB", $2 / 1024}' "/proc/$pid/status"; }
post() {
  curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$data/token.txt")" \
    -H 'Content-Type: application/fhir+json' --data-binary "@$WORK/$1.json" "https://127.0.0.1:$port/fhir"
}
echo "| step | answer | resident set after |"
echo "|---|---|---|"
echo "| started | - | $(rss) |"
echo "| 100,000-entry transaction ($(du -m "$WORK/big.json" | cut -f1) MB) | $(post big) | $(rss) |"
echo "| 10,000-entry batch ($(du -m "$WORK/cap.json" | cut -f1) MB) | $(post cap) | $(rss) |"
codes=$( (for _ in 1 2 3 4; do post big & done; wait) | tr '\n' ' ')
echo "| four 100,000-entry transactions at once | $codes | $(rss) |"
codes=$( (for _ in 1 2 3 4; do post cap & done; wait) | tr '\n' ' ')
echo "| four 10,000-entry batches at once | $codes | $(rss) |"
sleep 10
echo "| 10 s later, idle | - | $(rss) |"
