#!/usr/bin/env python3
"""Runs every panel query of the Grafana "OTA Rollout" dashboard on a real PostgreSQL and checks
the numbers equal `eyasctl report --json` on the same telemetry.

    check-panels.py --telemetry T.jsonl --report R.json [--dashboard D.json]

* starts a throw-away PostgreSQL cluster (Debian's postgresql 15: initdb + pg_ctl; unix socket in a
  temp dir, no TCP; as user postgres when run as root, since initdb refuses root) and stops it at
  the end;
* creates ThingsBoard's schema subset (schema.sql) plus the monthly ts_kv partitions the data
  needs, named as ThingsBoard names them;
* loads the telemetry as ThingsBoard stores device MQTT telemetry: one ts_kv row per key, typed
  by JsonConverter's rules (bool_v / long_v / dbl_v / str_v / json_v, numeric-looking strings cast
  to numbers, nulls dropped, keys added to the dictionary on first use, upsert on
  (entity_id, key, ts));
* expands the Grafana macros as Grafana does (frontend template variables, then the backend's
  global replacements, then its macro regex: shared/reference/grafana-thingsboard-sql.md §6),
  with the report's interval as $__interval and a range covering the data;
* runs each panel's query as the SELECT-only role grafana_ro, checks the frame rules (a `time`
  column, ordered, for time_series targets; nothing of `$__` left; the time filter prunes the
  DEFAULT partition) and compares every number with the report's `telemetry` section.

Exit 0 when everything matches, 1 with one line per difference otherwise.
"""
import argparse
import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DASHBOARD = os.path.join(HERE, "..", "dashboards", "ota-rollout.json")
PG_BIN_DEFAULT = "/usr/lib/postgresql/15/bin"
NS = uuid.UUID("6f0c0d2e-8a43-4b4e-9a63-2f1d0e5c7a10")
I64 = (-(2**63), 2**63 - 1)


def fail(msg):
    print("check-panels: " + msg, file=sys.stderr)
    sys.exit(2)


# ------------------------------------------------------------------ PostgreSQL cluster


class Cluster:
    def __init__(self):
        bindir = os.environ.get("PG_BIN", PG_BIN_DEFAULT)
        if not os.path.exists(os.path.join(bindir, "initdb")):
            found = shutil.which("initdb")
            if not found:
                fail("initdb not found (install postgresql: .ci/install-deps)")
            bindir = os.path.dirname(os.path.realpath(found))
        self.bin = bindir
        self.dir = tempfile.mkdtemp(prefix="eyas-pg.")
        self.prefix = []
        if os.geteuid() == 0:
            # initdb refuses root: the cluster runs as postgres (the Debian package's user)
            shutil.chown(self.dir, user="postgres")
            os.chmod(self.dir, 0o755)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.data = os.path.join(self.dir, "data")
        self.port = "5432"
        self.started = False

    def run(self, *args):
        r = subprocess.run(self.prefix + list(args), capture_output=True, text=True)
        if r.returncode != 0:
            fail("%s failed (%d): %s%s" % (args[0], r.returncode, r.stdout[-2000:], r.stderr[-2000:]))
        return r.stdout

    def start(self):
        self.run(os.path.join(self.bin, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres",
                 "-E", "UTF8", "--locale=C", "--no-sync")
        opts = "-c listen_addresses='' -c unix_socket_directories=%s -p %s -c fsync=off" % (self.dir, self.port)
        self.run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-o", opts, "-l",
                 os.path.join(self.dir, "server.log"), "-w", "-t", "60", "start")
        self.started = True

    def stop(self):
        if self.started:
            subprocess.run(self.prefix + [os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "fast",
                                          "-w", "stop"], capture_output=True)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, sql=None, file=None, user="postgres"):
        args = [os.path.join(self.bin, "psql"), "-h", self.dir, "-p", self.port, "-U", user, "-d", "postgres",
                "-X", "-q", "-v", "ON_ERROR_STOP=1", "--csv"]
        args += ["-f", file] if file else ["-c", sql]
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("psql: %s\n--- query:\n%s" % (r.stderr.strip(), sql or file))
        return list(csv.reader(io.StringIO(r.stdout)))


# ------------------------------------------------------------------ ThingsBoard's typing (§2)


def parsable_number(s):
    """commons-lang3 NumberUtils.isParsable, as JsonConverter uses it for type casting."""
    return re.fullmatch(r"-?(\d+(\.\d+)?|\.\d+)", s) is not None


def typed(value):
    """(column, SQL literal) of a JSON value as ThingsBoard stores it, or None (dropped)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return ("bool_v", "true" if value else "false")
    if isinstance(value, int):
        return ("long_v", str(value)) if I64[0] <= value <= I64[1] else ("str_v", quote(str(value)))
    if isinstance(value, float):
        return ("dbl_v", repr(value) + "::float8")
    if isinstance(value, str):
        if parsable_number(value):
            if "." in value:
                return ("dbl_v", repr(float(value)) + "::float8")
            n = int(value)
            if I64[0] <= n <= I64[1]:
                return ("long_v", str(n))
        return ("str_v", quote(value))
    return ("json_v", quote(json.dumps(value, separators=(",", ":"))) + "::json")


def quote(s):
    return "'" + s.replace("'", "''") + "'"


def load_telemetry(path):
    """[(device, ts, values)] from the JSONL the report reads."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                m = json.loads(line)
                out.append((str(m["device"]), int(m["ts"]), dict(m["values"])))
            except (ValueError, KeyError, TypeError) as e:
                fail("%s:%d: not a telemetry line: %s" % (path, n, e))
    if not out:
        fail("%s: no telemetry" % path)
    return out


def month_partitions(lo_ms, hi_ms):
    """ThingsBoard's MONTHS partitions (UTC) covering [lo_ms, hi_ms]: (name, from ms, to ms)."""
    import datetime as dt
    utc = dt.timezone.utc
    d = dt.datetime.fromtimestamp(lo_ms / 1000, utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    parts = []
    while int(d.timestamp() * 1000) <= hi_ms:
        nxt = d.replace(year=d.year + 1, month=1) if d.month == 12 else d.replace(month=d.month + 1)
        parts.append(("ts_kv_%04d_%02d" % (d.year, d.month), int(d.timestamp() * 1000), int(nxt.timestamp() * 1000)))
        d = nxt
    return parts


def seed_sql(rows, partitions):
    out = []
    for name, lo, hi in partitions:
        out.append("CREATE TABLE IF NOT EXISTS %s PARTITION OF ts_kv FOR VALUES FROM (%d) TO (%d);" % (name, lo, hi))
    profile = uuid.uuid5(NS, "profile:eyas")
    out.append("INSERT INTO device_profile (id, created_time, name) VALUES ('%s', 0, 'eyas');" % profile)
    devices = sorted({d for d, _, _ in rows})
    for d in devices:
        out.append("INSERT INTO device (id, created_time, device_profile_id, type, name) VALUES ('%s', 0, '%s', 'eyas', %s);"
                   % (uuid.uuid5(NS, d), profile, quote(d)))
    for d, ts, values in rows:
        for key, value in values.items():
            t = typed(value)
            if t is None:
                continue  # ThingsBoard's device transports drop nulls silently
            col, lit = t
            out.append("INSERT INTO key_dictionary (key) VALUES (%s) ON CONFLICT (key) DO NOTHING;" % quote(key))
            cols = ["bool_v", "str_v", "long_v", "dbl_v", "json_v"]
            vals = [lit if c == col else "NULL" for c in cols]
            out.append(
                "INSERT INTO ts_kv (entity_id, key, ts, %s) SELECT '%s', key_id, %d, %s FROM key_dictionary WHERE key = %s "
                "ON CONFLICT (entity_id, key, ts) DO UPDATE SET %s;"
                % (", ".join(cols), uuid.uuid5(NS, d), ts, ", ".join(vals), quote(key),
                   ", ".join("%s = EXCLUDED.%s" % (c, c) for c in cols)))
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ Grafana's macros (§6)


def grafana_duration(secs):
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs % n == 0:
            return "%d%s" % (secs // n, unit)
    return "%ds" % secs


def parse_interval(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text.strip().strip("'\""))
    if not m:
        raise ValueError("interval %r" % text)
    mult = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return int(m.group(1)) * mult


def go_float(x):
    return ("%d" % x) if float(x).is_integer() else repr(float(x))


def expand(sql, variables, frm, to, interval_secs):
    import datetime as dt
    # 1. frontend: template variables ($var and ${var})
    for name, value in variables.items():
        sql = sql.replace("${%s}" % name, value).replace("$%s" % name, value)
    # 2. backend global pass, in Grafana's order
    sql = sql.replace("$__interval_ms", str(interval_secs * 1000))
    sql = sql.replace("$__interval", grafana_duration(interval_secs))
    sql = sql.replace("$__unixEpochFrom()", str(frm)).replace("$__unixEpochTo()", str(to))
    iso = lambda s: "'" + dt.datetime.fromtimestamp(s, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") + "'"

    # 3. backend macro regex: arguments end at the first ')'
    def macro(m):
        name, args = m.group(1), [a.strip() for a in m.group(2).split(",")] if m.group(2) else []
        if name == "__time":
            return '%s AS "time"' % args[0]
        if name == "__timeEpoch":
            return 'extract(epoch from %s) as "time"' % args[0]
        if name == "__timeFilter":
            return "%s BETWEEN %s AND %s" % (args[0], iso(frm), iso(to))
        if name == "__timeFrom":
            return iso(frm)
        if name == "__timeTo":
            return iso(to)
        if name in ("__timeGroup", "__timeGroupAlias"):
            s = go_float(parse_interval(args[1]))
            e = "floor(extract(epoch from %s)/%s)*%s" % (args[0], s, s)
            return e + (' AS "time"' if name.endswith("Alias") else "")
        if name == "__unixEpochFilter":
            return "%s >= %d AND %s <= %d" % (args[0], frm, args[0], to)
        if name == "__unixEpochNanoFilter":
            return "%s >= %d AND %s <= %d" % (args[0], frm * 10**9, args[0], to * 10**9)
        if name == "__unixEpochNanoFrom":
            return str(frm * 10**9)
        if name == "__unixEpochNanoTo":
            return str(to * 10**9)
        if name in ("__unixEpochGroup", "__unixEpochGroupAlias"):
            s = go_float(parse_interval(args[1]))
            e = "floor((%s)/%s)*%s" % (args[0], s, s)
            return e + (' AS "time"' if name.endswith("Alias") else "")
        raise ValueError("unknown macro $%s" % name)

    # Grafana's quirk: $__timeGroup( … ), is expanded as the alias form
    sql = re.sub(r"\$__timeGroup\(([^\)]*)\),", r"$__timeGroupAlias(\1),", sql)
    return re.sub(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)", macro, sql)


# ------------------------------------------------------------------ comparison


class Diff:
    def __init__(self):
        self.lines = []
        self.checks = 0

    def num(self, what, sql_value, report_value, tol=1e-6):
        self.checks += 1
        a = None if sql_value in ("", None) else float(sql_value)
        b = None if report_value is None else float(report_value)
        if a is None or b is None:
            if a is not b:
                self.lines.append("%s: SQL %r, report %r" % (what, sql_value, report_value))
        elif not math.isclose(a, b, rel_tol=tol, abs_tol=tol):
            self.lines.append("%s: SQL %s, report %s" % (what, a, b))

    def eq(self, what, a, b):
        self.checks += 1
        if a != b:
            self.lines.append("%s: SQL %r, report %r" % (what, a, b))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--telemetry", required=True)
    ap.add_argument("--report", required=True, help="eyasctl report --json output")
    ap.add_argument("--dashboard", default=DEFAULT_DASHBOARD)
    a = ap.parse_args()

    report = json.load(open(a.report, encoding="utf-8"))
    tele = report.get("telemetry")
    if not isinstance(tele, dict):
        fail("%s has no telemetry section (was eyasctl report given --telemetry?)" % a.report)
    interval = int(report["interval_secs"])
    dash = json.load(open(a.dashboard, encoding="utf-8"))
    variables = {v["name"]: v["current"]["value"] for v in dash.get("templating", {}).get("list", [])}
    rows = load_telemetry(a.telemetry)
    lo = min(ts for _, ts, _ in rows)
    hi = max(ts for _, ts, _ in rows)
    # the dashboard's time range: whole seconds around the data, as Grafana sends them
    frm, to = lo // 1000 - 60, hi // 1000 + 61
    parts = month_partitions(frm * 1000, to * 1000)

    pg = Cluster()
    diff = Diff()
    try:
        pg.start()
        pg.psql(file=os.path.join(HERE, "schema.sql"))
        seed = os.path.join(pg.dir, "seed.sql")
        with open(seed, "w", encoding="utf-8") as f:
            f.write("BEGIN;\n" + seed_sql(rows, parts) + "COMMIT;\n")
        os.chmod(seed, 0o644)
        pg.psql(file=seed)
        n_rows = pg.psql("SELECT count(*) FROM ts_kv")[1][0]
        print("check-panels: PostgreSQL %s, %d telemetry messages from %d devices -> %s ts_kv rows in %s"
              % (pg.psql("SHOW server_version")[1][0], len(rows), len({d for d, _, _ in rows}), n_rows,
                 ", ".join(p[0] for p in parts)))
        results = {}
        # the dashboard refers to the provisioned datasource by uid, and says what format it wants
        prov = open(os.path.join(HERE, "..", "provisioning", "datasources", "thingsboard-pg.yaml")).read()
        uid = re.search(r"^\s*uid:\s*(\S+)", prov, re.M)
        diff.eq("provisioned datasource uid", bool(uid), True)
        for panel in dash["panels"]:
            for t in panel.get("targets", []):
                for what in (panel, t):
                    diff.eq("panel %r: datasource uid" % panel["title"], what.get("datasource", {}).get("uid"),
                            uid.group(1) if uid else None)
                diff.eq("panel %r: format set" % panel["title"], t.get("format") in ("time_series", "table"), True)
                sql = expand(t["rawSql"], variables, frm, to, interval)
                if "$" in sql:
                    diff.lines.append("panel %r: something of a macro or variable is left: %s" % (panel["title"], sql))
                    continue
                res = pg.psql(sql, user="grafana_ro")
                header, body = res[0], res[1:]
                if t.get("format") == "time_series":
                    if "time" not in header:
                        diff.lines.append("panel %r: time_series without a time column (%s)" % (panel["title"], header))
                    else:
                        times = [float(r[header.index("time")]) for r in body]
                        diff.eq("panel %r: ordered by time" % panel["title"], times, sorted(times))
                plan = "\n".join(r[0] for r in pg.psql("EXPLAIN " + sql, user="postgres")[1:])
                diff.eq("panel %r: DEFAULT partition pruned" % panel["title"], "ts_kv_indefinite" in plan, False)
                results[panel["id"]] = (header, body)
                print("check-panels: panel %d %r (%s): %d rows" % (panel["id"], panel["title"], t.get("format"), len(body)))

        def rows_of(pid):
            header, body = results.get(pid, ([], []))
            return [dict(zip(header, r)) for r in body]

        # 1. success rate over time
        sr = rows_of(1)
        if not sr or not rows_of(2):
            diff.lines.append("the telemetry gave no success-rate or download-duration rows: nothing was compared")
        rep = tele["success_rate"]
        diff.eq("success rate: buckets", [int(float(r["time"])) for r in sr], [b["time"] for b in rep])
        for r, b in zip(sr, rep):
            diff.num("success rate at %s" % b["time"], r["success rate"], b["rate"])
        # 2. P50/P95 per interval
        dl = rows_of(2)
        rep = tele["download_ms"]["buckets"]
        diff.eq("download duration: buckets", [int(float(r["time"])) for r in dl], [b["time"] for b in rep])
        for r, b in zip(dl, rep):
            diff.num("download p50 at %s" % b["time"], r["p50"], b["p50"])
            diff.num("download p95 at %s" % b["time"], r["p95"], b["p95"])
        # 3. errors by code
        er = rows_of(3)
        diff.eq("errors by code", [(r["error_code"], int(r["failures"]), int(r["devices"])) for r in er],
                [(e["error_code"], e["failures"], e["devices"]) for e in tele["errors"]])
        # 4. last outcome per device
        last = rows_of(4)
        diff.num("success rate (last outcome per device)", last[0]["success rate"] if last else None,
                 tele["success_rate_last"]["rate"])
        diff.num("devices with an outcome", last[0]["devices"] if last else None, tele["success_rate_last"]["devices"])
        # 5. whole-range percentiles
        whole = rows_of(5)
        diff.num("download p50 (range)", whole[0]["p50"] if whole else None, tele["download_ms"]["p50"])
        diff.num("download p95 (range)", whole[0]["p95"] if whole else None, tele["download_ms"]["p95"])
        diff.num("downloads (range)", whole[0]["downloads"] if whole else None, tele["download_ms"]["count"])
        print("check-panels: success rate %s; P50 %s ms, P95 %s ms over %s downloads; errors %s"
              % ([r["success rate"] for r in sr], whole[0]["p50"] if whole else "-", whole[0]["p95"] if whole else "-",
                 whole[0]["downloads"] if whole else 0,
                 ", ".join("%s=%s" % (r["error_code"], r["failures"]) for r in er) or "none"))
    except RuntimeError as e:
        diff.lines.append(str(e))
    finally:
        pg.stop()
    for line in diff.lines:
        print("check-panels: MISMATCH: " + line)
    print("check-panels: %d checks, %d mismatches" % (diff.checks, len(diff.lines)))
    return 1 if diff.lines else 0


if __name__ == "__main__":
    sys.exit(main())
