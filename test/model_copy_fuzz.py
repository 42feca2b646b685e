#!/usr/bin/python3
"""Feed hundreds of randomly corrupted segment.model values through
COPY ... FROM STDIN (FORMAT binary): each must load as a valid model (that
round-trips bit for bit) or fail with SQLSTATE 22P03; the server must stay up.

Only the model field is corrupted: the COPY framing around it is rebuilt for
every case, so the extension's receive function sees the damage.
"""
import io
import os
import random
import struct
import sys

import psycopg2

DB = f"segtest_fuzz_{os.getpid()}"
CASES = 800


def copy_file(payload):
    out = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    out += struct.pack(">hi", 1, len(payload)) + payload
    return out + struct.pack(">h", -1)


def mutate(rng, w):
    b = bytearray(w)
    kind = rng.randrange(9)
    if kind == 0:  # bit flips
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # random bytes overwritten
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == 2:  # truncation anywhere
        b = b[:rng.randrange(len(b))]
    elif kind == 3:  # garbage appended
        b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == 4:  # a 32-bit count field set to an extreme or off-by-one value
        pos = rng.randrange(0, max(1, len(b) - 4)) & ~3
        val = rng.choice([0, 1, -1, 2**31 - 1, -2**31, 100001, 100000000,
                          struct.unpack(">i", bytes(b[pos:pos + 4]))[0] + rng.choice([-1, 1])])
        b[pos:pos + 4] = struct.pack(">i", val)
    elif kind == 5:  # NaN or infinity written over 8 aligned bytes of payload
        if len(b) > 48:
            pos = rng.randrange(40, len(b) - 8)
            b[pos:pos + 8] = struct.pack(">d", rng.choice([float("nan"), float("inf"), -float("inf")]))
    elif kind == 6:  # header fields: magic, format, flags, kind, section count
        field = rng.randrange(5)
        spans = [(0, 4), (4, 6), (6, 8), (8, 12), (12, 16)]
        a, z = spans[field]
        b[a:z] = bytes(rng.randrange(256) for _ in range(z - a))
    elif kind == 7:  # a chunk duplicated (repeated/out-of-order sections)
        a = rng.randrange(16, len(b))
        z = min(len(b), a + rng.randint(4, 64))
        b[a:a] = b[a:z]
    else:  # a chunk removed
        a = rng.randrange(16, len(b))
        del b[a:a + rng.randint(1, 32)]
    return bytes(b)


def main():
    rng = random.Random(20261122)
    admin = psycopg2.connect(dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {DB}")
    outcome = {"accepted": 0, "22P03": 0}
    bad = []
    try:
        conn = psycopg2.connect(dbname=DB)
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("CREATE EXTENSION segment")
        cur.execute("CREATE TABLE t (m segment.model)")
        seeds = []
        for q in ["segment.kmeans_model('{{1,2},{3,4}}')",
                  "segment.kmeans_model('{{0.5,-1,2},{2,3,4},{7,7,7}}', '{a,b,c}', '{1,2,3}', '{1,1,2}', '{\"note\": \"x\"}')",
                  "segment.kmeans_model(array_fill(0.25::float8, ARRAY[20, 16]), NULL, array_fill(0::float8, ARRAY[16]), array_fill(3::float8, ARRAY[16]))",
                  "segment.kmeans_model('{{1}}', '{only}')"]:
            cur.execute(f"SELECT segment.model_send({q})")
            seeds.append(bytes(cur.fetchone()[0]))
        for i in range(CASES):
            payload = mutate(rng, rng.choice(seeds))
            cur.execute("TRUNCATE t")
            try:
                cur.copy_expert("COPY t (m) FROM STDIN (FORMAT binary)", io.BytesIO(copy_file(payload)))
            except psycopg2.Error as e:
                if e.pgcode == "22P03":
                    outcome["22P03"] += 1
                else:
                    bad.append((i, e.pgcode, str(e).splitlines()[0], payload.hex()))
                continue
            # accepted: it must be a usable model that round-trips exactly
            cur.execute("SELECT segment.model_send(m), segment.model_info(m) IS NOT NULL FROM t")
            back, info = cur.fetchone()
            if bytes(back) != payload or not info:
                bad.append((i, "accepted", "does not round-trip", payload.hex()))
            else:
                outcome["accepted"] += 1
        # deliberate cases with known messages
        w = seeds[0]
        for name, payload, words in [
                ("truncated", w[:-3], "truncated"),
                ("wrong magic", b"XXXX" + w[4:], "wrong magic"),
                ("format 9", w[:4] + b"\x00\x09" + w[6:], "unknown format version 9"),
                ("trailing", w + b"\x00", "trailing bytes"),
                ("NaN", w[:40] + struct.pack(">d", float("nan")) + w[48:], "non-finite")]:
            try:
                cur.copy_expert("COPY t (m) FROM STDIN (FORMAT binary)", io.BytesIO(copy_file(payload)))
                bad.append((name, "accepted", "should have failed", payload.hex()))
            except psycopg2.Error as e:
                if e.pgcode != "22P03" or words not in str(e):
                    bad.append((name, e.pgcode, str(e).splitlines()[0], payload.hex()))
                else:
                    print(f"ok   {name}: {str(e).splitlines()[0]}")
        conn.close()
        alive = psycopg2.connect(dbname=DB)
        alive.cursor().execute("SELECT 1")
        alive.close()
        print(f"{CASES} corrupted models: {outcome['accepted']} valid models accepted, "
              f"{outcome['22P03']} rejected with 22P03, {len(bad)} other outcomes; server alive")
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")
    for b in bad[:10]:
        print("FAIL", b)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
