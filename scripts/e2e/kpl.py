"""A minimal encoder (and decoder, for its own check) of the KPL aggregated record format.

An aggregated Kinesis record is:

    F3 89 9A C2                       4 magic bytes
    AggregatedRecord (protobuf)       see below
    MD5(protobuf bytes)               16 bytes

    message AggregatedRecord {
      repeated string partition_key_table    = 1;
      repeated string explicit_hash_key_table = 2;
      repeated Record records                = 3;
    }
    message Record {
      required uint64 partition_key_index     = 1;
      optional uint64 explicit_hash_key_index = 2;
      required bytes  data                    = 3;
      repeated Tag    tags                    = 4;   (not used here)
    }

The protobuf is written by hand (varints and length-delimited fields only), no library.

The KCL de-aggregates such a record into its user records, which share the Kinesis record's
sequence number and get sub-sequence numbers 0..n-1. It drops user records whose hash key
(MD5 of their partition key, or their explicit hash key) falls outside the shard's hash range, so
the suite gives every user record of an aggregate the partition key of the Kinesis record itself.
"""

import hashlib

MAGIC = bytes([0xF3, 0x89, 0x9A, 0xC2])

WIRE_VARINT = 0
WIRE_BYTES = 2


def varint(value):
    """Base-128 varint of a non-negative integer (low groups first, high bit = more follows)."""
    if value < 0:
        raise ValueError("varints here are unsigned")
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def key(field, wire_type):
    return varint((field << 3) | wire_type)


def bytes_field(field, payload):
    return key(field, WIRE_BYTES) + varint(len(payload)) + payload


def uint_field(field, value):
    return key(field, WIRE_VARINT) + varint(value)


def encode_record(partition_key_index, data, explicit_hash_key_index=None):
    body = uint_field(1, partition_key_index)
    if explicit_hash_key_index is not None:
        body += uint_field(2, explicit_hash_key_index)
    return body + bytes_field(3, data)


def aggregate(partition_key, payloads):
    """One aggregated record holding `payloads` (bytes), all under `partition_key`."""
    body = bytes_field(1, partition_key.encode())
    for data in payloads:
        body += bytes_field(3, encode_record(0, data))
    return MAGIC + body + hashlib.md5(body).digest()


# --- decoding, used only to check the encoder ---------------------------------------------


def _read_varint(buf, pos):
    shift = value = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf):
    pos = 0
    while pos < len(buf):
        tag, pos = _read_varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == WIRE_VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire == WIRE_BYTES:
            length, pos = _read_varint(buf, pos)
            value, pos = bytes(buf[pos : pos + length]), pos + length
        else:
            raise ValueError(f"wire type {wire} not used by the KPL format")
        yield field, value


def decode(blob):
    """[(partition key, data)] of an aggregated record; raises if it is not one."""
    if blob[:4] != MAGIC or len(blob) < 20:
        raise ValueError("no KPL magic")
    body, digest = blob[4:-16], blob[-16:]
    if hashlib.md5(body).digest() != digest:
        raise ValueError("MD5 mismatch")
    keys, records = [], []
    for field, value in _fields(body):
        if field == 1:
            keys.append(value.decode())
        elif field == 3:
            record = dict(_fields(value))
            records.append((keys[record[1]], record[3]))
    return records


def self_check():
    """Known vectors: 300 -> AC 02 (protobuf docs), and a round trip."""
    assert varint(0) == b"\x00" and varint(1) == b"\x01" and varint(127) == b"\x7f"
    assert varint(300) == b"\xac\x02" and varint(2**64 - 1) == b"\xff" * 9 + b"\x01"
    blob = aggregate("pk", [b"a", b"", b"x" * 300])
    assert decode(blob) == [("pk", b"a"), ("pk", b""), ("pk", b"x" * 300)]
    return True
