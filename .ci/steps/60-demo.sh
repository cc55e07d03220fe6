# The main job (`./run demo`) as a check: the release workflow end to end with real eyas devices (RAUC
# sandboxes, U-Boot env through eyas-bootloader, mosquitto telemetry) plus simulated devices.
#  1. default demo: the rollout (canary -> 10 % -> 50 % -> 100 %) finishes; every real device runs the new
#     version from slot B, marked good, closed/success in hawkBit, telemetry complete;
#  2. fallback: dev-02's new slot never boots; the boot script uses up its attempts and falls back to A;
#     eyas marks B bad and A good, reports closed/failure (error_code 400) and the canary group's error
#     threshold pauses the rollout;
#  3. failed health check: dev-02's new slot boots but fails the health check; eyas marks it bad, reports
#     closed/failure (error_code 300) and reboots into A, which is marked good; the rollout pauses.
set -euo pipefail
passed=0 failed=0
check() {
  local name=$1; shift
  echo "--- $name"
  if "$@"; then passed=$((passed + 1)); echo "--- $name: ok"; else failed=$((failed + 1)); echo "--- $name: FAILED"; fi
}
check demo-finished env DEMO_EXPECT=finished DEMO_TIMEOUT=180 bash hil-tests/scripts/demo.sh
check demo-fallback env DEMO_EXPECT=paused DEMO_FAIL_BOOT=dev-02 DEMO_TIMEOUT=180 bash hil-tests/scripts/demo.sh
check demo-health env DEMO_EXPECT=paused DEMO_FAIL_HEALTH=dev-02 DEMO_TIMEOUT=180 bash hil-tests/scripts/demo.sh
echo "demo checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
