"""drover - bench/peer_worker.py: the B1 peer.

The same worker as a Python team would write it: confluent-kafka, fastavro,
psycopg2, one thread.  Consume a task, decode it, run its PostgreSQL
statements (bench/task_sql.json: the same ones drover issues for the
trivial plan, on one connection), and once per commit interval produce the
status events and send the offsets in one Kafka transaction; then write the
final task_runs rows.

  peer_worker.py --brokers B --topic T --group G --database-url URL
                 --sql bench/task_sql.json --schema S
                 [--commit-interval-ms 100] [--instance NAME] [--exit-after N]

Exits 0 after --exit-after committed tasks (or on SIGTERM), 1 on error.
"""
import argparse
import io
import json
import re
import signal
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
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise SystemExit(f"peer_worker: schema \"{schema}\" is not a plain identifier")
    with open(path) as f:
        spec = json.load(f)

    def conv(stmts):
        out = []
        for st in stmts:
            # $n placeholders become psycopg2's %s, in parameter order
            sql = st["sql"].replace("{schema}", schema).replace("%", "%%")
            names = st["params"]
            sql = re.sub(r"\$(\d+)", lambda m: "%(p" + m.group(1) + ")s", sql)
            out.append((sql, names))
        return out

    return conv(spec["per_task"]), conv(spec["after_commit"])


def run_stmts(cur, stmts, vals):
    for sql, names in stmts:
        cur.execute(sql, {f"p{i + 1}": vals[n] for i, n in enumerate(names)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--sql", required=True)
    ap.add_argument("--schema", required=True)
    ap.add_argument("--commit-interval-ms", type=int, default=100)
    ap.add_argument("--instance", default="peer-0")
    ap.add_argument("--exit-after", type=int, default=0)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    schemas = load_schemas()
    per_task, after_commit = load_sql(a.sql, a.schema)
    conn = psycopg2.connect(a.database_url)
    conn.autocommit = True  # the statement list has its own BEGIN/COMMIT
    cur = conn.cursor()
    consumer = Consumer({
        "bootstrap.servers": a.brokers, "group.id": a.group,
        "enable.auto.commit": False, "isolation.level": "read_committed",
        "auto.offset.reset": "earliest"})
    producer = Producer({
        "bootstrap.servers": a.brokers, "linger.ms": 1,
        "transactional.id": f"bench-peer-{a.group}-{a.instance}"})
    producer.init_transactions(30)
    consumer.subscribe([a.topic])
    status_topic = a.topic + ".status"

    done, offsets, committed = [], {}, 0
    last = time.monotonic()
    while not stop and (not a.exit_after or committed < a.exit_after):
        msg = consumer.poll(0.005)
        if msg is not None:
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    print(f"peer_worker: consumer: {msg.error()}", file=sys.stderr)
            else:
                task = decode(schemas, msg.value())
                vals = {"task_id": str(task["task_id"]), "entity_ref": task["entity_ref"],
                        "dataset": task["dataset"], "worker": a.instance,
                        "partition": str(msg.partition()), "offset": str(msg.offset()),
                        # one plan per dataset in B1, as in drover's catalog
                        "plan_fp": task["dataset"], "step_fp": STEP_FP}
                run_stmts(cur, per_task, vals)
                done.append(vals)
                offsets[msg.partition()] = msg.offset() + 1
        if done and (time.monotonic() - last) * 1000 >= a.commit_interval_ms:
            committed += commit(producer, consumer, status_topic, a, done, offsets)
            for vals in done:
                run_stmts(cur, after_commit, vals)
            done = []
            last = time.monotonic()
    if done:
        committed += commit(producer, consumer, status_topic, a, done, offsets)
        for vals in done:
            run_stmts(cur, after_commit, vals)
    consumer.close()
    conn.close()
    print(f"peer_worker: {committed} tasks committed", file=sys.stderr)


def commit(producer, consumer, status_topic, a, done, offsets):
    producer.begin_transaction()
    for v in done:
        ev = {"task_id": v["task_id"], "dataset": v["dataset"], "status": "done",
              "partition": int(v["partition"]), "offset": int(v["offset"]),
              "worker": a.instance}
        producer.produce(status_topic, key=v["task_id"], value=json.dumps(ev))
    producer.send_offsets_to_transaction(
        [TopicPartition(a.topic, p, o) for p, o in offsets.items()],
        consumer.consumer_group_metadata())
    producer.commit_transaction()
    return len(done)


if __name__ == "__main__":
    main()
