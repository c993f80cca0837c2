"""A small MaxMind DB (MMDB) writer, for the tests' sample database in that format: the
search tree of an IPv4 database with 24-bit records, the data section and the metadata,
as the MaxMind DB File Format Specification 2.0 lays them out. Enough for a few networks
that do not nest; the reader under test is MaxMind's own `maxminddb`."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

_METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"


def _control(kind: int, size: int) -> bytes:
    extended = kind > 7
    head = (0 if extended else kind) << 5
    if size < 29:
        out = bytes([head | size])
        tail = b""
    elif size < 285:
        out, tail = bytes([head | 29]), bytes([size - 29])
    elif size < 65821:
        out, tail = bytes([head | 30]), struct.pack(">H", size - 285)
    else:
        out, tail = bytes([head | 31]), struct.pack(">I", size - 65821)[1:]
    if extended:
        out += bytes([kind - 7])
    return out + tail


def _unsigned(kind: int, value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return _control(kind, len(raw)) + raw


class Unsigned(int):
    """An unsigned integer of a given type: 5 (uint16), 6 (uint32) or 9 (uint64), as the
    metadata's fields must be."""

    kind: int

    def __new__(cls, value: int, kind: int) -> Unsigned:
        made = super().__new__(cls, value)
        made.kind = kind
        return made


def encode(value: Any) -> bytes:
    """One value in the data section's encoding."""
    if isinstance(value, Unsigned):
        return _unsigned(value.kind, int(value))
    if isinstance(value, bool):
        return _control(14, int(value))
    if isinstance(value, str):
        raw = value.encode()
        return _control(2, len(raw)) + raw
    if isinstance(value, float):
        return _control(3, 8) + struct.pack(">d", value)
    if isinstance(value, int):
        return _unsigned(6 if value < 2**32 else 9, value)
    if isinstance(value, dict):
        return _control(7, len(value)) + b"".join(encode(str(k)) + encode(v) for k, v in value.items())
    if isinstance(value, list):
        return _control(11, len(value)) + b"".join(encode(item) for item in value)
    raise TypeError(type(value))


def write_ipv4_mmdb(networks: dict[str, dict[str, Any]], *, database_type: str) -> bytes:
    """An IPv4 MMDB file holding one record per network."""
    data = b""
    offsets: dict[str, int] = {}
    for network, record in networks.items():
        offsets[network] = len(data)
        data += encode(record)
    # The trie: each node is [left, right]; an entry is a node index, None or ("data", offset).
    nodes: list[list[Any]] = [[None, None]]
    for name in networks:
        net = ipaddress.IPv4Network(name)
        bits = format(int(net.network_address), "032b")[: net.prefixlen]
        node = 0
        for depth, bit in enumerate(bits):
            side = int(bit)
            if depth == len(bits) - 1:
                nodes[node][side] = ("data", offsets[name])
            else:
                if nodes[node][side] is None:
                    nodes.append([None, None])
                    nodes[node][side] = len(nodes) - 1
                node = nodes[node][side]
    count = len(nodes)

    def record_value(entry: Any) -> int:
        if entry is None:
            return count
        if isinstance(entry, tuple):
            return count + 16 + entry[1]
        return int(entry)

    tree = b"".join(
        record_value(left).to_bytes(3, "big") + record_value(right).to_bytes(3, "big") for left, right in nodes
    )
    metadata = {
        "binary_format_major_version": Unsigned(2, 5),
        "binary_format_minor_version": Unsigned(0, 5),
        "build_epoch": Unsigned(1_764_460_800, 9),
        "database_type": database_type,
        "description": {"en": "Rapport's test database"},
        "ip_version": Unsigned(4, 5),
        "languages": ["en"],
        "node_count": Unsigned(count, 6),
        "record_size": Unsigned(24, 5),
    }
    return tree + b"\x00" * 16 + data + _METADATA_MARKER + encode(metadata)
