"""drover - bench/trace_b1.py: where one worker's poll thread spends B1.

    .cache/bench-venv/bin/python bench/trace_b1.py --brokers B
        --database-url URL [--kind drover|limit|replay] [--tasks 2500]
        [--build build-bench]

Runs one B1 throughput run (bench/harness.py's setup) with perf uprobes
on librdkafka's rd_kafka_consumer_poll, rd_kafka_send_offsets_to_
transaction and rd_kafka_commit_transaction (entry and return) of the
worker process, and prints how much of the window each call took, how
many polls ran to their timeout, and the tasks/s.  Needs root (perf
probe); the probes are removed on exit.  Used for the B1 analysis in
report-notes.md.
"""
import argparse
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

PROBES = {"poll": "rd_kafka_consumer_poll",
          "send_offsets": "rd_kafka_send_offsets_to_transaction",
          "commit": "rd_kafka_commit_transaction"}


def librdkafka():
    out = subprocess.run(["ldconfig", "-p"], capture_output=True,
                         text=True).stdout
    for ln in out.splitlines():
        if "librdkafka.so.1 " in ln:
            return ln.split("=>")[-1].strip()
    raise SystemExit("trace_b1: librdkafka.so.1 not found by ldconfig")


def probes(lib, add):
    for k, fn in PROBES.items():
        if add:
            for spec in (f"b1{k}={fn}", f"b1{k}x={fn}%return"):
                subprocess.run(["perf", "probe", "-q", "-x", lib, "--add",
                                spec], check=True)
        else:
            subprocess.run(["perf", "probe", "-q", "-d",
                            f"probe_librdkafka:b1{k}*"])


def analyse(text, window_hint):
    open_, dur = {}, {k: [] for k in PROBES}
    first = last = None
    for ln in text.splitlines():
        p = ln.split()
        if len(p) < 3:
            continue
        tid, t = p[0], float(p[1].rstrip(":"))
        ev = p[2].rstrip(":").split(":")[-1]
        first = t if first is None else first
        last = t
        name = ev[2:].split("x__return")[0].split("__return")[0]
        if ev.endswith("__return"):
            if (tid, name) in open_:
                dur[name].append(1000 * (t - open_.pop((tid, name))))
        else:
            open_[(tid, name)] = t
    span = (last - first) if first is not None else window_hint
    print(f"window {span:.2f} s")
    for k, v in dur.items():
        v.sort()
        if not v:
            print(f"{k}: no calls")
            continue
        full = sum(1 for x in v if x >= 19) if k == "poll" else None
        print(f"{k}: {len(v)} calls, {sum(v) / 1000:.2f} s "
              f"({100 * sum(v) / 1000 / span:.0f} % of the window), median "
              f"{v[len(v) // 2]:.1f} ms, p90 {v[(len(v) * 9) // 10]:.1f} ms"
              + (f", {full} ran >= 19 ms" if full is not None else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--kind", choices=("drover", "limit", "replay"),
                    default="drover")
    ap.add_argument("--tasks", type=int, default=2500)
    ap.add_argument("--build", default=os.path.join(h.ROOT, "build-bench"))
    a = ap.parse_args()
    work = f"/tmp/trace_b1.{os.getpid()}"
    os.makedirs(work, exist_ok=True)
    st = h.Stack(a.brokers, a.database_url, work,
                 os.path.join(a.build, "consumer", "drover"),
                 os.path.join(a.build, "bench", "bench_limit"))
    lib = librdkafka()
    probes(lib, False)
    probes(lib, True)
    try:
        topic, group = st.topic(), h.unique("g")
        ds = [h.unique("ds") for _ in range(a.tasks)]
        if a.kind == "drover":
            cat, refs = st.catalog(ds)
            p = h.start_drover(st, topic, group, cat, group + "-0")
        else:
            schema = h.unique("s")
            st.pg_setup(schema)
            refs = [f"component:default/{d.replace('_', '-')}" for d in ds]
            p = h.start_limit(st, topic, group, schema, group + "-0",
                              sql=h.SQL_MIN if a.kind == "limit"
                              else h.SQL_FILE)
        data = os.path.join(work, "perf.data")
        try:
            h.wait_group(st, group, 1, [p])
            evs = ",".join(f"probe_librdkafka:b1{k}{x}" for k in PROBES
                           for x in ("", "x__return"))
            perf = subprocess.Popen(["perf", "record", "-q", "-e", evs, "-p",
                                     str(p.pid), "-o", data],
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(1)
            w = h.StatusWatch(st.brokers, topic)
            w.start()
            t0 = time.monotonic()
            st.produce(topic, list(zip(refs, ds)))
            w.wait(a.tasks, 120, [p])
            secs = time.monotonic() - t0
            perf.send_signal(signal.SIGINT)
            perf.wait(30)
            w.finish()
        finally:
            h.stop_procs(st, [p])
        rate = h.rate_p10_p90(w.ts)
        print(f"{a.kind}: {a.tasks} tasks, {rate or 0:.0f} tasks/s "
              f"(p10-p90), {secs:.1f} s")
        out = subprocess.run(["perf", "script", "-i", data, "-F",
                              "tid,time,event"], capture_output=True,
                             text=True).stdout
        analyse(out, secs)
    finally:
        probes(lib, False)
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
