#!/usr/bin/env bash
# Runs vhdprep's cargo-fuzz targets, each for a set time, and summarises what they found.
#
#   scripts/fuzz.sh [--seconds N] [--jobs J] [TARGET...]   # default: every target, 60 s each
#   scripts/fuzz.sh --list
#
# Needs nightly Rust and cargo-fuzz; installs both if missing (rustup, cargo install).
# Each target starts from fuzz/seeds/<target>/ (committed, read-only here) and keeps what it
# learns in fuzz/corpus/<target>/ (not committed). A crash, timeout or out-of-memory input is
# written to fuzz/artifacts/<target>/; copy it to fuzz/regressions/<target>/ once fixed, and
# the ordinary test suite (crates/fuzz/tests/corpora.rs) replays it forever after.
# Limits per input: 10 s, 2 GiB RSS, 1 GiB per allocation.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"

seconds=60 jobs=1 targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --list) cargo metadata --no-deps --format-version 1 --manifest-path Cargo.toml \
            | python3 -c 'import json,sys; [print(t["name"]) for p in json.load(sys.stdin)["packages"] for t in p["targets"] if "bin" in t["kind"]]'
            exit ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <("$root/scripts/fuzz.sh" --list)
fi
[ ${#targets[@]} -gt 0 ] || { echo "scripts/fuzz.sh: no fuzz targets found in fuzz/Cargo.toml" >&2; exit 2; }

cargo +nightly fuzz build -O   # every target; a build error stops here

# -jobs=1 would still fork a worker and log to a file; only ask for workers when there are several.
parallel=(); [ "$jobs" -gt 1 ] && parallel=(-jobs="$jobs" -workers="$jobs")

summary="$root/fuzz/artifacts/summary.txt"
mkdir -p "$root/fuzz/artifacts"; : > "$summary"
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t/fuzz.log"
    echo "== $t (${seconds}s)"
    if cargo +nightly fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        "${parallel[@]}" -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result=FOUND; status=1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s+=$2} END {print s+0}')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    printf '%-28s %-6s runs=%-10s cov=%-6s corpus=%s\n' "$t" "$result" "$runs" "${cov:-?}" \
        "$(ls "corpus/$t" | wc -l)" | tee -a "$summary"
    if [ "$result" = FOUND ]; then
        grep -m3 -E 'panicked|ERROR: libFuzzer|SUMMARY' "$log" | sed 's/^/    /' | tee -a "$summary"
        ls "artifacts/$t" | grep -v fuzz.log | sed 's/^/    artifact: /' | tee -a "$summary"
    fi
done
echo "summary: $summary"
exit $status
