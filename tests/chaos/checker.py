#!/usr/bin/python3
"""drover chaos checker: exactly-once, verified independently of drover.

  checker.py monitor --brokers B --topic T --out FILE
      read_committed consumer of T.status and T.dlq from the beginning,
      while the run goes on: counts distinct outcomes and flags any record
      committed twice, rewriting FILE (JSON) every second until SIGTERM.

  checker.py verify --brokers B --database-url URL --manifest M ...
      after the run: derives the expected outcome of every task from the
      manifest (what was produced, in partition order) by modelling the
      dataset version guard itself, then compares with a fresh
      read_committed read of both topics, the PostgreSQL effects (effects
      rows, per-row update counts from the trigger, counters), drover's
      ledger, task_runs and datasets, the group's committed offsets and
      the transaction state.  Prints one summary line; exit 1 if anything
      was lost, duplicated or wrong, or the harness reported a problem.

Nothing here uses drover's code or its output formats beyond the
documented contract (DESIGN.md sections 3, 7 and 8).
"""
import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer, TopicPartition, KafkaError, OFFSET_BEGINNING
import psycopg2

import avro_task  # the Avro spec's fingerprint, written here, not drover's

HERE = os.path.dirname(os.path.abspath(__file__))

FINAL = {"done", "skipped", "dead", "dry_run"}


def hdr(msg, name):
    for k, v in msg.headers() or []:
        if k == name:
            return v.decode("utf-8", "replace") if v is not None else None
    return None


def consumer(brokers, isolation="read_committed"):
    return Consumer({"bootstrap.servers": brokers,
                     "group.id": "chaos-check-%s" % uuid.uuid4().hex,
                     "enable.auto.commit": False,
                     "enable.partition.eof": True,
                     "isolation.level": isolation,
                     "auto.offset.reset": "earliest"})


def partitions(c, topic):
    md = c.list_topics(topic, timeout=30)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        raise RuntimeError("topic %s: %s" % (topic, t.error if t else "?"))
    return sorted(t.partitions)


class Outcomes:
    """Status events and dead letters, keyed by the task record they
    answer: (partition, offset) of the tasks topic."""

    def __init__(self, topic):
        self.topic = topic
        self.status = collections.defaultdict(list)
        self.dlq = collections.defaultdict(list)
        self.bad = []

    def add(self, msg):
        t = msg.topic()
        if t == self.topic + ".status":
            try:
                ev = json.loads(msg.value())
                key = (int(ev["partition"]), int(ev["offset"]))
            except (ValueError, KeyError, TypeError) as e:
                self.bad.append("status %d:%d: %r" % (msg.partition(),
                                                      msg.offset(), e))
                return None
            ev["_key"] = msg.key().decode() if msg.key() else None
            self.status[key].append(ev)
            return ("status", key)
        try:
            key = (int(hdr(msg, "drover.original.partition")),
                   int(hdr(msg, "drover.original.offset")))
        except (TypeError, ValueError) as e:
            self.bad.append("dlq %d:%d: %r" % (msg.partition(), msg.offset(),
                                               e))
            return None
        self.dlq[key].append({
            "class": hdr(msg, "drover.error.class"),
            "task_id": hdr(msg, "drover.task.id"),
            "topic": hdr(msg, "drover.original.topic"),
            "key": msg.key().decode("utf-8", "replace") if msg.key() else None,
            "value": msg.value().hex() if msg.value() else ""})
        return ("dlq", key)


# ---------------------------------------------------------------------------
# monitor
# ---------------------------------------------------------------------------
def cmd_monitor(a):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    c = consumer(a.brokers)
    tps = []
    for name in (a.topic + ".status", a.topic + ".dlq"):
        for p in partitions(c, name):
            tps.append(TopicPartition(name, p, OFFSET_BEGINNING))
    c.assign(tps)
    out = Outcomes(a.topic)
    dups = []
    last = 0
    while True:
        msg = c.poll(0.2)
        if msg is not None and not msg.error():
            r = out.add(msg)
            if r:
                kind, key = r
                n = len((out.status if kind == "status" else out.dlq)[key])
                if n > 1:
                    dups.append([kind, key[0], key[1], n])
                    print("monitor: %s for task %d:%d committed %d times" %
                          (kind, key[0], key[1], n), flush=True)
        now = time.time()
        if now - last >= 1 or stop:
            tmp = a.out + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"status_seen": len(out.status),
                           "dlq_seen": len(out.dlq), "dups": dups,
                           "bad": out.bad[:20]}, f)
            os.replace(tmp, a.out)
            last = now
        if stop:
            break
    c.close()


# ---------------------------------------------------------------------------
# verify: the expected model
# ---------------------------------------------------------------------------
def known_fingerprints():
    """The single-object headers of the task schemas drover ships (its
    reader knows these writers), computed with the checker's own CRC-64."""
    d = os.path.join(HERE, "..", "..", "schema", "avro")
    out = set()
    for name in sorted(os.listdir(d)):
        if name.endswith(".avsc"):
            with open(os.path.join(d, name)) as f:
                pcf = avro_task.canonical_form(json.load(f))
            out.add(avro_task.crc64_avro(pcf.encode("utf-8")))
    return out


def poison_class(t, known=None):
    """The dead-letter class of a poison record, from its bytes and the
    documented classes (docs/decisions.md): a well-framed record whose
    writer schema is unknown -- single-object encoding (C3 01 + 8-byte
    fingerprint) with a fingerprint drover does not know, or the Confluent
    framing (00 + 4-byte id; the chaos workers have no registry) -- is
    `unknown_schema`; anything else that does not decode is `decode`.  So
    random bytes that happen to start with 00 are `unknown_schema`."""
    raw = bytes.fromhex(t["value_hex"])
    if raw[:1] == b"\x00" and len(raw) >= 5:
        return "unknown_schema"
    if raw[:2] == b"\xc3\x01" and len(raw) >= 10:
        if known is None:
            known = KNOWN_FINGERPRINTS
        fp = int.from_bytes(raw[2:10], "little")
        return "decode" if fp in known else "unknown_schema"
    return "decode"


KNOWN_FINGERPRINTS = known_fingerprints()


def model(tasks):
    """Expected outcome per task, simulating drover's documented version
    guard per dataset in partition order."""
    version = {}
    done_plans = collections.defaultdict(set)
    exp = {}
    for t in sorted(tasks, key=lambda t: (t["partition"], t["offset"])):
        k = (t["partition"], t["offset"])
        if t["kind"] == "poison":
            exp[k] = ("dead", (poison_class(t),))
        elif t["kind"] == "unknown_plan":
            exp[k] = ("dead", ("unknown_plan",))
        else:
            ds, v = t["dataset"], t["version"]
            cur = version.get(ds)
            if cur is None or cur == v:
                exp[k] = ("done", None)
                version[ds] = v + 1
                done_plans[ds].add(v)
            elif cur == v + 1 and v in done_plans[ds]:
                exp[k] = ("skipped", None)
            else:
                exp[k] = ("dead", ("version_conflict",))
    return exp, version


def read_all(brokers, topic):
    """Everything committed in T.status and T.dlq, read to the end."""
    c = consumer(brokers)
    tps = []
    for name in (topic + ".status", topic + ".dlq"):
        for p in partitions(c, name):
            lo, hi = c.get_watermark_offsets(TopicPartition(name, p),
                                             timeout=30, cached=False)
            if hi > lo:
                tps.append(TopicPartition(name, p, OFFSET_BEGINNING))
    out = Outcomes(topic)
    if tps:
        c.assign(tps)
        left = {(tp.topic, tp.partition) for tp in tps}
        deadline = time.time() + 120
        while left and time.time() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    left.discard((msg.topic(), msg.partition()))
                continue
            out.add(msg)
        if left:
            raise RuntimeError("could not read to the end of %s" %
                               sorted(left))
    c.close()
    return out


class Verdict:
    def __init__(self):
        self.lost = set()
        self.dup = set()
        self.wrong = set()
        self.redelivered = set()   # done, but reported skipped
        self.notes = collections.defaultdict(list)

    def bad(self, kind, task, why):
        {"lost": self.lost, "dup": self.dup, "wrong": self.wrong}[kind].add(
            task)
        if len(self.notes[kind]) < 25:
            self.notes[kind].append("%s: %s" % (task, why))
        else:
            self.notes[kind + "_more"] = True


def check_outcomes(v, tasks, exp, out, mon):
    by_key = {(t["partition"], t["offset"]): t for t in tasks}
    for key, t in by_key.items():
        name = t.get("task_id") or t["key"]
        st, cls = exp[key]
        evs = out.status.get(key, [])
        if not evs:
            v.bad("lost", name, "no committed status event")
        elif len(evs) > 1:
            v.bad("dup", name, "%d committed status events" % len(evs))
        for ev in evs[:1]:
            if st == "done" and ev.get("status") == "skipped":
                # the redelivery of a task that had finished its
                # PostgreSQL work before its Kafka commit must still say
                # done (transforms/run.c since 54a353f)
                v.redelivered.add(t["task_id"])
                v.bad("wrong", name, "status 'skipped' for the task that "
                      "did the work (a redelivery after a crash)")
            elif ev.get("status") != st:
                v.bad("wrong", name, "status %r, expected %r (%s)" %
                      (ev.get("status"), st, ev.get("error", "")))
            if t.get("task_id") and (ev.get("task_id") != t["task_id"] or
                                     ev["_key"] != t["task_id"]):
                v.bad("wrong", name, "status event names task %r key %r" %
                      (ev.get("task_id"), ev["_key"]))
            if st == "dead" and ev.get("error_class") not in cls:
                v.bad("wrong", name, "status error_class %r, expected %r" %
                      (ev.get("error_class"), cls))
        dl = out.dlq.get(key, [])
        if st == "dead":
            if not dl:
                v.bad("lost", name, "no committed dead letter")
            elif len(dl) > 1:
                v.bad("dup", name, "%d committed dead letters" % len(dl))
            for d in dl[:1]:
                if d["class"] not in cls:
                    v.bad("wrong", name, "dead letter class %r, expected %r"
                          % (d["class"], cls))
                if t.get("task_id") and d["task_id"] != t["task_id"]:
                    v.bad("wrong", name, "dead letter drover.task.id %r" %
                          d["task_id"])
                if d["key"] != t["key"]:
                    v.bad("wrong", name, "dead letter key %r" % d["key"])
                if t.get("value_hex") and d["value"] != t["value_hex"]:
                    v.bad("wrong", name, "dead letter value differs from the"
                          " original record")
        elif dl:
            v.bad("wrong", name, "dead-lettered (%s) but expected %s" %
                  (dl[0]["class"], st))
    for key in set(out.status) | set(out.dlq):
        if key not in by_key:
            v.bad("wrong", "%d:%d" % key, "outcome for a record never "
                  "produced")
    for b in out.bad:
        v.bad("wrong", "record", "unreadable outcome: " + b)
    for kind, p, o, n in mon.get("dups", []):
        t = by_key.get((p, o))
        v.bad("dup", (t.get("task_id") or t["key"]) if t else "%d:%d" % (p, o),
              "monitor saw %s committed %d times during the run" % (kind, n))
    for b in mon.get("bad", []):
        v.bad("wrong", "record", "monitor: " + b)
    seen = mon.get("status_seen", 0)
    if seen < len(out.status):
        v.bad("wrong", "monitor", "the concurrent reader saw %d outcomes, the"
              " final read %d" % (seen, len(out.status)))


def check_pg(v, m, tasks, exp, final_version, url):
    s = m["schema"]
    conn = psycopg2.connect(url)
    cur = conn.cursor()
    cur.execute("SELECT task_id, dataset, version, count(*) FROM %s.effects"
                " GROUP BY 1, 2, 3" % s)
    effects = collections.defaultdict(list)
    for tid, ds, ver, n in cur.fetchall():
        effects[tid].append((ds, ver, n))
    cur.execute("SELECT task, tbl, id, count(*), bool_and(new_counter ="
                " old_counter + 1) FROM %s.updates GROUP BY 1, 2, 3" % s)
    updates = collections.defaultdict(dict)
    for task, tbl, rid, n, inc in cur.fetchall():
        updates[task][(tbl, rid)] = (n, inc)
    cur.execute("SELECT task_id, step, status, rows FROM drover.step_ledger"
                " WHERE dataset LIKE %s", ("c%s\\_%%" % m["run"],))
    ledger = collections.defaultdict(dict)
    for tid, step, status, rows in cur.fetchall():
        ledger[tid][step] = (status, rows)
    cur.execute("SELECT task_id, status, steps_done, attempts FROM"
                " drover.task_runs WHERE dataset LIKE %s",
                ("c%s\\_%%" % m["run"],))
    runs = {r[0]: r[1:] for r in cur.fetchall()}
    cur.execute("SELECT dataset, version FROM drover.datasets WHERE dataset"
                " LIKE %s", ("c%s\\_%%" % m["run"],))
    versions = dict(cur.fetchall())
    done_per_ds = collections.Counter()
    known = set()
    for t in tasks:
        tid = t.get("task_id")
        if not tid:
            continue
        known.add(tid)
        st, _ = exp[(t["partition"], t["offset"])]
        eff = effects.get(tid, [])
        upd = updates.get(tid, {})
        lg = ledger.get(tid, {})
        if st == "done":
            done_per_ds[t["dataset"]] += 1
            n = sum(e[2] for e in eff)
            if n == 0:
                v.bad("lost", tid, "effects row missing")
            elif n > 1:
                v.bad("dup", tid, "effects row inserted %d times" % n)
            if any((e[0], e[1]) != (t["dataset"], t["version"]) for e in eff):
                v.bad("wrong", tid, "effects row for %r" % eff)
            tbl = "t%d" % t["ds"]
            for rid in range(1, m["rows"] + 1):
                n, inc = upd.get((tbl, rid), (0, True))
                if n == 0:
                    v.bad("lost", tid, "row %s.%d never updated" % (tbl, rid))
                elif n > 1:
                    v.bad("dup", tid, "row %s.%d updated %d times" %
                          (tbl, rid, n))
                if not inc:
                    v.bad("wrong", tid, "row %s.%d not incremented by 1" %
                          (tbl, rid))
            if len(upd) > m["rows"] or any(k[0] != tbl for k in upd):
                v.bad("wrong", tid, "updated rows outside its dataset: %r" %
                      sorted(upd)[:5])
            steps = sorted(lg)
            if steps != [0, 1, 2] or any(x[0] != "done" for x in lg.values()):
                v.bad("wrong", tid, "ledger %r, expected steps 0-2 done" % lg)
            elif lg[2][1] != m["rows"]:
                v.bad("wrong", tid, "ledger says the backfill changed %s rows"
                      ", expected %d" % (lg[2][1], m["rows"]))
            fails = int(t["params"]["fails"])
            run = runs.get(tid)
            if run and fails and run[2] < fails:
                # not an error: a worker killed after PostgreSQL raised the
                # injected failure but before it recorded the attempt
                # never saw it (the sequence moved on regardless)
                v.notes["attempts_below_injected"].append(tid)
        else:
            if eff or upd:
                v.bad("wrong", tid, "%s task has effects %r %r" %
                      (st, eff, sorted(upd)[:3]))
            if any(x[0] == "done" for x in lg.values()):
                v.bad("wrong", tid, "%s task has done steps in the ledger" %
                      st)
        run = runs.get(tid)
        if run is None:
            v.bad("wrong", tid, "no drover.task_runs row (expected %s)" % st)
        elif run[0] != st:
            v.bad("wrong", tid, "task_runs status %r, expected %r" %
                  (run[0], st))
        elif st == "done" and run[1] != 3:
            v.bad("wrong", tid, "task_runs steps_done %r, expected 3" % run[1])
    for tid in set(effects) | set(updates) - {None}:
        if tid not in known:
            v.bad("wrong", str(tid), "effects by an unknown task")
    # whole-table view: the counter of every row equals its update count
    cur.execute("SELECT tbl, count(*) FROM %s.updates GROUP BY 1" % s)
    upd_tbl = dict(cur.fetchall())
    for ds_i in range(max([t.get("ds", -1) for t in tasks]) + 1):
        ds = "c%s_ds%d" % (m["run"], ds_i)
        n = done_per_ds[ds]
        cur.execute("SELECT count(*) FILTER (WHERE counter <> %s), count(*)"
                    " FROM %s.t%d" % ("%s", s, ds_i), (n,))
        off, rows = cur.fetchone()
        if off or rows != m["rows"]:
            v.bad("wrong", ds, "%d rows whose counter is not %d" % (off, n))
        if upd_tbl.get("t%d" % ds_i, 0) != n * m["rows"]:
            v.bad("wrong", ds, "%d row updates, expected %d" %
                  (upd_tbl.get("t%d" % ds_i, 0), n * m["rows"]))
        want = final_version.get(ds)
        if versions.get(ds) != want and not (want is None and
                                             versions.get(ds) is None):
            v.bad("wrong", ds, "drover.datasets version %r, expected %r" %
                  (versions.get(ds), want))
    conn.close()


def check_kafka_state(v, m, brokers, libs):
    topic, group = m["topic"], m["group"]
    c = Consumer({"bootstrap.servers": brokers, "group.id": group,
                  "enable.auto.commit": False})
    tps = [TopicPartition(topic, p) for p in partitions(c, topic)]
    committed = c.committed(tps, timeout=30)
    for tp in committed:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, tp.partition),
                                         timeout=30, cached=False)
        if tp.offset != hi and not (hi == lo and tp.offset < 0):
            v.bad("wrong", "%s[%d]" % (topic, tp.partition),
                  "committed offset %d, log end %d" % (tp.offset, hi))
    c.close()
    # an open transaction holds the last stable offset below the end
    rc = consumer(brokers, "read_committed")
    ru = consumer(brokers, "read_uncommitted")
    for name in (topic + ".status", topic + ".dlq"):
        for p in partitions(rc, name):
            tp = TopicPartition(name, p)
            lso = rc.get_watermark_offsets(tp, timeout=30, cached=False)[1]
            hw = ru.get_watermark_offsets(tp, timeout=30, cached=False)[1]
            if lso != hw:
                v.bad("wrong", "%s[%d]" % (name, p), "last stable offset %d <"
                      " high watermark %d: a transaction is open" % (lso, hw))
    rc.close()
    ru.close()
    # and the coordinators agree
    r = subprocess.run(["java", "-cp", os.path.join(libs, "*"),
                        "org.apache.kafka.tools.TransactionsCommand",
                        "--bootstrap-server", brokers, "list"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    prefix = "drover-%s-" % group
    seen = 0
    for line in r.stdout.splitlines():
        f = line.split()
        if f and f[0].startswith(prefix):
            seen += 1
            if f[-1] not in ("Empty", "CompleteCommit", "CompleteAbort"):
                v.bad("wrong", f[0], "transaction state %s" % f[-1])
    if r.returncode != 0 or seen == 0:
        v.bad("wrong", "transactions", "cannot list the workers' "
              "transactions: %s" % r.stdout.strip()[-300:])


def cmd_verify(a):
    with open(a.manifest) as f:
        m = json.load(f)
    tasks = m["tasks"]
    try:
        with open(a.monitor) as f:
            mon = json.load(f)
    except (OSError, ValueError):
        mon = {}
    with open(a.harness) as f:
        h = json.load(f)
    exp, final_version = model(tasks)
    v = Verdict()
    out = read_all(a.brokers, m["topic"])
    check_outcomes(v, tasks, exp, out, mon)
    check_pg(v, m, tasks, exp, final_version, a.database_url)
    check_kafka_state(v, m, a.brokers, a.kafka_libs)
    mix = collections.Counter(st for st, _ in exp.values())
    faults = h["faults"]
    report = {"tasks": len(tasks), "expected": dict(mix), "faults": faults,
              "crash_points_hit": h["crash_points_hit"],
              "lost": len(v.lost), "duplicated": len(v.dup),
              "wrong": len(v.wrong), "details": v.notes,
              "done_reported_skipped": sorted(v.redelivered),
              "harness_problems": h["harness_problems"],
              "seconds": h["seconds"]}
    with open(a.report, "w") as f:
        json.dump(report, f, indent=1)
    for kind in ("lost", "dup", "wrong"):
        for n in v.notes.get(kind, []):
            print("chaos: %s: %s" % (kind, n))
    for p in h["harness_problems"]:
        print("chaos: problem: %s" % p)
    print("chaos: tasks=%d (%s; %d done reported skipped after a "
          "redelivery) faults=%d (%s) lost=%d duplicated=%d "
          "wrong=%d problems=%d worker_exits=%s producer_recoveries=%d "
          "seconds=%s" % (
              len(tasks), " ".join("%s=%d" % kv for kv in sorted(mix.items())),
              len(v.redelivered), sum(faults.values()),
              " ".join("%s=%d" % kv for kv in faults.items()),
              len(v.lost), len(v.dup), len(v.wrong),
              len(h["harness_problems"]),
              ",".join("%s:%s" % kv for kv in sorted(
                  h.get("worker_exits", {}).items())) or "none",
              h.get("producer_recoveries", 0), h["seconds"]), flush=True)
    bad = len(v.lost) + len(v.dup) + len(v.wrong) + len(h["harness_problems"])
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mo = sub.add_parser("monitor")
    mo.add_argument("--brokers", required=True)
    mo.add_argument("--topic", required=True)
    mo.add_argument("--out", required=True)
    ve = sub.add_parser("verify")
    ve.add_argument("--brokers", required=True)
    ve.add_argument("--database-url", required=True)
    ve.add_argument("--manifest", required=True)
    ve.add_argument("--monitor", required=True)
    ve.add_argument("--harness", required=True)
    ve.add_argument("--kafka-libs", required=True)
    ve.add_argument("--report", required=True)
    a = ap.parse_args()
    if a.cmd == "monitor":
        cmd_monitor(a)
        return 0
    return cmd_verify(a)


if __name__ == "__main__":
    sys.exit(main())
