#!/usr/bin/python3
"""drover - tests/integration/worker_check.py: what the worker tests check
on the real broker.

  worker_check.py create BROKERS TOPIC PARTITIONS   create a topic (and its
                                                    .status/.dlq), idempotent
  worker_check.py events BROKERS TOPIC              every committed record of
                                                    TOPIC (read_committed), one
                                                    JSON value per line
  worker_check.py offsets BROKERS TOPIC GROUP       per partition: "p committed
                                                    end" (end = last stable)
  worker_check.py open_txn BROKERS TOPIC GROUP SECONDS
                                                    hold a transaction with
                                                    offsets for GROUP on every
                                                    partition open for SECONDS
                                                    (prints "open"), then abort
"""
import json
import sys

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create(brokers, topic, parts):
    admin = AdminClient({"bootstrap.servers": brokers})
    topics = [NewTopic(topic, int(parts), 1),
              NewTopic(topic + ".status", 3, 1),
              NewTopic(topic + ".dlq", 3, 1)]
    for name, fut in admin.create_topics(topics).items():
        try:
            fut.result(30)
        except Exception as e:  # already exists is fine
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise


def consumer(brokers, group):
    return Consumer({"bootstrap.servers": brokers, "group.id": group,
                     "isolation.level": "read_committed",
                     "enable.auto.commit": False,
                     "auto.offset.reset": "earliest"})


def partitions(c, topic):
    md = c.list_topics(topic, timeout=30)
    return sorted(md.topics[topic].partitions.keys())


def events(brokers, topic):
    c = consumer(brokers, "drover-check-unused")
    tps = []
    ends = {}
    for p in partitions(c, topic):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        ends[p] = hi
        tps.append(TopicPartition(topic, p, 0 if lo <= 0 else lo))
    c.assign(tps)
    done = {p for p, hi in ends.items() if hi == 0}
    while len(done) < len(ends):
        m = c.poll(5.0)
        if m is None:
            # positions reach the end also through aborted/control records
            for tp in c.position([TopicPartition(topic, p) for p in ends]):
                if tp.offset >= ends[tp.partition]:
                    done.add(tp.partition)
            continue
        if m.error():
            continue
        print(m.value().decode())
        if m.offset() + 1 >= ends[m.partition()]:
            done.add(m.partition())
    c.close()


def dlq(brokers, topic):
    """Every committed record of a DLQ topic as a JSON line: key, value
    length and headers (marker records included), in partition and offset
    order (not the order of arrival, which differs from read to read)."""
    c = consumer(brokers, "drover-check-unused")
    tps, ends = [], {}
    for p in partitions(c, topic):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        ends[p] = hi
        tps.append(TopicPartition(topic, p, 0 if lo <= 0 else lo))
    c.assign(tps)
    done = {p for p, hi in ends.items() if hi == 0}
    out = []
    while len(done) < len(ends):
        m = c.poll(5.0)
        if m is None:
            for tp in c.position([TopicPartition(topic, p) for p in ends]):
                if tp.offset >= ends[tp.partition]:
                    done.add(tp.partition)
            continue
        if m.error():
            continue
        hdrs = {k: (v.decode() if v is not None else None)
                for k, v in (m.headers() or [])}
        out.append((m.partition(), m.offset(), json.dumps(
            {"key": (m.key() or b"").decode("utf-8", "replace"),
             "len": len(m.value() or b""), "headers": hdrs})))
        if m.offset() + 1 >= ends[m.partition()]:
            done.add(m.partition())
    c.close()
    for _, _, line in sorted(out):
        print(line)


def produce(brokers, topic, key, path):
    """One record whose value is the bytes of file `path`."""
    from confluent_kafka import Producer
    # murmur2 like Java producers and drover itself (README)
    p = Producer({"bootstrap.servers": brokers,
                  "partitioner": "murmur2_random"})
    p.produce(topic, key=key.encode(), value=open(path, "rb").read())
    if p.flush(30) != 0:
        raise SystemExit("produce: not delivered")


def offsets(brokers, topic, group):
    c = consumer(brokers, group)
    tps = [TopicPartition(topic, p) for p in partitions(c, topic)]
    for tp in c.committed(tps, timeout=30):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, tp.partition),
                                         timeout=30)
        print(tp.partition, tp.offset, hi)
    c.close()


def open_txn(brokers, topic, group, seconds):
    """A transaction that sends offsets for `group` (its committed ones:
    the offsets do not matter, the open transaction does) and stays open,
    as a worker's does when it is killed -9 inside it: until it ends, the
    group coordinator answers UNSTABLE_OFFSET_COMMIT for those partitions
    to a read_committed consumer asking where to start."""
    import time
    from confluent_kafka import Producer
    c = consumer(brokers, group)
    tps = c.committed([TopicPartition(topic, p)
                       for p in partitions(c, topic)], timeout=30)
    p = Producer({"bootstrap.servers": brokers,
                  "transactional.id": "drv-test-open-" + group,
                  "transaction.timeout.ms": int(seconds) * 1000 + 60000})
    p.init_transactions(30)
    p.begin_transaction()
    p.send_offsets_to_transaction(tps, c.consumer_group_metadata(), 30)
    print("open", flush=True)
    time.sleep(float(seconds))
    p.abort_transaction(30)
    c.close()


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"create": create, "events": events, "offsets": offsets, "dlq": dlq,
     "produce": produce, "open_txn": open_txn}[cmd](*args)
