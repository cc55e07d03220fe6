#!/usr/bin/env python3
"""Opens an `eyasctl report --html` page in headless Chromium and checks what a person would see.

    check-html.py --html R.html --report R.json --screenshot OUT.png

* a screenshot is taken (a PNG, non-trivial in size);
* Chromium logs no console message (the page has no script; a failed resource or a script error
  would show up as a CONSOLE line with --enable-logging=stderr --v=0);
* the rendered DOM (--dump-dom) holds the report's numbers: every section's data attributes equal
  the JSON, every chart's data-values equal the JSON series, and the charts' SVG text labels show
  each success rate (one decimal), P50/P95 (whole ms) and error count;
* the page loads nothing from elsewhere (no http(s) URL in src/href).

Exit 0 when everything holds, 1 with one line per difference otherwise.
"""
import argparse
import html
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    print("check-html: chromium not found (install it: .ci/install-deps)", file=sys.stderr)
    sys.exit(2)


def run(args, profile):
    base = [chromium(), "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
            "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0"]
    if os.geteuid() == 0:
        base.append("--no-sandbox")  # Chromium refuses root without it (CI runs as root)
    return subprocess.run(base + args, capture_output=True, text=True, timeout=120)


def close(a, b):
    return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--html", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--screenshot", required=True)
    a = ap.parse_args()
    doc = json.load(open(a.report, encoding="utf-8"))
    url = "file://" + os.path.abspath(a.html)
    bad = []
    checks = 0
    with tempfile.TemporaryDirectory(prefix="eyas-chromium.") as profile:
        shot = run(["--window-size=1280,2400", "--hide-scrollbars", "--screenshot=" + os.path.abspath(a.screenshot), url],
                   profile)
        dom = run(["--dump-dom", url], profile)
    for r in (shot, dom):
        for line in r.stderr.splitlines():
            if "CONSOLE" in line or "Uncaught" in line:
                bad.append("console: " + line.strip())
    checks += 1
    if shot.returncode != 0 or not os.path.exists(a.screenshot) or os.path.getsize(a.screenshot) < 10000:
        bad.append("no screenshot (chromium exit %d): %s" % (shot.returncode, shot.stderr[-500:]))
    page = dom.stdout
    checks += 1
    if dom.returncode != 0 or "<svg" not in page:
        bad.append("--dump-dom gave no page with charts (exit %d)" % dom.returncode)
    if re.search(r'(src|href)="https?:', page):
        bad.append("the page loads something from elsewhere")

    def attrs(tag_re):
        return [dict((k, html.unescape(v)) for k, v in re.findall(r'([\w-]+)="([^"]*)"', m))
                for m in re.findall(tag_re, page)]

    sections = {s.get("data-source"): s for s in attrs(r'<section class="source"([^>]*)>')}
    for key in ("hawkbit", "telemetry"):
        s = doc.get(key)
        if s is None:
            checks += 1
            if key in sections:
                bad.append("a %s section without %s data" % (key, key))
            continue
        sec = sections.get(key)
        checks += 1
        if sec is None:
            bad.append("no %s section in the rendered page" % key)
            continue
        for attr, want in (("data-success-rate", s["rate"]), ("data-p50-ms", s["download_ms"]["p50"]),
                           ("data-p95-ms", s["download_ms"]["p95"]), ("data-success", s["success"]),
                           ("data-failure", s["failure"]), ("data-downloads", s["download_ms"]["count"])):
            checks += 1
            got = sec.get(attr, "")
            if want is None:
                if got != "":
                    bad.append("%s %s: %r, expected empty" % (key, attr, got))
            elif not close(got or None, want):
                bad.append("%s %s: %r, expected %r" % (key, attr, got, want))
    # the charts, in page order: per source success-rate, download-duration, errors
    figures = re.findall(r'<figure class="chart" data-chart="([\w-]+)" data-values="([^"]*)">(.*?)</figure>', page, re.S)
    by_source = []
    for key in ("hawkbit", "telemetry"):
        if doc.get(key) is not None:
            by_source.append((key, doc[key]))
    checks += 1
    if len(figures) != 3 * len(by_source):
        bad.append("%d charts, expected %d" % (len(figures), 3 * len(by_source)))
    for i, (key, s) in enumerate(by_source):
        want = {"success-rate": s["success_rate"], "download-duration": s["download_ms"]["buckets"],
                "errors": s["errors"]}
        for name, values, svg in figures[3 * i:3 * i + 3]:
            checks += 1
            if json.loads(html.unescape(values)) != want.get(name):
                bad.append("%s chart %s: data-values differ from the report" % (key, name))
            labels = {html.unescape(t.strip()) for t in re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S)}
            if name == "success-rate":
                expect = ["%.1f" % b["rate"] for b in s["success_rate"] if b["rate"] is not None]
            elif name == "download-duration":
                expect = ["%.0f" % b[p] for b in s["download_ms"]["buckets"] for p in ("p50", "p95")]
            else:
                expect = [str(e["failures"]) for e in s["errors"]]
            for e in expect:
                checks += 1
                if e not in labels:
                    bad.append("%s chart %s: no label %s (labels: %s)" % (key, name, e, sorted(labels)))
    ro = doc.get("rollout")
    if ro:
        rows = {r.get("data-group"): r for r in attrs(r'<tr (data-group=[^>]*)>')}
        for g in ro["groups"]:
            checks += 1
            r = rows.get(g["name"])
            if not r or (r.get("data-targets"), r.get("data-success"), r.get("data-error")) != \
                    (str(g["targets"]), str(g["success"]), str(g["error"])):
                bad.append("group %s: row %r, report %r" % (g["name"], r, g))
    for b in bad:
        print("check-html: MISMATCH: " + b)
    print("check-html: %s (%d bytes), %d checks, %d mismatches" % (a.screenshot, os.path.getsize(a.screenshot)
                                                                   if os.path.exists(a.screenshot) else 0,
                                                                   checks, len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
