"""drover chaos test: an independent Avro writer for MigrationTask records.

Written from the Avro 1.11 specification only (binary encoding, Parsing
Canonical Form, CRC-64-AVRO fingerprint, single-object encoding); it shares
no code with drover, so a task drover decodes proves interoperability.
"""
import json
import struct

_EMPTY = 0xC15D213AA4D7A795
_TABLE = []
for _i in range(256):
    _fp = _i
    for _ in range(8):
        _fp = (_fp >> 1) ^ (_EMPTY & -(_fp & 1))
    _TABLE.append(_fp)

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes",
               "string"}


def crc64_avro(data):
    """The Rabin fingerprint of the Avro specification."""
    fp = _EMPTY
    for b in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ b) & 0xFF]
    return fp


def _fullname(name, namespace):
    if "." in name or not namespace:
        return name
    return namespace + "." + name


def _pcf(s, ns, seen):
    """Parsing Canonical Form of schema `s` (spec: [STRIP], [ORDER],
    [FULLNAMES], [PRIMITIVES]) as a Python string."""
    if isinstance(s, str):
        if s in _PRIMITIVES:
            return json.dumps(s)
        return json.dumps(_fullname(s, ns))
    if isinstance(s, list):
        return "[" + ",".join(_pcf(x, ns, seen) for x in s) + "]"
    t = s["type"]
    if t in _PRIMITIVES:
        return json.dumps(t)
    if t in ("record", "enum", "fixed", "error"):
        name = _fullname(s["name"], s.get("namespace", ns))
        if name in seen:
            return json.dumps(name)
        seen.add(name)
        inner_ns = name.rsplit(".", 1)[0] if "." in name else ""
        out = '{"name":%s,"type":%s' % (json.dumps(name), json.dumps(t))
        if t == "enum":
            out += ',"symbols":' + json.dumps(s["symbols"],
                                              separators=(",", ":"))
        if t == "fixed":
            out += ',"size":%d' % s["size"]
        if t in ("record", "error"):
            out += ',"fields":[' + ",".join(
                '{"name":%s,"type":%s}' % (json.dumps(f["name"]),
                                           _pcf(f["type"], inner_ns, seen))
                for f in s["fields"]) + "]"
        return out + "}"
    if t == "array":
        return '{"type":"array","items":%s}' % _pcf(s["items"], ns, seen)
    if t == "map":
        return '{"type":"map","values":%s}' % _pcf(s["values"], ns, seen)
    raise ValueError("unknown schema type %r" % (t,))


def canonical_form(schema_json):
    return _pcf(schema_json, "", set())


def _long(n):
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _string(s):
    b = s.encode("utf-8")
    return _long(len(b)) + b


class TaskWriter:
    """Encodes MigrationTask v1 records as Avro single-object encoding."""

    def __init__(self, avsc_path):
        with open(avsc_path) as f:
            schema = json.load(f)
        names = [f["name"] for f in schema["fields"]]
        if names != ["task_id", "entity_ref", "dataset", "requested_at",
                     "requested_by", "dry_run", "params"]:
            raise ValueError("unexpected MigrationTask fields: %r" % names)
        self.canonical = canonical_form(schema)
        self.fingerprint = crc64_avro(self.canonical.encode("utf-8"))
        self.header = b"\xc3\x01" + struct.pack("<Q", self.fingerprint)

    def encode(self, task_id, entity_ref, dataset, requested_at_ms,
               requested_by, params, dry_run=False):
        body = (_string(task_id) + _string(entity_ref) + _string(dataset) +
                _long(requested_at_ms) + _string(requested_by) +
                (b"\x01" if dry_run else b"\x00"))
        if params:
            body += _long(len(params))
            for k in sorted(params):
                body += _string(k) + _string(str(params[k]))
        body += _long(0)
        return self.header + body


def _selftest():
    # Vectors from the Avro specification's reference implementation.
    assert crc64_avro(b'"null"') == 0x63DD24E7CC258F8A, hex(
        crc64_avro(b'"null"'))
    assert _long(0) == b"\x00" and _long(-1) == b"\x01"
    assert _long(64) == b"\x80\x01" and _long(-65) == b"\x81\x01"


_selftest()
