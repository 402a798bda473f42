# Shared by the maintainer scripts (scripts/package pastes it into each: postrm runs
# after the package's files are gone). Installs and removes the sshd drop-in that
# registers the `tether` subsystem, checking sshd's whole configuration with `sshd -t`
# before anything reloads sshd, and putting everything back if the check fails: sshd is
# never left with a configuration it would refuse at its next start.

DROPIN=/etc/ssh/sshd_config.d/tether.conf
SHIPPED=/usr/share/tether/sshd_config.d/tether.conf
SSHD=/usr/sbin/sshd
SUBSYSTEM=/usr/libexec/tether-subsystem

say() { echo "tether: $*" >&2; }

# Whether sshd accepts its configuration (true when there is no sshd to ask: then nothing
# reads the drop-in until openssh-server is installed, and its own scripts check).
sshd_accepts() {
    [ -x "$SSHD" ] && [ -f /etc/ssh/sshd_config ] || return 0
    mkdir -p /run/sshd 2>/dev/null || true  # sshd -t wants its privilege separation directory
    if errors=$("$SSHD" -t 2>&1); then return 0; fi
    printf '%s\n' "$errors" >&2
    return 1
}

# Reloads a running sshd so new connections see the change: through systemd when it is
# PID 1, else by the pid file when one names a live sshd. Says so when none runs (a
# container, sshd stopped) instead of failing.
reload_sshd() {
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        for unit in ssh.service sshd.service; do
            if systemctl is-active --quiet "$unit" 2>/dev/null; then
                systemctl reload "$unit" && say "reloaded sshd (systemctl reload $unit)"
                return 0
            fi
        done
    elif [ -r /run/sshd.pid ]; then
        pid=$(cat /run/sshd.pid 2>/dev/null || true)
        case "$pid" in *[!0-9]*|'') pid="" ;; esac
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -HUP "$pid" && say "reloaded sshd (SIGHUP to pid $pid)"
            return 0
        fi
    fi
    say "sshd is not running: the change applies when it starts"
}

install_dropin() {
    [ -f "$SHIPPED" ] || { say "$SHIPPED is missing; reinstall the package"; return 1; }
    if [ -f "$DROPIN" ] && cmp -s "$SHIPPED" "$DROPIN"; then
        return 0  # unchanged (an upgrade that kept it): nothing to validate or reload
    fi
    if ! sshd_accepts; then
        say "sshd already refuses its configuration (sshd -t, above): not adding the tether subsystem; fix it, then run: dpkg-reconfigure tether"
        return 0
    fi
    backup=""
    if [ -f "$DROPIN" ]; then
        backup=$(mktemp)
        cp -p "$DROPIN" "$backup"
    fi
    mkdir -p "$(dirname "$DROPIN")"
    install -m 0644 "$SHIPPED" "$DROPIN.new"  # not *.conf: sshd never reads it half-written
    mv -f "$DROPIN.new" "$DROPIN"
    if ! sshd_accepts; then
        if [ -n "$backup" ]; then mv -f "$backup" "$DROPIN"; else rm -f "$DROPIN"; fi
        say "sshd -t refused the configuration with $DROPIN (above), so it was taken back and sshd was not reloaded."
        say "Another 'Subsystem tether' line (sshd_config or sshd_config.d) conflicts? Remove it, then: dpkg --configure -a"
        return 1
    fi
    [ -z "$backup" ] || rm -f "$backup"
    if [ -x "$SSHD" ] && ! "$SSHD" -T -C user=root,host=localhost,addr=127.0.0.1 2>/dev/null | grep -qi "^subsystem tether $SUBSYSTEM\$"; then
        say "warning: sshd's effective configuration does not show 'Subsystem tether $SUBSYSTEM': /etc/ssh/sshd_config must 'Include /etc/ssh/sshd_config.d/*.conf' before any Subsystem line (Debian's does)"
    fi
    say "installed $DROPIN (sshd -t: OK)"
    reload_sshd
}

remove_dropin() {
    [ -e "$DROPIN" ] || return 0
    held=$(mktemp)
    mv -f "$DROPIN" "$held"
    if ! sshd_accepts; then
        # Refused without our file. If it is refused with it too, the fault is elsewhere
        # and removing ours changes nothing sshd would accept; otherwise put it back.
        mv -f "$held" "$DROPIN"
        if sshd_accepts; then
            say "sshd -t refuses the configuration without $DROPIN (above): kept it, nothing reloaded"
            return 1
        fi
        mv -f "$DROPIN" "$held"
        rm -f "$held"
        say "removed $DROPIN; sshd refuses its configuration for another reason (sshd -t, above): not reloading"
        return 0
    fi
    rm -f "$held"
    say "removed $DROPIN (sshd -t: OK)"
    reload_sshd
}
