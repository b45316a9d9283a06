"""drover - bench/harness.py: runs the end-to-end benchmarks B1, B4-B6, B8, B9.

Called by bench/run.sh (which starts the stack, builds, and makes the
venv); writes one JSON document with every run's raw figures and the
per-benchmark summary (median, spread, ratios) that bench/report.py turns
into REPORT.md.

Every run gets fresh names (topic, group, PostgreSQL schema, datasets) so
runs cannot see each other.  Throughput is measured from the status
events (<topic>.status, read_committed): tasks over the time from the
start of production (every contender has already joined its group) to
the last committed event.  (The rate between the 10th and 90th
percentile of event times is kept as a second figure; it collapses when
the commit interval is long against the run.)  Configurations of one benchmark are interleaved repetition by
repetition and every ratio is taken within one repetition.
"""
import argparse
import io
import json
import os
import shutil
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
# drover's own statements for a B1 task: the tables every contender uses,
# and the diagnostic replay; the minimal SQL is what the limit and the
# peers run
SQL_FILE = os.path.join(ROOT, "bench", "task_sql.json")
SQL_MIN = os.path.join(ROOT, "bench", "task_sql_min.json")
SOFT_S = 20  # set from the mode: longest a throughput run waits
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
        # the table of drover's trivial plan (the limit and the peer get
        # theirs in their own schema, from task_sql.json)
        self.sql(["CREATE TABLE IF NOT EXISTS public.bench_tiny "
                  "(id int PRIMARY KEY, v text NOT NULL)",
                  "INSERT INTO public.bench_tiny VALUES (1, 'x') "
                  "ON CONFLICT DO NOTHING"])

    def topic(self, partitions=12):
        name = unique("t").replace("_", "-")
        fs = self.admin.create_topics([
            NewTopic(name, partitions, 1), NewTopic(name + ".status", 12, 1),
            NewTopic(name + ".dlq", 1, 1)])
        for f in fs.values():
            f.result(30)
        return name

    def produce(self, topic, tasks, times=None):
        """tasks: list of (entity_ref, dataset) or (entity_ref, dataset,
        partition).  Returns the task ids; fills `times` (task id bytes ->
        epoch ms when it was produced) when given."""
        # murmur2 like Java producers and drover itself (README)
        p = Producer({"bootstrap.servers": self.brokers, "linger.ms": 20,
                      "enable.idempotence": True,
                      "partitioner": "murmur2_random"})
        ids = []
        now = int(time.time() * 1000)
        for ref, ds, *part in tasks:
            tid = str(uuid.uuid4())
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, self.schema, {
                "task_id": tid, "entity_ref": ref, "dataset": ds,
                "requested_at": now, "requested_by": "bench", "dry_run": False,
                "params": {}})
            while True:
                try:
                    p.produce(topic, key=ds, value=self.header + buf.getvalue(),
                              **({"partition": part[0]} if part else {}))
                    if times is not None:
                        times[tid.encode()] = time.time() * 1000.0
                    break
                except BufferError:
                    p.poll(0.05)
            ids.append(tid)
        if p.flush(60):
            raise RuntimeError("could not deliver the benchmark tasks")
        return ids

    def catalog(self, datasets, steps=None):
        """A catalog dir with one plan per dataset: the trivial plan, or
        the step `steps[dataset]` (a YAML flow mapping); returns refs."""
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
                "  steps:\n    - " + (steps or {}).get(
                    ds, "{op: validate, not_null: [bench_tiny.v]}") + "\n")
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
        self.events = {}  # task id -> (event timestamp ms, status)
        self.stop = False
        self.lock = threading.Lock()

    def run(self):
        while not self.stop:
            for m in self.c.consume(500, 0.1):
                if m.error() or m.key() in self.seen:
                    continue
                try:
                    ev = json.loads(m.value())
                except ValueError:
                    ev = {}
                with self.lock:
                    self.seen.add(m.key())
                    self.ts.append(m.timestamp()[1])
                    self.parts.append(ev.get("partition"))
                    self.events[m.key()] = (m.timestamp()[1], ev.get("status"))
        self.c.close()

    def count(self):
        with self.lock:
            return len(self.seen)

    def wait(self, n, timeout, procs=(), soft=None):
        """Until n events; or, after `soft` seconds, 40 events will do
        (a slow contender is measured on what it finished by then)."""
        t0 = time.monotonic()
        while self.count() < n:
            if soft and time.monotonic() - t0 > soft and self.count() >= 40:
                return
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


def rate_whole(ts, start_ms):
    """Tasks per second from the start of production to the last committed
    status event.  The headline rate: the p10-p90 window of event times
    breaks when a commit interval is long against the run (every event of
    a 1000 ms interval run can land in one or two commits, so the window
    collapses and the rate explodes)."""
    if not ts:
        return None
    span = max(ts) - start_ms
    return len(ts) / (span / 1000.0) if span > 0 else None


def cpu_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]  # total, idle + iowait


def proc_cpu_s(pid):
    """CPU seconds of a process and its live descendants (a peer group is
    one process per worker under peer_worker.py --processes)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            v = f.read().rsplit(")", 1)[1].split()
        cpu = (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None
    for kid in children(pid):
        cpu += proc_cpu_s(kid) or 0
    return cpu


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


class Meter:
    """PostgreSQL commits, worker CPU and the machine's CPU over a span."""

    def __init__(self, st, procs):
        self.st, self.procs = st, procs
        self.c0, (self.t0, self.i0) = st.commits(), cpu_ticks()
        self.cpu0 = [proc_cpu_s(p.pid) or 0 for p in procs]

    def cpu_end(self):
        """Call while the workers still run."""
        self.t1, self.i1 = cpu_ticks()
        self.cpu1 = [proc_cpu_s(p.pid) or 0 for p in self.procs]

    def result(self, n):
        """Call after the workers exited: backends report their commits
        when idle or gone."""
        time.sleep(1.1)
        c1 = self.st.commits()
        cpu = sum(b - a for a, b in zip(self.cpu0, self.cpu1))
        return {"worker_cpu_ms_per_task": 1000.0 * cpu / max(1, n),
                "machine_cpu_busy": 1 - (self.i1 - self.i0) /
                max(1, self.t1 - self.t0),
                "pg_commits_per_task": (c1 - self.c0) / max(1, n)}


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
                interval=100, extra=None, sql=SQL_MIN):
    args = [st.limit, "--brokers", st.brokers, "--topic", topic, "--group",
            group, "--database-url", st.dburl, "--sql", sql, "--schema",
            schema, "--instance", instance, "--concurrency", str(concurrency),
            "--commit-interval-ms", str(interval)]
    for k, v in (extra or {}).items():
        args += ["-X", f"{k}={v}"]
    return spawn(st, args, dict(os.environ), instance)


def start_peer(st, topic, group, schema, instance, interval=100,
               processes=1):
    args = [sys.executable, os.path.join(ROOT, "bench", "peer_worker.py"),
            "--brokers", st.brokers, "--topic", topic, "--group", group,
            "--database-url", st.dburl, "--sql", SQL_MIN, "--schema", schema,
            "--instance", instance, "--commit-interval-ms", str(interval),
            "--processes", str(processes)]
    return spawn(st, args, dict(os.environ), instance)


def stop_procs(st, procs, sig=signal.SIGTERM, wait=20):
    """Signal each process's own group (spawn() starts a session per
    process, so a peer group's workers get it too)."""
    for p in procs:
        if p.poll() is None:
            killpg(p, sig)
    for p in procs:
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            killpg(p, signal.SIGKILL)
            p.wait()
        if p in st.procs:
            st.procs.remove(p)


def killpg(p, sig):
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass


def wait_group(st, group, members, procs=(), timeout=60):
    """Until the consumer group is Stable with `members` members; fails at
    once when one of `procs` has exited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{os.path.basename(p.args[0])} exited "
                                   f"{p.returncode} before joining (see "
                                   f"{p.logpath})")
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
# The other contenders than drover: kind -> processes in its group
#   limit   bare C (bench_limit), one PostgreSQL transaction per task
#   replay  diagnostic only, never the limit: the same C loop replaying
#           drover's own statements (task_sql.json)
#   peer    Python, the limit's SQL, one thread; peer_4: 4 such processes
#           in one group
GROUPS = {"limit": 1, "replay": 1, "peer": 1, "peer_4": 4}


def start_kind(st, kind, topic, group, datasets, workers, concurrency,
               interval):
    """Start a contender on `datasets`; returns (refs, processes).  drover
    runs `workers` processes; a peer group is one process whose workers
    are its children."""
    if kind == "drover":
        catalog, refs = st.catalog(datasets)
        return refs, [start_drover(st, topic, group, catalog, f"{group}-{i}",
                                   concurrency, interval)
                      for i in range(workers)]
    schema = unique("s")
    st.pg_setup(schema)
    refs = [f"component:default/{d.replace('_', '-')}" for d in datasets]
    if kind in ("limit", "replay"):
        return refs, [start_limit(st, topic, group, schema, f"{group}-0",
                                  concurrency, interval,
                                  sql=SQL_MIN if kind == "limit" else SQL_FILE)]
    return refs, [start_peer(st, topic, group, schema, f"{group}-0", interval,
                             GROUPS[kind])]


def throughput_run(st, kind, n, workers=1, concurrency=4, interval=100,
                   soft=None):
    """Start contender `kind` (drover: `workers` processes), then produce n
    trivial tasks (one dataset and plan each); returns the run's figures."""
    topic = st.topic()
    group = unique("g")
    datasets = [unique("ds") for _ in range(n)]
    members = workers if kind == "drover" else GROUPS[kind]
    refs, procs = start_kind(st, kind, topic, group, datasets, workers,
                             concurrency, interval)
    try:
        wait_group(st, group, members, procs)
        watch = StatusWatch(st.brokers, topic)
        watch.start()
        meter = Meter(st, procs)
        produced_ms = time.time() * 1000.0
        st.produce(topic, list(zip(refs, datasets)))
        watch.wait(n, max(120, n / 20), procs, soft or SOFT_S)
        meter.cpu_end()
    finally:
        stop_procs(st, procs)
    watch.finish()
    n = len(watch.ts)
    return dict({"kind": kind, "workers": members,
                 "concurrency": concurrency, "commit_interval_ms": interval,
                 "tasks": n, "tasks_per_s": rate_whole(watch.ts, produced_ms),
                 "tasks_per_s_p10_p90": rate_p10_p90(watch.ts)},
                **meter.result(n))


# ------------------------------------------------------------------------
# Summaries
# ------------------------------------------------------------------------
def spread(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(vals), "min": min(vals),
            "max": max(vals), "n": len(vals)}


def ratio(a, b):
    return a / b if a and b else None


def med(runs, key="tasks_per_s"):
    return spread([r.get(key) for r in runs])["median"]


B1_GOAL = {"vs_limit": 0.8, "vs_peer": 3.0, "vs_peer_4": 1.5}


def b1(st, size):
    """Task throughput: drover (1 worker) against the limit (bare C, one
    PostgreSQL transaction per task), the Python peer (1 thread and a
    group of 4 processes, same SQL) and, as a diagnostic, the bare C loop
    replaying drover's own statements; interleaved, ratios within each
    repetition."""
    confs = ["drover", "limit", "peer", "peer_4", "replay"]
    runs = {c: [] for c in confs}
    for rep in range(size["reps"]):
        for kind in confs:
            r = throughput_run(st, kind, size["n"])
            r["rep"] = rep
            runs[kind].append(r)
            log(f"B1 rep {rep} {kind}: {r['tasks_per_s'] or 0:.0f} tasks/s, "
                f"{r['pg_commits_per_task']:.1f} commits/task")

    def vs(other):
        return spread([ratio(d["tasks_per_s"], o["tasks_per_s"])
                       for d, o in zip(runs["drover"], runs[other])])

    ratios = {f"vs_{k}": vs(k) for k in ("limit", "peer", "peer_4", "replay")}
    out = {"unit": "tasks/s", "higher_is_better": True,
           "drover": spread([r["tasks_per_s"] for r in runs["drover"]]),
           "limit": spread([r["tasks_per_s"] for r in runs["limit"]]),
           "peer": spread([r["tasks_per_s"] for r in runs["peer"]]),
           "peer_4": spread([r["tasks_per_s"] for r in runs["peer_4"]]),
           "replay": spread([r["tasks_per_s"] for r in runs["replay"]]),
           "vs_limit": ratios["vs_limit"]["median"],
           "vs_peer": ratios["vs_peer"]["median"],
           "vs_peer_4": ratios["vs_peer_4"]["median"],
           "ratios": ratios, "goal": B1_GOAL,
           "per_task": {k: {"pg_commits": med(v, "pg_commits_per_task"),
                            "worker_cpu_ms": med(v, "worker_cpu_ms_per_task"),
                            "machine_cpu_busy": med(v, "machine_cpu_busy")}
                        for k, v in runs.items()},
           "setup": {"partitions": 12, "brokers": 1, "eos": True,
                     "tasks_per_run": size["n"], "repetitions": size["reps"],
                     "concurrency": 4, "commit_interval_ms": 100,
                     "plan": "one validate step (not_null on a 1-row table)"
                             ", one dataset and plan per task"},
           "runs": runs}
    sweeps = {"commit_interval_ms": {}, "concurrency": {}}
    for rep in range(size["sweep_reps"]):
        for iv in (10, 100, 1000):
            r = throughput_run(st, "drover", size["n"], 1, 4, iv)
            sweeps["commit_interval_ms"].setdefault(str(iv), []).append(r)
            log(f"B1 interval {iv} ms: {r['tasks_per_s'] or 0:.0f} tasks/s")
        for c in (1, 2, 4, 8):
            r = throughput_run(st, "drover", size["n"], 1, c, 100)
            sweeps["concurrency"].setdefault(str(c), []).append(r)
            log(f"B1 concurrency {c}: {r['tasks_per_s'] or 0:.0f} tasks/s")
    out["sweeps"] = {k: {x: spread([r["tasks_per_s"] for r in rs])
                         for x, rs in v.items()} for k, v in sweeps.items()}
    return out


def b6(st, size):
    """Scaling: drover with 1, 2, 3, 6 workers on 12 partitions, against
    the limit (one process) in the same repetition."""
    counts = [1, 2, 3, 6] if not size.get("smoke") else [1, 2]
    runs = {str(w): [] for w in counts}
    runs["limit"] = []
    for rep in range(size["b6_reps"]):
        r = throughput_run(st, "limit", size["n"], 1)
        runs["limit"].append(r)
        for w in counts:
            r = throughput_run(st, "drover", size["n"], w)
            runs[str(w)].append(r)
            log(f"B6 rep {rep} {w} workers: {r['tasks_per_s'] or 0:.0f} "
                f"tasks/s, machine cpu {100 * r['machine_cpu_busy']:.0f}%")
    pts = {w: {"tasks_per_s": spread([r["tasks_per_s"] for r in runs[w]]),
               "machine_cpu_busy": med(runs[w], "machine_cpu_busy"),
               "worker_cpu_ms_per_task": med(runs[w], "worker_cpu_ms_per_task")}
           for w in runs}
    best = max((w for w in runs if w != "limit"),
               key=lambda w: pts[w]["tasks_per_s"]["median"] or 0)
    vs_limit = [ratio(d["tasks_per_s"], l["tasks_per_s"])
                for d, l in zip(runs[best], runs["limit"])]
    return {"unit": "tasks/s", "higher_is_better": True,
            "drover": pts[best]["tasks_per_s"], "drover_workers": int(best),
            "limit": pts["limit"]["tasks_per_s"], "peer": None,
            "vs_limit": spread(vs_limit)["median"], "vs_peer": None,
            "points": pts, "runs": runs}


# ------------------------------------------------------------------------
# B8 head-of-line and B9 concurrency: per-task latency of slow plans
# ------------------------------------------------------------------------
def sleep_step(secs):
    """A plan step that keeps an executor busy `secs` in PostgreSQL."""
    return f'{{op: sql, sql: "SELECT pg_sleep({secs})"}}'


def pct(vals, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    v = sorted(vals)
    return v[max(0, -(-len(v) * q // 100) - 1)]


def latency_run(st, tasks, workers, concurrency, timeout):
    """drover (allow_sql) on 12 partitions; `tasks` = [(label, step or
    None for the trivial plan, partition)], produced in that order once
    the group is Stable.  Every task must end `done`.  Returns per-task
    latency (status event time - produce time), the time from the first
    produce to the last event, and the work per task."""
    topic, group = st.topic(), unique("g")
    datasets = [unique("ds") for _ in tasks]
    catalog, refs = st.catalog(datasets, {ds: step for ds, (_, step, _) in
                                          zip(datasets, tasks) if step})
    procs = [start_drover(st, topic, group, catalog, f"{group}-{i}",
                          concurrency, extra={"allow_sql": "true"})
             for i in range(workers)]
    times = {}
    try:
        wait_group(st, group, workers, procs)
        watch = StatusWatch(st.brokers, topic)
        watch.start()
        meter = Meter(st, procs)
        ids = st.produce(topic, [(r, d, t[2]) for r, d, t in
                                 zip(refs, datasets, tasks)], times)
        watch.wait(len(tasks), timeout, procs)
        meter.cpu_end()
    finally:
        stop_procs(st, procs)
    watch.finish()
    lat, first = [], min(times.values())
    for tid, (label, _, part) in zip(ids, tasks):
        ts, status = watch.events[tid.encode()]
        if status != "done":
            raise RuntimeError(f"task {tid} ({label}) ended {status}")
        lat.append({"kind": label, "partition": part,
                    "latency_s": (ts - times[tid.encode()]) / 1000.0})
    return dict({"tasks": lat, "span_s": (max(watch.ts) - first) / 1000.0,
                 "workers": workers, "concurrency": concurrency},
                **meter.result(len(tasks)))


def b8(st, size):
    """Head-of-line: n_slow slow tasks (one pg_sleep step each), one per
    partition spread over the 12, produced first; then n_fast trivial
    tasks round-robin over all 12 partitions.  One worker, 4 executors.
    Goal: fast-task p95 <= 3 s; slow ones unaffected (p95 <= their step +
    3 s)."""
    slow_s, n_slow, n_fast = size["b8_slow_s"], size["b8_slow"], size["b8_fast"]
    tasks = [("slow", sleep_step(slow_s), i * 12 // n_slow)
             for i in range(n_slow)]
    tasks += [("fast", None, i % 12) for i in range(n_fast)]
    r = latency_run(st, tasks, 2, 4, 120 + slow_s * n_slow)
    out = {"unit": "s", "higher_is_better": False, "slow_step_s": slow_s,
           "slow_tasks": n_slow, "fast_tasks": n_fast, "partitions": 12,
           "workers": 2, "concurrency": 4,
           "goal": {"fast_p95_s": 3.0, "slow_p95_s": slow_s + 3.0}}
    for kind in ("fast", "slow"):
        v = [t["latency_s"] for t in r["tasks"] if t["kind"] == kind]
        out[kind] = {"p50_s": pct(v, 50), "p95_s": pct(v, 95),
                     "max_s": max(v)}
    log(f"B8 fast p95 {out['fast']['p95_s']:.1f} s, slow p95 "
        f"{out['slow']['p95_s']:.1f} s")
    out["drover"] = out["fast"]["p95_s"]
    return dict(out, run=r)


def b9(st, size):
    """Concurrency: n tasks of one pg_sleep(task_s) step each, two per
    partition on 12 partitions, 2 workers x 12 executors (24 slots).
    Goal: makespan (first produce to last status event) <= 1.5x the
    ideal, which is one task's step with every task in its own slot."""
    task_s, n = size["b9_task_s"], size["b9_tasks"]
    workers, conc = 2, size["b9_tasks"] // 2
    tasks = [("task", sleep_step(task_s), i % 12) for i in range(n)]
    r = latency_run(st, tasks, workers, conc, 120 + task_s * n)
    ideal = float(task_s)
    log(f"B9 makespan {r['span_s']:.1f} s (ideal {ideal:.0f} s)")
    return {"unit": "s", "higher_is_better": False, "tasks": n,
            "task_s": task_s, "partitions": 12, "workers": workers,
            "concurrency": conc, "slots": workers * conc,
            "drover": r["span_s"], "ideal_s": ideal,
            "vs_ideal": r["span_s"] / ideal, "goal": {"vs_ideal": 1.5},
            "latency_p50_s": pct([t["latency_s"] for t in r["tasks"]], 50),
            "latency_p95_s": pct([t["latency_s"] for t in r["tasks"]], 95),
            "run": r}


def b4(st, size):
    """Memory: RSS of an idle worker, and of one started on a backlog of
    queued tasks, bounded by kafka.queued.max.messages.kbytes."""
    kb = 16384
    out = {"unit": "MB (RSS)", "higher_is_better": False,
           "queued_max_messages_kbytes": kb, "queued_tasks": size["b4_tasks"],
           "goal": {"idle_mb": 30, "loaded_mb": 100}}
    datasets = [unique("ds") for _ in range(12)]
    catalog, refs = st.catalog(datasets)
    # one backlog, read by each contender with its own group
    loaded = st.topic()
    st.produce(loaded, [(refs[i % 12], datasets[i % 12])
                        for i in range(size["b4_tasks"])])
    for kind in ("drover", "limit", "peer"):
        for phase in ("idle", "loaded"):
            topic = loaded if phase == "loaded" else st.topic()
            group, schema = unique("g"), unique("s")
            if kind == "drover":
                p = start_drover(st, topic, group, catalog, group + "-0", extra={
                    "kafka.queued.max.messages.kbytes": kb})
            elif kind == "limit":
                st.pg_setup(schema)
                p = start_limit(st, topic, group, schema, group + "-0",
                                extra={"queued.max.messages.kbytes": kb})
            else:
                st.pg_setup(schema)
                p = start_peer(st, topic, group, schema, group + "-0")
            try:
                wait_group(st, group, 1, [p])
                peak, t0 = 0, time.monotonic()
                while time.monotonic() - t0 < size["b4_secs"]:
                    if p.poll() is not None:
                        raise RuntimeError(f"{kind} exited during B4 "
                                           f"(see {p.logpath})")
                    peak = max(peak, proc_rss_kb(p.pid) or 0)
                    time.sleep(0.1)
                hwm = proc_rss_kb(p.pid, "VmHWM") or peak
            finally:
                stop_procs(st, [p])
            out.setdefault(kind, {})[phase] = round(max(peak, hwm) / 1024, 1)
            log(f"B4 {kind} {phase}: {out[kind][phase]} MB")
    out["drover_figure"] = out["drover"]
    # oriented so that higher is better for drover: their RSS / ours
    out["vs_limit"] = ratio(out["limit"]["loaded"], out["drover"]["loaded"])
    out["vs_peer"] = ratio(out["peer"]["loaded"], out["drover"]["loaded"])
    return out


def b5(st, size):
    """Recovery: 3 workers under load, kill -9 one, seconds until the
    group's throughput (1 s windows) is back to >= 90 % of before."""
    n = size["b5_tasks"]
    topic, group = st.topic(), unique("g")
    datasets = [unique("ds") for _ in range(n)]
    catalog, refs = st.catalog(datasets)
    extra = {"kafka.session.timeout.ms": 10000,
             "kafka.heartbeat.interval.ms": 1000}
    procs = [start_drover(st, topic, group, catalog, f"{group}-{i}",
                          extra=extra) for i in range(3)]
    try:
        wait_group(st, group, 3, procs)
        watch = StatusWatch(st.brokers, topic)
        watch.start()
        st.produce(topic, list(zip(refs, datasets)))
        watch.wait(60, 120, procs)
        time.sleep(size["b5_before_s"])
        kill_ms = time.time() * 1000
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        base, rec = None, None
        t_end = time.monotonic() + size["b5_after_s"]
        while time.monotonic() < t_end and rec is None:
            time.sleep(0.5)
            for p in procs[1:]:
                if p.poll() is not None:
                    raise RuntimeError(f"a surviving worker exited "
                                       f"(see {p.logpath})")
            with watch.lock:
                ts = sorted(watch.ts)
            base, rec = recovery(ts, kill_ms)
        watch.finish()
    finally:
        stop_procs(st, procs)
    return {"unit": "s", "higher_is_better": False,
            "drover": rec, "limit": None, "peer": None,
            "vs_limit": None, "vs_peer": None,
            "throughput_before_tasks_per_s": base, "tasks": n,
            "kafka": extra, "watched_s": size["b5_after_s"],
            "note": "recovery = first 1 s window after the kill with >= 90 %"
                    " of the pre-kill rate; null: not reached within "
                    "watched_s"}


def recovery(ts, kill_ms):
    """(pre-kill rate, seconds until a 1 s window is back to >= 90 % of
    it, or None)."""
    if len(ts) < 40:
        return None, None
    start = ts[len(ts) // 20]
    before = [t for t in ts if start <= t < kill_ms]
    base = len(before) / max(0.001, (kill_ms - start) / 1000)
    t = kill_ms
    while t + 1000 <= ts[-1]:
        if sum(1 for x in ts if t <= x < t + 1000) >= 0.9 * base:
            return base, (t - kill_ms) / 1000.0
        t += 250
    return base, None


def external(script, quick, smoke, st, extra=()):
    """B2/B3: run another engineer's bench script; collect its JSON line."""
    path = os.path.join(ROOT, "bench", script)
    if not os.path.exists(path):
        return {"missing": f"bench/{script} does not exist yet"}
    args = ["bash", path] + list(extra)
    env = dict(os.environ, DROVER_TEST_BROKERS=st.brokers,
               DROVER_TEST_DATABASE_URL=st.dburl)
    p = subprocess.run(args, env=env, capture_output=True, text=True,
                       timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"bench/{script} exited {p.returncode}: "
                           f"{(p.stderr or p.stdout).strip()[-400:]}")
    for line in reversed(p.stdout.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    raise RuntimeError(f"bench/{script} printed no JSON line")


def b2_all(st, quick, smoke):
    """B2 at the mode's size (3 repetitions, 1 in smoke runs); full runs
    add 10M rows (one repetition: each one takes ~7 minutes)."""
    out = b2(st, quick, smoke, reps=1 if smoke else 3)
    if not quick and not smoke and "missing" not in out:
        out["rows_10m"] = b2(st, quick, smoke, 10000000, reps=1)
    return out


B2_TABLE = [  # the statements bench_transforms.c's make_table() issues
    "CREATE TABLE {t} (id bigint PRIMARY KEY, email text, domain text)",
    "INSERT INTO {t} (id, email) SELECT g, 'user' || g || '@d' || (g % 97)"
    " || '.example' FROM generate_series(1, {rows}) g",
    "VACUUM ANALYZE {t}", "CHECKPOINT"]


def b2_peer(st, rows, batch):
    """The Python peer: psycopg2, range-bounded keyset batches, one commit
    per batch, on a fresh table made as bench_transforms makes its own."""
    table = unique("b2")
    st.sql([q.format(t=table, rows=rows) for q in B2_TABLE])
    conn = psycopg2.connect(st.dburl)
    t0, lo, times = time.monotonic(), 0, []
    with conn.cursor() as cur:
        while True:
            b0 = time.monotonic()
            cur.execute(f"SELECT id FROM {table} WHERE id > %s ORDER BY id "
                        f"OFFSET %s LIMIT 1", (lo, batch - 1))
            r = cur.fetchone()
            hi = r[0] if r else None
            if hi is None:
                cur.execute(f"UPDATE {table} SET domain = split_part(email, "
                            f"'@', 2) WHERE id > %s", (lo,))
            else:
                cur.execute(f"UPDATE {table} SET domain = split_part(email, "
                            f"'@', 2) WHERE id > %s AND id <= %s", (lo, hi))
            conn.commit()
            times.append(1000 * (time.monotonic() - b0))
            if hi is None:
                break
            lo = hi
    peer_s = time.monotonic() - t0
    conn.close()
    st.sql([f"DROP TABLE {table}"])
    first = times[0]
    times.sort()
    return {"s": peer_s, "first_ms": round(first), "batches": len(times),
            "batch_ms_median": round(times[len(times) // 2]),
            "batch_ms_p99": round(times[(len(times) * 99) // 100]),
            "batch_ms_max": round(times[-1])}


def b2(st, quick, smoke, rows=None, reps=3):
    """Bulk transforms: drover's backfill (bench/transforms.sh) vs one
    native UPDATE (the limit) vs the Python peer, each on its own fresh
    table made the same way (VACUUM ANALYZE + CHECKPOINT), the order
    rotated across repetitions; medians, ratios within a repetition.
    copy_rows: drover vs one INSERT ... SELECT, same method."""
    size = ["--rows", str(rows)] if rows else ["--quick"] if quick or smoke \
        else []
    runs = {"native": [], "drover": [], "peer": []}
    rows_n = batch = None
    for rep in range(reps):
        order = ["native", "drover", "peer"]
        order = order[rep % 3:] + order[:rep % 3]
        for c in order:
            if c == "peer":
                r = b2_peer(st, rows_n or rows or (100000 if quick or smoke
                                                   else 1000000),
                            batch or 5000)
                runs["peer"].append({"backfill": r})
            else:
                x = external("transforms.sh", quick, smoke, st,
                             size + ["--reps", "1", "--only", c])
                if "missing" in x:
                    return x
                rows_n, batch = x["rows"], x["batch"]
                runs[c].append(x)
            log(f"B2 rep {rep} {c}: backfill "
                f"{runs[c][-1]['backfill']['s']:.2f} s")
    rows_n = rows_n or rows

    def secs(c, op="backfill"):
        return [r[op]["s"] for r in runs[c]]

    def lock(c, op="backfill"):
        fs = [r[op] for r in runs[c] if op in r]
        return {"median_ms": spread([f["batch_ms_median"] for f in fs])
                ["median"],
                "p99_ms": spread([f["batch_ms_p99"] for f in fs])["median"],
                "max_ms": max(f["batch_ms_max"] for f in fs) if fs else None,
                "first_ms": spread([f["first_ms"] for f in fs])["median"],
                "batches": fs[0]["batches"] if fs else None}

    vs_limit = [n / d for n, d in zip(secs("native"), secs("drover"))]
    vs_peer = [p / d for p, d in zip(secs("peer"), secs("drover"))]
    cp_ratio = [n / d for n, d in zip(secs("native", "copy_rows"),
                                      secs("drover", "copy_rows"))]
    med_s = {c: spread(secs(c))["median"] for c in runs}
    lk = {c: lock(c) for c in runs}
    cp_lk = {c: lock(c, "copy_rows") for c in ("native", "drover")}
    return {"unit": "rows/s", "higher_is_better": True, "rows": rows_n,
            "batch": batch, "reps": reps, "method": "fresh table per "
            "contender (CREATE, INSERT, VACUUM ANALYZE, CHECKPOINT), order "
            "rotated per repetition",
            "drover": rows_n / med_s["drover"],
            "limit": rows_n / med_s["native"],
            "peer": rows_n / med_s["peer"],
            "vs_limit": spread(vs_limit)["median"],
            "vs_peer": spread(vs_peer)["median"],
            "vs_limit_spread": spread(vs_limit),
            "vs_peer_spread": spread(vs_peer),
            "peer_name": "python psycopg2 keyset batches",
            "peer_max_batch_ms": lk["peer"]["max_ms"],
            "drover_max_batch_ms": lk["drover"]["max_ms"],
            "lock_ms": lk,
            "copy_rows": {"drover_s": spread(secs("drover", "copy_rows"))
                          ["median"],
                          "limit_s": spread(secs("native", "copy_rows"))
                          ["median"],
                          "ratio": spread(cp_ratio)["median"],
                          "ratio_spread": spread(cp_ratio),
                          "max_batch_ms": cp_lk["drover"]["max_ms"],
                          "lock_ms": cp_lk},
            "runs": runs}


def callgrind_ir(binary, toggles, records, inner=None):
    """Instructions callgrind counts inside the toggled functions, and
    (when `inner` names a function) that function's inclusive share."""
    out = os.path.join("/tmp", unique("cg") + ".out")
    args = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    args += [f"--toggle-collect={t}" for t in toggles]
    args += [binary, "--records", str(records), "--repeats", "1",
             "--no-python"]
    subprocess.run(args, env=dict(os.environ, DROVER_SOURCE_DIR=ROOT),
                   capture_output=True, timeout=600, check=True)
    with open(out) as fh:
        ir = next(int(ln.split()[1]) for ln in fh if ln.startswith("totals:"))
    part = None
    if inner:
        ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", out],
                             capture_output=True, text=True).stdout
        for ln in ann.splitlines():
            if f":{inner} [" in ln or f"?:{inner} [" in ln:
                part = int(ln.split()[0].replace(",", ""))
                break
    os.remove(out)
    return ir, part


def b3_callgrind(st, records=2000):
    """Instructions per record: drv_task_decode + drv_task_destroy (drover)
    against avro_value_read alone (the raw avro-c read).  bench_decode
    reads in three modes (drover's, raw, raw with a fresh value), so the
    raw figure is (every avro_value_read - drover's) / (2 x records)."""
    binary = os.path.join(os.path.dirname(st.drover), "..", "bench",
                          "bench_decode")
    if not shutil.which("valgrind") or not os.path.exists(binary):
        return {"skipped": "valgrind or bench_decode missing"}
    drover, inner = callgrind_ir(binary, ["drv_task_decode",
                                          "drv_task_destroy"], records,
                                 "avro_value_read")
    reads, _ = callgrind_ir(binary, ["avro_value_read"], records)
    if inner is None:
        return {"skipped": "callgrind_annotate gave no avro_value_read"}
    raw = (reads - inner) / (2 * records)
    return {"records": records, "drover_ir_per_record": drover / records,
            "drover_read_ir_per_record": inner / records,
            "raw_read_ir_per_record": raw,
            "vs_limit": raw / (drover / records)}


def b3(st, quick, smoke):
    """Decode: bench/decode.sh (drv_task_decode vs raw avro-c vs
    python3-avro)."""
    x = external("decode.sh", quick, smoke, st,
                 ["--records", "5000"] if smoke else [])
    if "missing" in x:
        return x
    return {"unit": "records/s", "higher_is_better": True,
            "drover": x.get("drover_rps"), "limit": x.get("avro_c_raw_rps"),
            "peer": x.get("python_avro_rps"),
            "vs_limit": x.get("ratio_vs_raw"),
            "vs_peer": x.get("ratio_vs_python"),
            "goal": {"vs_limit": x.get("goal_ratio_vs_raw")}, "script": x,
            "callgrind": b3_callgrind(st) if not smoke else None}


def profile(st, kind, outdir, secs=6):
    """perf (cpu-clock, call graphs) of one worker during a B1 run: where
    its CPU goes.  Writes profile-b1-<kind>.txt; returns its summary."""
    if not shutil.which("perf"):
        return {"skipped": "perf is not installed"}
    topic, group = st.topic(), unique("g")
    datasets = [unique("ds") for _ in range(3000)]
    if kind == "drover":
        catalog, refs = st.catalog(datasets)
        p = start_drover(st, topic, group, catalog, group + "-0")
    else:
        schema = unique("s")
        st.pg_setup(schema)
        refs = [f"component:default/{d.replace('_', '-')}" for d in datasets]
        p = start_limit(st, topic, group, schema, group + "-0")
    data = os.path.join(st.workdir, unique("perf") + ".data")
    try:
        wait_group(st, group, 1, [p])
        perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F",
                                 "499", "-g", "-p", str(p.pid), "-o", data],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        watch = StatusWatch(st.brokers, topic)
        watch.start()
        cpu0 = proc_cpu_s(p.pid) or 0
        st.produce(topic, list(zip(refs, datasets)))
        time.sleep(secs)
        cpu = (proc_cpu_s(p.pid) or 0) - cpu0
        perf.send_signal(signal.SIGINT)
        perf.wait(30)
        watch.finish()
    finally:
        stop_procs(st, [p])
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio",
                          "--no-children", "--sort", "dso,symbol",
                          "--percent-limit", "1.5", "-g", "none"],
                         capture_output=True, text=True)
    path = os.path.join(outdir, f"profile-b1-{kind}.txt")
    with open(path, "w") as fh:
        fh.write(f"# perf record -e cpu-clock -g of one {kind} worker for "
                 f"{secs} s of B1: {len(watch.ts)} tasks done, {cpu:.2f} CPU s"
                 f"\n{rep.stdout}")
    os.remove(data)
    top = [ln.strip() for ln in rep.stdout.splitlines()
           if ln.strip() and not ln.startswith("#")][:8]
    return {"file": os.path.basename(path), "tasks": len(watch.ts),
            "cpu_s": round(cpu, 2), "top": top}


SIZES = {
    "smoke": {"n": 200, "reps": 1, "sweep_reps": 0, "b6_reps": 1,
              "b4_tasks": 5000, "b4_secs": 3, "b5_tasks": 600,
              "b5_before_s": 1, "b5_after_s": 12, "smoke": True, "soft_s": 4,
              "b8_slow_s": 2, "b8_slow": 2, "b8_fast": 12,
              "b9_task_s": 1, "b9_tasks": 24},
    "quick": {"n": 600, "reps": 5, "sweep_reps": 1, "b6_reps": 1,
              "b4_tasks": 100000, "b4_secs": 5, "b5_tasks": 4000,
              "b5_before_s": 3, "b5_after_s": 30, "soft_s": 4,
              "b8_slow_s": 20, "b8_slow": 4, "b8_fast": 48,
              "b9_task_s": 5, "b9_tasks": 24},
    "full": {"n": 2500, "reps": 5, "sweep_reps": 2, "b6_reps": 3,
             "b4_tasks": 100000, "b4_secs": 10, "b5_tasks": 12000,
             "b5_before_s": 5, "b5_after_s": 60, "soft_s": 12,
             "b8_slow_s": 20, "b8_slow": 4, "b8_fast": 48,
             "b9_task_s": 5, "b9_tasks": 24},
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--drover", required=True)
    ap.add_argument("--limit", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", choices=SIZES, default="full")
    ap.add_argument("--only", default="B1,B2,B3,B4,B5,B6,B8,B9")
    a = ap.parse_args()
    size = SIZES[a.mode]
    global SOFT_S
    SOFT_S = size["soft_s"]
    st = Stack(a.brokers, a.database_url, a.workdir, a.drover, a.limit)
    only = a.only.split(",")
    res = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "mode": a.mode, "host": {"cpus": os.cpu_count(),
                                    "load_before": os.getloadavg()[0]}}
    benches = [("B1", lambda: b1(st, size)),
               ("B2", lambda: b2_all(st, a.mode == "quick",
                                     a.mode == "smoke")),
               ("B3", lambda: b3(st, a.mode == "quick", a.mode == "smoke")),
               ("B4", lambda: b4(st, size)), ("B5", lambda: b5(st, size)),
               ("B6", lambda: b6(st, size)), ("B8", lambda: b8(st, size)),
               ("B9", lambda: b9(st, size))]
    # ~30 s: in full runs (the quick one must stay under 5 minutes)
    if "profile" in only or (a.mode == "full" and "B1" in only):
        only.append("profile")
        benches.append(("profile", lambda: {
            k: profile(st, k, os.path.dirname(os.path.abspath(a.out)))
            for k in ("drover", "limit")}))
    failed = []
    try:
        for name, fn in benches:
            if name not in only:
                continue
            t0 = time.monotonic()
            log(f"{name} ...")
            try:
                res[name] = fn()
            except Exception as e:  # record it, run the others, fail at end
                res[name] = {"error": str(e)}
                failed.append(name)
                log(f"{name} FAILED: {e}")
            res.setdefault("seconds", {})[name] = round(time.monotonic() - t0)
    finally:
        stop_procs(st, list(st.procs), signal.SIGKILL, 5)
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
    if failed:
        log(f"failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
