# petrel-engine %postun ($1: 0 erase, 1 upgrade): the journal and snapshots under
# /var/lib/petrel (the audit trail) and the petrel user are never deleted.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
fi
if [ "$1" -eq 0 ]; then
    echo "petrel-engine: erased; /var/lib/petrel (journal, snapshots) and the petrel user are kept: archive them, then delete them by hand if they are no longer needed."
fi
