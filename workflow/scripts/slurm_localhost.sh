#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for `snakemake --profile profiles/slurm`
# and tests/test_slurm.py. Run as root; idempotent (a second run checks, fixes and reuses).
#
#   sudo workflow/scripts/slurm_localhost.sh
#
# Installs Debian's slurm-wlm, munge, slurmdbd and mariadb-server (quietly, noninteractive),
# writes /etc/slurm/slurm.conf for one node = this host (CPUs and memory read by `slurmd -C`,
# no cgroups: proctrack/linuxproc, task/none), starts munged, mariadbd, slurmdbd, slurmctld and
# slurmd as background daemons (no systemd needed), and waits until `sinfo` shows the node idle.
#
# Why slurmdbd + MariaDB: the pinned executor plugin (snakemake-executor-plugin-slurm 1.4.0, the
# newest release compatible with the project's pins) asks `sacct` for job states, and in SLURM
# 22.05 `sacct` only works with AccountingStorageType=accounting_storage/slurmdbd ("Slurm
# accounting storage is disabled" otherwise); slurmdbd in turn stores only to MySQL/MariaDB.
#
# Prints one line: "slurm_localhost: ok: ..." (exit 0) or "slurm_localhost: FAILED: ..." (exit 1).
# Details go to $SLURM_LOCALHOST_LOG (default /var/log/slurm/slurm_localhost.log).
set -uo pipefail

CLUSTER="${SLURM_LOCALHOST_CLUSTER:-emergence}"
PARTITION="${SLURM_LOCALHOST_PARTITION:-main}"
LOG="${SLURM_LOCALHOST_LOG:-/var/log/slurm/slurm_localhost.log}"
WAIT_S="${SLURM_LOCALHOST_WAIT_S:-90}"
DB_NAME="slurm_acct_db"
DB_SOCKET="/run/mysqld/mysqld.sock"
export PATH="/usr/sbin:/sbin:$PATH"

fail() {
    echo "slurm_localhost: FAILED: $* (details: $LOG)" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || { echo "slurm_localhost: FAILED: must run as root" >&2; exit 1; }
mkdir -p "$(dirname "$LOG")" 2>/dev/null || { echo "slurm_localhost: FAILED: cannot create $(dirname "$LOG")" >&2; exit 1; }
exec 3>>"$LOG" || { echo "slurm_localhost: FAILED: cannot write $LOG" >&2; exit 1; }
log() { echo "$(date '+%F %T') $*" >&3; }
run() { log "+ $*"; "$@" >&3 2>&1; }
log "=== slurm_localhost.sh start"

# Wait up to $WAIT_S seconds for a command to succeed.
wait_for() {
    local deadline=$((SECONDS + WAIT_S))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 1
    done
}

# Is the daemon whose pid file is $1 alive?
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Stop the daemon of pid file $1 (only that process), waiting until it has gone.
stop_pidfile() {
    local pidfile="$1" pid
    alive "$pidfile" || return 0
    pid="$(cat "$pidfile")"
    log "stopping pid $pid ($pidfile)"
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 "$WAIT_S"); do kill -0 "$pid" 2>/dev/null || return 0; sleep 1; done
    kill -9 "$pid" 2>/dev/null
    sleep 1
}

# Write $2 to file $1 with mode $3 if its content differs; returns 0 when the file changed.
install_file() {
    local path="$1" content="$2" mode="$3"
    if [ -f "$path" ] && [ "$(cat "$path")" == "$content" ]; then
        chmod "$mode" "$path"
        return 1
    fi
    log "writing $path"
    printf '%s\n' "$content" >"$path" && chmod "$mode" "$path" || fail "cannot write $path"
    return 0
}

# --- 1. packages ---------------------------------------------------------------------------------
PACKAGES=(slurm-wlm munge slurmdbd mariadb-server)
missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    run apt-get update -qq || fail "apt-get update failed"
    run apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}" \
        || fail "apt-get install ${missing[*]} failed"
fi
for tool in munged munge unmunge mariadbd mariadb slurmdbd slurmctld slurmd sinfo sbatch sacct sacctmgr scontrol; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool not found after installing ${PACKAGES[*]}"
done

# --- 2. munge ------------------------------------------------------------------------------------
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null 2>&1; then
        run mungekey --create --force --keyfile=/etc/munge/munge.key || fail "mungekey could not create a key"
    else
        run dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 || fail "could not create a munge key"
    fi
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge /var/log/munge
chmod 0400 /etc/munge/munge.key
chmod 0755 /run/munge
munge_works() { munge -n </dev/null | unmunge >/dev/null; }
if ! munge_works >/dev/null 2>&1; then
    stop_pidfile /run/munge/munged.pid
    run runuser -u munge -- munged --force || fail "munged did not start"
    wait_for munge_works || fail "munged does not answer (munge -n | unmunge)"
fi
log "munge ok"

# --- 3. MariaDB, for slurmdbd --------------------------------------------------------------------
mkdir -p /run/mysqld /var/log/mysql && chown mysql:mysql /run/mysqld /var/log/mysql
[ -d /var/lib/mysql/mysql ] || run mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db \
    || fail "mariadb-install-db failed"
db_works() { mariadb --socket="$DB_SOCKET" -uroot -e "SELECT 1"; }
if ! db_works >/dev/null 2>&1; then
    stop_pidfile /run/mysqld/mysqld.pid
    log "starting mariadbd"
    # Local socket only (no TCP port), a small buffer pool: this database holds only job records.
    setsid mariadbd --user=mysql --datadir=/var/lib/mysql --socket="$DB_SOCKET" --pid-file=/run/mysqld/mysqld.pid \
        --skip-networking --innodb-buffer-pool-size=64M --log-error=/var/log/mysql/error.log </dev/null >/dev/null 2>&1 &
    wait_for db_works || fail "mariadbd did not start (see /var/log/mysql/error.log)"
fi
log "mariadb ok"

# --- 4. slurmdbd ---------------------------------------------------------------------------------
# Reuse the database password of an earlier run, otherwise make one (kept only in slurmdbd.conf, mode 600).
DB_PASS="$(sed -n 's/^StoragePass=//p' /etc/slurm/slurmdbd.conf 2>/dev/null | head -n 1)"
[ -n "$DB_PASS" ] || DB_PASS="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mariadb --socket="$DB_SOCKET" -uroot >&3 2>&1 <<SQL || fail "cannot create the slurm database user in MariaDB"
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB_NAME.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL

mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
SLURMDBD_CONF="# Written by workflow/scripts/slurm_localhost.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=/run/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=$DB_NAME"
install_file /etc/slurm/slurmdbd.conf "$SLURMDBD_CONF" 600 && stop_pidfile /run/slurmdbd.pid
chown root:root /etc/slurm/slurmdbd.conf

# --- 5. slurm.conf: one node, this host ----------------------------------------------------------
# Daemons talk over 127.0.0.1, so the host name need not resolve to a reachable address.
NODE="$(hostname -s)"
[ -n "$NODE" ] || fail "hostname -s is empty"
HARDWARE="$(slurmd -C 2>>"$LOG" | head -n 1)"
CPUS="$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$HARDWARE")"
MEMORY="$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$HARDWARE")"
[ -n "$CPUS" ] || CPUS="$(nproc)"
[ -n "$MEMORY" ] || MEMORY="$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)"
[ "${CPUS:-0}" -gt 0 ] && [ "${MEMORY:-0}" -gt 0 ] || fail "cannot read CPUs/memory (slurmd -C: $HARDWARE)"
# Sockets/cores/threads exactly as slurmd sees them, so that the node does not drain on a mismatch.
TOPOLOGY="$(grep -o 'Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*' <<<"$HARDWARE")"
SLURM_CONF="# Written by workflow/scripts/slurm_localhost.sh: one node, this host.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# no cgroups
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
# job accounting, for sacct (the executor plugin's status checks)
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS ${TOPOLOGY:+$TOPOLOGY }RealMemory=$MEMORY State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP"
if install_file /etc/slurm/slurm.conf "$SLURM_CONF" 644; then
    stop_pidfile /run/slurmd.pid
    stop_pidfile /run/slurmctld.pid
fi

# --- 6. daemons ----------------------------------------------------------------------------------
if ! alive /run/slurmdbd.pid; then
    run slurmdbd || fail "slurmdbd did not start (see /var/log/slurm/slurmdbd.log)"
fi
wait_for sacctmgr -n list cluster || fail "slurmdbd does not answer (sacctmgr list cluster; see /var/log/slurm/slurmdbd.log)"
if ! sacctmgr -n -P list cluster format=cluster 2>>"$LOG" | grep -qx "$CLUSTER"; then
    run sacctmgr -i add cluster "$CLUSTER" || fail "sacctmgr could not add cluster $CLUSTER"
fi
if ! alive /run/slurmctld.pid; then
    run slurmctld || fail "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
fi
wait_for scontrol ping || fail "slurmctld does not answer (scontrol ping; see /var/log/slurm/slurmctld.log)"
if ! alive /run/slurmd.pid; then
    run slurmd || fail "slurmd did not start (see /var/log/slurm/slurmd.log)"
fi

# idle; or, when this script is rerun while jobs run, busy but up
node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n 1; }
node_up() { case "$(node_state)" in idle | mixed | allocated | completing) return 0 ;; *) return 1 ;; esac; }
if ! wait_for node_up; then
    # a node left down/drained by an earlier run comes back once resumed
    case "$(node_state)" in
        down* | drain* | fail*) run scontrol update NodeName="$NODE" State=RESUME ;;
    esac
    wait_for node_up || fail "node $NODE is '$(node_state)', not idle (sinfo; see /var/log/slurm/slurmd.log)"
fi
wait_for sacct -n -X || fail "sacct does not work (see /var/log/slurm/slurmdbd.log)"

log "=== ok"
echo "slurm_localhost: ok: node $NODE $(node_state) in partition $PARTITION ($CPUS CPUs, $MEMORY MB), cluster $CLUSTER, accounting via slurmdbd"
