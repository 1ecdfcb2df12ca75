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
config() { # DIR ROLE LISTEN PEER GATEWAY ADMIN
  mkdir -p "$1"
  sed -e "s|dir = \"../var/bench/journal\"|dir = \"$1/journal\"|" -e "s|dir = \"../var/bench/snapshots\"|dir = \"$1/snapshots\"|" \
      -e "s|users_file = \"bench-users.toml\"|users_file = \"$root/config/bench-users.toml\"|" \
      -e "s|listen = \"127.0.0.1:15100\"|listen = \"$5\"|" -e "s|listen = \"127.0.0.1:9190\"|listen = \"$6\"|" \
      config/bench.toml > "$1/engine.toml"
  if [ "$mode" != none ]; then
    printf '\n[replication]\nrole = "%s"\ncluster_id = "bench"\nsecret_file = "%s"\nlisten = "%s"\npeer = "%s"\nack = "%s"\n' \
      "$2" "$d/secret" "$3" "$4" "$mode" >> "$1/engine.toml"
  fi
}
config "$d/p" primary 127.0.0.1:15400 127.0.0.1:15401 127.0.0.1:15100 127.0.0.1:9190
config "$d/s" standby 127.0.0.1:15401 127.0.0.1:15400 127.0.0.1:15102 127.0.0.1:9192
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
