#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for tests/cluster (make test-slurm).
#
#   tests/cluster/cluster.sh start    install (Debian, root) and start munge, MariaDB,
#                                     slurmdbd, slurmctld and slurmd; idempotent
#   tests/cluster/cluster.sh stop     stop exactly the daemons 'start' started, by the
#                                     process ids it saved
#   tests/cluster/cluster.sh status   what runs
#
# Accounting (slurmdbd + MariaDB) is on because the Snakemake slurm executor reads job
# states with sacct. State, logs and pid files live in $AVSEP_SLURM_STATE
# (default /tmp/avsep-slurm). The configs go to /etc/slurm, marked as ours; a config there
# that is not ours is never overwritten.
set -euo pipefail

STATE=${AVSEP_SLURM_STATE:-/tmp/avsep-slurm}
PIDS=$STATE/pids
CLUSTER=avsep
ACCOUNT=avsep
PARTITION=main
HOST=$(hostname)
MARK="# written by avsep tests/cluster/cluster.sh"

say() { echo "cluster: $*" >&2; }
die() { say "$*"; exit 1; }

alive() { [[ -f $PIDS/$1 ]] && kill -0 "$(cat "$PIDS/$1")" 2>/dev/null; }

wait_for() {  # wait_for <seconds> <what> <command...>
    local limit=$1 what=$2; shift 2
    for _ in $(seq "$limit"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    die "$what did not come up in ${limit}s (logs in $STATE)"
}

install() {
    local need=()
    for bin in slurmctld slurmd slurmdbd sbatch munged mysqld_safe; do
        command -v "$bin" >/dev/null || need+=("$bin")
    done
    [[ ${#need[@]} -eq 0 ]] && return
    [[ $(id -u) -eq 0 ]] || die "missing ${need[*]}, and installing needs root"
    command -v apt-get >/dev/null || die "missing ${need[*]}, and this is not Debian (no apt-get)"
    say "installing slurm, munge and mariadb (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        slurmctld slurmd slurm-client munge slurmdbd mariadb-server >"$STATE/apt.log" 2>&1 \
        || { tail -n 20 "$STATE/apt.log"; die "apt-get failed"; }
}

write_conf() {  # write_conf <path> <mode>; content on stdin
    local path=$1 mode=$2
    if [[ -f $path ]] && ! grep -qF "$MARK" "$path"; then
        die "$path exists and was not written by this script; not touching it"
    fi
    { echo "$MARK"; cat; } >"$path"
    chmod "$mode" "$path"
}

start_munge() {
    alive munged && return
    if [[ ! -f /etc/munge/munge.key ]]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge && chown munge:munge /run/munge
    munged --force --pid-file="$STATE/munged.pid" --log-file="$STATE/munged.log"
    wait_for 10 munged test -s "$STATE/munged.pid"
    cp "$STATE/munged.pid" "$PIDS/munged"
}

start_mariadb() {
    alive mysqld || {
        mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
        # The server runs as mysql: its pid and log go where that user may write.
        rm -f /run/mysqld/avsep.pid
        mysqld_safe --user=mysql --pid-file=/run/mysqld/avsep.pid --log-error=/run/mysqld/avsep.log \
            >/dev/null 2>&1 &
        echo $! >"$PIDS/mysqld_safe"
        wait_for 60 "mariadb (log: /run/mysqld/avsep.log)" mysqladmin ping
        wait_for 10 "mariadb pid file" test -s /run/mysqld/avsep.pid
        cp /run/mysqld/avsep.pid "$PIDS/mysqld"
    }
    mysql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
              CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'avsep-test';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
}

write_configs() {
    mkdir -p /etc/slurm "$STATE/spool/ctld" "$STATE/spool/d"
    local mem
    mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    write_conf /etc/slurm/slurmdbd.conf 600 <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=avsep-test
StorageLoc=slurm_acct_db
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/slurmdbd.log
EOF
    write_conf /etc/slurm/slurm.conf 644 <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
MinJobAge=600
NodeName=$HOST CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
}

start_slurm() {
    alive slurmdbd || {
        slurmdbd
        wait_for 30 slurmdbd test -s "$STATE/slurmdbd.pid"
        cp "$STATE/slurmdbd.pid" "$PIDS/slurmdbd"
        wait_for 30 "slurmdbd (accounting)" sacctmgr -n show cluster
    }
    local fresh=0
    alive slurmctld || {
        slurmctld
        wait_for 30 slurmctld test -s "$STATE/slurmctld.pid"
        cp "$STATE/slurmctld.pid" "$PIDS/slurmctld"
        fresh=1
    }
    if ! sacctmgr -n -P show user root withassoc format=account | grep -qx "$ACCOUNT"; then
        sacctmgr -i add cluster "$CLUSTER" >/dev/null || true
        sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" >/dev/null || true
        sacctmgr -i add user root account="$ACCOUNT" cluster="$CLUSTER" >/dev/null || true
        fresh=1
    fi
    if [[ $fresh -eq 1 ]]; then  # slurmctld registers the cluster with slurmdbd on start
        kill "$(cat "$PIDS/slurmctld")"
        for _ in $(seq 30); do alive slurmctld || break; sleep 1; done
        rm -f "$STATE/slurmctld.pid"
        slurmctld
        wait_for 30 slurmctld test -s "$STATE/slurmctld.pid"
        cp "$STATE/slurmctld.pid" "$PIDS/slurmctld"
    fi
    alive slurmd || {
        slurmd
        wait_for 30 slurmd test -s "$STATE/slurmd.pid"
        cp "$STATE/slurmd.pid" "$PIDS/slurmd"
    }
    wait_for 60 "node $HOST (idle)" bash -c "sinfo -h -N -o %t | grep -Eq '^(idle|mix|alloc)'"
}

stop() {
    for name in slurmd slurmctld slurmdbd mysqld mysqld_safe munged; do
        if alive "$name"; then
            local pid
            pid=$(cat "$PIDS/$name")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
            say "stopped $name ($pid)"
        fi
        rm -f "$PIDS/$name"
    done
}

status() {
    for name in munged mysqld slurmdbd slurmctld slurmd; do
        if alive "$name"; then echo "$name running ($(cat "$PIDS/$name"))"; else echo "$name stopped"; fi
    done
    alive slurmctld && sinfo || true
}

mkdir -p "$PIDS"
case ${1:-} in
    start)
        install
        start_munge
        start_mariadb
        write_configs
        start_slurm
        echo "account=$ACCOUNT partition=$PARTITION"
        ;;
    stop) stop ;;
    status) status ;;
    *) die "usage: $0 start|stop|status" ;;
esac
