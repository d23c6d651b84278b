#!/bin/sh
# Restart an MPI training job from its newest checkpoint when a rank fails, up to K times:
#
#   launch/mpirun_supervised.sh 3 mpiexec -n 4 distbp train --config configs/mnist1d_cnn.yaml \
#       --backend mpi --out runs/cnn --force
#   launch/mpirun_supervised.sh --min-workers 2 3 mpiexec -n 4 distbp train ...
#
# MPI cannot replace a dead rank inside a job: when one rank dies or stops answering, distbp ends
# the whole job with one line naming it (exit 1). This supervisor then starts the same command
# again with --resume (without --force), which continues from the newest intact checkpoint: resume
# is exact, so the run ends on the bits an uninterrupted one would have. If the job failed before
# its first checkpoint it starts again from the beginning. Exit code 2 (bad input) is final, as is
# any exit after K restarts; the exit code is the last attempt's. Needs --out in the command.
#
# --min-workers M: an attempt that failed before its ranks trained one step (no new "start" record
# in metrics.jsonl: a rank that cannot be had, e.g. killed at startup by the out-of-memory killer)
# is started again with one rank fewer (-n/-np and --workers rewritten), down to M, as
# `distbp train --max-restarts K --min-workers M` does on local workers. The global batch does not
# depend on the number of ranks, so the run keeps its trajectory (up to the reduction order).
set -u
usage="usage: mpirun_supervised.sh [--min-workers M] K COMMAND... (e.g. 3 mpiexec -n 4 distbp train ... --out DIR)"
min=""
if [ "${1:-}" = "--min-workers" ]; then
    min=${2:-}
    case $min in ''|*[!0-9]*|0) echo "mpirun_supervised.sh: --min-workers must be a number >= 1, got '$min'" >&2; exit 2 ;; esac
    shift 2
fi
if [ $# -lt 2 ]; then
    echo "$usage" >&2
    exit 2
fi
K=$1
shift
case $K in ''|*[!0-9]*) echo "mpirun_supervised.sh: K must be a number >= 0, got '$K'" >&2; exit 2 ;; esac
out=""
np=""
prev=""
for a in "$@"; do
    [ "$prev" = "--out" ] && out=$a
    { [ "$prev" = "-n" ] || [ "$prev" = "-np" ]; } && [ -z "$np" ] && np=$a
    prev=$a
done
if [ -z "$out" ]; then
    echo "mpirun_supervised.sh: the command needs --out DIR (where the checkpoints are)" >&2
    exit 2
fi
if [ -n "$min" ] && [ -z "$np" ]; then
    echo "mpirun_supervised.sh: --min-workers needs the rank count as -n N (or -np N) in the command" >&2
    exit 2
fi
if [ -n "$min" ] && [ "$min" -gt "$np" ]; then
    echo "mpirun_supervised.sh: --min-workers $min is more than the $np ranks of the command" >&2
    exit 2
fi

starts() {  # how many starts trained a step (rank 0 writes one "start" record after its first)
    n=$(grep -c '"kind": "start"' "$out/metrics.jsonl" 2>/dev/null)
    echo "${n:-0}"
}

attempt=0
before=$(starts)
for a in "$@"; do [ "$a" = "--force" ] && before=0; done   # --force clears metrics.jsonl
"$@"
rc=$?
while [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ] && [ "$attempt" -lt "$K" ]; do
    attempt=$((attempt + 1))
    fewer=""
    if [ -n "$min" ] && [ "$np" -gt "$min" ] && [ "$(starts)" = "$before" ]; then
        np=$((np - 1))
        fewer=" on $np ranks, 1 fewer (it failed before its first step)"
    fi
    # the same command, --force dropped (it would clear the run), --resume added if there is a
    # checkpoint to resume from, and the rank count rewritten when it shrank
    first=1
    prev=""
    for a in "$@"; do
        if [ "$first" = 1 ]; then set --; first=0; fi
        case $prev in -n|-np|--workers) [ -n "$fewer" ] && a=$np ;; esac
        prev=$a
        [ "$a" = "--force" ] || [ "$a" = "--resume" ] || set -- "$@" "$a"
    done
    if ls "$out"/checkpoints/*.json >/dev/null 2>&1; then
        echo "mpirun_supervised: the job failed (exit $rc); restart $attempt/$K with --resume$fewer" >&2
        before=$(starts)
        "$@" --resume
    else
        echo "mpirun_supervised: the job failed (exit $rc) before a checkpoint; restart $attempt/$K from the start$fewer" >&2
        before=0
        "$@" --force
    fi
    rc=$?
done
exit "$rc"
