# Sourced by benches/standby_latency.sh and benches/standby_catchup.sh: writes one engine's
# configuration for a pair on loopback, config/bench.toml with its own journal, snapshots,
# gateway and admin addresses, without its market-data feed (measured on its own: PERFORMANCE.md,
# "Market-data feed") and, unless ACK is "none", a [replication] section.
# standby_config DIR ROLE LISTEN PEER GATEWAY ADMIN ACK SECRET ROOT
standby_config() {
  mkdir -p "$1"
  sed -e "s|dir = \"../var/bench/journal\"|dir = \"$1/journal\"|" -e "s|dir = \"../var/bench/snapshots\"|dir = \"$1/snapshots\"|" \
      -e "s|users_file = \"bench-users.toml\"|users_file = \"$9/config/bench-users.toml\"|" \
      -e "s|listen = \"127.0.0.1:15100\"|listen = \"$5\"|" -e "s|listen = \"127.0.0.1:9190\"|listen = \"$6\"|" \
      -e '/^# Market-data feed:/,$d' \
      "$9/config/bench.toml" > "$1/engine.toml"
  if [ "$7" != none ]; then
    printf '\n[replication]\nrole = "%s"\ncluster_id = "bench"\nsecret_file = "%s"\nlisten = "%s"\npeer = "%s"\nack = "%s"\n' \
      "$2" "$8" "$3" "$4" "$7" >> "$1/engine.toml"
  fi
}
