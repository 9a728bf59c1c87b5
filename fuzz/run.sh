#!/usr/bin/env bash
# Run every fuzz target (or those named) for a given time each, a few at once,
# with the allocation bounds below; then print, per target, the executions, the
# coverage reached (edges and features) and what was found. Not part of .ci/run.
#
#   fuzz/run.sh [-t SECONDS] [-j PARALLEL] [TARGET...]     (default 1800 s, 2 at once)
#   KEEP_GOING=1 fuzz/run.sh ...   (fork mode: record findings and go on)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The machine's stable toolchain
# serves: RUSTC_BOOTSTRAP=1 lets it take the sanitizer flags cargo-fuzz passes.
# The working corpus grows in fuzz/corpus/<target> (seeded from fuzz/seeds/,
# regenerate those with fuzz/make_seeds.py); crashes land in fuzz/artifacts/<target>;
# logs and the summary (fuzz/logs/summary.tsv) in fuzz/logs/.
#
# Bounds: inputs up to 1 MiB (-max_len); no single allocation over 256 MiB
# (-malloc_limit_mb) — a decoded frame is at most 1024 x 1024 x 3 samples, 12 MiB
# as i32, so anything larger means a length taken on trust; the whole process
# under 2 GiB (-rss_limit_mb, with ASan's quarantine held at 64 MiB); 10 s per
# input (-timeout; TIMEOUT=N to change it: a fuzzer sharing the machine with a
# build is starved, and libFuzzer's timeout is wall-clock time) counts as a hang.
set -euo pipefail
cd "$(dirname "$0")"
seconds=1800
jobs=2
while getopts "t:j:" o; do
  case $o in
    t) seconds=$OPTARG ;;
    j) jobs=$OPTARG ;;
    *) echo "usage: $0 [-t SECONDS] [-j PARALLEL] [TARGET...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2; exit 1; }
export RUSTC_BOOTSTRAP=1
export ASAN_OPTIONS="quarantine_size_mb=64:detect_leaks=0:allocator_may_return_null=0"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build -O >/dev/null
mkdir -p logs corpus artifacts
run_one() {
  local t=$1
  mkdir -p "corpus/$t" "artifacts/$t"
  [ -d "seeds/$t" ] && cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  local bin="target/x86_64-unknown-linux-gnu/release/$t"
  local keep=()
  # KEEP_GOING=1: libFuzzer's fork mode, which records a finding and goes on,
  # so a target gets its whole time even when it finds something early.
  [ "${KEEP_GOING:-0}" = 1 ] && keep=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
  "$bin" "corpus/$t" "${keep[@]}" -dict=dicom.dict -max_len=1048576 -malloc_limit_mb=256 \
    -rss_limit_mb=2048 -timeout="${TIMEOUT:-10}" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" -close_fd_mask=3 > "logs/$t.log" 2>&1 || true
}
export -f run_one
export seconds TIMEOUT KEEP_GOING
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'
printf 'target\tseconds\texecutions\tedges\tfeatures\tcorpus\tfindings\n' > logs/summary.tsv
for t in "${targets[@]}"; do
  log="logs/$t.log"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  if [ "$execs" = 0 ] && [ -n "$last" ]; then
    # Fork mode prints no final stats: its last status line has the count.
    execs=$(echo "$last" | grep -o '^#[0-9]*' | tr -d '#')
  fi
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*' || echo 0)
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*' || echo 0)
  corp=$(ls "corpus/$t" | wc -l)
  found=$(ls "artifacts/$t" 2>/dev/null | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$seconds" "$execs" "$cov" "$ft" "$corp" "$found" >> logs/summary.tsv
done
column -t logs/summary.tsv
