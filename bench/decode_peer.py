#!/usr/bin/python3
"""The peer for bench_decode: Debian's python3-avro decoding the same v1
single-object records.  usage: decode_peer.py RECORDS SCHEMA REPEATS
RECORDS holds each record as a 4-byte little-endian length + bytes.
Prints the median records/s over REPEATS runs."""
import io
import statistics
import struct
import sys
import time

import avro.io
import avro.schema

path, schema_path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
schema = avro.schema.parse(open(schema_path).read())
data = open(path, "rb").read()
records, off = [], 0
while off < len(data):
    (n,) = struct.unpack_from("<I", data, off)
    records.append(data[off + 4 + 10:off + 4 + n])  # skip the 10-byte header
    off += 4 + n
reader = avro.io.DatumReader(schema)
rates = []
for _ in range(repeats):
    t0 = time.perf_counter()
    for body in records:
        reader.read(avro.io.BinaryDecoder(io.BytesIO(body)))
    rates.append(len(records) / (time.perf_counter() - t0))
print("%.0f" % statistics.median(rates))
