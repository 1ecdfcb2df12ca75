# petrel-tuner %postun: the undo state in /var/lib/petrel/tuner is kept (the only record of the
# host's values before tuning).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
fi
