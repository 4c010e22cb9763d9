#!/usr/bin/env bash
# The workflow on a real SLURM cluster: a one-node cluster on this machine, started and
# stopped by this script (CI runs it after `make test`; `make test-slurm` runs it locally).
#
#  1. install Debian's slurmctld, slurmd, slurmdbd, slurm-client, munge and mariadb-server
#     (apt; skipped when already installed);
#  2. start munged, mariadbd, slurmdbd, slurmctld and slurmd by hand (there is no systemd)
#     in a private state directory, on free ports, with their own munge socket and key. The
#     script runs in a mount namespace of its own where that directory is mounted on
#     /etc/slurm, so the daemons, the tests and every job find the configuration where a real
#     cluster keeps it, while nothing changes in /etc for the rest of the machine and other
#     SLURM or munge daemons are never touched; then it creates the cluster, an account and
#     the user's association (sacctmgr);
#  3. run tests/slurm/test_slurm_cluster.py: the demo config through
#     `snakemake --executor slurm`, checked job by job against SLURM's accounting, a job that
#     fails, a request the node can never satisfy, and one stage rerun with profiles/slurm;
#  4. stop every daemon by the pid recorded when it was started, then any process left that
#     carries this run's marker in its environment (job steps) - nothing else.
#
# Arguments go to pytest (e.g. -k failing). Needs root. Environment: PYTHON (default .venv/bin/python, with the `slurm` extra
# installed), MOBOPT_SLURM_KEEP=1 to keep the state directory (daemon logs) afterwards.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
PACKAGES=(slurmctld slurmd slurmdbd slurm-client munge mariadb-server)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)    # start order; stopped in reverse
TEST_TIMEOUT=${MOBOPT_SLURM_TEST_TIMEOUT:-1800}         # seconds for the whole pytest step

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '[slurm-test %s] %s\n' "$(date +%T)" "$*"; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root: it installs packages with apt-get and runs the SLURM daemons"
# Re-run in a private mount namespace (see 2. above); it ends with this script's last process.
if [ "${MOBOPT_SLURM_NAMESPACE:-}" != "$$" ]; then
    MOBOPT_SLURM_NAMESPACE=$$ exec unshare --mount --propagation private "$0" "$@"
fi
T_START=$(now)
declare -A TIMES=()
[ -x "$PYTHON" ] || die "no Python at $PYTHON: run 'make setup' (or set PYTHON)"
"$PYTHON" -c "import snakemake_executor_plugin_slurm" 2>/dev/null \
    || die "snakemake-executor-plugin-slurm is not installed for $PYTHON: run 'make test-slurm' (it installs the slurm extra)"

STATE=$(mktemp -d "${TMPDIR:-/tmp}/mobopt-slurm.XXXXXX")
chmod 711 "$STATE"    # munged refuses a socket whose directories others cannot traverse
mkdir -p "$STATE"/{etc,log,pids,munge,db,ctld,spool,tmp}
# Everything started from here on inherits this marker: it identifies this run's processes
# at teardown.
export MOBOPT_SLURM_TEST_RUN=$STATE
export TMPDIR=$STATE/tmp
export MOBOPT_SLURM_TIMES=$STATE/times.txt    # the tests append the time of each snakemake call
log "state directory $STATE; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------------ start / stop helpers

# start NAME COMMAND...: run a daemon in the foreground mode, as a child of this script,
# and record its pid; `stop` later signals exactly that process.
start() {
    local name=$1
    shift
    "$@" >"$STATE/log/$name.out" 2>&1 &
    echo $! >"$STATE/pids/$name"
}

alive() {    # alive PID: running and not a zombie
    local stat
    stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $stat != Z* ]]
}

stop() {    # stop NAME: TERM the recorded pid (if it is still that program), KILL after 20 s
    local name=$1 pid i
    [ -f "$STATE/pids/$name" ] || return 0
    pid=$(cat "$STATE/pids/$name")
    if alive "$pid" && [ "$(ps -o comm= -p "$pid")" = "$name" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.2; done
        if alive "$pid"; then
            log "$name (pid $pid) ignored TERM for 20 s: KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    rm -f "$STATE/pids/$name"
}

# Processes of this run still alive once the daemons are stopped (a job step, a test that
# was interrupted): found by the marker in their environment, never by name.
sweep() {
    local pid env
    for env in /proc/[0-9]*/environ; do
        pid=${env#/proc/}
        pid=${pid%/environ}
        [ "$pid" = "$$" ] && continue
        tr '\0' '\n' 2>/dev/null <"$env" | grep -qxF "MOBOPT_SLURM_TEST_RUN=$STATE" || continue
        log "stopping leftover process $pid: $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | cut -c1-120)"
        kill -KILL "$pid" 2>/dev/null || true
    done
}

teardown() {
    local rc=$? t name
    trap - EXIT INT TERM
    t=$(now)
    if [ -n "${TEST_PID:-}" ] && alive "$TEST_PID"; then    # interrupted: tests first, so nothing submits more jobs
        kill -TERM -- "-$TEST_PID" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do alive "$TEST_PID" || break; sleep 0.2; done
        kill -KILL -- "-$TEST_PID" 2>/dev/null || true
        wait "$TEST_PID" 2>/dev/null || true
    fi
    if [ -f "$STATE/pids/slurmctld" ]; then
        timeout 20 scancel --user "$(id -un)" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            [ -z "$(timeout 10 squeue -h 2>/dev/null)" ] && break
            sleep 0.4
        done
    fi
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do stop "${DAEMONS[i]}"; done
    sweep
    TIMES[teardown]=$(since "$t")
    [ -s "$MOBOPT_SLURM_TIMES" ] && sed 's/^/[slurm-test] snakemake call, /' "$MOBOPT_SLURM_TIMES"
    if [ "$rc" != 0 ]; then
        log "FAILED (exit $rc); daemon logs:"
        for f in "$STATE"/log/*; do
            [ -s "$f" ] || continue
            echo "----- $f (last 25 lines)"
            tail -n 25 "$f"
        done
    fi
    if [ "${MOBOPT_SLURM_KEEP:-0}" = 1 ]; then
        log "kept $STATE"
    else
        rm -rf "$STATE"
    fi
    log "times (s): install ${TIMES[install]:--}, daemons ${TIMES[daemons]:--}, run ${TIMES[run]:--}," \
        "teardown ${TIMES[teardown]}, total $(since "$T_START")"
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() {    # wait_for SECONDS WHAT COMMAND...: poll until COMMAND succeeds
    local limit=$1 what=$2 deadline
    shift 2
    deadline=$(($(date +%s) + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || die "$what not ready after ${limit} s"
        sleep 0.2
    done
}

# ------------------------------------------------------------------------ 1. install

t=$(now)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    before=$(pgrep -x 'munged|mariadbd|slurmdbd|slurmctld|slurmd' | sort || true)
    apt_update() {
        log "apt-get update"
        timeout 300 apt-get update -q >"$STATE/log/apt-update.log" 2>&1 || die "apt-get update failed"
    }
    apt_install() {
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends \
            -o DPkg::Lock::Timeout=300 "${missing[@]}" >"$STATE/log/apt-install.log" 2>&1
    }
    apt-cache policy slurmctld 2>/dev/null | grep -q 'Candidate: [0-9]' || apt_update
    log "apt-get install ${missing[*]}"
    # package lists older than the mirror's files fail the download: refresh them once
    apt_install || { apt_update && apt_install; } || die "apt-get install failed"
    # Package scripts may start their services where no policy-rc.d forbids it: those were
    # started by this install, so this script stops them (and only them).
    for pid in $(comm -13 <(echo "$before") <(pgrep -x 'munged|mariadbd|slurmdbd|slurmctld|slurmd' | sort || true)); do
        log "stopping $(ps -o comm= -p "$pid") (pid $pid) that the package install started"
        kill -TERM "$pid" 2>/dev/null || true
    done
else
    log "packages already installed: ${PACKAGES[*]}"
fi
TIMES[install]=$(since "$t")

# ------------------------------------------------------------------------ 2. daemons

t=$(now)
# This namespace's /etc/slurm is the state directory's etc/ (the host's stays as it is).
# Only now: the package install above must write to the real /etc/slurm.
mkdir -p /etc/slurm    # the packages create it; an empty mount point if someone removed it
mount --bind "$STATE/etc" /etc/slurm || die "cannot bind-mount $STATE/etc on /etc/slurm in a private mount namespace"
SLURM_CONF=/etc/slurm/slurm.conf
HOST=$(hostname -s)
read -r DB_PORT DBD_PORT CTLD_PORT SLURMD_PORT < <("$PYTHON" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
MUNGE_SOCKET=$STATE/munge/munge.socket.2
DB_PASS=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')

# munge: authentication between daemons and clients, with a key of its own
mungekey --create --keyfile="$STATE/munge/munge.key" >/dev/null
start munged munged --foreground --force --socket="$MUNGE_SOCKET" --key-file="$STATE/munge/munge.key" \
    --log-file="$STATE/log/munged.log" --pid-file="$STATE/munge/munged.pid" --seed-file="$STATE/munge/munged.seed"
wait_for 20 munged sh -c "munge -S '$MUNGE_SOCKET' -n | unmunge -S '$MUNGE_SOCKET'"

# mariadb: the accounting database behind slurmdbd
mariadb-install-db --no-defaults --user=root --datadir="$STATE/db/data" --auth-root-authentication-method=normal \
    --skip-test-db >"$STATE/log/mariadb-install-db.log" 2>&1 || die "mariadb-install-db failed"
start mariadbd mariadbd --no-defaults --user=root --datadir="$STATE/db/data" --socket="$STATE/db/mysqld.sock" \
    --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$STATE/db/mariadbd.pid" \
    --log-error="$STATE/log/mariadbd.log" --innodb-buffer-pool-size=128M
wait_for 60 mariadbd mariadb --no-defaults -S "$STATE/db/mysqld.sock" -u root -e "SELECT 1"
mariadb --no-defaults -S "$STATE/db/mysqld.sock" -u root -e \
    "CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"

# slurm.conf: this machine as the only node, described by `slurmd -C`
NODE=$(slurmd -C | head -n 1)
case $NODE in NodeName=*) ;; *) die "slurmd -C printed no node description: $NODE" ;; esac
cat >"$STATE/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
chmod 600 "$STATE/etc/slurmdbd.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=mobopt
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# no cgroups in a container: track processes through /proc, no CPU binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# refuse at submission what the partition can never run, instead of queueing it forever
EnforcePartLimits=ALL
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$MUNGE_SOCKET
AccountingStorageEnforce=associations,limits
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
MinJobAge=300
$NODE NodeAddr=127.0.0.1 State=UNKNOWN
# a 2-hour limit, as real partitions have one: a rule asking for more is refused at submission
PartitionName=ci Nodes=$HOST Default=YES MaxTime=120 State=UP
EOF

start slurmdbd slurmdbd -D
wait_for 60 slurmdbd timeout 10 sacctmgr -n list cluster
timeout 30 sacctmgr -i add cluster mobopt >/dev/null
timeout 30 sacctmgr -i add account mobopt Cluster=mobopt Description="mobopt CI" Organization=mobopt >/dev/null
timeout 30 sacctmgr -i add user "$(id -un)" Account=mobopt Cluster=mobopt >/dev/null
start slurmctld slurmctld -D -i
wait_for 60 slurmctld sh -c "timeout 10 scontrol ping | grep -q UP"
start slurmd slurmd -D
wait_for 60 "node $HOST" sh -c "[ \"\$(timeout 10 sinfo -h -N -o %T)\" = idle ]"
TIMES[daemons]=$(since "$t")
log "cluster up in ${TIMES[daemons]} s: $(sinfo -h -N -o '%N %T %c CPUs %m MB') (ports ctld $CTLD_PORT slurmd $SLURMD_PORT dbd $DBD_PORT db $DB_PORT)"

# ------------------------------------------------------------------------ 3. the workflow

t=$(now)
read -r -a cpu0 </proc/stat
cd "$REPO"
# In the background and in a session of its own, so a TERM or Ctrl-C reaches the teardown at
# once and the teardown can stop the tests and the Snakemake processes they started.
MOBOPT_SLURM_CLUSTER=1 setsid timeout "$TEST_TIMEOUT" "$PYTHON" -m pytest -v -p no:cacheprovider \
    --timeout "$TEST_TIMEOUT" tests/slurm/test_slurm_cluster.py "$@" &
TEST_PID=$!
wait "$TEST_PID" || die "the tests on the cluster failed"
TEST_PID=
TIMES[run]=$(since "$t")
read -r -a cpu1 </proc/stat
busy=$(awk -v a="${cpu0[*]}" -v b="${cpu1[*]}" 'BEGIN { n = split(a, x); split(b, y); for (i = 2; i <= n; i++) { d = y[i] - x[i]; tot += d; if (i == 5 || i == 6) idle += d } printf "%.0f", 100 * (tot - idle) / tot }')
log "run phase: ${TIMES[run]} s, machine CPU busy ${busy} % (this run's jobs and anything else), load average $(cut -d' ' -f1-3 /proc/loadavg)"
