#!/usr/bin/env bash
# launch/mpi_node.sh                    # = /usr/sbin/sshd -D -e  (after the keys, the hostfile and Slurm)
#
# An MPI node of docker-compose.yml. The MPI nodes reach each other two ways:
#   ssh (MPICH's mpiexec with a hostfile):
#     docker-compose exec mpi-0 launch/mpirun_hostfile.sh /etc/distbp/hostfile \
#         configs/mnist1d_mlp.yaml --out /runs/mlp-mpi
#   Slurm (a two-node cluster: slurmctld on the first node of MPI_HOSTS, slurmd on every node):
#     docker-compose exec mpi-0 sbatch --wait -o /runs/mlp-slurm.out launch/slurm.sh \
#         configs/mnist1d_mlp.yaml --out /runs/mlp-slurm
# No key comes with the image. At start-up each node
#   - makes its own sshd host key (in the container, gone with it);
#   - makes the group's ssh login key and munge key (Slurm's authentication) in $MPI_KEYS_DIR
#     unless they are there: a volume that only the MPI services mount, so the first node to start
#     makes them and the others use them (flock);
#   - enters its host key in $MPI_KEYS_DIR/known_hosts under its name, so that ssh checks host
#     keys (StrictHostKeyChecking yes) instead of trusting whoever answers;
#   - writes the hostfile and slurm.conf (from MPI_HOSTS), starts munged and the Slurm daemons,
#     and runs sshd in the foreground, accepting only the login key.
# `docker-compose down -v` deletes the volume and with it the keys.
# Env: MPI_HOSTS (required, e.g. "mpi-0 mpi-1"), MPI_HOSTFILE (/etc/distbp/hostfile),
#      MPI_KEYS_DIR (/mpi-keys), MPI_HOSTNAME (this node's name in MPI_HOSTS; `hostname`).
set -euo pipefail
read -ra hosts <<< "${MPI_HOSTS:?set MPI_HOSTS to the host names of the MPI group, e.g. mpi-0 mpi-1}"
hostfile="${MPI_HOSTFILE:-/etc/distbp/hostfile}"
keys="${MPI_KEYS_DIR:-/mpi-keys}"
me="${MPI_HOSTNAME:-$(hostname)}"
case " ${hosts[*]} " in
    *" $me "*) ;;
    *) echo "launch/mpi_node.sh: this node ($me) is not in MPI_HOSTS ($MPI_HOSTS)" >&2; exit 2 ;;
esac

mkdir -p "$keys" /run/sshd /root/.ssh "$(dirname "$hostfile")"
chmod 700 "$keys" /root/.ssh
rm -f /etc/ssh/ssh_host_*                 # a restarted container makes a new one too
ssh-keygen -q -t ed25519 -N "" -C "$me host key" -f /etc/ssh/ssh_host_ed25519_key
{
    flock 9
    if [ ! -s "$keys/id_ed25519" ]; then
        ssh-keygen -q -t ed25519 -N "" -C "distbp MPI group" -f "$keys/id_ed25519"
        cp "$keys/id_ed25519.pub" "$keys/authorized_keys"
    fi
    if [ ! -s "$keys/munge.key" ]; then
        head -c 1024 /dev/urandom > "$keys/munge.key.new" && mv "$keys/munge.key.new" "$keys/munge.key"
    fi
    # this container's host key replaces any from an earlier container of the same name
    { grep -v "^$me " "$keys/known_hosts" 2>/dev/null || true
      echo "$me $(cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)"; } > "$keys/known_hosts.new"
    mv "$keys/known_hosts.new" "$keys/known_hosts"
} 9> "$keys/.lock"

cat > /root/.ssh/config <<EOF
Host *
    IdentityFile $keys/id_ed25519
    UserKnownHostsFile $keys/known_hosts
    StrictHostKeyChecking yes
    BatchMode yes
    LogLevel ERROR
EOF
printf '%s\n' "${hosts[@]}" > "$hostfile"

if command -v slurmd >/dev/null; then
    # munge: the group's key, readable by munged only
    install -o munge -g munge -m 400 "$keys/munge.key" /etc/munge/munge.key
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged 2>/dev/null
    # every node as many CPUs as this one (the containers share one host); no cgroups, no accounting
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd
    cat > /etc/slurm/slurm.conf <<EOF
ClusterName=distbp
SlurmctldHost=${hosts[0]}
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurmctld.log
SlurmdLogFile=/var/log/slurmd.log
NodeName=$(IFS=,; echo "${hosts[*]}") CPUs=$(nproc) State=UNKNOWN
PartitionName=mpi Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    if [ "$me" = "${hosts[0]}" ]; then slurmctld; fi
    slurmd -N "$me"
fi

exec /usr/sbin/sshd -D -e \
    -o HostKey=/etc/ssh/ssh_host_ed25519_key \
    -o AuthorizedKeysFile="$keys/authorized_keys" \
    -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no \
    -o PermitRootLogin=prohibit-password
