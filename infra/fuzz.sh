#!/usr/bin/env bash
# make fuzz: runs each cargo-fuzz target of shared/fuzz for FUZZ_SECONDS (default 60) with a
# corpus seeded from the project's Meta fixtures and sample events. A crash stops the run and
# leaves its input in shared/fuzz/artifacts/<target>/ (make it a regression test).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${FUZZ_SECONDS:-60}"
tools="$here/.local/tools"
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
  cargo install cargo-fuzz --locked --root "$tools"
fi
export PATH="$tools/bin:$PATH"
# cargo-fuzz passes flags the stable compiler keeps behind this switch (the project has one
# stable toolchain; no nightly can be fetched). Coverage instrumentation needs no sanitizer.
export RUSTC_BOOTSTRAP=1
corpus="$here/.local/fuzz/corpus"
mkdir -p "$corpus/webhook" "$corpus/envelope"
cp "$here"/tests/fixtures/meta/*.json "$here/events/webhook-text.json" "$corpus/webhook/"
python3 "$here/infra/fuzz_seed_envelopes.py" "$here/tests/fixtures/meta" "$corpus/envelope"
cd "$here/shared"
for target in webhook envelope; do
  echo "fuzzing $target for ${seconds}s"
  cargo fuzz run --sanitizer none "$target" "$corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1
done
