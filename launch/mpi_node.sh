#!/usr/bin/env bash
# launch/mpi_node.sh                    # = /usr/sbin/sshd -D -e  (after the keys and the hostfile)
#
# An MPI node of docker-compose.yml, so that MPICH's mpiexec on any node starts ranks on the others:
#   docker-compose exec mpi-0 launch/mpirun_hostfile.sh /etc/distbp/hostfile \
#       configs/mnist1d_mlp.yaml --out /runs/mlp-mpi
# No key comes with the image. At start-up each node
#   - makes its own sshd host key (in the container, gone with it),
#   - makes the group's login key in $MPI_SSH_DIR unless it is already there: a volume that only the
#     MPI services mount, so the first node to start makes it and the others use it (flock),
#   - enters its host key in $MPI_SSH_DIR/known_hosts under its name, so that the client checks
#     host keys (StrictHostKeyChecking yes) instead of trusting whoever answers,
#   - writes the hostfile (one name per line from MPI_HOSTS) and runs sshd in the foreground,
#     accepting only that login key.
# `docker-compose down -v` deletes the volume and with it the login key.
# Env: MPI_HOSTS (required, e.g. "mpi-0 mpi-1"), MPI_HOSTFILE (/etc/distbp/hostfile),
#      MPI_SSH_DIR (/mpi-ssh), MPI_HOSTNAME (this node's name in MPI_HOSTS; `hostname`).
set -euo pipefail
read -ra hosts <<< "${MPI_HOSTS:?set MPI_HOSTS to the host names of the MPI group, e.g. mpi-0 mpi-1}"
hostfile="${MPI_HOSTFILE:-/etc/distbp/hostfile}"
keys="${MPI_SSH_DIR:-/mpi-ssh}"
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
exec /usr/sbin/sshd -D -e \
    -o HostKey=/etc/ssh/ssh_host_ed25519_key \
    -o AuthorizedKeysFile="$keys/authorized_keys" \
    -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no \
    -o PermitRootLogin=prohibit-password
