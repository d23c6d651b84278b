#!/bin/sh
# Restart an MPI training job from its newest checkpoint when a rank fails, up to K times:
#
#   launch/mpirun_supervised.sh 3 mpiexec -n 4 distbp train --config configs/mnist1d_cnn.yaml \
#       --backend mpi --out runs/cnn --force
#
# MPI cannot replace a dead rank inside a job: when one rank dies or stops answering, distbp ends
# the whole job with one line naming it (exit 1). This supervisor then starts the same command
# again with --resume (without --force), which continues from the newest intact checkpoint: resume
# is exact, so the run ends on the bits an uninterrupted one would have. If the job failed before
# its first checkpoint it starts again from the beginning. Exit code 2 (bad input) is final, as is
# any exit after K restarts; the exit code is the last attempt's. Needs --out in the command.
set -u
if [ $# -lt 2 ]; then
    echo "usage: mpirun_supervised.sh K COMMAND... (e.g. 3 mpiexec -n 4 distbp train ... --out DIR)" >&2
    exit 2
fi
K=$1
shift
case $K in ''|*[!0-9]*) echo "mpirun_supervised.sh: K must be a number >= 0, got '$K'" >&2; exit 2 ;; esac
out=""
prev=""
for a in "$@"; do
    [ "$prev" = "--out" ] && out=$a
    prev=$a
done
if [ -z "$out" ]; then
    echo "mpirun_supervised.sh: the command needs --out DIR (where the checkpoints are)" >&2
    exit 2
fi

attempt=0
"$@"
rc=$?
while [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ] && [ "$attempt" -lt "$K" ]; do
    attempt=$((attempt + 1))
    # the same command, --force dropped (it would clear the run) and --resume added if there is a
    # checkpoint to resume from
    first=1
    for a in "$@"; do
        if [ "$first" = 1 ]; then set --; first=0; fi
        [ "$a" = "--force" ] || [ "$a" = "--resume" ] || set -- "$@" "$a"
    done
    if ls "$out"/checkpoints/*.json >/dev/null 2>&1; then
        echo "mpirun_supervised: the job failed (exit $rc); restart $attempt/$K with --resume" >&2
        "$@" --resume
    else
        echo "mpirun_supervised: the job failed (exit $rc) before a checkpoint; restart $attempt/$K from the start" >&2
        "$@" --force
    fi
    rc=$?
done
exit "$rc"
