# petrel-tuner %post ($1: 1 install, 2 upgrade): enable the boot-time apply and the drift-check
# timer on install. Installing does not change the host: the profile is applied at the next
# boot, or now with `systemctl start petrel-tuner` after reviewing `petrel-tuner plan`.
systemd-tmpfiles --create petrel-tuner.conf || :
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
fi
if [ "$1" -eq 1 ]; then
    systemctl enable petrel-tuner.service petrel-tuner-verify.timer >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        systemctl start petrel-tuner-verify.timer || :
    fi
    echo "petrel-tuner: review 'petrel-tuner plan', then 'systemctl start petrel-tuner' to apply now (it applies at every boot)."
fi
