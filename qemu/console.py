#!/usr/bin/env python3
"""Console driver for QEMU hardware-in-the-loop runs (qemu-hil.md §6): starts QEMU, copies its merged
console to a log file, and checks an ordered list of expectations, each a regex that must appear
after the previous one within its own timeout. Lines matching a --forbid regex fail the run at once.

usage: console.py --log FILE [--expect SECS LABEL REGEX]... [--forbid REGEX]... [--then kill|wait|hold]
                  [--kill-delay SECS] [--done-file F] -- QEMU-COMMAND...
  --then kill   (default) SIGKILL QEMU after the last expectation: a power cut at that point
                (--kill-delay SECS: that many seconds later, e.g. in the middle of a slow download)
  --then wait   wait (bounded by the last expectation's timeout) for QEMU to exit by itself
  --then hold   after the last expectation touch --done-file and keep logging until SIGTERM, then kill
Prints one line per expectation met, with seconds since QEMU started; exit 0 when all were met,
1 on a timeout, a forbidden line or QEMU exiting early (the log tail is printed)."""
import os, re, signal, subprocess, sys, time

def main():
    args = sys.argv[1:]
    if "--" not in args:
        sys.exit(__doc__)
    i = args.index("--")
    opts, cmd = args[:i], args[i + 1:]
    log, expects, forbids, then, name, done_file, kill_delay = None, [], [], "kill", "vm", None, 0.0
    j = 0
    while j < len(opts):
        o = opts[j]
        if o == "--log":
            log = opts[j + 1]; j += 2
        elif o == "--expect":
            expects.append((float(opts[j + 1]), opts[j + 2], re.compile(opts[j + 3]))); j += 4
        elif o == "--forbid":
            forbids.append(re.compile(opts[j + 1])); j += 2
        elif o == "--then":
            then = opts[j + 1]; j += 2
        elif o == "--kill-delay":
            kill_delay = float(opts[j + 1]); j += 2
        elif o == "--done-file":
            done_file = opts[j + 1]; j += 2
        elif o == "--name":
            name = opts[j + 1]; j += 2
        else:
            sys.exit("console.py: unknown option %s" % o)
    out = open(log, "ab", buffering=0)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    os.set_blocking(p.stdout.fileno(), False)
    buf, tail, ok = "", [], True
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    def say(msg):
        print("[%s %7.2fs] %s" % (name, time.monotonic() - t0, msg), flush=True)
    def fail(msg):
        say("FAILED: " + msg)
        for l in tail[-25:]:
            print("    | " + l, flush=True)
        return False
    k = 0
    kill_at = None
    deadline = t0 + (expects[0][0] if expects else 0)
    exited = False
    while True:
        chunk = b""
        try:
            chunk = p.stdout.read() or b""
        except (BlockingIOError, TypeError):
            chunk = b""
        if chunk:
            out.write(chunk)
            buf += chunk.decode("utf-8", "replace").replace("\r", "")
            *lines, buf = buf.split("\n")
            for line in lines:
                tail.append(line); del tail[:-200]
                for f in forbids:
                    if f.search(line):
                        ok = fail("forbidden console line: %r" % line); break
                if not ok:
                    break
                if k < len(expects) and expects[k][2].search(line):
                    say("ok   %s" % expects[k][1])
                    k += 1
                    if k < len(expects):
                        deadline = time.monotonic() + expects[k][0]
                    elif then == "hold":
                        if done_file:
                            open(done_file, "w").close()
                        deadline = float("inf")
            if not ok:
                break
        if k == len(expects) and then == "kill":
            if kill_at is None:
                kill_at = time.monotonic() + kill_delay
                deadline = float("inf")
            if time.monotonic() >= kill_at:
                break
        if stop:
            if k < len(expects):
                ok = fail("stopped while waiting for: %s" % expects[k][1])
            break
        if p.poll() is not None and not chunk:
            exited = True
            if k < len(expects):
                ok = fail("QEMU exited (status %s) while waiting for: %s" % (p.returncode, expects[k][1]))
            break
        if time.monotonic() > deadline:
            if k < len(expects):
                ok = fail("timeout (%.0f s) waiting for: %s" % (expects[k][0], expects[k][1]))
            else:
                ok = fail("QEMU did not exit by itself")
            break
        if not chunk:
            time.sleep(0.05)
    if not exited:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        if ok:
            say("power cut (QEMU killed)")
    else:
        if ok:
            say("QEMU exited by itself (status %s)" % p.returncode)
    out.close()
    sys.exit(0 if ok else 1)

main()
