# petrel-tuner %preun ($1: 0 erase, 1 upgrade). The applied tuning stays until the next boot or
# `petrel-tuner rollback`, which restores the values recorded in /var/lib/petrel/tuner.
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable --now petrel-tuner-verify.timer petrel-tuner.service >/dev/null 2>&1 || :
    if [ -e /var/lib/petrel/tuner/state.json ]; then
        echo "petrel-tuner: the host keeps the applied tuning until reboot; run 'petrel-tuner rollback' before erasing to restore the recorded values."
    fi
fi
