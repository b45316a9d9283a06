#!/usr/bin/python3
"""drover chaos harness: tasks, workers and faults against a real stack.

Run by tests/chaos/run.sh, which starts the stack (3 Kafka nodes, one
PostgreSQL) and passes its addresses.  This program:

  1. writes one migration plan per (dataset, version) into a local catalog
     (every plan: an `sql` insert into an effects table, an `sql` call that
     sleeps or fails transiently on request, a batched `backfill` that
     increments every row of the dataset's own table);
  2. creates the run's PostgreSQL objects (schema chaos_<run>: effects,
     one table per dataset with an update-counting trigger, sequences for
     the transient failures) and the topics (RF 3, min.insync.replicas 2);
  3. starts 3 `drover worker` processes and the checker's concurrent
     monitor, then produces the tasks (most short, some slow, some
     transient-failing, some poison, some for unknown plans, some repeats
     and stale versions) while injecting faults: kill -9 of a random
     worker every few seconds, each named crash point, SIGTERM, a hard and
     a clean broker restart, a PostgreSQL restart;
  4. waits until every task has a committed outcome (or the deadline),
     stops the workers with SIGTERM and runs the checker (checker.py),
     which prints the summary line and decides the exit status.

The manifest it writes says only what was produced (task ids, kinds,
params, partitions, offsets); the checker derives the expected outcome of
every task itself.
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

from confluent_kafka import (Consumer, KafkaException, Producer,
                             TopicPartition, OFFSET_BEGINNING)
from confluent_kafka.admin import AdminClient, NewTopic, ConfigResource
import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import avro_task  # noqa: E402

VERSIONS = 3        # plans per dataset: v1->v2, v2->v3, v3->v4
ROWS = 6            # rows in each dataset's table
BATCH = 2           # backfill batch size: 3 batches + checkpoints per task
CRASH_POINTS = ["after_pg_commit", "between_steps", "in_kafka_commit",
                "after_kafka_commit"]


def log(msg):
    sys.stderr.write("chaos: %s %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---------------------------------------------------------------------------
# The task mix
# ---------------------------------------------------------------------------
def make_tasks(rng, run, total):
    """The tasks in production order.  Per dataset the chain v1, v2, v3
    (keyed by dataset, so in order on one partition), sometimes with a
    repeat of the plan just done or a stale v1 after v2 inserted; plus
    poison records and tasks naming unknown plans."""
    n_poison = max(2, total * 2 // 100)
    n_unknown = max(2, total * 2 // 100)
    budget = total - n_poison - n_unknown
    per_ds = []
    i = 0
    while budget > 0:
        chain = []
        for v in range(1, VERSIONS + 1):
            chain.append(("plan", v))
            r = rng.random()
            if r < 0.05:
                chain.append(("plan", v))          # a repeat: skipped
            elif r < 0.08 and v >= 2:
                chain.append(("plan", v - 1))      # stale: version conflict
        chain = chain[:budget]
        budget -= len(chain)
        per_ds.append((i, chain))
        i += 1
    n_datasets = i
    queues = []
    for ds, chain in per_ds:
        q = []
        for kind, v in chain:
            q.append(plan_task(rng, run, ds, v))
        queues.append(q)
    for n in range(n_poison):
        queues.append([{"kind": "poison", "key": "c%s_poison%d" % (run, n),
                        "variant": n % 3}])
    for n in range(n_unknown):
        ds = rng.randrange(n_datasets)
        queues.append([{"kind": "unknown_plan", "task_id": str(uuid.uuid4()),
                        "dataset": "c%s_ds%d" % (run, ds),
                        "key": "c%s_ds%d" % (run, ds),
                        "entity_ref": "component:default/c%s-nope-%d" %
                        (run, n), "params": {}}])
    # Interleave the queues at random, keeping each queue's order.
    order = []
    live = [q for q in queues if q]
    pos = [0] * len(live)
    idx = list(range(len(live)))
    while idx:
        k = rng.randrange(len(idx))
        qi = idx[k]
        order.append(live[qi][pos[qi]])
        pos[qi] += 1
        if pos[qi] == len(live[qi]):
            idx[k] = idx[-1]
            idx.pop()
    return order, n_datasets


def plan_task(rng, run, ds, v):
    tid = str(uuid.uuid4())
    r = rng.random()
    sleep, fails = "0", "0"
    if r < 0.015:
        sleep = "%.1f" % rng.uniform(1.0, 3.0)       # slow
    elif r < 0.045:
        fails = str(rng.randint(1, 3))               # transient, then ok
    return {"kind": "plan", "task_id": tid, "dataset": "c%s_ds%d" % (run, ds),
            "key": "c%s_ds%d" % (run, ds), "ds": ds, "version": v,
            "entity_ref": "component:default/c%s-ds%d-v%d" % (run, ds, v),
            "params": {"tid": tid, "sleep": sleep,
                       "flaky": tid.replace("-", "") if fails != "0" else "",
                       "fails": fails}}


# ---------------------------------------------------------------------------
# Catalog and database
# ---------------------------------------------------------------------------
def plan_doc(run, ds, v):
    schema = "chaos_%s" % run
    dataset = "c%s_ds%d" % (run, ds)
    return """---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: c{run}-ds{ds}-v{v}
spec:
  type: migration-plan
  lifecycle: test
  owner: chaos
  dataset: {dataset}
  schemaVersion: {{from: {v}, to: {v1}}}
  steps:
    - {{op: sql, sql: "INSERT INTO {schema}.effects (task_id, dataset, version) VALUES ($param:tid, '{dataset}', {v})"}}
    - {{op: sql, sql: "SELECT {schema}.work($param:sleep, $param:flaky, $param:fails)"}}
    - {{op: backfill, table: {schema}.t{ds}, set: {{counter: "counter + 1", last_task: "$param:tid"}}, batch_size: {batch}}}
""".format(run=run, ds=ds, v=v, v1=v + 1, dataset=dataset, schema=schema,
           batch=BATCH)


def write_catalog(path, run, n_datasets):
    os.makedirs(path, exist_ok=True)
    per_file = 200
    for start in range(0, n_datasets, per_file):
        with open(os.path.join(path, "plans-%05d.yaml" % start), "w") as f:
            for ds in range(start, min(start + per_file, n_datasets)):
                for v in range(1, VERSIONS + 1):
                    f.write(plan_doc(run, ds, v))


def setup_db(url, run, n_datasets, tasks):
    s = "chaos_%s" % run
    conn = psycopg2.connect(url)
    cur = conn.cursor()
    cur.execute("CREATE SCHEMA %s" % s)
    cur.execute("CREATE TABLE %s.effects (task_id text NOT NULL, dataset text"
                " NOT NULL, version int NOT NULL, at timestamptz NOT NULL"
                " DEFAULT clock_timestamp())" % s)
    cur.execute("CREATE TABLE %s.updates (tbl text NOT NULL, id int NOT NULL,"
                " old_counter int, new_counter int, task text, xid bigint"
                " DEFAULT txid_current())" % s)
    cur.execute("""CREATE FUNCTION %(s)s.count_update() RETURNS trigger
        LANGUAGE plpgsql AS $f$
        BEGIN
          INSERT INTO %(s)s.updates (tbl, id, old_counter, new_counter, task)
          VALUES (TG_TABLE_NAME, NEW.id, OLD.counter, NEW.counter,
                  NEW.last_task);
          RETURN NEW;
        END $f$""" % {"s": s})
    # sleep: seconds; flaky: the name of a sequence (not transactional, so
    # failed attempts still count); fails: how many attempts must fail.
    cur.execute("""CREATE FUNCTION %(s)s.work(sleep text, flaky text,
            fails text) RETURNS int LANGUAGE plpgsql AS $f$
        BEGIN
          IF sleep::float8 > 0 THEN PERFORM pg_sleep(sleep::float8); END IF;
          IF flaky <> '' AND nextval(format('%(s)s.f%%s', flaky)::regclass)
             <= fails::int THEN
            RAISE EXCEPTION 'chaos: injected transient failure'
              USING ERRCODE = '40001';
          END IF;
          RETURN 1;
        END $f$""" % {"s": s})
    conn.commit()
    for start in range(0, n_datasets, 400):
        for ds in range(start, min(start + 400, n_datasets)):
            cur.execute("CREATE TABLE %s.t%d (id int PRIMARY KEY, counter int"
                        " NOT NULL DEFAULT 0, last_task text)" % (s, ds))
            cur.execute("INSERT INTO %s.t%d (id) SELECT generate_series(1, %d)"
                        % (s, ds, ROWS))
            cur.execute("CREATE TRIGGER count_update AFTER UPDATE ON %s.t%d"
                        " FOR EACH ROW EXECUTE FUNCTION %s.count_update()"
                        % (s, ds, s))
        conn.commit()
    for t in tasks:
        if t["kind"] == "plan" and t["params"]["flaky"]:
            cur.execute("CREATE SEQUENCE %s.f%s" % (s, t["params"]["flaky"]))
    conn.commit()
    conn.close()


def create_topics(brokers, topic):
    admin = AdminClient({"bootstrap.servers": brokers})
    cfg = {"min.insync.replicas": "2"}
    topics = [NewTopic(topic, 12, 3, config=cfg),
              NewTopic(topic + ".status", 12, 3, config=cfg),
              NewTopic(topic + ".dlq", 3, 3, config=cfg)]
    for name, fut in admin.create_topics(topics,
                                         operation_timeout=30).items():
        fut.result()
    # verify what the brokers made of it (metadata propagates lazily)
    for _ in range(60):
        md = admin.list_topics(timeout=10)
        if all(t.topic in md.topics and md.topics[t.topic].error is None and
               len(md.topics[t.topic].partitions) == t.num_partitions
               for t in topics):
            break
        time.sleep(0.5)
    for t in topics:
        parts = md.topics[t.topic].partitions
        if len(parts) != t.num_partitions or any(
                len(p.replicas) != 3 for p in parts.values()):
            raise RuntimeError("topic %s not created as asked" % t.topic)


# ---------------------------------------------------------------------------
# Producing
# ---------------------------------------------------------------------------
class TaskProducer:
    """The upstream service: an idempotent acks=all producer of the tasks.

    librdkafka 2.0.2's idempotent producer can raise a fatal error after a
    hard broker restart ("out of order sequence number ... sequence
    desynchronization"; newer clients bump the epoch instead).  That is the
    upstream's failure, not drover's, so it must not end the run nor put a
    task in the log twice: a new producer takes over, every task not yet
    acknowledged is looked up in the topic by its exact bytes (each value
    is unique: a task id or random bytes), and only the absent ones are
    produced again.  Tasks keep the bytes they were first given."""

    MAX_RECOVERIES = 20

    def __init__(self, brokers, topic, writer, rng):
        # murmur2 like Java producers and drover itself (README)
        self.conf = {"bootstrap.servers": brokers,
                     "enable.idempotence": True, "acks": "all",
                     "linger.ms": 5, "message.timeout.ms": 300000,
                     "partitioner": "murmur2_random"}
        self.brokers = brokers
        self.p = Producer(self.conf)
        self.topic = topic
        self.writer = writer
        self.rng = rng
        self.failed = []
        self.pending = {}  # id(task) -> task: produced, not acknowledged
        self.recoveries = 0

    def value(self, t):
        if t["kind"] == "poison":
            v = t["variant"]
            if v == 0:
                return bytes(self.rng.getrandbits(8) for _ in range(40))
            good = self.writer.encode(str(uuid.uuid4()), "component:x/y",
                                      "d", 0, "chaos", {})
            if v == 1:
                return good[:len(good) // 2]       # truncated datum
            return b"\xc3\x01" + bytes(8) + good[10:]  # unknown schema
        return self.writer.encode(t["task_id"], t["entity_ref"],
                                  t["dataset"], int(time.time() * 1000),
                                  "chaos", t["params"])

    def produce(self, t):
        t["value_hex"] = self.value(t).hex()
        self.send(t)

    def send(self, t):
        def cb(err, msg, t=t):
            if err:
                self.failed.append((t, str(err)))
            else:
                t["partition"] = msg.partition()
                t["offset"] = msg.offset()
                self.pending.pop(id(t), None)
        self.pending[id(t)] = t
        while True:
            try:
                self.p.produce(self.topic, key=t["key"].encode(),
                               value=bytes.fromhex(t["value_hex"]),
                               on_delivery=cb)
                break
            except BufferError:
                self.p.poll(0.1)
            except KafkaException as e:
                self.recover(str(e))  # resends t too: it is pending
                return
        self.poll(0)

    def poll(self, timeout):
        self.p.poll(timeout)
        if self.failed:
            self.recover(self.failed[0][1])

    def recover(self, why):
        self.recoveries += 1
        if self.recoveries > self.MAX_RECOVERIES:
            raise RuntimeError("producing tasks failed %d times, last: %s"
                               % (self.recoveries - 1, why))
        log("task producer failed (%s); %d task(s) unacknowledged; a new "
            "producer takes over" % (why[:200], len(self.pending)))
        try:  # let the old one report what it still holds
            self.p.flush(30)
        except KafkaException:
            pass
        self.p = Producer(self.conf)
        self.failed = []
        found = self.find_in_log({t["value_hex"] for t in
                                  self.pending.values()})
        resend = []
        for t in list(self.pending.values()):
            if t["value_hex"] in found:
                t["partition"], t["offset"] = found[t["value_hex"]]
                del self.pending[id(t)]
            else:
                resend.append(t)
        log("task producer: %d of them already in the log, %d produced "
            "again" % (len(found), len(resend)))
        for t in resend:
            self.send(t)

    def find_in_log(self, wanted):
        """value hex -> (partition, offset) for the wanted values in the
        topic (read_uncommitted: the tasks are not transactional)."""
        c = Consumer({"bootstrap.servers": self.brokers,
                      "group.id": "chaos-readback-%d" % os.getpid(),
                      "enable.auto.commit": False,
                      "isolation.level": "read_uncommitted"})
        md = c.list_topics(self.topic, timeout=30)
        ends = {}
        for p in md.topics[self.topic].partitions:
            ends[p] = c.get_watermark_offsets(
                TopicPartition(self.topic, p), timeout=30, cached=False)[1]
        c.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING)
                  for p in ends])
        left = {p for p, hi in ends.items() if hi > 0}
        found = {}
        deadline = time.time() + 300
        while left:
            if time.time() > deadline:
                raise RuntimeError("reading %s back: partitions %s did not "
                                   "reach their end" % (self.topic, left))
            m = c.poll(10)
            if m is None or m.error():
                continue
            h = m.value().hex()
            if h in wanted:
                found[h] = (m.partition(), m.offset())
            if m.offset() + 1 >= ends[m.partition()]:
                left.discard(m.partition())
        c.close()
        return found

    def flush(self):
        while True:
            left = self.p.flush(300)
            if self.failed:
                self.recover(self.failed[0][1])
                continue
            if left or self.pending:
                raise RuntimeError("producing tasks failed: %d undelivered"
                                   % max(left, len(self.pending)))
            return


# ---------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------
class Worker:
    def __init__(self, h, name):
        self.h = h
        self.name = name
        self.proc = None
        self.expect = None      # None, "kill", "term", "crash:<point>"
        self.crash = None       # DROVER_CRASH_AT for the next start
        self.crash_started = 0
        self.log_path = os.path.join(h.workdir, "worker-%s.log" % name)
        self.starts = 0
        self.reaped = False
        self.not_before = 0

    def start(self):
        env = dict(os.environ)
        env.update({"DROVER_BROKERS": self.h.brokers,
                    "DROVER_TOPIC": self.h.topic,
                    "DROVER_GROUP": self.h.group,
                    "DROVER_INSTANCE": self.name,
                    "DROVER_CATALOG_DIR": self.h.catalog,
                    "DATABASE_URL": self.h.db_url,
                    "DROVER_HTTP_LISTEN": ""})
        env.pop("DROVER_CRASH_AT", None)
        if self.crash:
            env["DROVER_CRASH_AT"] = self.crash
            self.expect = "crash:" + self.crash
            self.crash_started = time.time()
        else:
            self.expect = None
        logf = open(self.log_path, "ab")
        logf.write(("--- start %d%s\n" % (self.starts, " DROVER_CRASH_AT=" +
                                         self.crash if self.crash else ""))
                   .encode())
        logf.flush()
        self.log_offset = logf.tell()
        self.proc = subprocess.Popen(
            [self.h.drover, "worker", "--config", self.h.config],
            env=env, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        logf.close()
        self.crash = None
        self.starts += 1
        self.reaped = False
        self.started_at = time.time()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig, expect):
        if self.alive():
            self.expect = expect
            self.proc.send_signal(sig)

    def log_since_start(self):
        with open(self.log_path, "rb") as f:
            f.seek(self.log_offset)
            return f.read().decode("utf-8", "replace")


class Harness:
    def __init__(self, a):
        self.a = a
        self.brokers = a.brokers
        self.db_url = a.database_url
        self.drover = a.drover
        self.workdir = a.workdir
        self.run = a.run_id
        self.topic = "chaos-%s" % self.run
        self.group = "chaos-%s" % self.run
        self.catalog = os.path.join(self.workdir, "catalog")
        self.config = os.path.join(self.workdir, "drover.yaml")
        self.rng = random.Random(a.seed)
        self.lock = threading.Lock()
        self.faults = {"kill9": 0, "crash_point": 0, "sigterm": 0,
                       "broker_hard": 0, "broker_clean": 0, "pg_restart": 0}
        self.crash_hit = {p: 0 for p in CRASH_POINTS}
        self.problems = []      # harness-level findings (not lost/dup/wrong)
        self.unexpected_exits = 0
        self.exits = {}         # documented exit statuses seen (69, 70)
        self.producer_recoveries = 0  # the upstream producer's, see above
        self.stop_faults = threading.Event()
        self.cycles_done = 0
        self.disrupted_until = 0.0  # see disrupt()
        self.workers = [Worker(self, "w%d" % i) for i in (1, 2, 3)]

    def problem(self, msg):
        log("PROBLEM: " + msg)
        with self.lock:
            self.problems.append(msg)

    def write_config(self):
        with open(self.config, "w") as f:
            f.write("""# chaos test worker configuration
concurrency: 3
commit_interval_ms: 100
drain_timeout_ms: 15000
transaction_timeout_ms: 60000
allow_sql: true
lock_timeout_ms: 5000
backoff:
  initial_ms: 200
  max_delay_ms: 2000
  max_attempts: 40
  max_elapsed_ms: 900000
kafka:
  session.timeout.ms: 6000
  heartbeat.interval.ms: 1000
  max.poll.interval.ms: 120000
""")

    # -- supervision -------------------------------------------------------
    def reap(self, w):
        rc = w.proc.returncode
        expect = w.expect
        if expect == "kill" and rc == -signal.SIGKILL:
            pass
        elif expect == "term":
            if rc != 0:
                self.problem("worker %s exited %s after SIGTERM (expected 0)"
                             % (w.name, rc))
        elif expect and expect.startswith("crash:"):
            point = expect[6:].split(":")[0]
            text = w.log_since_start()
            if rc == 137 and ("crash point %s reached" % point) in text:
                with self.lock:
                    self.crash_hit[point] += 1
                    self.faults["crash_point"] += 1
                log("worker %s crashed at %s" % (w.name, point))
            elif rc == -signal.SIGKILL and expect.endswith("!"):
                pass
            else:
                self.problem("worker %s with DROVER_CRASH_AT=%s exited %s"
                             " without reaching it" % (w.name, expect[6:], rc))
        elif rc in (69, 70):
            # documented exits (DESIGN.md 9): a service unavailable at
            # start (PostgreSQL restarting), a fatal Kafka state; a
            # supervisor restarts the worker, and so do we
            tail = w.log_since_start().strip().splitlines()[-1:]
            with self.lock:
                self.exits[rc] = self.exits.get(rc, 0) + 1
            log("worker %s exited %d: %s" % (w.name, rc, " ".join(tail)))
            w.not_before = time.time() + 1
        else:
            self.unexpected_exits += 1
            tail = w.log_since_start().strip().splitlines()[-3:]
            self.problem("worker %s exited unexpectedly (status %s): %s"
                         % (w.name, rc, " | ".join(tail)))

    def supervise(self):
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is not None:
                if not w.reaped:
                    self.reap(w)
                    w.reaped = True
                if time.time() >= w.not_before:
                    w.start()
            elif (w.expect and w.expect.startswith("crash:") and
                  not w.expect.endswith("!") and
                  time.time() - max(w.crash_started, self.disrupted_until)
                  > 60):
                # not reached in a minute: give up on it
                self.problem("worker %s: crash point %s not reached in 60 s"
                             % (w.name, w.expect[6:]))
                w.expect += "!"
                w.proc.kill()

    def random_kill(self):
        cands = [w for w in self.workers if w.alive() and w.expect is None]
        if not cands:
            return
        w = self.rng.choice(cands)
        log("kill -9 worker %s" % w.name)
        w.signal(signal.SIGKILL, "kill")
        with self.lock:
            self.faults["kill9"] += 1

    # -- scheduled faults (their own thread) --------------------------------
    def script(self, *args):
        r = subprocess.run(list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            self.problem("%s failed: %s" % (" ".join(args),
                                            r.stdout.strip()[-300:]))
        return r.returncode == 0

    def pick_worker(self):
        for _ in range(100):
            # a worker that has had time to install its signal handlers
            # (a SIGTERM before that kills it, as it would any process)
            cands = [w for w in self.workers
                     if w.alive() and w.expect is None and
                     time.time() - w.started_at > 5]
            if cands:
                return self.rng.choice(cands)
            time.sleep(0.2)
        return None

    def fault_crash(self, point):
        w = self.pick_worker()
        if not w:
            return
        n = self.rng.randint(2, 6)
        log("worker %s: restart with DROVER_CRASH_AT=%s:%d" % (w.name, point,
                                                                n))
        w.crash = "%s:%d" % (point, n)
        w.signal(signal.SIGKILL, "kill")

    def fault_sigterm(self):
        w = self.pick_worker()
        if not w:
            return
        log("SIGTERM worker %s" % w.name)
        w.signal(signal.SIGTERM, "term")
        with self.lock:
            self.faults["sigterm"] += 1

    def disrupt(self, *args):
        """Run a broker or PostgreSQL restart.  Until 20 s after it, a
        worker waiting for a crash point may not be able to commit at all
        (a coordinator or the database is away): the minute a crash point
        gets (supervise) counts from then (finding 19)."""
        self.disrupted_until = float("inf")
        try:
            return self.script(*args)
        finally:
            self.disrupted_until = time.time() + 20

    def fault_broker(self, hard):
        node = self.rng.randint(1, 3)
        log("%s restart of broker %d" % ("hard" if hard else "clean", node))
        args = [os.path.join(ROOT, "scripts", "kafka.sh"), "restart",
                str(node)] + (["--hard"] if hard else [])
        if self.disrupt(*args):
            with self.lock:
                self.faults["broker_hard" if hard else "broker_clean"] += 1
            log("broker %d back" % node)

    def fault_pg(self):
        log("restart of postgresql")
        if self.disrupt(os.path.join(ROOT, "scripts", "pg.sh"), "restart"):
            with self.lock:
                self.faults["pg_restart"] += 1
            log("postgresql back")

    def fault_thread(self):
        cycle = [(4, lambda: self.fault_crash("after_pg_commit")),
                 (5, lambda: self.fault_crash("between_steps")),
                 (5, lambda: self.fault_crash("in_kafka_commit")),
                 (5, lambda: self.fault_crash("after_kafka_commit")),
                 (5, self.fault_sigterm),
                 (4, lambda: self.fault_broker(True)),
                 (12, lambda: self.fault_broker(False)),
                 (10, self.fault_pg)]
        n = 0
        while not self.stop_faults.is_set():
            for delay, fn in cycle:
                if self.stop_faults.wait(delay):
                    return
                try:
                    fn()
                except Exception as e:  # a fault that fails is a finding
                    self.problem("fault failed: %r" % (e,))
            n += 1
            self.cycles_done = n
            if n >= self.a.cycles:
                return

    # -- the run -------------------------------------------------------------
    def monitor_progress(self):
        try:
            with open(os.path.join(self.workdir, "monitor.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def main(self):
        # SIGTERM/SIGINT: stop what we started, then exit
        def stop(signum, frame):
            raise KeyboardInterrupt()
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.monitor = None
        try:
            return self.run_all()
        except KeyboardInterrupt:
            log("interrupted: killing the workers and the monitor")
            self.stop_faults.set()
            for w in self.workers:
                if w.alive():
                    w.proc.kill()
                    w.proc.wait()
            if self.monitor and self.monitor.poll() is None:
                self.monitor.kill()
                self.monitor.wait()
            return 130

    def run_all(self):
        t0 = time.time()
        os.makedirs(self.workdir, exist_ok=True)
        tasks, n_ds = make_tasks(self.rng, self.run, self.a.tasks)
        log("run %s: %d tasks over %d datasets (%d plans)" %
            (self.run, len(tasks), n_ds, n_ds * VERSIONS))
        write_catalog(self.catalog, self.run, n_ds)
        self.write_config()
        setup_db(self.db_url, self.run, n_ds, tasks)
        create_topics(self.brokers, self.topic)
        writer = avro_task.TaskWriter(
            os.path.join(ROOT, "schema", "avro", "MigrationTask.v1.avsc"))
        prod = TaskProducer(self.brokers, self.topic, writer, self.rng)
        monitor = self.monitor = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "checker.py"), "monitor",
             "--brokers", self.brokers, "--topic", self.topic,
             "--out", os.path.join(self.workdir, "monitor.json")],
            stdout=open(os.path.join(self.workdir, "monitor.log"), "ab"),
            stderr=subprocess.STDOUT)
        for w in self.workers:
            w.start()
        log("setup took %.1f s; producing over %d s" %
            (time.time() - t0, self.a.produce_seconds))
        ft = threading.Thread(target=self.fault_thread, daemon=True)
        ft.start()
        t_prod = time.time()
        next_kill = time.time() + self.rng.uniform(3, 6)
        produced = 0
        deadline = None
        last_note = 0
        while True:
            now = time.time()
            # produce at a steady rate over produce_seconds
            due = len(tasks) if self.a.produce_seconds <= 0 else min(
                len(tasks), int(len(tasks) * (now - t_prod) /
                                self.a.produce_seconds) + 1)
            while produced < due:
                prod.produce(tasks[produced])
                produced += 1
            if produced == len(tasks) and deadline is None:
                prod.flush()
                self.producer_recoveries = prod.recoveries
                with open(os.path.join(self.workdir, "manifest.json"),
                          "w") as f:
                    json.dump({"run": self.run, "topic": self.topic,
                               "group": self.group, "schema": "chaos_" +
                               self.run, "versions": VERSIONS, "rows": ROWS,
                               "tasks": tasks}, f)
                deadline = now + self.a.timeout
                log("all %d tasks produced" % len(tasks))
            prod.poll(0)
            self.supervise()
            faulting = ft.is_alive()
            prog = self.monitor_progress()
            seen = prog.get("status_seen", 0)
            # kill -9 every few seconds while the scheduled faults run and
            # until most tasks are through
            if ((faulting or seen < self.a.kill_until * len(tasks)) and
                    now >= next_kill):
                self.random_kill()
                next_kill = now + self.rng.uniform(self.a.kill_min,
                                                   self.a.kill_max)
            if now - last_note > 10:
                log("progress: %d/%d outcomes committed, faults %s" %
                    (seen, len(tasks), self.faults))
                last_note = now
            if deadline is not None and seen >= len(tasks) and (
                    not faulting or self.cycles_done >= 1):
                # every outcome is in and every kind of fault happened at
                # least once: no point in faulting an idle system
                break
            if deadline is not None and now > deadline:
                self.problem("deadline: only %d of %d tasks have an outcome "
                             "after %d s" % (seen, len(tasks),
                                             self.a.timeout))
                break
            if monitor.poll() is not None:
                self.problem("the monitor exited (status %s)" %
                             monitor.returncode)
                break
            time.sleep(0.1)
        self.stop_faults.set()
        ft.join()
        self.stop_workers()
        monitor.send_signal(signal.SIGTERM)
        try:
            monitor.wait(30)
        except subprocess.TimeoutExpired:
            monitor.kill()
            monitor.wait()
        elapsed = time.time() - t0
        log("processing done in %.1f s; verifying" % elapsed)
        return self.verify(elapsed)

    def stop_workers(self):
        for w in self.workers:
            if w.alive():
                w.signal(signal.SIGTERM, "term")
        for w in self.workers:
            if w.proc is None:
                continue
            try:
                w.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.problem("worker %s did not stop 60 s after SIGTERM"
                             % w.name)
                w.proc.kill()
                w.proc.wait()
            if w.proc.returncode != 0 and w.expect == "term":
                self.problem("worker %s exited %s after the final SIGTERM"
                             % (w.name, w.proc.returncode))

    def tamper(self):
        """Self-test of the checker: break one thing of each kind after
        the run; the checker must then report lost, duplicated and wrong
        (run.sh --self-test inverts the verdict)."""
        with open(os.path.join(self.workdir, "manifest.json")) as f:
            tasks = json.load(f)["tasks"]
        done = [t for t in tasks if t["kind"] == "plan"]
        a, b, c, d = done[0], done[1], done[2], done[3]
        s = "chaos_%s" % self.run
        conn = psycopg2.connect(self.db_url)
        cur = conn.cursor()
        cur.execute("INSERT INTO %s.effects (task_id, dataset, version)"
                    " SELECT task_id, dataset, version FROM %s.effects"
                    " WHERE task_id = %%s" % (s, s), (a["task_id"],))
        cur.execute("DELETE FROM %s.updates WHERE task = %%s" % s,
                    (b["task_id"],))
        cur.execute("UPDATE drover.task_runs SET status = 'retrying' WHERE"
                    " task_id = %s", (c["task_id"],))
        conn.commit()
        conn.close()
        # a second committed status event for d, as a zombie would write
        p = Producer({"bootstrap.servers": self.brokers,
                      "transactional.id": "chaos-tamper-%s" % self.run})
        p.init_transactions(30)
        p.begin_transaction()
        p.produce(self.topic + ".status", key=d["task_id"].encode(),
                  value=json.dumps({"task_id": d["task_id"],
                                    "status": "done",
                                    "partition": d["partition"],
                                    "offset": d["offset"]}).encode())
        p.commit_transaction(30)
        log("tampered: duplicated effect of %s, removed updates of %s, "
            "task_runs of %s, second status event of %s" %
            (a["task_id"], b["task_id"], c["task_id"], d["task_id"]))

    def verify(self, elapsed):
        if self.a.tamper:
            self.tamper()
        summary = {"faults": self.faults, "crash_points_hit": self.crash_hit,
                   "harness_problems": self.problems,
                   "unexpected_worker_exits": self.unexpected_exits,
                   "worker_exits": self.exits,
                   "producer_recoveries": self.producer_recoveries,
                   "seconds": round(elapsed, 1)}
        with open(os.path.join(self.workdir, "harness.json"), "w") as f:
            json.dump(summary, f, indent=1)
        r = subprocess.run(
            [sys.executable, os.path.join(HERE, "checker.py"), "verify",
             "--brokers", self.brokers, "--database-url", self.db_url,
             "--manifest", os.path.join(self.workdir, "manifest.json"),
             "--monitor", os.path.join(self.workdir, "monitor.json"),
             "--harness", os.path.join(self.workdir, "harness.json"),
             "--kafka-libs", self.a.kafka_libs,
             "--report", os.path.join(self.workdir, "report.json")])
        return r.returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--drover", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--kafka-libs", required=True)
    ap.add_argument("--run-id", default=uuid.uuid4().hex[:8])
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--produce-seconds", type=int, default=40)
    ap.add_argument("--cycles", type=int, default=1,
                    help="rounds of the scheduled faults")
    ap.add_argument("--kill-min", type=float, default=3.0)
    ap.add_argument("--kill-max", type=float, default=7.0)
    ap.add_argument("--tamper", action="store_true",
                    help="break the result on purpose (checker self-test)")
    ap.add_argument("--kill-until", type=float, default=0.75,
                    help="keep killing workers until this share is done")
    ap.add_argument("--timeout", type=int, default=300,
                    help="seconds after the last task was produced")
    a = ap.parse_args()
    if a.seed is None:
        a.seed = random.randrange(1 << 30)
    log("seed %d (rerun the same mix with --seed %d)" % (a.seed, a.seed))
    sys.exit(Harness(a).main())


if __name__ == "__main__":
    main()
