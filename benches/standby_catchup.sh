#!/usr/bin/env bash
# benches/standby_catchup.sh RATE RUNS: the primary's latency while an empty standby catches
# up. A primary on config/bench.toml with [replication] ack = "local" is filled by RUNS runs of
# petrel-load bench at RATE with no standby; then one more run without a standby (the
# baseline) and one during which an empty standby connects and catches up from sequence 1.
# Build first: cargo build --release -p petrel-engine -p petrel-benches.
set -eu
rate=$1; runs=$2
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
d=$(mktemp -d "$root/target/standby-catchup.XXXXXX")
trap 'kill $pp ${sp:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$d"' EXIT
head -c 32 /dev/urandom | base64 > "$d/secret"; chmod 600 "$d/secret"
. "$root/benches/standby_pair.sh"
standby_config "$d/p" primary 127.0.0.1:15400 127.0.0.1:15401 127.0.0.1:15100 127.0.0.1:9190 local "$d/secret" "$root"
standby_config "$d/s" standby 127.0.0.1:15401 127.0.0.1:15400 127.0.0.1:15102 127.0.0.1:9192 local "$d/secret" "$root"
target/release/petrel-engine run --config "$d/p/engine.toml" > "$d/p.log" 2>&1 & pp=$!
for _ in $(seq 1 150); do grep -q "ready: gateway" "$d/p.log" && break; sleep 0.2; done
# Each run's UserRefNums start above the previous run's (the engine refuses reused ones).
run=0
load() {
  run=$((run + 1))
  target/release/petrel-load bench --target 127.0.0.1:15100 --admin 127.0.0.1:9190 --rate "$rate" \
    --duration-s 5 --warmup-s 1 --sessions 4 --first-user-ref $((run * 1000000 + 1)) | grep -E "^engine |^echo "
}
for _ in $(seq 1 "$runs"); do load > /dev/null; done
echo "journal: $(curl -s 127.0.0.1:9190/status | sed 's/.*"durable_sequence":\([0-9]*\).*/\1/') records"
echo "== without a standby"; load
echo "== while an empty standby catches up"
target/release/petrel-engine run --config "$d/s/engine.toml" > "$d/s.log" 2>&1 & sp=$!
load
for _ in $(seq 1 300); do curl -s 127.0.0.1:9190/status | grep -q '"lag_records":0' && break; sleep 0.1; done
curl -s 127.0.0.1:9190/status | grep -o '"replication":{[^}]*}'
