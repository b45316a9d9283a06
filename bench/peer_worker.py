"""drover - bench/peer_worker.py: the B1 peer.

The same worker as a Python team would write it: confluent-kafka, fastavro,
psycopg2, one thread.  Consume a task, decode it, run its PostgreSQL
statements (--sql: bench/task_sql_min.json, one transaction per task, or
bench/task_sql.json, drover's own statements) on one connection, and once
per commit interval produce the status events and send the offsets in one
Kafka transaction (exactly once, as drover does); then run the file's
after_commit statements per task and its after_batch statements once for
the committed batch (task_ids = the batch's task ids).  A statement with
"on_no_row" that returns no row rolls the task back with that outcome.

  peer_worker.py --brokers B --topic T --group G --database-url URL
                 --sql FILE --schema S [--processes N]
                 [--commit-interval-ms 100] [--instance NAME] [--exit-after N]

--processes N starts N such workers (instances NAME-0 ... NAME-N-1) in
one consumer group, each its own process with its own transactional id,
and waits for them.  Exits 0 after --exit-after committed tasks (or on
SIGTERM), 1 on error.
"""
import argparse
import io
import json
import re
import signal
import subprocess
import sys
import time

import fastavro
import psycopg2
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

SCHEMA_DIR = __file__.rsplit("/", 2)[0] + "/schema/avro"

STEP_FP = "f9907ba0a5c357391fd92bfeeb106c1abaa8788fc375291183db1a0477f16df8"
stop = False


def on_signal(sig, frame):
    global stop
    stop = True


def load_schemas():
    """Writer schemas by single-object fingerprint (8 little-endian bytes)."""
    out = {}
    for v in (1, 2):
        with open(f"{SCHEMA_DIR}/MigrationTask.v{v}.avsc") as f:
            raw = json.load(f)
        canon = fastavro.schema.to_parsing_canonical_form(raw)
        fp = bytes.fromhex(fastavro.schema.fingerprint(canon, "CRC-64-AVRO"))
        out[fp] = fastavro.parse_schema(raw)
    return out


def decode(schemas, value):
    if len(value) < 10 or value[:2] != b"\xc3\x01":
        raise ValueError("not an avro single-object record")
    schema = schemas.get(value[2:10])
    if schema is None:
        raise ValueError("unknown writer schema")
    return fastavro.schemaless_reader(io.BytesIO(value[10:]), schema)


def load_sql(path, schema):
    """(per_task, after_commit, after_batch): lists of (sql, param names,
    on_no_row outcome or None)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise SystemExit(f"peer_worker: schema \"{schema}\" is not a plain identifier")
    with open(path) as f:
        spec = json.load(f)

    def conv(stmts):
        out = []
        for st in stmts:
            # $n placeholders become psycopg2's %(pn)s
            sql = st["sql"].replace("{schema}", schema).replace("%", "%%")
            sql = re.sub(r"\$(\d+)", lambda m: "%(p" + m.group(1) + ")s", sql)
            out.append((sql, st["params"], st.get("on_no_row")))
        return out

    return (conv(spec["per_task"]), conv(spec.get("after_commit", [])),
            conv(spec.get("after_batch", [])))


def run_stmts(cur, stmts, vals):
    """The outcome: "done", or a statement's on_no_row outcome (its
    transaction rolled back)."""
    for sql, names, on_no_row in stmts:
        cur.execute(sql, {f"p{i + 1}": vals[n] for i, n in enumerate(names)})
        if on_no_row and cur.rowcount < 1:
            cur.execute("ROLLBACK")
            return on_no_row
    return "done"


def group(a):
    """--processes N: N workers of one group, each its own process."""
    args = list(sys.argv[1:])
    i = args.index("--processes")
    del args[i:i + 2]
    if "--instance" in args:
        del args[args.index("--instance"):args.index("--instance") + 2]
    procs = [subprocess.Popen([sys.executable, __file__, *args, "--instance",
                               f"{a.instance}-{k}"])
             for k in range(a.processes)]

    def forward(sig, frame):
        for p in procs:
            p.send_signal(sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    # one failed worker fails the group (the others are stopped)
    while any(p.poll() is None for p in procs):
        if any(p.returncode for p in procs):
            forward(signal.SIGTERM, None)
            for p in procs:
                p.wait()
            sys.exit(1)
        time.sleep(0.1)
    sys.exit(1 if any(p.returncode for p in procs) else 0)


class Worker:
    def __init__(self, a):
        self.a = a
        self.schemas = load_schemas()
        self.per_task, self.after_commit, self.after_batch = load_sql(
            a.sql, a.schema)
        self.conn = psycopg2.connect(a.database_url)
        self.conn.autocommit = True  # the statement lists hold BEGIN/COMMIT
        self.cur = self.conn.cursor()
        self.consumer = Consumer({
            "bootstrap.servers": a.brokers, "group.id": a.group,
            "enable.auto.commit": False, "isolation.level": "read_committed",
            "auto.offset.reset": "earliest"})
        self.producer = Producer({
            "bootstrap.servers": a.brokers, "linger.ms": 1,
            "transactional.id": f"bench-peer-{a.group}-{a.instance}"})
        self.producer.init_transactions(30)
        self.status_topic = a.topic + ".status"
        self.done, self.offsets, self.committed = [], {}, 0
        # a revoked partition's finished tasks are committed before it goes
        self.consumer.subscribe([a.topic], on_revoke=lambda c, ps: self.commit())

    def take(self, msg):
        task = decode(self.schemas, msg.value())
        vals = {"task_id": str(task["task_id"]), "entity_ref": task["entity_ref"],
                "dataset": task["dataset"], "worker": self.a.instance,
                "partition": str(msg.partition()), "offset": str(msg.offset()),
                # one plan per dataset in B1, as in drover's catalog
                "plan_fp": task["dataset"], "step_fp": STEP_FP}
        vals["status"] = run_stmts(self.cur, self.per_task, vals)
        self.done.append(vals)
        self.offsets[msg.partition()] = msg.offset() + 1

    def commit(self):
        """One Kafka transaction: the status events and the offsets; then
        the PostgreSQL statements that follow a commit."""
        if not self.done:
            return
        p = self.producer
        p.begin_transaction()
        for v in self.done:
            ev = {"task_id": v["task_id"], "dataset": v["dataset"],
                  "status": v["status"], "partition": int(v["partition"]),
                  "offset": int(v["offset"]), "worker": self.a.instance}
            p.produce(self.status_topic, key=v["task_id"], value=json.dumps(ev))
        p.send_offsets_to_transaction(
            [TopicPartition(self.a.topic, q, o) for q, o in self.offsets.items()],
            self.consumer.consumer_group_metadata())
        p.commit_transaction()
        for v in self.done:
            run_stmts(self.cur, self.after_commit, v)
        if self.after_batch:
            run_stmts(self.cur, self.after_batch,
                      {"task_ids": [v["task_id"] for v in self.done]})
        self.committed += len(self.done)
        self.done, self.offsets = [], {}

    def run(self):
        a, last = self.a, time.monotonic()
        while not stop and (not a.exit_after or self.committed < a.exit_after):
            msg = self.consumer.poll(0.005)
            if msg is not None:
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        print(f"peer_worker: consumer: {msg.error()}",
                              file=sys.stderr)
                else:
                    self.take(msg)
            if self.done and (time.monotonic() - last) * 1000 >= a.commit_interval_ms:
                self.commit()
                last = time.monotonic()
        self.commit()
        self.consumer.close()
        self.conn.close()
        print(f"peer_worker: {self.committed} tasks committed", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--sql", required=True)
    ap.add_argument("--schema", required=True)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--commit-interval-ms", type=int, default=100)
    ap.add_argument("--instance", default="peer")
    ap.add_argument("--exit-after", type=int, default=0)
    a = ap.parse_args()
    if a.processes > 1:
        group(a)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    Worker(a).run()


if __name__ == "__main__":
    main()
