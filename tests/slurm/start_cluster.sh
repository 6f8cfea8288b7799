#!/usr/bin/env bash
# Start a real one-node SLURM cluster (munged + slurmctld + slurmd) on this machine,
# for CI tests of profiles/slurm. Debian/Ubuntu, as root. Idempotent: a cluster
# started earlier from the same directory is stopped first.
#
#   tests/slurm/start_cluster.sh          # installs packages if needed, starts, smoke-tests
#   . "$SLURM_TEST_DIR/env"               # exports SLURM_CONF for sinfo/sbatch/snakemake
#   tests/slurm/stop_cluster.sh           # stops the daemons by their recorded PIDs
#
# Environment (all optional):
#   SLURM_TEST_DIR        state, spool, logs, config   [/tmp/genomamba-slurm]
#   SLURM_TEST_PARTITION  the partition's name          [debug]
#   SLURM_TEST_CTLD_PORT / SLURM_TEST_SLURMD_PORT        [6817 / 6818]
#   SLURM_TEST_TIMEOUT    seconds to wait for the node and for the smoke job [60]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${SLURM_TEST_DIR:-/tmp/genomamba-slurm}"
PARTITION="${SLURM_TEST_PARTITION:-debug}"
CTLD_PORT="${SLURM_TEST_CTLD_PORT:-6817}"
SLURMD_PORT="${SLURM_TEST_SLURMD_PORT:-6818}"
TIMEOUT="${SLURM_TEST_TIMEOUT:-60}"
CONF="$DIR/etc/slurm.conf"
MUNGE_SOCKET="$DIR/munge/munge.socket.2"

log() { echo "start_cluster: $*" >&2; }
die() {
    log "ERROR: $*"
    for f in "$DIR"/log/slurmctld.log "$DIR"/log/slurmd.*.log "$DIR"/munge/munged.log; do
        [ -f "$f" ] && { echo "---- tail $f" >&2; tail -n 25 "$f" >&2; }
    done
    [ -f "$DIR/pids" ] && "$here/stop_cluster.sh" || true
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root (daemons run as root, packages are installed with apt-get)"

# ---------------------------------------------------------------- packages
need=()
for c in munged:munge slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client; do
    command -v "${c%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${c%%:*}" ] || need+=("${c#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    # keep the packages' init scripts from starting system daemons with no config
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -q --no-install-recommends "${need[@]}" \
        || { apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"; }; } \
        > /tmp/genomamba-slurm-apt.log 2>&1 \
        || { if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
             tail -20 /tmp/genomamba-slurm-apt.log >&2; die "apt-get install ${need[*]} failed"; }
    if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
export PATH="$PATH:/usr/sbin:/sbin"

# ------------------------------------------------- stop an earlier instance
if [ -f "$DIR/pids" ]; then
    log "stopping the cluster started earlier from $DIR"
    "$here/stop_cluster.sh" || true
fi
rm -rf "$DIR/state" "$DIR/spool" "$DIR/run" "$DIR/log" "$DIR/munge" "$DIR/smoke"
mkdir -p "$DIR"/{etc,state,spool/slurmd,run,log,munge,smoke}
chmod 755 "$DIR" "$DIR/munge"
: > "$DIR/pids"

# ------------------------------------------------------------------ munge
if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    install -d -m 700 -o munge -g munge /etc/munge
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /var/lib/munge /var/log/munge
chown munge:munge "$DIR/munge"
# our own munged on a private socket: no clash with a system munged
setpriv --reuid=munge --regid=munge --clear-groups -- munged \
    --socket="$MUNGE_SOCKET" --pid-file="$DIR/munge/munged.pid" \
    --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed" \
    </dev/null >>"$DIR/log/munged.out" 2>&1 \
    || { cat "$DIR/log/munged.out" >&2; die "munged failed to start"; }
for _ in $(seq 50); do [ -s "$DIR/munge/munged.pid" ] && [ -S "$MUNGE_SOCKET" ] && break; sleep 0.1; done
[ -s "$DIR/munge/munged.pid" ] || die "munged wrote no pid file"
echo "munged $(cat "$DIR/munge/munged.pid")" >> "$DIR/pids"
munge -S "$MUNGE_SOCKET" -n </dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null \
    || die "munge round trip failed (munge -S $MUNGE_SOCKET -n | unmunge -S $MUNGE_SOCKET)"

# ------------------------------------------------------------- slurm.conf
NODE="$(hostname -s 2>/dev/null || uname -n)"; NODE="${NODE%%.*}"
[ -n "$NODE" ] || die "hostname -s is empty"
hw="$(slurmd -C | head -1)"   # NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$hw"; }
CPUS="$(field CPUs)"; BOARDS="$(field Boards)"; SOCKETS="$(field SocketsPerBoard)"
CORES="$(field CoresPerSocket)"; THREADS="$(field ThreadsPerCore)"; MEM="$(field RealMemory)"
[ -n "$CPUS" ] && [ -n "$MEM" ] || die "cannot parse 'slurmd -C': $hw"
MEM=$(( MEM * 95 / 100 ))     # a little below the real size, so the node is never drained for low memory
sed -e "s|@DIR@|$DIR|g" -e "s|@NODE@|$NODE|g" -e "s|@PARTITION@|$PARTITION|g" \
    -e "s|@CTLD_PORT@|$CTLD_PORT|g" -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" \
    -e "s|@MUNGE_SOCKET@|$MUNGE_SOCKET|g" -e "s|@CPUS@|$CPUS|g" -e "s|@BOARDS@|${BOARDS:-1}|g" \
    -e "s|@SOCKETS@|${SOCKETS:-1}|g" -e "s|@CORES@|${CORES:-$CPUS}|g" -e "s|@THREADS@|${THREADS:-1}|g" \
    -e "s|@MEM@|$MEM|g" "$here/slurm.conf.template" > "$CONF"
# an empty cgroup.conf next to slurm.conf: nothing may try the host's cgroup config
printf 'CgroupPlugin=autodetect\nIgnoreSystemd=yes\n' > "$DIR/etc/cgroup.conf"
# Also link it at SLURM's default path /etc/slurm/slurm.conf: the executor's in-job
# helper (snakemake-executor-plugin-slurm-jobstep) drops SLURM_CONF from the environment
# of the `srun` it runs inside each job, so srun only finds the default path.
if [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$CONF" ]; then
    :
elif [ -e /etc/slurm/slurm.conf ] || [ -L /etc/slurm/slurm.conf ]; then
    die "/etc/slurm/slurm.conf exists and is not ours: this machine has its own SLURM setup; refusing to touch it"
else
    mkdir -p /etc/slurm && ln -s "$CONF" /etc/slurm/slurm.conf
fi
export SLURM_CONF="$CONF"
printf 'export SLURM_CONF=%q\n' "$CONF" > "$DIR/env"
log "node $NODE: $CPUS CPUs, ${MEM} MB, partition $PARTITION, config $CONF"

# -------------------------------------------------------------- daemons
slurmctld -c -f "$CONF" </dev/null >"$DIR/log/slurmctld.out" 2>&1 \
    || { cat "$DIR/log/slurmctld.out" >&2; die "slurmctld -c -f $CONF failed"; }
for _ in $(seq 50); do [ -s "$DIR/run/slurmctld.pid" ] && break; sleep 0.1; done
[ -s "$DIR/run/slurmctld.pid" ] || die "slurmctld wrote no pid file"
echo "slurmctld $(cat "$DIR/run/slurmctld.pid")" >> "$DIR/pids"

slurmd -f "$CONF" -N "$NODE" </dev/null >"$DIR/log/slurmd.out" 2>&1 \
    || { cat "$DIR/log/slurmd.out" >&2; die "slurmd -f $CONF -N $NODE failed"; }
for _ in $(seq 50); do [ -s "$DIR/run/slurmd.$NODE.pid" ] && break; sleep 0.1; done
[ -s "$DIR/run/slurmd.$NODE.pid" ] || die "slurmd wrote no pid file"
echo "slurmd $(cat "$DIR/run/slurmd.$NODE.pid")" >> "$DIR/pids"

# ------------------------------------------------------ wait for the node
t0=$SECONDS; state=""
while [ $(( SECONDS - t0 )) -lt "$TIMEOUT" ]; do
    state="$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -1 || true)"
    case "$state" in
        idle|mixed|allocated) break ;;
        down*|drain*|unknown*|"") [ $(( SECONDS - t0 )) -gt 5 ] && scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
case "$state" in idle|mixed|allocated) ;; *) sinfo -N -l >&2 || true; die "node $NODE not idle after ${TIMEOUT}s (state '$state')" ;; esac
log "node $NODE is $state after $(( SECONDS - t0 ))s"

# ------------------------------------------------------------- smoke job
jid="$(sbatch --parsable -p "$PARTITION" -J smoke -o "$DIR/smoke/%j.out" -t 1 --wrap 'echo "smoke ok on $(hostname -s) as job $SLURM_JOB_ID"')" \
    || die "sbatch of the smoke job failed"
jid="${jid%%;*}"
t0=$SECONDS; st=""
while [ $(( SECONDS - t0 )) -lt "$TIMEOUT" ]; do
    st="$(squeue -h -j "$jid" --states=all -o %T 2>/dev/null | head -1 || true)"
    case "$st" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL) break ;; esac
    sleep 1
done
[ "$st" = COMPLETED ] || { scontrol show job "$jid" >&2 || true; die "smoke job $jid ended as '${st:-unknown}' (waited ${TIMEOUT}s)"; }
grep -q "smoke ok" "$DIR/smoke/$jid.out" || die "smoke job $jid wrote no output"
grep -q "JobId=$jid " "$DIR/log/jobcomp.txt" 2>/dev/null || die "smoke job $jid is not in the jobcomp log $DIR/log/jobcomp.txt"
log "smoke job $jid COMPLETED after $(( SECONDS - t0 ))s: $(cat "$DIR/smoke/$jid.out")"
log "cluster up; use it with: . $DIR/env   (SLURM_CONF=$CONF)"
