#!/usr/bin/env bash
# Starts a one-node Slurm cluster on this machine for the cluster test (run as root, or with sudo):
# Debian's slurm-wlm + munge from apt, munged, slurmctld and slurmd with their configuration, state
# and logs under $SLURM_DIR (default /tmp/neoxprobe-slurm; nothing in /etc/slurm is touched: clients
# find the configuration through SLURM_CONF). Idempotent: packages, key and running daemons are reused.
# Prints the line to source for the clients: export SLURM_CONF=...
set -euo pipefail
SLURM_DIR="${SLURM_DIR:-/tmp/neoxprobe-slurm}"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

missing=""
for p in slurm-wlm munge; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "start_cluster: installing$missing" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

# munge: a key, its run directory, the daemon (as the munge user, as Debian's service runs it).
if [ ! -s /etc/munge/munge.key ]; then
  $SUDO mkdir -p /etc/munge
  $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
$SUDO chown munge:munge /etc/munge /etc/munge/munge.key
$SUDO chmod 0700 /etc/munge
$SUDO chmod 0400 /etc/munge/munge.key
$SUDO mkdir -p /run/munge /var/lib/munge /var/log/munge
$SUDO chown munge:munge /run/munge /var/lib/munge /var/log/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  $SUDO runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n | unmunge >/dev/null
fi

# slurm.conf: one node, this machine's CPUs and memory as slurmd -C reports them, reached over
# 127.0.0.1 (so nothing depends on the host name resolving).
$SUDO mkdir -p "$SLURM_DIR/state" "$SLURM_DIR/spool"
host="$(hostname -s)"
node="$(slurmd -C | head -n 1 | sed "s/^NodeName=[^ ]*/NodeName=$host/")"
conf="$SLURM_DIR/slurm.conf"
cat > "$conf.new" <<CONF
# Written by Tests/Cluster/start_cluster.sh: a one-node cluster for NeoXProbe's cluster test.
ClusterName=neoxprobe
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/slurmctld.log
SlurmdLogFile=$SLURM_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MinJobAge=3600
SlurmdTimeout=60
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
changed=1
if [ -f "$conf" ] && cmp -s "$conf" "$conf.new"; then changed=0; rm "$conf.new"; else mv "$conf.new" "$conf"; fi
export SLURM_CONF="$conf"

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if [ "$changed" = 1 ]; then
  # A new configuration: stop daemons started from an older one.
  for pid in "$SLURM_DIR/slurmd.pid" "$SLURM_DIR/slurmctld.pid"; do
    if running "$pid"; then $SUDO kill "$(cat "$pid")"; for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done; fi
  done
fi
running "$SLURM_DIR/slurmctld.pid" || $SUDO env SLURM_CONF="$conf" /usr/sbin/slurmctld -f "$conf"
for _ in $(seq 100); do scontrol ping >/dev/null 2>&1 && break; sleep 0.2; done
running "$SLURM_DIR/slurmd.pid" || $SUDO env SLURM_CONF="$conf" /usr/sbin/slurmd -f "$conf"

# Wait for the node to register; bring it back if an earlier run left it down.
state=""
for _ in $(seq 150); do
  state="$(sinfo -h -N -n "$host" -o %t 2>/dev/null | head -n 1 | tr -d '*')"
  case "$state" in
    idle|mix|alloc) break ;;
    down|drain|drng|fail) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
  esac
  sleep 0.2
done
case "$state" in
  idle|mix|alloc) ;;
  *) echo "start_cluster: node $host is '$state', not idle; see $SLURM_DIR/slurmctld.log and $SLURM_DIR/slurmd.log" >&2; exit 1 ;;
esac
echo "export SLURM_CONF=$conf"
