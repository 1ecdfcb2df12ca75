#!/usr/bin/env bash
# benches/standby_latency.sh STANDBY RATE: petrel-load against config/bench.toml with no standby
# ("none"), or with a hot standby on loopback and replication.ack = "standby" or "local".
# Build first: cargo build --release -p petrel-engine -p petrel-benches. Prints petrel-load's
# table (engine, echo, durable write, in engine). Figures: docs/PERFORMANCE.md, "Hot standby".
set -eu
mode=$1; rate=$2
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
d=$(mktemp -d "$root/target/standby-latency.XXXXXX")
trap 'kill $pp ${sp:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$d"' EXIT
head -c 32 /dev/urandom | base64 > "$d/secret"; chmod 600 "$d/secret"
. "$root/benches/standby_pair.sh"
standby_config "$d/p" primary 127.0.0.1:15400 127.0.0.1:15401 127.0.0.1:15100 127.0.0.1:9190 "$mode" "$d/secret" "$root"
standby_config "$d/s" standby 127.0.0.1:15401 127.0.0.1:15400 127.0.0.1:15102 127.0.0.1:9192 "$mode" "$d/secret" "$root"
target/release/petrel-engine run --config "$d/p/engine.toml" > "$d/p.log" 2>&1 & pp=$!
if [ "$mode" != none ]; then
  target/release/petrel-engine run --config "$d/s/engine.toml" > "$d/s.log" 2>&1 & sp=$!
fi
for _ in $(seq 1 150); do grep -q "ready: gateway" "$d/p.log" && break; sleep 0.2; done
if [ "$mode" != none ]; then
  for _ in $(seq 1 150); do curl -s 127.0.0.1:9190/status | grep -q '"connected":true' && break; sleep 0.2; done
fi
target/release/petrel-load bench --target 127.0.0.1:15100 --admin 127.0.0.1:9190 --rate "$rate" \
  --duration-s 5 --warmup-s 1 --sessions 4
