#!/usr/bin/python3
"""Fuzz the decoder of segment.interactions (recommender_fit's partial state,
which Citus ships as text and parallel query as bytes): valid states from
bigint, text and segment-carrying fits are mutated (bit flips, truncations,
inserted bytes, counts and lengths overwritten) and fed back through the text
form and the binary form.  Every outcome must be a valid state or a clean
22P03 / 22P02 error, and the server must stay up.
"""
import base64
import os
import random
import struct
import sys

import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from segtest import cleanup, fresh_database, report  # noqa: E402

DB = f"segtest_fuzzp_{os.getpid()}"
failures = []


def main():
    admin, conn, cur = fresh_database(DB)
    try:
        cur.execute("""CREATE AGGREGATE rec_partial(anyelement, anycompatible, float8, int, jsonb) (
                         SFUNC = segment.recommender_fit_transfn, STYPE = segment.interactions)""")
        cur.execute("""CREATE AGGREGATE rec_partial(anyelement, anycompatible, float8, jsonb) (
                         SFUNC = segment.recommender_fit_transfn, STYPE = segment.interactions)""")
        seeds = []
        for q in ("""SELECT segment.interactions_send(rec_partial(u, 'item' || (u * 7 % 5), u::float8, '{"seed": 1}'))
                     FROM generate_series(1, 12) u""",
                  """SELECT segment.interactions_send(rec_partial('user' || u, u % 4, 1.5, 1 + u % 3, '{}'))
                     FROM generate_series(1, 9) u""",
                  """SELECT segment.interactions_send(rec_partial(u, u + 1, 0, NULL::jsonb)) FROM generate_series(1, 5) u"""):
            cur.execute(q)
            seeds.append(bytes(cur.fetchone()[0]))
        rng = random.Random(7)
        outcomes = {"ok": 0, "22P03": 0, "22P02": 0}
        trials = 0
        for seed in seeds:
            for _ in range(400):
                b = bytearray(seed)
                kind = rng.randrange(5)
                if kind == 0:
                    p = rng.randrange(len(b))
                    b[p] ^= 1 << rng.randrange(8)
                elif kind == 1:
                    b = b[:rng.randrange(len(b))]
                elif kind == 2:
                    p = rng.randrange(len(b))
                    b[p:p] = bytes([rng.randrange(256)])
                elif kind == 3 and len(b) > 8:
                    p = rng.randrange(len(b) - 8)
                    b[p:p + 8] = struct.pack(">q", rng.choice([-1, 0, 1, 2**31, 2**62, 7]))
                else:
                    p = rng.randrange(len(b) - 4)
                    b[p:p + 4] = struct.pack(">i", rng.choice([-1, 0, 3, 2**31 - 1, 100000]))
                trials += 1
                text = "segp1:" + base64.b64encode(bytes(b)).decode()
                try:
                    cur.execute("SELECT segment.interactions_send(%s::segment.interactions)", (text,))
                    again = bytes(cur.fetchone()[0])
                    outcomes["ok"] += 1
                    cur.execute("SELECT segment.interactions_send(%s::segment.interactions)",
                                ("segp1:" + base64.b64encode(again).decode(),))
                    if bytes(cur.fetchone()[0]) != again:
                        failures.append("round trip")
                except psycopg2.Error as e:
                    if e.pgcode not in outcomes:
                        print(f"unexpected {e.pgcode}: {e.pgerror.strip()[:200]}")
                        failures.append(e.pgcode)
                        if conn.closed:
                            raise
                    else:
                        outcomes[e.pgcode] += 1
        cur.execute("SELECT 1")
        ok = not failures
        print(f"{'ok  ' if ok else 'FAIL'} {trials} mutated states: {outcomes['ok']} accepted and round-tripped, "
              f"{outcomes['22P03']} rejected 22P03, {outcomes['22P02']} 22P02; server alive")
    finally:
        cleanup(conn, admin, DB)
    report(failures)


if __name__ == "__main__":
    main()
