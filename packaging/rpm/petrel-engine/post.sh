# petrel-engine %post ($1: 1 install, 2 upgrade). On upgrade a running engine is left alone
# (a restart during trading is the operator's or the rollout's decision); say one is pending.
systemd-sysusers petrel-engine.conf || :
systemd-tmpfiles --create petrel-engine.conf || :
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
fi
if [ "$1" -eq 1 ]; then
    systemctl enable petrel-engine.service >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        if [ ! -e /etc/petrel/users.toml ]; then
            echo "petrel-engine: /etc/petrel/users.toml does not exist yet: create it (see /usr/share/doc/petrel-engine/OPERATIONS.md), then run: systemctl start petrel-engine.service"
        elif ! systemctl start petrel-engine.service; then
            echo "petrel-engine: petrel-engine.service did not start: see journalctl -u petrel-engine.service" >&2
        fi
    fi
elif [ -d /run/systemd/system ] && systemctl --quiet is-active petrel-engine.service; then
    echo "petrel-engine: upgraded; the running engine still runs the old version."
    echo "petrel-engine: RESTART PENDING: run 'systemctl restart petrel-engine.service' when trading allows."
fi
