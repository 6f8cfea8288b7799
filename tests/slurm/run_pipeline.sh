#!/usr/bin/env bash
# Run the pipeline through a real SLURM cluster with profiles/slurm and check it:
#   1. start a one-node SLURM cluster on this machine (tests/slurm/start_cluster.sh),
#   2. run the targets locally (snakemake --cores N) in one copy of the repository,
#   3. run the same targets with --profile profiles/slurm (fitted to the test cluster by
#      tests/slurm/ci_profile.py: partition, no account, no GPUs, node-sized requests)
#      in a second copy,
#   4. check that every job of the SLURM run went through sbatch and completed on the
#      cluster (tests/slurm/check_slurm_run.py) and that both runs made the same outputs
#      (tests/slurm/compare_outputs.py); with .test/config/config.yaml, also that its scattered
#      score entry ran as 3 part jobs and a gather, and gathered to the one-job entry's output
#      (tests/slurm/compare_scatter.py),
#   5. stop the cluster (always).
# Prints "SLURM pipeline test: PASS" or "... FAIL" last; exits non-zero on failure.
#
#   tests/slurm/run_pipeline.sh [TARGET ...]        # default: the workflow's default target
#
# Needs root (apt-get, daemons) and snakemake + genomamba on PATH (an activated venv);
# the SLURM jobs inherit this environment (sbatch --export=ALL).
# Environment: SLURM_TEST_CONFIG  extra --configfile for both runs [.test/config/config.yaml: the
#                  example, smaller; with its ci_data/ made here]; /dev/null: config/config.yaml as is
#              SLURM_TEST_TIMEOUT_RUN  seconds for each snakemake run [600]
#              SLURM_TEST_CORES  --cores of the local run = most CPUs per SLURM job [2]
#              SLURM_TEST_WORK  where the two copies go [a new mktemp dir; removed after a PASS]
#              SLURM_TEST_LOCAL_RUN  a directory with a finished local run of the same targets
#                  and config (results/ + .snakemake/log), e.g. the repository after CI's
#                  `snakemake --cores 2`: used instead of step 2 (then no config overrides
#                  unless SLURM_TEST_CONFIG is given)
#              SLURM_TEST_DIR, SLURM_TEST_PARTITION, ...: see start_cluster.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export SLURM_TEST_DIR="${SLURM_TEST_DIR:-/tmp/genomamba-slurm}"
PARTITION="${SLURM_TEST_PARTITION:-debug}"
RUN_TIMEOUT="${SLURM_TEST_TIMEOUT_RUN:-600}"
t_start=$SECONDS
say() { echo "run_pipeline: [$(( SECONDS - t_start ))s] $*"; }

WORK="${SLURM_TEST_WORK:-}"
made_work=""
if [ -z "$WORK" ]; then WORK="$(mktemp -d "${TMPDIR:-/tmp}/genomamba-slurm-test.XXXXXX")"; made_work=1; fi

finish() {
    rc=$?
    trap - EXIT INT TERM
    "$here/stop_cluster.sh" || true
    if [ "$rc" -eq 0 ]; then
        [ -n "$made_work" ] && rm -rf "$WORK"
        echo "SLURM pipeline test: PASS ($(( SECONDS - t_start )) s)"
    else
        echo "SLURM pipeline test: FAIL (exit $rc after $(( SECONDS - t_start )) s; runs kept in $WORK, cluster logs in $SLURM_TEST_DIR/log)"
    fi
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

command -v snakemake >/dev/null || { echo "run_pipeline: snakemake not on PATH (activate the venv)" >&2; exit 2; }
command -v genomamba >/dev/null || { echo "run_pipeline: genomamba not on PATH (pip install -e . in the active venv)" >&2; exit 2; }
PY="$(command -v python || command -v python3)"

# ------------------------------------------------------------------ cluster
say "starting the SLURM cluster"
"$here/start_cluster.sh"
# shellcheck disable=SC1091
. "$SLURM_TEST_DIR/env"
read -r CPUS MEM < <(sinfo -h -p "$PARTITION" -N -o "%c %m" | head -1)
# cores for the local run and most CPUs any SLURM job may ask for: the same in both
# runs, so that multi-threaded (training) results can be compared
CORES="${SLURM_TEST_CORES:-2}"; [ "$CORES" -le "$CPUS" ] || CORES="$CPUS"
say "cluster up: partition $PARTITION, node with $CPUS CPUs, $MEM MB; jobs get at most $CORES CPUs"

# -------------------------------------------------- two copies of the repo
copies=(slurm); [ -n "${SLURM_TEST_LOCAL_RUN:-}" ] || copies+=(local)
for d in "${copies[@]}"; do
    rm -rf "${WORK:?}/$d" && mkdir -p "$WORK/$d"
    tar -C "$repo" -c --exclude=./.git --exclude=./.venv --exclude=./venv --exclude=./results \
        --exclude=./logs --exclude=./.snakemake --exclude=__pycache__ --exclude='*.egg-info' \
        --exclude=./.pytest_cache --exclude=./.whl --exclude=./.gl . | tar -C "$WORK/$d" -x
done
cfg=()
if [ -n "${SLURM_TEST_LOCAL_RUN:-}" ]; then
    CI_CONFIG="${SLURM_TEST_CONFIG:-/dev/null}"   # the reused run had config/config.yaml as is
else
    CI_CONFIG="${SLURM_TEST_CONFIG:-$repo/.test/config/config.yaml}"
fi
[ -f "$CI_CONFIG" ] && cfg=("--configfile=$CI_CONFIG") && say "config overrides: $CI_CONFIG"
if [ "$CI_CONFIG" = "$repo/.test/config/config.yaml" ]; then
    # the smaller fine-tuning sets that .test/config/config.yaml refers to
    for d in "${copies[@]}"; do
        mkdir -p "$WORK/$d/ci_data"
        for s in train val test; do
            awk 'NR % 8 == 1' "$repo/resources/example_task/$s.bed" > "$WORK/$d/ci_data/$s.bed"
        done
    done
fi
targets=("$@")

# run snakemake in $1 with a time limit, output to $2; show progress lines as they come
run_snakemake() {
    local dir="$1" out="$2"; shift 2
    ( cd "$dir" && timeout "$RUN_TIMEOUT" snakemake "$@" ) 2>&1 | tee "$out" \
        | { grep --line-buffered -E "steps \(|submitted with SLURM jobid|^Error in rule|SLURM-job .* failed" \
            | sed -u 's/^/    /' || true; }
    return "${PIPESTATUS[0]}"
}
show_failure() {  # $1: run dir, $2: its output
    echo "---- tail $2"; tail -40 "$2"
    for f in "$1"/.snakemake/slurm_logs/*/*.log "$1"/.snakemake/slurm_logs/*/*/*.log "$1"/results/logs/*/*.log; do
        [ -f "$f" ] || continue
        echo "---- tail $f"; tail -20 "$f"
    done
}

# ---------------------------------------------------------------- local run
if [ -n "${SLURM_TEST_LOCAL_RUN:-}" ]; then
    # reuse a finished local run of the same targets and config (CI's own `snakemake --cores 2`)
    LOCAL="$(cd "$SLURM_TEST_LOCAL_RUN" && pwd)"
    [ -d "$LOCAL/results" ] && [ -d "$LOCAL/.snakemake/log" ] \
        || { say "SLURM_TEST_LOCAL_RUN=$SLURM_TEST_LOCAL_RUN has no results/ or .snakemake/log"; exit 1; }
    say "local run: reusing the finished run in $LOCAL"
else
    LOCAL="$WORK/local"
    say "local run: snakemake --cores $CORES ${cfg[*]} ${targets[*]}"
    run_snakemake "$LOCAL" "$WORK/local.out" "${targets[@]}" --cores "$CORES" "${cfg[@]}" \
        || { show_failure "$LOCAL" "$WORK/local.out"; say "the local run failed"; exit 1; }
    say "local run done"
fi

# ---------------------------------------------------------------- SLURM run
"$PY" "$here/ci_profile.py" "$repo/profiles/slurm" "$WORK/profile" \
    --partition "$PARTITION" --cpus "$CORES" --mem-mb "$MEM"
say "SLURM run: snakemake --profile profiles/slurm (fitted: $WORK/profile) ${cfg[*]} ${targets[*]}"
# --slurm-status-command squeue: no slurmdbd here, so sacct has nothing (MinJobAge=3600
# keeps finished jobs in squeue); the short first status check and the kept logs are for
# the test's speed and checks only
run_snakemake "$WORK/slurm" "$WORK/slurm.out" "${targets[@]}" --profile "$WORK/profile" "${cfg[@]}" \
    --max-threads "$CORES" --slurm-status-command squeue --slurm-init-seconds-before-status-checks 2 \
    --slurm-keep-successful-logs \
    || { show_failure "$WORK/slurm" "$WORK/slurm.out"; say "the SLURM run failed"; exit 1; }
say "SLURM run done"

# ------------------------------------------------------------------- checks
# every job of the local run must be in the SLURM run, as a completed SLURM job unless
# the workflow declares its rule a localrule (rule all)
say "checking that every job went through sbatch"
scattered=()  # .test/config/config.yaml's score entry example_parts: example in 3 part jobs + a gather
[ "$CI_CONFIG" = "$repo/.test/config/config.yaml" ] && scattered=(--expect score_part=3 score_gather)
"$PY" "$here/check_slurm_run.py" "$WORK/slurm" "$SLURM_TEST_DIR/log/jobcomp.txt" --local-run "$LOCAL" "${scattered[@]}"
say "comparing outputs, local vs SLURM"
"$PY" "$here/compare_outputs.py" "$LOCAL/results" "$WORK/slurm/results"
if [ "${#scattered[@]}" -gt 0 ]; then
    say "comparing the scattered score entry (3 SLURM part jobs, gathered) with the one-job entry"
    "$PY" "$here/compare_scatter.py" "$WORK/slurm/results" example example_parts
fi
