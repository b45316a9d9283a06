#!/usr/bin/python3
"""Interop with Debian's python3-avro (an implementation nobody here wrote).

usage: schema_interop.py DIR REGISTRY_URL SCHEMA_DIR [SUBJECT]

SUBJECT (default interop-value) is where python3-avro's writer schemas are
registered.

1. Reads DIR/drover-v{1,2}-{so,cf}.bin (written by drover's encoder),
   decodes them with python3-avro (writer schema found by fingerprint or
   fetched from the registry by id) and checks every field.
2. Writes DIR/python-v{1,2}-{so,cf}.bin with python3-avro, plus the
   values it wrote as DIR/python-v{1,2}.json, for drover to decode.

python3-avro 1.11.1's Schema.canonical_form keeps logical types as
{"type":"long"} where the specification's Parsing Canonical Form says
"long", so the fingerprint here is computed from the schema with
logicalType attributes stripped, per the specification.
"""
import io
import json
import struct
import sys
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

import avro.io
import avro.schema

DIR, REG, SCHEMAS = sys.argv[1], sys.argv[2], sys.argv[3]
SUBJECT = sys.argv[4] if len(sys.argv) > 4 else "interop-value"
EMPTY = 0xC15D213AA4D7A795
TABLE = []
for i in range(256):
    fp = i
    for _ in range(8):
        fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
    TABLE.append(fp)


def crc64(data):
    fp = EMPTY
    for b in data:
        fp = (fp >> 8) ^ TABLE[(fp ^ b) & 0xFF]
    return fp


def strip_logical(j):
    if isinstance(j, dict):
        return {k: strip_logical(v) for k, v in j.items() if k != "logicalType"}
    if isinstance(j, list):
        return [strip_logical(v) for v in j]
    return j


def load(v):
    text = open("%s/MigrationTask.v%d.avsc" % (SCHEMAS, v)).read()
    canon = avro.schema.parse(json.dumps(strip_logical(json.loads(text))))
    return text, avro.schema.parse(text), crc64(canon.canonical_form.encode())


texts, parsed, fps = {}, {}, {}
for v in (1, 2):
    texts[v], parsed[v], fps[v] = load(v)


def register(v):
    req = urllib.request.Request(
        "%s/subjects/%s/versions" % (REG, urllib.parse.quote(SUBJECT, safe="")),
        data=json.dumps({"schema": texts[v]}).encode(),
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    return json.load(urllib.request.urlopen(req))["id"]


def fetch(sid):
    with urllib.request.urlopen("%s/schemas/ids/%d" % (REG, sid)) as r:
        return avro.schema.parse(json.load(r)["schema"])


EXPECT = {
    "task_id": "6f1c2b1e-7d4a-4a53-9a55-2b8f3c1d0e9f",
    "entity_ref": "component:default/customer-dataset-v2-migration",
    "dataset": "customer",
    "requested_at": 1764057600123,
    "requested_by": "alice@example.com",
    "dry_run": True,
    "params": {"tenant": "acme", "region": "eu-west-1 \u00e9"},
    "priority": 7,
    "replay_of": "11111111-2222-4333-8444-555555555555",
}
failures = 0
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_ms(t):
    """python3-avro maps timestamp-millis to datetime both ways."""
    return t if isinstance(t, int) else (t - EPOCH) // timedelta(milliseconds=1)


def check_drover(v, framing):
    global failures
    data = open("%s/drover-v%d-%s.bin" % (DIR, v, framing), "rb").read()
    if framing == "so":
        assert data[:2] == b"\xc3\x01", "bad single-object magic"
        fp = struct.unpack("<Q", data[2:10])[0]
        writer = [parsed[k] for k in (1, 2) if fps[k] == fp]
        assert writer, "fingerprint %016x matches no schema" % fp
        writer, body = writer[0], data[10:]
    else:
        assert data[0] == 0, "bad confluent magic"
        writer, body = fetch(struct.unpack(">i", data[1:5])[0]), data[5:]
    dec = avro.io.BinaryDecoder(io.BytesIO(body))
    got = avro.io.DatumReader(writer, parsed[2]).read(dec)
    got["requested_at"] = to_ms(got["requested_at"])
    want = dict(EXPECT)
    if v == 1:
        want["priority"], want["replay_of"] = 0, None
    if got != want:
        print("drover v%d %s decoded by python3-avro: got %r want %r"
              % (v, framing, got, want))
        failures += 1


def write_python(v):
    val = dict(EXPECT)
    val["task_id"] = "0b7e4e0e-1111-4222-8333-%012d" % v
    val["params"] = {"p%d" % i: "value %d" % i for i in range(3)}
    if v == 1:
        del val["priority"], val["replay_of"]
    buf = io.BytesIO()
    val["requested_at"] = EPOCH + timedelta(milliseconds=EXPECT["requested_at"])
    avro.io.DatumWriter(parsed[v]).write(val, avro.io.BinaryEncoder(buf))
    val["requested_at"] = EXPECT["requested_at"]
    body = buf.getvalue()
    with open("%s/python-v%d-so.bin" % (DIR, v), "wb") as f:
        f.write(b"\xc3\x01" + struct.pack("<Q", fps[v]) + body)
    with open("%s/python-v%d-cf.bin" % (DIR, v), "wb") as f:
        f.write(b"\x00" + struct.pack(">i", register(v)) + body)
    with open("%s/python-v%d.json" % (DIR, v), "w") as f:
        json.dump(val, f)


for v in (1, 2):
    for framing in ("so", "cf"):
        check_drover(v, framing)
    write_python(v)
sys.exit(1 if failures else 0)
