# eyasctl report, the Grafana "OTA Rollout" dashboard and the HTML page (issue 11; hil-tests/grafana/README.md):
#  1. a deterministic fleet telemetry (make-fixture.py: 20 devices over a month boundary, ThingsBoard's typing
#     cases): `eyasctl report --json` at a fixed interval and at its automatic one; check-panels.py runs every
#     panel's SQL on a real PostgreSQL 15 (ThingsBoard's schema subset, Grafana's macro expansion) and compares
#     every number with the report;
#  2. the telemetry the demo's devices published (60-demo.sh leaves it in $CARGO_TARGET_DIR/demo-report): the
#     same comparison; under CI (CI=true) the demo's files must be there;
#  3. the HTML pages (fixture; demo with its rollout) in headless Chromium: a screenshot, no console message,
#     the numbers in the rendered page and in the charts' labels (check-html.py).
set -euo pipefail
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$PWD/$TARGET_DIR ;; esac
cargo build -q -p eyasctl --bins --locked
CTL=$TARGET_DIR/debug/eyasctl
G=hil-tests/grafana/test
OUT=$TARGET_DIR/report-check
rm -rf "$OUT" && mkdir -p "$OUT"
passed=0 failed=0
check() {
  local name=$1; shift
  echo "--- $name"
  if "$@"; then passed=$((passed + 1)); echo "--- $name: ok"; else failed=$((failed + 1)); echo "--- $name: FAILED"; fi
}
python3 "$G/make-fixture.py" >"$OUT/fixture.jsonl"
# panels JSON [REPORT ARGS…]: eyasctl report --json on the fixture, then every panel on PostgreSQL
panels() {
  local json=$1; shift
  "$CTL" --json report --telemetry "$OUT/fixture.jsonl" "$@" >"$json" &&
    python3 "$G/check-panels.py" --telemetry "$OUT/fixture.jsonl" --report "$json"
}
check fixture-panels-1h panels "$OUT/fixture-1h.json" --interval 3600 --html "$OUT/fixture.html"
check fixture-panels-auto panels "$OUT/fixture-auto.json"
check fixture-html python3 "$G/check-html.py" --html "$OUT/fixture.html" --report "$OUT/fixture-1h.json" --screenshot "$OUT/fixture.png"
DEMO=$TARGET_DIR/demo-report
if [ -f "$DEMO/telemetry.jsonl" ] && [ -f "$DEMO/report.json" ]; then
  check demo-panels python3 "$G/check-panels.py" --telemetry "$DEMO/telemetry.jsonl" --report "$DEMO/report.json"
  check demo-html python3 "$G/check-html.py" --html "$DEMO/report.html" --report "$DEMO/report.json" --screenshot "$OUT/demo.png"
elif [ "${CI:-}" = true ]; then
  echo "no demo report in $DEMO (60-demo.sh writes it)"; failed=$((failed + 1))
else
  echo "(no demo report in $DEMO: run ./run demo first to check the demo's telemetry too)"
fi
echo "report checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
