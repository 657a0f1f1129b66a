#!/usr/bin/env bash
# make opt-levels [LEVELS="3 s z"] [FN="webhook inbound staff-api"] [RUNS=5]: the release profile
# at each opt-level, side by side: bootstrap size, cold init, first invoke and peak RSS (what
# `make coldstart` measures) and the medians of the criterion benchmarks of `make bench`.
# opt-level 3 builds in target/ (the release profile as written); the others in target/opt-<level>.
# staff-api's own package override (`[profile.release.package.staff-api]`, opt-level "z") wins
# over the level set here: compare its rows by the level of its dependencies only.
set -euo pipefail
cd "$(dirname "$0")/.."
levels=${LEVELS:-3 s z}
fns=${FN:-webhook inbound staff-api}
runner=${RUNNER:-target/debug/local-runner}
out=target/opt-levels
mkdir -p "$out"
for level in $levels; do
    # Absolute: criterion writes under the target directory from the bench's own directory.
    dir=$PWD/target
    [ "$level" = 3 ] || dir=$PWD/target/opt-$level
    export CARGO_PROFILE_RELEASE_OPT_LEVEL=$level CARGO_TARGET_DIR=$dir
    # shellcheck disable=SC2046
    cargo build --release $(printf -- '-p %s ' $fns)
    infra/with-moto.sh "$runner" coldstart --dir "$dir/release" --runs "${RUNS:-5}" \
        --only "$(echo "$fns" | tr ' ' ,)" | tee "$out/coldstart-$level.txt"
    cargo bench -p shared --bench webhook --bench graph --bench bots -- --noplot 2>&1 \
        | tee "$out/bench-$level.txt" | grep -E 'time:' || true
done
unset CARGO_PROFILE_RELEASE_OPT_LEVEL CARGO_TARGET_DIR
echo
for level in $levels; do
    echo "== opt-level $level: cold start"
    cat "$out/coldstart-$level.txt"
    echo "== opt-level $level: benchmark medians"
    # criterion: `name  time: [low median high]`, the name alone on the line before when long.
    awk '/time:/ { name = ($1 == "time:") ? prev : $1; sub(/.*\[/, ""); print "  " name ": " $3 " " $4 } { prev = $1 }' \
        "$out/bench-$level.txt"
done
