#!/usr/bin/env python3
"""Build common-passwords.bin for NIST SP 800-63B password screening.

Python 3 standard library only. See COMMON-PASSWORDS-SOURCE.md for the
source list, its licence and the exact steps to regenerate.

Usage:
    python3 build_common_passwords.py [-o OUT] SOURCE [SOURCE ...]

Each SOURCE is a newline-separated password list, plain or gzip-compressed
(detected by the gzip magic bytes, not by file name).

Normalisation of each line:
  * strip the trailing "\\n" and any trailing "\\r" (nothing else is stripped);
  * decode as UTF-8 (lines that are not valid UTF-8 are skipped and counted);
  * skip empty lines;
  * lowercase with Python's str.lower() (Unicode lowercase);
  * deduplicate.

Output format (all integers big-endian):
  bytes 0..8   ASCII "PVPWL001"
  bytes 8..12  u32 N, number of entries
  then N u32   sorted ascending, no duplicates; each is the first 4 bytes of
               SHA-256(utf8(lowercased password)) read as a big-endian u32.
"""

import argparse
import bisect
import gzip
import hashlib
import os
import struct
import sys

MAGIC = b"PVPWL001"
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "common-passwords.bin")


def read_source(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw


def normalise_lines(raw, stats):
    for line in raw.split(b"\n"):
        line = line.rstrip(b"\r")
        if not line:
            stats["empty"] += 1
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            stats["bad_utf8"] += 1
            continue
        text = text.lower()
        if len(text) < 1:
            stats["empty"] += 1
            continue
        stats["lines"] += 1
        yield text


def prefix_u32(password):
    return struct.unpack(">I", hashlib.sha256(password.encode("utf-8")).digest()[:4])[0]


def contains(values_sorted, password):
    v = prefix_u32(password.lower())
    i = bisect.bisect_left(values_sorted, v)
    return i < len(values_sorted) and values_sorted[i] == v


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sources", nargs="+", help="password list file(s), plain or .gz")
    ap.add_argument("-o", "--output", default=DEFAULT_OUT, help="output .bin (default: %(default)s)")
    args = ap.parse_args(argv)

    passwords = set()
    for src in args.sources:
        stats = {"lines": 0, "empty": 0, "bad_utf8": 0}
        raw = read_source(src)
        before = len(passwords)
        passwords.update(normalise_lines(raw, stats))
        print(
            f"{src}: sha256(file)={hashlib.sha256(open(src, 'rb').read()).hexdigest()} "
            f"non-empty lines={stats['lines']} empty={stats['empty']} "
            f"skipped non-UTF-8={stats['bad_utf8']} new distinct={len(passwords) - before}",
            file=sys.stderr,
        )

    values = sorted({prefix_u32(p) for p in passwords})
    n = len(values)
    out = bytearray(MAGIC)
    out += struct.pack(">I", n)
    out += struct.pack(f">{n}I", *values)
    tmp = args.output + ".tmp"
    with open(tmp, "wb") as f:
        f.write(out)
    os.replace(tmp, args.output)

    print(f"distinct lowercased passwords: {len(passwords)}", file=sys.stderr)
    print(f"distinct 32-bit hash prefixes (N): {n} (collisions removed: {len(passwords) - n})", file=sys.stderr)
    print(f"wrote {args.output}: {len(out)} bytes, sha256={hashlib.sha256(out).hexdigest()}", file=sys.stderr)
    for probe in ("password", "123456", "qwerty", "iloveyou"):
        print(f"  contains {probe!r}: {contains(values, probe)}", file=sys.stderr)
    missing = [p for p in ("password", "123456", "qwerty", "iloveyou") if not contains(values, p)]
    if missing:
        print(f"ERROR: sanity probes missing: {missing}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
