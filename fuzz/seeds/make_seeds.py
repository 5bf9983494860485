#!/usr/bin/env python3
"""Writes the committed seed corpus of the fuzz targets from the kernel captures.

    python3 fuzz/seeds/make_seeds.py      (from the repository root)

Every file of codec/fixtures/ is a real capture (datagrams as received, concatenated; see
codec/fixtures/README.md). This splits them into one seed per message where a target reads
single messages, keeps whole captures where a target reads datagrams, and prefixes the fmt
seeds with option bytes. The structured targets (bpf, requests, session) take `arbitrary`
input and have no seeds. Rerunning rewrites fuzz/seeds/<target>/ from scratch.
"""
import hashlib
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "codec", "fixtures")
SEEDS = os.path.join(ROOT, "fuzz", "seeds")
PER_FILE = 4  # distinct messages kept per capture and kind


def messages(data):
    """(kind, bytes) of each message; the captures are little-endian."""
    pos = 0
    while pos + 16 <= len(data):
        length, kind = struct.unpack_from("<IH", data, pos)
        if length < 16 or pos + length > len(data):
            break
        yield kind, data[pos : pos + length]
        pos += (length + 3) & ~3


def category(kind):
    if kind < 0x10:
        return "control"
    subsys, msg = kind >> 8, kind & 0xFF
    if subsys == 1 and msg in (0, 2):
        return "ct"
    if subsys == 2 and msg in (0, 2):
        return "exp"
    if (subsys, msg) in ((1, 3), (1, 4), (1, 5), (2, 3)):
        return "stats"
    return "other"


# fmt option prefixes (see fuzz_targets/fmt.rs, Options::read): style, option bits, origin,
# label-map length, now, UTC offset.
LABELS = b"0 zero\n5 five\n64 big\n"
NOW = struct.pack("<Q", 1_764_237_208)
PREFIXES = [
    bytes([0, 0b0000_0011, 0, 0]) + NOW + struct.pack("<i", 0),
    bytes([1, 0b0000_0100, 1, 0]) + NOW + struct.pack("<i", 3600),
    bytes([2, 0b0001_0111, 2, 0]) + NOW + struct.pack("<i", -18000),
    bytes([0, 0b1110_1111, 3, len(LABELS)]) + NOW + struct.pack("<i", 19800),
]


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    for t in ("nl_walk", "ctdecode", "ct_view", "exp_view", "stats", "control", "fmt", "roundtrip"):
        shutil.rmtree(os.path.join(SEEDS, t), ignore_errors=True)
    for fname in sorted(os.listdir(FIXTURES)):
        if not fname.endswith(".bin"):
            continue
        stem = fname[:-4]
        data = open(os.path.join(FIXTURES, fname), "rb").read()
        msgs = list(messages(data))
        whole = data if len(msgs) <= 64 else b"".join(m + b"\0" * (-len(m) % 4) for _, m in msgs[:16])
        write("nl_walk", stem, whole)
        write("ctdecode", stem, whole)
        seen = {}
        for kind, m in msgs:
            cat = category(kind)
            digest = hashlib.sha1(m).hexdigest()[:8]
            kept = seen.setdefault(cat, set())
            if digest in kept or len(kept) >= PER_FILE:
                continue
            kept.add(digest)
            name = f"{stem}-{digest}"
            if cat == "ct":
                write("ct_view", name, m)
                write("roundtrip", name, m)
            elif cat == "exp":
                write("exp_view", name, m)
                write("roundtrip", name, m)
            elif cat == "stats":
                write("stats", name, m)
            elif cat == "control":
                write("control", name, m)
            if cat in ("ct", "exp", "stats"):
                i = int(digest, 16) % len(PREFIXES)
                p = PREFIXES[i]
                label_text = LABELS if p[1] & 0x80 else b""
                write("fmt", name, p + label_text + m)


if __name__ == "__main__":
    main()
