#!/usr/bin/env bash
# launch/mpi_node.sh                    # = /usr/sbin/sshd -D -e  (after writing $MPI_HOSTFILE)
#
# An MPI node of docker-compose.yml: writes the group's hostfile (one name per line from MPI_HOSTS,
# e.g. "mpi-0 mpi-1") and runs sshd in the foreground, so that MPICH's mpiexec on any node can start
# ranks on the others. Then, from the host:
#   docker-compose exec mpi-0 launch/mpirun_hostfile.sh /etc/distbp/hostfile \
#       configs/mnist1d_mlp.yaml --out /runs/mlp-mpi
# Env: MPI_HOSTS (required), MPI_HOSTFILE (/etc/distbp/hostfile).
set -euo pipefail
hosts="${MPI_HOSTS:?set MPI_HOSTS to the MPI group's host names, e.g. \"mpi-0 mpi-1\"}"
hostfile="${MPI_HOSTFILE:-/etc/distbp/hostfile}"
mkdir -p "$(dirname "$hostfile")" /run/sshd
printf '%s\n' $hosts > "$hostfile"
exec /usr/sbin/sshd -D -e
