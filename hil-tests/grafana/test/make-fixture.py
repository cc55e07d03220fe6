#!/usr/bin/env python3
"""Writes a deterministic telemetry JSONL (the format `eyasctl report --telemetry` reads and the demo
saves: {"device", "ts", "values"} per message, as eyas publishes it to ThingsBoard) for a fleet of
20 devices over six hours that cross a month boundary (two ts_kv partitions). It carries what
ThingsBoard's typing does something to: durations as 24, 24.0 and "24"; error codes as numbers, a
numeric string ("0042" is stored as 42) and missing; nulls; a QoS 1 redelivery (same ts); a device
that fails and later succeeds."""
import json
import random
import sys

rng = random.Random(11)
T0 = 1785531600000  # 2026-07-31T21:00:00Z
out = []


def msg(dev, ts, **values):
    out.append({"device": dev, "ts": ts, "values": values})


failures = {3: 400, 7: 400, 11: 300, 14: "0042", 17: None, 19: 110}
for i in range(1, 21):
    dev = "dev-%02d" % i
    t = T0 + i * 17 * 60 * 1000 + rng.randrange(0, 60000)  # staggered over ~6 h
    msg(dev, t, sw_version="1.0.0", rauc_slot="A", current_sw_title="rootfs", current_sw_version="1.0.0")
    msg(dev, t + 1000, ota_status="downloading", sw_state="DOWNLOADING", ota_progress=0)
    dur = rng.randrange(800, 9000)
    t += 2000 + dur
    if i % 3 == 0:
        d = float(dur)  # an f64 field: 24.0 -> dbl_v
    elif i % 5 == 0:
        d = str(dur)  # a numeric string: type cast to long_v
    else:
        d = dur
    msg(dev, t, sw_state="DOWNLOADED", download_bytes=262144, download_duration_ms=d)
    msg(dev, t + 500, ota_status="installing", sw_state="UPDATING")
    msg(dev, t + 4000, ota_status="rebooting", sw_state="UPDATING")
    t += 30000 + rng.randrange(0, 20000)
    if i in failures:
        code = failures[i]
        v = dict(ota_status="failure", sw_state="FAILED", ota_error="fell back to the previous slot")
        if code is not None:
            v["error_code"] = code
        else:
            v["ota_error"] = None  # dropped by ThingsBoard, no error_code: counted as 'unknown'
        msg(dev, t, **v)
        msg(dev, t + 1000, sw_version="1.0.0", rauc_slot="A")
        if i == 7:  # the operator retries dev-07 later and it succeeds
            t2 = t + 90 * 60 * 1000
            msg(dev, t2, ota_status="downloading", sw_state="DOWNLOADING")
            msg(dev, t2 + 3100, sw_state="DOWNLOADED", download_bytes=262144, download_duration_ms=3000)
            msg(dev, t2 + 60000, ota_status="success", sw_state="UPDATED")
    else:
        msg(dev, t, ota_status="success", sw_state="UPDATED")
        msg(dev, t + 1, sw_version="1.1.0", rauc_slot="B", current_sw_version="1.1.0")
        if i == 5:  # a QoS 1 redelivery of the same message (same ts): ThingsBoard upserts
            msg(dev, t, ota_status="success", sw_state="UPDATED")
    if i == 9:
        msg(dev, t + 5000, download_duration_ms=None)  # a null is dropped

out.sort(key=lambda m: m["ts"])
for m in out:
    sys.stdout.write(json.dumps(m, separators=(",", ":")) + "\n")
