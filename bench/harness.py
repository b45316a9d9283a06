"""drover - bench/harness.py: runs the end-to-end benchmarks B1, B4-B6.

Called by bench/run.sh (which starts the stack, builds, and makes the
venv); writes one JSON document with every run's raw figures and the
per-benchmark summary (median, spread, ratios) that bench/report.py turns
into REPORT.md.

Every run gets fresh names (topic, group, PostgreSQL schema, datasets) so
runs cannot see each other.  Throughput is measured from the status
events (<topic>.status, read_committed): the rate between the 10th and
the 90th percentile of their timestamps, so start-up and the tail do not
count.  Configurations of one benchmark are interleaved repetition by
repetition and every ratio is taken within one repetition.
"""
import argparse
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid

import fastavro
import psycopg2
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SQL_FILE = os.path.join(ROOT, "bench", "task_sql.json")
RUN_ID = time.strftime("%H%M%S") + "_" + uuid.uuid4().hex[:4]
_seq = [0]


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def unique(kind):
    _seq[0] += 1
    return f"bench_{RUN_ID}_{kind}_{_seq[0]}"


# ------------------------------------------------------------------------
# Stack helpers: topics, tasks, catalog, status events, CPU
# ------------------------------------------------------------------------
class Stack:
    def __init__(self, brokers, dburl, workdir, drover, limit):
        self.brokers, self.dburl, self.workdir = brokers, dburl, workdir
        self.drover, self.limit = drover, limit
        self.admin = AdminClient({"bootstrap.servers": brokers})
        with open(os.path.join(ROOT, "schema/avro/MigrationTask.v1.avsc")) as f:
            raw = json.load(f)
        canon = fastavro.schema.to_parsing_canonical_form(raw)
        self.header = b"\xc3\x01" + bytes.fromhex(
            fastavro.schema.fingerprint(canon, "CRC-64-AVRO"))
        self.schema = fastavro.parse_schema(raw)
        self.procs = []

    def topic(self, partitions=12):
        name = unique("t").replace("_", "-")
        fs = self.admin.create_topics([
            NewTopic(name, partitions, 1), NewTopic(name + ".status", 12, 1),
            NewTopic(name + ".dlq", 1, 1)])
        for f in fs.values():
            f.result(30)
        return name

    def produce(self, topic, tasks):
        """tasks: list of (entity_ref, dataset).  Returns the task ids."""
        p = Producer({"bootstrap.servers": self.brokers, "linger.ms": 20,
                      "enable.idempotence": True})
        ids = []
        now = int(time.time() * 1000)
        for ref, ds in tasks:
            tid = str(uuid.uuid4())
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, self.schema, {
                "task_id": tid, "entity_ref": ref, "dataset": ds,
                "requested_at": now, "requested_by": "bench", "dry_run": False,
                "params": {}})
            while True:
                try:
                    p.produce(topic, key=ds, value=self.header + buf.getvalue())
                    break
                except BufferError:
                    p.poll(0.05)
            ids.append(tid)
        if p.flush(60):
            raise RuntimeError("could not deliver the benchmark tasks")
        return ids

    def catalog(self, datasets, steps="validate"):
        """A catalog dir with one trivial plan per dataset; returns refs."""
        d = os.path.join(self.workdir, unique("catalog"))
        os.makedirs(d)
        docs, refs = [], []
        for ds in datasets:
            name = ds.replace("_", "-")
            refs.append(f"component:default/{name}")
            docs.append(
                "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
                f"metadata:\n  name: {name}\nspec:\n  type: migration-plan\n"
                "  lifecycle: production\n  owner: team-bench\n"
                f"  dataset: {ds}\n  schemaVersion: {{from: 1, to: 2}}\n"
                "  steps:\n    - {op: validate, not_null: [bench_tiny.v]}\n")
        with open(os.path.join(d, "catalog-info.yaml"), "w") as f:
            f.write("---\n".join(docs))
        return d, refs

    def sql(self, stmts):
        conn = psycopg2.connect(self.dburl)
        conn.autocommit = True
        with conn.cursor() as cur:
            for s in stmts:
                cur.execute(s)
            rows = cur.fetchall() if cur.description else None
        conn.close()
        return rows

    def pg_setup(self, schema):
        with open(SQL_FILE) as f:
            spec = json.load(f)
        self.sql([s.replace("{schema}", schema) for s in spec["setup"]])

    def commits(self):
        return self.sql(["SELECT xact_commit FROM pg_stat_database "
                         "WHERE datname = current_database()"])[0][0]


class StatusWatch(threading.Thread):
    """Counts distinct task ids on <topic>.status with their timestamps."""

    def __init__(self, brokers, topic):
        super().__init__(daemon=True)
        self.c = Consumer({"bootstrap.servers": brokers,
                           "group.id": unique("watch"),
                           "isolation.level": "read_committed",
                           "auto.offset.reset": "earliest",
                           "enable.auto.commit": False})
        self.c.subscribe([topic + ".status"])
        self.seen, self.ts, self.parts = set(), [], []
        self.stop = False
        self.lock = threading.Lock()

    def run(self):
        while not self.stop:
            for m in self.c.consume(500, 0.1):
                if m.error() or m.key() in self.seen:
                    continue
                with self.lock:
                    self.seen.add(m.key())
                    self.ts.append(m.timestamp()[1])
                    try:
                        self.parts.append(json.loads(m.value()).get("partition"))
                    except ValueError:
                        self.parts.append(None)
        self.c.close()

    def count(self):
        with self.lock:
            return len(self.seen)

    def wait(self, n, timeout, procs=()):
        t0 = time.monotonic()
        while self.count() < n:
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(
                    f"only {self.count()} of {n} status events after {timeout}s")
            for p in procs:
                if p.poll() is not None and p.returncode not in (0, None):
                    raise RuntimeError(
                        f"{p.args[0]} exited {p.returncode} (see {p.logpath})")
            time.sleep(0.05)

    def finish(self):
        self.stop = True
        self.join(10)


def rate_p10_p90(ts):
    ts = sorted(ts)
    n = len(ts)
    if n < 20:
        return None
    a, b = ts[n // 10], ts[(9 * n) // 10]
    if b <= a:
        return None
    return ((9 * n) // 10 - n // 10) / ((b - a) / 1000.0)


def cpu_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]  # total, idle + iowait


def proc_cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


def proc_rss_kb(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# ------------------------------------------------------------------------
# Starting the three contenders
# ------------------------------------------------------------------------
def spawn(st, args, env, name):
    logpath = os.path.join(st.workdir, unique("log") + f"_{name}.log")
    lf = open(logpath, "w")
    p = subprocess.Popen(args, env=env, stdout=lf, stderr=subprocess.STDOUT,
                         start_new_session=True)
    p.logpath = logpath
    st.procs.append(p)
    return p


def start_drover(st, topic, group, catalog, instance, concurrency=4,
                 interval=100, extra=None):
    cfg = os.path.join(st.workdir, unique("cfg") + ".yaml")
    with open(cfg, "w") as f:
        f.write(f"concurrency: {concurrency}\ncommit_interval_ms: {interval}\n")
        for k, v in (extra or {}).items():
            f.write(f"{k}: {v}\n")
    env = dict(os.environ, DROVER_BROKERS=st.brokers, DROVER_TOPIC=topic,
               DROVER_GROUP=group, DROVER_INSTANCE=instance,
               DROVER_CATALOG_DIR=catalog, DATABASE_URL=st.dburl,
               DROVER_HTTP_LISTEN="")
    return spawn(st, [st.drover, "worker", "--config", cfg], env, instance)


def start_limit(st, topic, group, schema, instance, concurrency=4,
                interval=100, extra=None):
    args = [st.limit, "--brokers", st.brokers, "--topic", topic, "--group",
            group, "--database-url", st.dburl, "--sql", SQL_FILE, "--schema",
            schema, "--instance", instance, "--concurrency", str(concurrency),
            "--commit-interval-ms", str(interval)]
    for k, v in (extra or {}).items():
        args += ["-X", f"{k}={v}"]
    return spawn(st, args, dict(os.environ), instance)


def start_peer(st, topic, group, schema, instance, interval=100):
    args = [sys.executable, os.path.join(ROOT, "bench", "peer_worker.py"),
            "--brokers", st.brokers, "--topic", topic, "--group", group,
            "--database-url", st.dburl, "--sql", SQL_FILE, "--schema", schema,
            "--instance", instance, "--commit-interval-ms", str(interval)]
    return spawn(st, args, dict(os.environ), instance)


def stop_procs(st, procs, sig=signal.SIGTERM, wait=20):
    for p in procs:
        if p.poll() is None:
            p.send_signal(sig)
    for p in procs:
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if p in st.procs:
            st.procs.remove(p)


def wait_group(st, group, members, timeout=60):
    """Until the consumer group is Stable with `members` members."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            d = st.admin.describe_consumer_groups([group])[group].result(10)
            if str(d.state).endswith("STABLE") and len(d.members) == members:
                return
        except Exception:  # not there yet
            pass
        time.sleep(0.2)
    raise RuntimeError(f"group \"{group}\" did not reach {members} members")


# ------------------------------------------------------------------------
# One throughput run
# ------------------------------------------------------------------------
def throughput_run(st, kind, n, workers=1, concurrency=4, interval=100):
    """Start `workers` processes of `kind`, then produce n trivial tasks
    (one dataset and plan each); returns the run's figures."""
    topic = st.topic()
    group = unique("g")
    datasets = [unique("ds") for _ in range(n)]
    schema = None
    if kind == "drover":
        catalog, refs = st.catalog(datasets)
        procs = [start_drover(st, topic, group, catalog, f"{group}-{i}",
                              concurrency, interval) for i in range(workers)]
    else:
        schema = unique("s")
        st.pg_setup(schema)
        refs = [f"component:default/{d.replace('_', '-')}" for d in datasets]
        if kind == "limit":
            procs = [start_limit(st, topic, group, schema, f"{group}-{i}",
                                 concurrency, interval)
                     for i in range(workers)]
        else:
            procs = [start_peer(st, topic, group, schema, f"{group}-{i}",
                                interval) for i in range(workers)]
    try:
        wait_group(st, group, workers)
        watch = StatusWatch(st.brokers, topic)
        watch.start()
        c0, (t0, i0) = st.commits(), cpu_ticks()
        cpu0 = [proc_cpu_s(p.pid) or 0 for p in procs]
        st.produce(topic, list(zip(refs, datasets)))
        watch.wait(n, max(120, n / 20), procs)
        t1, i1 = cpu_ticks()
        cpu1 = [proc_cpu_s(p.pid) or 0 for p in procs]
        c1 = st.commits()
        watch.finish()
    finally:
        stop_procs(st, procs)
    rate = rate_p10_p90(watch.ts)
    worker_cpu = sum(b - a for a, b in zip(cpu0, cpu1))
    return {"kind": kind, "workers": workers, "concurrency": concurrency,
            "commit_interval_ms": interval, "tasks": n,
            "tasks_per_s": rate,
            "worker_cpu_ms_per_task": 1000.0 * worker_cpu / n,
            "machine_cpu_busy": 1 - (i1 - i0) / max(1, t1 - t0),
            "pg_commits_per_task": (c1 - c0) / n}


# ------------------------------------------------------------------------
# Summaries
# ------------------------------------------------------------------------
def spread(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(vals), "min": min(vals),
            "max": max(vals), "n": len(vals)}
