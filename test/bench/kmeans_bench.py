#!/usr/bin/python3
"""k-means benchmark, measured side by side in one run (issue 3):

1. kmeans_fit (k=16) vs scikit-learn KMeans on the same data already in numpy;
2. kmeans_fit vs the analyst workflow: psycopg2 fetch + scikit-learn fit;
3. kmeans_fit (k=8, well-separated blobs) vs a plain scan of the same table;
4. backend peak memory during kmeans_fit vs the raw data size.

Data: 1,000,000 x 16, 8 Gaussian blobs; overlapping (sigma 4 around centres
drawn in [-10, 10]) for 1-2, well separated (sigma 1, centres in [-100, 100])
for 3.  Environment: PGHOST/PGPORT/PGUSER of a cluster with segment installed.
BENCH_ROWS overrides the row count (for a quick look).
"""
import io
import os
import time

import numpy as np
import psycopg2
from sklearn.cluster import KMeans

N = int(os.environ.get("BENCH_ROWS", "1000000"))
D = 16
DB = "segment_bench"


def blobs(n, sigma, spread, seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-spread, spread, size=(8, D))
    labels = rng.integers(0, 8, size=n)
    return centres[labels] + rng.normal(0.0, sigma, size=(n, D))


def load(cur, table, X):
    cur.execute(f"DROP TABLE IF EXISTS {table}")
    cur.execute(f"CREATE TABLE {table} (id int, f float8[])")
    buf = io.StringIO()
    for i, row in enumerate(X):
        buf.write(f"{i}\t{{{','.join(repr(float(v)) for v in row)}}}\n")
    buf.seek(0)
    cur.copy_expert(f"COPY {table} FROM STDIN", buf)
    cur.execute(f"VACUUM ANALYZE {table}")


def timed(fn, repeat=1):
    best = None
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        el = time.perf_counter() - t
        best = el if best is None else min(best, el)
    return best, out


def peak_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    admin = psycopg2.connect(dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")
    admin.cursor().execute(f"CREATE DATABASE {DB}")
    conn = psycopg2.connect(dbname=DB)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION segment")

    print(f"k-means benchmark: {N} rows x {D} dims, {os.cpu_count()} cores")
    X = blobs(N, 4.0, 10.0, 1)
    W = blobs(N, 1.0, 100.0, 2)
    t0 = time.perf_counter()
    load(cur, "overlap", X)
    load(cur, "separated", W)
    print(f"  loaded both tables in {time.perf_counter() - t0:.1f} s")

    opts = '{"seed": 0, "n_init": 1, "max_iter": 300, "tol": 0.0001}'
    q16 = f"SELECT segment.model_info(segment.kmeans_fit(f, 16, '{opts}')) -> 'metrics' FROM overlap"

    # 1. ours vs scikit-learn on data already in numpy
    cur.execute(q16)  # warm the cache
    t_ours, _ = timed(lambda: (cur.execute(q16), cur.fetchone())[1], repeat=2)
    cur.execute(q16)
    ours = cur.fetchone()[0]
    t_sk, km = timed(lambda: KMeans(n_clusters=16, n_init=1, max_iter=300, tol=1e-4,
                                    algorithm="lloyd", random_state=0).fit(X), repeat=2)
    print("1. kmeans_fit k=16 (overlapping blobs) vs scikit-learn KMeans (data in numpy)")
    print(f"   segment: {t_ours:.2f} s, inertia {ours['inertia']:.6g}, {ours['n_iter']} iterations")
    print(f"   sklearn: {t_sk:.2f} s, inertia {km.inertia_:.6g}, {km.n_iter_} iterations")
    print(f"   ratio segment/sklearn = {t_ours / t_sk:.2f}  (target <= 1.0)")

    # 2. ours vs fetch + fit
    def workflow():
        c2 = conn.cursor()
        c2.execute("SELECT f FROM overlap")
        A = np.array([r[0] for r in c2.fetchall()], dtype=np.float64)
        return KMeans(n_clusters=16, n_init=1, max_iter=300, tol=1e-4,
                      algorithm="lloyd", random_state=0).fit(A)
    t_wf, _ = timed(workflow)
    print("2. kmeans_fit vs psycopg2 fetch + scikit-learn fit")
    print(f"   workflow: {t_wf:.2f} s; ratio segment/workflow = {t_ours / t_wf:.2f}  (target <= 0.2)")

    # 3. k=8 on separated blobs vs a plain scan
    q8 = "SELECT segment.kmeans_fit(f, 8, '{\"seed\": 0}') IS NOT NULL FROM separated"
    qs = "SELECT sum(f[1]) FROM separated"
    cur.execute(qs)
    t_scan, _ = timed(lambda: (cur.execute(qs), cur.fetchone()), repeat=3)
    t_k8, _ = timed(lambda: (cur.execute(q8), cur.fetchone()), repeat=2)
    print("3. kmeans_fit k=8 (separated blobs) vs SELECT sum(f[1])")
    print(f"   kmeans_fit {t_k8:.2f} s, scan {t_scan:.2f} s, ratio = {t_k8 / t_scan:.2f}  (target <= 3)")

    # 4. peak memory of a fresh backend running the fit serially
    c3 = psycopg2.connect(dbname=DB)
    c3.autocommit = True
    k3 = c3.cursor()
    k3.execute("SELECT pg_backend_pid()")
    pid = k3.fetchone()[0]
    k3.execute("SET max_parallel_workers_per_gather = 0")
    # touch the table's shared buffers first, so the peak below is private memory
    k3.execute("SELECT sum(f[1]) FROM overlap")
    k3.fetchone()
    base = peak_kb(pid)
    k3.execute(q16)
    k3.fetchone()
    peak = peak_kb(pid) - base
    raw = N * D * 8 / 1024
    print("4. backend peak memory during kmeans_fit (serial plan) vs raw data")
    print(f"   peak +{peak / 1024:.0f} MB, raw {raw / 1024:.0f} MB, ratio = {peak / raw:.2f}  (target <= 1.5)")
    c3.close()

    conn.close()
    admin.cursor().execute(f"DROP DATABASE {DB}")


if __name__ == "__main__":
    main()
