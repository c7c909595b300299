#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the Slurm test (go test
# -tags slurm ./cmd/quantbridge) and for trying docs/slurm-array.sh.
#
#   scripts/slurm-local.sh start    # install (Debian/Ubuntu: slurm-wlm, munge) if needed, configure, start
#   scripts/slurm-local.sh stop     # stop the daemons this script started
#   scripts/slurm-local.sh status
#
# Runs as root, without systemd and without cgroups: munged, slurmctld and
# slurmd are started directly in their daemon modes (pid files under
# $QB_SLURM_DIR, default /var/lib/quantbridge-slurm). The node is named after
# `hostname -s` and reached at 127.0.0.1 (no DNS needed); it offers max(nproc, 4) CPUs (SlurmdParameters=config_overrides,
# so a 3-task array runs at once even on a 2-core machine) and the machine's
# memory less 1 GiB. Process tracking is proctrack/linuxproc, task binding
# task/none, selection select/cons_tres with CR_Core_Memory.
#
# Accounting: there is no slurmdbd, so AccountingStorageType is
# accounting_storage/none and `sacct` answers "Slurm accounting storage is
# disabled"; finished jobs are logged by jobcomp/filetxt to
# $QB_SLURM_DIR/ctld/jobcomp.log (one line per job with its state and exit code),
# and running or recently finished jobs are visible to `squeue` and
# `scontrol show job` (MinJobAge=600 keeps them there for 10 minutes).
#
# start is idempotent: a running cluster is left alone when its config is
# unchanged, and restarted when it changed.
set -euo pipefail

DIR=${QB_SLURM_DIR:-/var/lib/quantbridge-slurm}
CONF=/etc/slurm/slurm.conf

die() { echo "slurm-local: $*" >&2; exit 1; }

alive() { # alive PIDFILE
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && command -v sbatch >/dev/null; then
    return
  fi
  command -v apt-get >/dev/null || die "slurmctld/slurmd/munged missing and no apt-get to install them"
  echo "slurm-local: installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_config() {
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  [ "$cpus" -ge 4 ] || cpus=4
  mem=$(awk '/^MemTotal:/ {print int($2/1024) - 1024}' /proc/meminfo)
  [ "$mem" -ge 2048 ] || die "only ${mem} MiB of memory for the node"
  mkdir -p "$DIR/ctld" "$DIR/d" /etc/slurm
  chown slurm:slurm "$DIR/ctld"
  cat >"$DIR/slurm.conf.new" <<EOF
# Written by quantbridge scripts/slurm-local.sh: a one-node cluster without cgroups.
ClusterName=quantbridge-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/d
SlurmctldPidFile=$DIR/ctld/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/ctld/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/ctld/jobcomp.log
MailProg=/bin/true
ReturnToService=2
MinJobAge=600
KillWait=10
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  if [ -f "$CONF" ] && cmp -s "$CONF" "$DIR/slurm.conf.new"; then
    rm "$DIR/slurm.conf.new"
    return 1 # unchanged
  fi
  mv "$DIR/slurm.conf.new" "$CONF"
  return 0
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key; else
      dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; fi
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 755 /run/munge
  if ! alive /run/munge/munged.pid || ! munge -n </dev/null | unmunge >/dev/null 2>&1; then
    su -s /bin/sh munge -c "/usr/sbin/munged --pid-file=/run/munge/munged.pid"
  fi
  for _ in $(seq 50); do
    munge -n </dev/null | unmunge >/dev/null 2>&1 && return
    sleep 0.1
  done
  die "munged does not answer"
}

stop_daemons() {
  local f pid
  for f in "$DIR/slurmd.pid" "$DIR/ctld/slurmctld.pid"; do
    if alive "$f"; then
      pid=$(cat "$f")
      kill "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$f"
  done
}

start() {
  [ "$(id -u)" = 0 ] || die "start must run as root"
  install_packages
  local changed=0
  write_config && changed=1
  start_munge
  if [ "$changed" = 1 ]; then stop_daemons; fi
  alive "$DIR/ctld/slurmctld.pid" || /usr/sbin/slurmctld
  alive "$DIR/slurmd.pid" || /usr/sbin/slurmd
  local host state=
  host=$(hostname -s)
  SECONDS=0
  while [ "$SECONDS" -lt 60 ]; do
    alive "$DIR/ctld/slurmctld.pid" || break
    state=$(timeout 5 sinfo -h -N -n "$host" -o %t 2>/dev/null || true)
    case "$state" in
      idle*|mix*|alloc*) echo "slurm-local: node $host is $state"; return ;;
      down*|drain*) scontrol update NodeName="$host" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.2
  done
  tail -n 20 "$DIR/ctld/slurmctld.log" "$DIR/slurmd.log" >&2 || true
  die "node $host did not come up (state '${state:-none}')"
}

stop() {
  # Jobs first: their processes would outlive the daemons.
  if alive "$DIR/ctld/slurmctld.pid"; then
    local jobs
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | sort -u || true)
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086
      timeout 10 scancel $jobs || true
      SECONDS=0
      while [ "$SECONDS" -lt 30 ] && [ -n "$(timeout 10 squeue -h -t RUNNING,COMPLETING -o %A 2>/dev/null)" ]; do sleep 0.5; done
    fi
  fi
  stop_daemons
  # munged: only the one started with our pid file.
  if alive /run/munge/munged.pid; then kill "$(cat /run/munge/munged.pid)"; fi
  echo "slurm-local: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    alive "$DIR/ctld/slurmctld.pid" && echo "slurmctld running" || echo "slurmctld stopped"
    alive "$DIR/slurmd.pid" && echo "slurmd running" || echo "slurmd stopped"
    sinfo 2>/dev/null || true ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
