#!/usr/bin/env bash
# Fuzzes capd-bootstrap's two parsers (cloud-config, Ignition) with cargo-fuzz
# for a bounded time each, and fails on any crash (panic, overflow, timeout,
# out-of-memory). Standalone: installs the pinned cargo-fuzz into
# ~/.cache/capd-rs/tools/cargo-fuzz-<version> if it is not there yet.
#
#   bash .ci/fuzz-bootstrap.sh                 # 60 s per target
#   FUZZ_SECONDS=300 bash .ci/fuzz-bootstrap.sh
#   FUZZ_TARGETS=ignition bash .ci/fuzz-bootstrap.sh
#   bash .ci/fuzz-bootstrap.sh build           # install and build only (`cargo xtask test`
#                                              # runs this in the background first)
#
# Inputs found along the way go to a temporary directory, never into the repo;
# a crashing input is kept in crates/bootstrap/fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-cloud_config ignition}"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
fuzz_dir=crates/bootstrap/fuzz
mode="${1:-run}"
[[ "$mode" == run || "$mode" == build ]] || { echo "usage: $0 [run|build]" >&2; exit 2; }
# Pinned; a new version here is a new cache directory.
cargo_fuzz_version=0.13.2
tools="${XDG_CACHE_HOME:-$HOME/.cache}/capd-rs/tools/cargo-fuzz-$cargo_fuzz_version"
export PATH="$tools/bin:$PATH"

say() { printf 'fuzz-bootstrap: %s\n' "$*"; }

# cargo-fuzz needs a nightly compiler (sanitizers, -Z flags).
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    say "installing the $toolchain toolchain"
    rustup toolchain install "$toolchain" --profile minimal || {
        say "no $toolchain toolchain and none can be installed; cannot fuzz"
        exit 1
    }
fi
if [[ ! -x "$tools/bin/cargo-fuzz" ]]; then
    say "installing cargo-fuzz $cargo_fuzz_version into $tools"
    cargo install --quiet --locked --version "$cargo_fuzz_version" --root "$tools" cargo-fuzz
fi
say "$(cargo fuzz --version), $(rustup run "$toolchain" rustc --version)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

build=(cargo "+$toolchain" fuzz build --fuzz-dir "$fuzz_dir" -O)
say "+ ${build[*]}"
start=$SECONDS
"${build[@]}"
say "built in $((SECONDS - start)) s"
[[ "$mode" == build ]] && exit 0

declare -A seeds=(
    [cloud_config]="crates/bootstrap/testdata/cloud-config $fuzz_dir/seeds/cloud_config"
    [ignition]="crates/bootstrap/testdata/ignition $fuzz_dir/seeds/ignition"
)

failed=()
summary=()
for target in $targets; do
    [[ -n "${seeds[$target]:-}" ]] || { say "unknown target $target"; exit 2; }
    mkdir -p "$work/$target" "$fuzz_dir/artifacts/$target"
    # shellcheck disable=SC2206
    run=(cargo "+$toolchain" fuzz run --fuzz-dir "$fuzz_dir" -O "$target" "$work/$target" ${seeds[$target]} --
        "-max_total_time=$seconds" "-dict=$fuzz_dir/dict/$target.dict" -max_len=16384 -timeout=10
        -rss_limit_mb=2048 -print_final_stats=1 "-artifact_prefix=$fuzz_dir/artifacts/$target/")
    say "+ ${run[*]}"
    log="$work/$target.log"
    set +e
    "${run[@]}" 2>&1 | tee "$log" | grep -E --line-buffered '^#[0-9]+[[:space:]]+(INITED|DONE|pulse)|^Done |ERROR|panicked|SUMMARY|^stat::'
    status=${PIPESTATUS[0]}
    set -e
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    corpus="$(find "$work/$target" -type f | wc -l)"
    if [[ "$status" -ne 0 ]]; then
        failed+=("$target")
        tail -n 60 "$log"
        say "$target: FAILED (exit $status); crashing input in $fuzz_dir/artifacts/$target/"
        summary+=("$target: FAILED after ${runs:-?} runs")
    else
        summary+=("$target: ${runs:-?} runs in ${seconds} s, ${corpus} new corpus inputs, no crash")
    fi
done

for line in "${summary[@]}"; do say "$line"; done
if [[ ${#failed[@]} -gt 0 ]]; then
    say "crashes in: ${failed[*]}"
    exit 1
fi
say "ok"
