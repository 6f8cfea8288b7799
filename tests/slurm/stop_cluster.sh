#!/usr/bin/env bash
# Stop the cluster started by tests/slurm/start_cluster.sh: cancels its jobs, then stops
# slurmd, slurmctld and munged by the PIDs recorded in $SLURM_TEST_DIR/pids (and only
# those, only while the PID still runs the same program). Safe to call twice.
set -uo pipefail
DIR="${SLURM_TEST_DIR:-/tmp/genomamba-slurm}"
export PATH="$PATH:/usr/sbin:/sbin"
log() { echo "stop_cluster: $*" >&2; }

[ -f "$DIR/pids" ] || { log "nothing to stop ($DIR/pids missing)"; exit 0; }

if [ -f "$DIR/etc/slurm.conf" ] && command -v scancel >/dev/null 2>&1; then
    SLURM_CONF="$DIR/etc/slurm.conf" timeout 10 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
    sleep 1
fi

alive() { # pid name: true while pid runs program name
    [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}
# stop in reverse start order: slurmd, slurmctld, munged
tac "$DIR/pids" | while read -r name pid; do
    [ -n "${pid:-}" ] || continue
    if alive "$pid" "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do alive "$pid" "$name" || break; sleep 0.1; done
        if alive "$pid" "$name"; then
            log "$name ($pid) ignored SIGTERM for 10s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $name ($pid)"
    fi
done
# job step daemons of this cluster left over after a SIGKILL of slurmd
# (slurmd was started with SLURM_CONF=$DIR/etc/slurm.conf, which its step daemons inherit)
for c in /proc/[0-9]*/comm; do
    [ "$(cat "$c" 2>/dev/null)" = slurmstepd ] || continue
    p="${c#/proc/}"; p="${p%/comm}"
    tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "SLURM_CONF=$DIR/etc/slurm.conf" \
        && kill -KILL "$p" 2>/dev/null || true
done
rm -f "$DIR/pids"
# the link start_cluster.sh made at SLURM's default config path (only if it is ours)
if [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$DIR/etc/slurm.conf" ]; then
    rm -f /etc/slurm/slurm.conf
fi
exit 0
