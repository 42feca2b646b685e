#!/usr/bin/python3
"""Fuzz segment.model's binary input (model_recv) through COPY ... (FORMAT binary).

Valid models of several shapes are built with segment.kmeans_model() and taken
apart with segment.model_send().  From them, with a fixed seed, well over 600
variants are made: bit flips, byte overwrites, truncation at every kind of
position, appended garbage, bad counts (n_sections, nrows, ncols, string
lengths), reordered / duplicated sections, non-finite doubles, bad magic /
format / flags / kind / tag / dtype, bad strings and metrics, extra sections.
Each variant is the only field of a hand-built COPY binary file, so the only
corruption is inside the model.

Every variant must either
  - be accepted, and then model_send(m) must equal the input bytes exactly,
    model_info(m) must work, m::text::model must give the same bytes and a
    k-means model must score a vector; or
  - be rejected with SQLSTATE 22P03 (invalid_binary_representation).
Anything else (a crash, a lost connection, another SQLSTATE) is a failure.
Variants whose outcome is certain (a truncation must be rejected, a valid
re-encoding accepted) are also checked for that outcome, and a handful assert
the words of the error message.  At the end the server must answer SELECT 1
on a fresh connection.
"""
import io
import math
import os
import random
import re
import struct
import sys
import time
from collections import Counter

import psycopg2
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from segtest import cleanup, report  # noqa: E402

DB = f"segtest_fuzz_{os.getpid()}"
SEED = 20240611
MAGIC = 0x5345474D
TAGS = {1: "columns", 2: "column_types", 3: "impute", 4: "categories", 5: "features",
        6: "scale_offset", 7: "scale_factor", 10: "layer_spec", 11: "layer_weights",
        12: "layer_bias", 13: "layer_batchnorm", 20: "centroids", 21: "cluster_sizes",
        22: "segment_labels", 30: "user_ids", 31: "item_ids", 32: "user_factors",
        33: "item_factors", 34: "item_neighbors", 35: "neighbor_scores", 36: "popularity",
        37: "history_ptr", 38: "history", 39: "user_segments", 40: "metrics", 41: "blend"}
F8, I32, I64, TXT = 1, 2, 3, 4
INT32_MAX, INT32_MIN = 2**31 - 1, -2**31

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg)


# ---------------------------------------------------------------- wire form

class Sec:
    """One section: header fields plus payload (raw bytes, or a list of byte strings)."""

    def __init__(self, tag, dtype, group, index, nrows, ncols, data):
        self.tag, self.dtype, self.group, self.index = tag, dtype, group, index
        self.nrows, self.ncols, self.data = nrows, ncols, data

    def copy(self, **kw):
        s = Sec(self.tag, self.dtype, self.group, self.index, self.nrows, self.ncols,
                list(self.data) if isinstance(self.data, list) else self.data)
        for k, v in kw.items():
            setattr(s, k, v)
        return s

    def values(self):
        """float8 payload as a list of floats."""
        return list(struct.unpack(f">{len(self.data) // 8}d", self.data))


class Model:
    def __init__(self, magic, fmt, flags, kind, secs, n=None):
        self.magic, self.fmt, self.flags, self.kind = magic, fmt, flags, kind
        self.secs, self.n = secs, n   # n: n_sections override (None = len(secs))

    def copy(self):
        return Model(self.magic, self.fmt, self.flags, self.kind, [s.copy() for s in self.secs], self.n)

    def find(self, tag):
        for i, s in enumerate(self.secs):
            if s.tag == tag:
                return i
        return None


def i32(v):
    return struct.pack(">i", v)


def u32(v):
    return struct.pack(">I", v & 0xFFFFFFFF)


def encode_strings(strings, lens=None):
    out = b""
    for j, s in enumerate(strings):
        out += i32(len(s) if lens is None or lens[j] is None else lens[j]) + s
    return out


def build(m):
    out = u32(m.magic) + struct.pack(">HH", m.fmt & 0xFFFF, m.flags & 0xFFFF)
    out += i32(m.kind) + i32(len(m.secs) if m.n is None else m.n)
    for s in m.secs:
        out += b"".join(i32(v) for v in (s.tag, s.dtype, s.group, s.index, s.nrows, s.ncols))
        out += encode_strings(s.data) if isinstance(s.data, list) else s.data
    return out


def parse(b):
    """Parse a valid wire form (as model_send writes it); also returns byte regions."""
    pos = 0
    regions = [("header", 0, 16)]

    def take(n):
        nonlocal pos
        r = b[pos:pos + n]
        assert len(r) == n, "short wire form"
        pos += n
        return r

    magic, fmt, flags, kind, n = struct.unpack(">IHHii", take(16))
    secs = []
    for _ in range(n):
        start = pos
        tag, dtype, group, index, nrows, ncols = struct.unpack(">6i", take(24))
        regions.append(("section header", start, pos))
        if dtype == TXT:
            strings = []
            for _ in range(nrows * ncols):
                regions.append(("string length", pos, pos + 4))
                ln = struct.unpack(">i", take(4))[0]
                regions.append(("string", pos, pos + ln))
                strings.append(take(ln))
            data = strings
        else:
            esz = 4 if dtype == I32 else 8
            regions.append(("payload", pos, pos + nrows * ncols * esz))
            data = take(nrows * ncols * esz)
        secs.append(Sec(tag, dtype, group, index, nrows, ncols, data))
    assert pos == len(b), "trailing bytes in a valid wire form"
    return Model(magic, fmt, flags, kind, secs), regions


def f8(vals):
    return b"".join(struct.pack(">d", v) for v in vals)


def copy_file(field):
    """A COPY binary file with one tuple of one field."""
    return (b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
            + struct.pack(">hi", 1, len(field)) + field + struct.pack(">h", -1))


# ---------------------------------------------------------------- server

def connect(dbname, tries=60):
    for i in range(tries):
        try:
            return psycopg2.connect(dbname=dbname)
        except psycopg2.OperationalError:
            if i == tries - 1:
                raise
            time.sleep(0.5)


def make_bases(cur, rng):
    """Valid models of different shapes, as wire bytes."""
    def mat(k, d, scale=10.0):
        return [[rng.uniform(-scale, scale) for _ in range(d)] for _ in range(k)]

    def vec(d, lo, hi):
        return [rng.uniform(lo, hi) for _ in range(d)]

    specs = [
        ("k1 d1 bare", mat(1, 1), None, None, None, None),
        ("k3 d2 names", mat(3, 2), ["age", "income"], None, None, None),
        ("k5 d4 names+scaler+metrics", mat(5, 4), ["a", "b", "c", "d"],
         vec(4, -5, 5), vec(4, 0.1, 3), '{"inertia": 12.5, "n_iter": 7, "note": "caf\u00e9"}'),
        ("k20 d16 scaler", mat(20, 16), None, vec(16, -100, 100), vec(16, 0.01, 50), None),
        ("k7 d3 metrics", mat(7, 3, 1e6), None, None, None,
         '{"a": [1, 2.5, {"b": null, "c": true}], "s": "x\\"y", "e": {}}'),
        ("k2 d16 unicode names+scaler+metrics", mat(2, 16, 1e-3),
         [f"f{j}_{'größe' if j % 3 == 0 else '年齢' if j % 3 == 1 else 'x'}" for j in range(16)],
         vec(16, -1, 1), vec(16, 1, 2), '{"k": 2}'),
        ("k12 d5 names+metrics", mat(12, 5), [f"feature_{j}" for j in range(5)], None, None,
         '{"silhouette": 0.61}'),
    ]
    bases = []
    for name, cent, names, off, fac, metrics in specs:
        cur.execute("SELECT segment.model_send(segment.kmeans_model(%s::float8[], %s::text[], "
                    "%s::float8[], %s::float8[], %s::jsonb))",
                    (cent, names, off, fac, metrics))
        b = bytes(cur.fetchone()[0])
        m, regions = parse(b)
        if build(m) != b:
            raise SystemExit(f"internal error: the test's encoder does not reproduce {name}")
        bases.append((name, b, m, regions))
    # recommenders: sorted ids (bigint and text), histories, neighbours, popularity per segment
    recs = [
        ("recommender bigint ids",
         "SELECT segment.model_send(segment.recommender_fit(u, i, w, "
         "'{\"factors\": 3, \"iterations\": 2, \"neighbors\": 2}')) "
         "FROM (VALUES (1, 10, 1.0), (1, 11, 2.0), (2, 10, 1.0), (3, 12, 4.0)) v(u, i, w)"),
        ("recommender text ids + segments",
         "SELECT segment.model_send(segment.recommender_fit(u, i, w, s, "
         "'{\"factors\": 2, \"iterations\": 2, \"neighbors\": 3}')) "
         "FROM (VALUES ('ann', '85123A', 6.0, 1), ('ann', '71053', 1.0, 1), ('bob', '85123A', 2.0, 2), "
         "('cy', '22423', 1.0, NULL), ('bob', '22423', 3.0, 2)) v(u, i, w, s)"),
    ]
    for name, q in recs:
        cur.execute(q)
        b = bytes(cur.fetchone()[0])
        m, regions = parse(b)
        if build(m) != b:
            raise SystemExit(f"internal error: the test's encoder does not reproduce {name}")
        bases.append((name, b, m, regions))
    return bases


# ---------------------------------------------------------------- cases

def gen_cases(bases, rng):
    """(category, description, bytes, expectation) with expectation accept/reject/either."""
    cases = []

    def add(cat, desc, b, expect="either"):
        cases.append((cat, desc, b, expect))

    # valid inputs as they are: must be accepted
    for name, b, m, _ in bases:
        add("valid", name, b, "accept")

    # 1. bit flips
    for i in range(160):
        name, b, _, _ = rng.choice(bases)
        ba = bytearray(b)
        nflips = rng.choice((1, 1, 1, 2, 3))
        pos = []
        for _ in range(nflips):
            p = rng.randrange(len(ba) * 8)
            ba[p // 8] ^= 1 << (p % 8)
            pos.append(p)
        add("bit flip", f"{name}: bits {pos}", bytes(ba))

    # 2. random byte overwrites
    for i in range(110):
        name, b, _, _ = rng.choice(bases)
        ba = bytearray(b)
        pos = []
        for _ in range(rng.randint(1, 4)):
            p = rng.randrange(len(ba))
            ba[p] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
            pos.append(p)
        add("byte overwrite", f"{name}: bytes {pos}", bytes(ba))

    # 3. truncation: every length of the two smallest models, region edges of all
    for name, b, _, _ in bases[:2]:
        for ln in range(len(b)):
            add("truncation", f"{name}: first {ln} of {len(b)} bytes", b[:ln], "reject")
    for name, b, _, regions in bases[2:]:
        cuts = set()
        for kind, s, e in regions:
            for c in (s, s + 1, (s + e) // 2, e - 1):
                if 0 <= c < len(b):
                    cuts.add((c, kind))
        for c, kind in sorted(cuts):
            add("truncation", f"{name}: cut at {c} of {len(b)} (in {kind})", b[:c], "reject")

    # 4. appended garbage
    for name, b, m, _ in bases:
        last = build(Model(m.magic, m.fmt, m.flags, m.kind, [m.secs[-1]]))[16:]
        for desc, tail in (("1 zero byte", b"\0"), ("1 random byte", bytes([rng.randrange(256)])),
                           ("8 random bytes", bytes(rng.randrange(256) for _ in range(8))),
                           ("24 zero bytes", bytes(24)),
                           ("a copy of the last section", last),
                           ("the whole model again", b)):
            add("appended", f"{name}: + {desc}", b + tail, "reject")

    # 5. count fields
    for name, b, m, _ in bases:
        n = len(m.secs)
        for v in sorted({n - 1, n + 1, 0, -1, 1, INT32_MAX, INT32_MIN, 100000, 100001, 0x01000000}):
            if v == n:
                continue
            mm = m.copy()
            mm.n = v
            add("n_sections", f"{name}: n_sections {n} -> {v}", build(mm), "reject")
        for si, s in enumerate(m.secs):
            for field in ("nrows", "ncols"):
                cur_v = getattr(s, field)
                for v in sorted({0, -1, cur_v - 1, cur_v + 1, 2 * cur_v, 100000000, 100000001,
                                 INT32_MAX, INT32_MIN, 0x00010000}):
                    if v == cur_v:
                        continue
                    mm = m.copy()
                    setattr(mm.secs[si], field, v)
                    add(field, f"{name}: {TAGS[s.tag]}.{field} {cur_v} -> {v}", build(mm))
            if s.dtype == TXT:
                for j in range(min(len(s.data), 3)):
                    ln = len(s.data[j])
                    for v in sorted({-1, ln - 1, ln + 1, 0, 10000, 10001, 16 * 1024 * 1024,
                                     16 * 1024 * 1024 + 1, INT32_MAX, INT32_MIN}):
                        if v == ln:
                            continue
                        lens = [None] * len(s.data)
                        lens[j] = v
                        mm = m.copy()
                        raw = build(mm)
                        # re-encode this one section with a lying length field
                        hdr = b"".join(i32(x) for x in (s.tag, s.dtype, s.group, s.index, s.nrows, s.ncols))
                        good = hdr + encode_strings(s.data)
                        bad = hdr + encode_strings(s.data, lens)
                        assert raw.count(good) == 1
                        add("string length", f"{name}: {TAGS[s.tag]} string {j} length {ln} -> {v}",
                            raw.replace(good, bad), "reject")

    # 6. section order
    for name, b, m, _ in bases:
        n = len(m.secs)
        for i in range(n - 1):
            mm = m.copy()
            mm.secs[i], mm.secs[i + 1] = mm.secs[i + 1], mm.secs[i]
            add("order", f"{name}: swap sections {i} and {i + 1}", build(mm), "reject")
        for i in range(n):
            mm = m.copy()
            mm.secs.insert(i, mm.secs[i].copy())
            add("order", f"{name}: section {i} ({TAGS[m.secs[i].tag]}) twice", build(mm), "reject")
        if n > 1:
            mm = m.copy()
            mm.secs.reverse()
            add("order", f"{name}: sections reversed", build(mm), "reject")
            mm = m.copy()
            mm.secs.insert(0, mm.secs.pop())
            add("order", f"{name}: last section first", build(mm), "reject")

    # 7. non-finite and out-of-domain doubles
    nan_bits = [("NaN", struct.pack(">Q", 0x7FF8000000000000)),
                ("-NaN", struct.pack(">Q", 0xFFF8000000000000)),
                ("signalling NaN", struct.pack(">Q", 0x7FF0000000000001)),
                ("NaN payload", struct.pack(">Q", 0x7FFFFFFFFFFFFFFF)),
                ("+Inf", struct.pack(">d", math.inf)),
                ("-Inf", struct.pack(">d", -math.inf))]
    for name, b, m, _ in bases:
        for si, s in enumerate(m.secs):
            if s.dtype != F8:
                continue
            nvals = len(s.data) // 8
            for desc, bits in nan_bits:
                for pos in sorted({0, nvals - 1, rng.randrange(nvals)}):
                    mm = m.copy()
                    d = bytearray(s.data)
                    d[8 * pos:8 * pos + 8] = bits
                    mm.secs[si].data = bytes(d)
                    add("non-finite", f"{name}: {TAGS[s.tag]}[{pos}] = {desc}", build(mm), "reject")
            special_ok = [("-0.0", -0.0), ("5e-324", 5e-324), ("DBL_MAX", sys.float_info.max),
                          ("-DBL_MAX", -sys.float_info.max), ("DBL_MIN", sys.float_info.min)]
            for desc, v in special_ok:
                pos = rng.randrange(nvals)
                mm = m.copy()
                vals = s.values()
                vals[pos] = v
                mm.secs[si].data = f8(vals)
                # scale factors must be > 0, recommender blend weights >= 0
                expect = "reject" if (s.tag == 7 and not v > 0) or (s.tag == 41 and v < 0) else "accept"
                add("special double", f"{name}: {TAGS[s.tag]}[{pos}] = {desc}", build(mm), expect)
            if s.tag == 7:   # scale factor must be > 0
                for desc, v in (("0", 0.0), ("-1", -1.0), ("-5e-324", -5e-324)):
                    mm = m.copy()
                    vals = s.values()
                    vals[0] = v
                    mm.secs[si].data = f8(vals)
                    add("scale factor", f"{name}: scale_factor[0] = {desc}", build(mm), "reject")

    # 8. header fields
    for name, b, m, _ in bases[:4]:
        for v in (0, 0x4D474553, MAGIC + 1, MAGIC ^ 0x80000000, 0x73656731, 0xFFFFFFFF):
            mm = m.copy()
            mm.magic = v
            add("magic", f"{name}: magic {v:08X}", build(mm), "reject")
        for v in (0, 2, 3, 0x0100, 0xFFFF):
            mm = m.copy()
            mm.fmt = v
            add("format", f"{name}: format {v}", build(mm), "reject")
        for v in (1, 2, 0x0100, 0x8000, 0xFFFF):
            mm = m.copy()
            mm.flags = v
            add("flags", f"{name}: flags {v:04X}", build(mm), "reject")
        for v in (0, 2, 3, 4, 5, 6, -1, 0x01000000, INT32_MIN):
            mm = m.copy()
            mm.kind = v
            add("kind", f"{name}: kind {v}", build(mm), "reject")

    # 9. section header fields
    for name, b, m, _ in bases:
        for si, s in enumerate(m.secs):
            for v in (0, 8, 9, 14, 19, 23, 29, 37, 39, 41, 99, -1, s.tag << 24):
                if v == s.tag:
                    continue
                mm = m.copy()
                mm.secs[si].tag = v
                # an unknown tag is refused; a known one is judged by the model's rules
                add("tag", f"{name}: section {si} tag {s.tag} -> {v}", build(mm),
                    "either" if v in TAGS else "reject")
            for v in sorted({0, 5, -1, 1000, F8, I32, I64, TXT} - {s.dtype}):
                mm = m.copy()
                mm.secs[si].dtype = v
                add("dtype", f"{name}: {TAGS[s.tag]} dtype {s.dtype} -> {v}", build(mm), "reject")
            for field in ("group", "index"):
                for v in (1, -1, INT32_MAX):
                    mm = m.copy()
                    setattr(mm.secs[si], field, v)
                    add(field, f"{name}: {TAGS[s.tag]}.{field} = {v}", build(mm), "reject")

    # 10. string contents
    for name, b, m, _ in bases:
        for si, s in enumerate(m.secs):
            if s.dtype != TXT or s.tag == 40:
                continue
            bad = [("zero byte", b"a\x00b"), ("lone 0xFF", b"\xff"), ("truncated UTF-8", b"x\xc3"),
                   ("overlong UTF-8", b"\xc0\xaf"), ("UTF-16 surrogate", b"\xed\xa0\x80"),
                   ("10001 bytes", b"n" * 10001)]
            good = [("multibyte", "ü€😀".encode()), ("10000 bytes", b"n" * 10000),
                    ("control chars", b"\t\x01\x1f\"\\"), ("json-ish", b'{"x": [1]}')]
            for desc, v in bad:
                mm = m.copy()
                mm.secs[si].data[0] = v
                add("string", f"{name}: {TAGS[s.tag]}[0] = {desc}", build(mm), "reject")
            for desc, v in good:
                mm = m.copy()
                mm.secs[si].data[-1] = v
                # recommender ids must stay ascending: a new last id may break that
                add("string", f"{name}: {TAGS[s.tag]}[-1] = {desc}", build(mm),
                    "either" if s.tag in (30, 31) else "accept")
            mm = m.copy()
            mm.secs[si].data[0] = b""
            add("string", f"{name}: {TAGS[s.tag]}[0] empty", build(mm))
    metrics_cases = [
        (b"[]", "reject"), (b"[1, 2]", "reject"), (b"null", "reject"), (b"42", "reject"),
        (b'"s"', "reject"), (b"{", "reject"), (b'{"a": }', "reject"), (b'{"a": 1,}', "reject"),
        (b'{"a": 1} x', "reject"), (b"", "reject"), (b'{"a": "\\u0000"}', "reject"),
        (b'{"a": "\\ud800"}', "reject"), (b'{"a": 1} {"b": 2}', "reject"), (b"\xff{}", "reject"),
        (b'{"a": "\xff"}', "reject"), (b" {}", "either"),
        (b"{}", "accept"), (b'{"a": 1, "a": 2}', "accept"), (b'{"a": [[], {}, [{"b": [null]}]]}', "accept"),
        (b'{"a": -0.0, "b": 1e308, "c": 1E-300}', "accept"), (b'{"\\u00e9": "\\ud83d\\ude00"}', "accept"),
        (b'{"a": 1} ', "accept"), (b'{"a": 1e1000}', "reject"), (b'{"a": [1e-400]}', "reject"),
    ]
    # Metric numbers must be finite float8 (1e1000 is rejected though numeric
    # could hold it).  Valid JSON that jsonb cannot hold (numbers beyond numeric's
    # range) must be rejected by recv (22P03) or be usable afterwards, never
    # accepted and then break model_info().  Deep nesting is valid JSON too:
    # accepted, or 22P03.
    # Tried on one model only, to keep a failure's report short.
    probes = [(b'{"a": 1e999999}', "either"), (b'{"a": -1e131072}', "either"),
              (b'{"a": 1e-999999}', "either"),
              (b'{"a": ' + b"[" * 20000 + b"]" * 20000 + b"}", "either")]
    first_with_metrics = True
    for name, b, m, _ in bases:
        si = m.find(40)
        if si is None:
            continue
        for v, expect in metrics_cases + (probes if first_with_metrics else []):
            mm = m.copy()
            mm.secs[si].data = [v]
            add("metrics", f"{name}: metrics = {v[:40]!r}{'...' if len(v) > 40 else ''}", build(mm), expect)
        first_with_metrics = False

    # 11. extra sections (cross-section rules), for the k-means bases
    for name, b, m, _ in bases:
        ci = m.find(20)
        if ci is None:
            continue
        k, d = m.secs[ci].nrows, m.secs[ci].ncols

        def with_sec(sec):
            mm = m.copy()
            mm.secs.append(sec)
            mm.secs.sort(key=lambda s: (s.tag, s.group, s.index))
            return build(mm)

        sizes = [rng.randrange(1000) for _ in range(k)]
        add("extra section", f"{name}: + cluster_sizes", with_sec(
            Sec(21, I64, 0, 0, 1, k, b"".join(struct.pack(">q", v) for v in sizes))), "accept")
        add("extra section", f"{name}: + cluster_sizes with -1", with_sec(
            Sec(21, I64, 0, 0, 1, k, b"".join(struct.pack(">q", -1 if j == k - 1 else 3) for j in range(k)))),
            "reject")
        add("extra section", f"{name}: + cluster_sizes 1 x {k + 1}", with_sec(
            Sec(21, I64, 0, 0, 1, k + 1, bytes(8 * (k + 1)))), "reject")
        add("extra section", f"{name}: + segment_labels", with_sec(
            Sec(22, TXT, 0, 0, k, 1, [f"seg {j}".encode() for j in range(k)])), "accept")
        add("extra section", f"{name}: + segment_labels {k + 1} x 1", with_sec(
            Sec(22, TXT, 0, 0, k + 1, 1, [b"x"] * (k + 1))), "reject")
        if m.find(5) is None:
            add("extra section", f"{name}: + features", with_sec(
                Sec(5, TXT, 0, 0, d, 1, [f"c{j}".encode() for j in range(d)])), "accept")
            add("extra section", f"{name}: + features {d + 1} x 1", with_sec(
                Sec(5, TXT, 0, 0, d + 1, 1, [f"c{j}".encode() for j in range(d + 1)])), "reject")
        if m.find(6) is None:
            add("extra section", f"{name}: + scale_offset only", with_sec(
                Sec(6, F8, 0, 0, 1, d, f8([0.0] * d))), "reject")
            add("extra section", f"{name}: + scale_factor only", with_sec(
                Sec(7, F8, 0, 0, 1, d, f8([1.0] * d))), "reject")
        if m.find(40) is None:
            add("extra section", f"{name}: + metrics", with_sec(Sec(40, TXT, 0, 0, 1, 1, [b'{"x": 1}'])),
                "accept")
            add("extra section", f"{name}: + metrics 2 x 1", with_sec(
                Sec(40, TXT, 0, 0, 2, 1, [b"{}", b"{}"])), "reject")
        add("extra section", f"{name}: + columns", with_sec(Sec(1, TXT, 0, 0, 1, 1, [b"x"])), "reject")
        add("extra section", f"{name}: + item_ids", with_sec(Sec(31, I64, 0, 0, 1, 1, bytes(8))), "either")
        add("extra section", f"{name}: + layer_spec", with_sec(
            Sec(10, I32, 1, 0, 1, 4, b"".join(i32(v) for v in (d, 2, 0, 0)))), "reject")
        add("extra section", f"{name}: + item_neighbors", with_sec(Sec(34, I32, 0, 0, 1, 1, i32(0))), "reject")
        mm = m.copy()
        mm.secs = [s for s in mm.secs if s.tag != 20]
        add("extra section", f"{name}: without centroids", build(mm), "reject")

    # 12. splices of two models
    for i in range(40):
        (n1, b1, _, _), (n2, b2, _, _) = rng.sample(bases, 2)
        c1, c2 = rng.randrange(len(b1)), rng.randrange(len(b2))
        add("splice", f"{n1}[:{c1}] + {n2}[{c2}:]", b1[:c1] + b2[c2:])

    # 13. pure noise and tiny inputs
    for ln in (0, 1, 4, 15, 16, 17, 40, 100):
        add("noise", f"{ln} random bytes", bytes(rng.randrange(256) for _ in range(ln)), "reject")
    add("noise", "header only, 0 sections", struct.pack(">IHHii", MAGIC, 1, 0, 1, 0), "reject")
    add("noise", "header only, 0 sections, kind 4", struct.pack(">IHHii", MAGIC, 1, 0, 4, 0), "reject")
    return cases


def deliberate_cases(bases):
    """(description, bytes, words the message must contain)."""
    name, b, m, _ = bases[2]
    out = [("truncated header", b[:10], ["truncated", "header"]),
           ("truncated payload", b[:-3], ["truncated"]),
           ("empty input", b"", ["truncated", "header"])]
    mm = m.copy()
    mm.magic = 0x12345678
    out.append(("wrong magic", build(mm), ["wrong magic number", "12345678"]))
    mm = m.copy()
    mm.fmt = 2
    out.append(("unknown format version", build(mm), ["unknown format version 2"]))
    out.append(("trailing bytes", b + b"\0\0\0", ["3 trailing bytes"]))
    ci = m.find(20)
    mm = m.copy()
    vals = mm.secs[ci].values()
    vals[1] = math.nan
    mm.secs[ci].data = f8(vals)
    out.append(("NaN centroid", build(mm), ["centroids", "non-finite"]))
    mm = m.copy()
    vals = mm.secs[ci].values()
    vals[0] = math.inf
    mm.secs[ci].data = f8(vals)
    out.append(("Inf centroid", build(mm), ["centroids", "non-finite", "position 1"]))
    mm = m.copy()
    mm.flags = 1
    out.append(("nonzero flags", build(mm), ["unknown flags"]))
    mm = m.copy()
    mm.secs[0], mm.secs[1] = mm.secs[1], mm.secs[0]
    out.append(("out of order", build(mm), ["out of order"]))
    mm = m.copy()
    mm.secs[ci].tag = 99
    out.append(("unknown tag", build(mm), ["unknown section tag 99"]))
    mm = m.copy()
    mm.n = len(mm.secs) + 1
    out.append(("n_sections + 1", build(mm), ["truncated"]))
    return out


# ---------------------------------------------------------------- running

def message_kind(msg):
    msg = re.sub(r"^invalid segment\.model: ", "", msg)
    msg = re.sub(r"(magic number |flags |expected )[0-9A-F]{4,8}\b", r"\1<hex>", msg)
    msg = re.sub(r"(?<![A-Za-z])-?\d+(\.\d+)?(e[-+]?\d+)?", "N", msg)
    names = "|".join(sorted(TAGS.values(), key=len, reverse=True))
    msg = re.sub(r"(section |truncated |\()(" + names + r")\b", r"\1<section>", msg)
    return msg


def main():
    rng = random.Random(SEED)
    admin = connect("postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {DB} TEMPLATE template0 ENCODING 'UTF8' "
                           "LC_COLLATE 'C' LC_CTYPE 'C'")
    conn = None
    try:
        conn = connect(DB)
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("CREATE EXTENSION segment")
        cur.execute("CREATE TABLE t (m segment.model)")
        bases = make_bases(cur, rng)
        print(f"{len(bases)} base models: " + ", ".join(f"{n} ({len(b)} bytes)" for n, b, _, _ in bases))
        cases = gen_cases(bases, rng)
        conn.autocommit = False

        accepted = 0
        rejected = Counter()
        by_cat = Counter()
        n_fail_before = len(failures)

        def run(b):
            """Returns ('ok', row) or ('err', pgcode, message) or ('lost', message)."""
            nonlocal conn, cur
            try:
                cur.copy_expert("COPY t(m) FROM STDIN (FORMAT binary)", io.BytesIO(copy_file(b)))
            except psycopg2.Error as e:
                if e.pgcode is None or conn.closed:
                    msg = str(e).strip()
                    try:
                        conn.close()
                    except Exception:
                        pass
                    conn = connect(DB)
                    conn.autocommit = False
                    cur = conn.cursor()
                    return ("lost", msg)
                conn.rollback()
                return ("err", e.pgcode, e.diag.message_primary or "")
            try:
                cur.execute("""
                    SELECT segment.model_send(m), segment.model_info(m)::text,
                           segment.model_send(m::text::segment.model),
                           CASE WHEN segment.model_kind(m) = 'kmeans' THEN
                               segment.kmeans_assign(array_fill(0.5::float8,
                                   ARRAY[(segment.model_info(m) ->> 'dim')::int]), m) END,
                           (segment.model_info(m) ->> 'k')::int
                    FROM t""")
                rows = cur.fetchall()
                conn.rollback()
                return ("ok", rows)
            except psycopg2.Error as e:
                if e.pgcode is None or conn.closed:
                    try:
                        conn.close()
                    except Exception:
                        pass
                    conn = connect(DB)
                    conn.autocommit = False
                    cur = conn.cursor()
                    return ("lost", "after an accepted COPY: " + str(e).strip())
                conn.rollback()
                return ("post", e.pgcode, e.diag.message_primary or "")

        for cat, desc, b, expect in cases:
            by_cat[cat] += 1
            r = run(b)
            tag = f"[{cat}] {desc} ({len(b)} bytes, hex {b[:64].hex()}{'...' if len(b) > 64 else ''})"
            if r[0] == "lost":
                fail(f"{tag}: server connection lost (crash?): {r[1]}")
            elif r[0] == "err":
                code, msg = r[1], r[2]
                if code != "22P03":
                    fail(f"{tag}: SQLSTATE {code} instead of 22P03: {msg}")
                elif expect == "accept":
                    fail(f"{tag}: expected to be accepted, rejected: {msg}")
                else:
                    rejected[message_kind(msg)] += 1
            elif r[0] == "post":
                fail(f"{tag}: accepted by COPY, but reading it back failed with SQLSTATE {r[1]}: {r[2]}")
            else:
                rows = r[1]
                if len(rows) != 1:
                    fail(f"{tag}: accepted but the table holds {len(rows)} rows")
                    continue
                sent, info, via_text, seg, k = rows[0]
                ok = True
                if bytes(sent) != b:
                    fail(f"{tag}: accepted but model_send differs: {bytes(sent).hex()}")
                    ok = False
                if bytes(via_text) != b:
                    fail(f"{tag}: accepted but m::text::model differs")
                    ok = False
                if not info or not info.startswith("{"):
                    fail(f"{tag}: accepted but model_info is {info!r}")
                    ok = False
                if seg is not None and not (1 <= seg <= k):
                    fail(f"{tag}: accepted but kmeans_assign gave {seg} for k = {k}")
                    ok = False
                if expect == "reject":
                    fail(f"{tag}: expected to be rejected, accepted")
                    ok = False
                if ok:
                    accepted += 1

        print(f"{len(cases)} corrupted/variant inputs by category: "
              + ", ".join(f"{c} {n}" for c, n in sorted(by_cat.items())))
        print(f"accepted and round-tripped: {accepted}")
        print(f"rejected with 22P03: {sum(rejected.values())}, by message kind:")
        for kind, n in rejected.most_common():
            print(f"  {n:5d}  {kind}")
        fuzz_failures = len(failures) - n_fail_before
        print(f"{'ok  ' if fuzz_failures == 0 else 'FAIL'} fuzz: {fuzz_failures} of {len(cases)} inputs misbehaved")
        if len(cases) < 600:
            fail(f"only {len(cases)} fuzz cases, wanted at least 600")

        # deliberate cases with expected messages
        for desc, b, words in deliberate_cases(bases):
            r = run(b)
            if r[0] != "err" or r[1] != "22P03":
                fail(f"message check '{desc}': expected 22P03, got {r[:3]}")
                continue
            missing = [w for w in words if w not in r[2]]
            if missing:
                fail(f"message check '{desc}': message {r[2]!r} lacks {missing}")
            else:
                print(f"ok   message check '{desc}': {r[2]}")

        # the server is still alive
        try:
            c2 = psycopg2.connect(dbname=DB)
            c2.cursor().execute("SELECT 1")
            c2.close()
            print("ok   server alive: SELECT 1 on a fresh connection")
        except Exception as e:
            fail(f"server not answering at the end: {e}")
    finally:
        cleanup(conn, admin, DB)
    report(failures)


if __name__ == "__main__":
    main()
