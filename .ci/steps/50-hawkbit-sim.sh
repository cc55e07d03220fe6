# hawkbit-sim checks that are not plain `cargo test` (those run in 20-workspace-tests):
#  1. SWUpdate 2022.12 (Debian) as a real second DDI client: signed .swu, full deployment, final status via Mgmt API;
#  2. the release workflow (eyasctl over the real hawkBit Management API, hil-tests/scripts/fleet-sim.sh) with 40 simulated devices,
#     once rolling out to the end and once paused by the 5 % error threshold;
#  3. the 10,000-target poll benchmark (loopback, 5 s), reporting p50/p99 and requests/s against the 50 ms p99 goal.
#     It is a benchmark, not a timed test: the numbers are printed, a slow run on a loaded machine does not fail CI.
set -euo pipefail
TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q -p eyas-hil-tests -p eyasctl --bins --locked
export SIM_BIN=$PWD/$TARGET_DIR/debug/hawkbit-sim DEV_BIN=$PWD/$TARGET_DIR/debug/sim-devices CTL_BIN=$PWD/$TARGET_DIR/debug/eyasctl
case "$TARGET_DIR" in /*) export SIM_BIN=$TARGET_DIR/debug/hawkbit-sim DEV_BIN=$TARGET_DIR/debug/sim-devices CTL_BIN=$TARGET_DIR/debug/eyasctl ;; esac
passed=0 failed=0
check() {
  local name=$1; shift
  echo "--- $name"
  if "$@"; then passed=$((passed + 1)); echo "--- $name: ok"; else failed=$((failed + 1)); echo "--- $name: FAILED"; fi
}
check swupdate-e2e bash hil-tests/scripts/swupdate-e2e.sh
check release-finished env DEMO_EXPECT=finished bash hil-tests/scripts/fleet-sim.sh
check release-paused env DEMO_EXPECT=paused DEMO_FAIL=2 bash hil-tests/scripts/fleet-sim.sh
# benchmark: optimised but without the size-focused LTO of the release profile (build time)
bench() {
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=3 \
    CARGO_PROFILE_RELEASE_PANIC=unwind cargo build -q -p eyas-hil-tests --release --locked --bin hawkbit-sim-bench &&
    "$TARGET_DIR/release/hawkbit-sim-bench" --targets 10000 --connections 64 --duration-secs 5
}
check poll-benchmark bench
echo "hawkbit-sim checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
