#!/usr/bin/env bash
# sbatch launch/slurm.sh CONFIG [distbp train flags]   # = mpiexec -n $SLURM_NTASKS distbp train --config CONFIG --backend mpi ...
#   sbatch --nodes=4 --ntasks-per-node=2 launch/slurm.sh configs/mnist1d_cnn.yaml --out /shared/runs/cnn
#   LAUNCHER=srun sbatch launch/slurm.sh configs/mnist1d_cnn.yaml --out /shared/runs/cnn
#
# One rank per Slurm task. By default MPICH's mpiexec (hydra, from the mpich wheel) runs inside the
# allocation: it reads the nodes and task counts from Slurm and starts one proxy per node with srun,
# so neither a hostfile nor ssh between the nodes is needed. LAUNCHER=srun starts every rank with
# `srun --mpi=pmi2` instead (for an MPI built against the site's Slurm PMI, e.g. a module's mpi4py).
# Every node needs the project installed at the same path (activate its environment before sbatch:
# the job inherits it, or set DISTBP_VENV) and --out on a file system all nodes share; the options
# below are defaults that sbatch's own command-line flags override.
# Env: LAUNCHER (mpiexec | srun), MPIEXEC (mpiexec), DISTBP_VENV (a virtualenv to activate).
#SBATCH --job-name=distbp
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=2
#SBATCH --time=01:00:00
#SBATCH --output=distbp-%j.out
set -euo pipefail
config="${1:?usage: sbatch launch/slurm.sh CONFIG [distbp train flags...]}"
shift
: "${SLURM_NTASKS:?launch/slurm.sh runs inside a Slurm allocation: submit it with sbatch (or run it under salloc)}"
if [ -n "${DISTBP_VENV:-}" ]; then
    # shellcheck disable=SC1091  # the user's virtualenv, not in this repository
    source "$DISTBP_VENV/bin/activate"
fi
# BLAS threads per rank = the CPUs Slurm gave each task (distbp's ranks are single processes)
export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"
echo "launch/slurm.sh: job ${SLURM_JOB_ID:-?}, $SLURM_NTASKS rank(s) on ${SLURM_JOB_NODELIST:-?}"
case "${LAUNCHER:-mpiexec}" in
    mpiexec) exec "${MPIEXEC:-mpiexec}" -launcher slurm -rmk slurm -n "$SLURM_NTASKS" \
                 distbp train --config "$config" --backend mpi "$@" ;;
    srun)    exec srun --mpi=pmi2 --kill-on-bad-exit=1 \
                 distbp train --config "$config" --backend mpi "$@" ;;
    *)       echo "launch/slurm.sh: LAUNCHER=$LAUNCHER: use mpiexec or srun" >&2; exit 2 ;;
esac
