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
import os
import sys
import time

import numpy as np
import psycopg2
from sklearn.cluster import KMeans

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from segtest import copy_rows  # noqa: E402

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
    copy_rows(cur, table, X)
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

    # 1. ours vs scikit-learn on data already in numpy.  The iteration count
    # depends on the initial centres, so both run the same three seeds and
    # the totals are compared (one seed alone is mostly luck).
    seeds = [0, 1, 2]
    cur.execute("EXPLAIN (COSTS OFF) SELECT segment.kmeans_fit(f, 16) FROM overlap")
    plan = " / ".join(r[0].strip().lstrip("-> ") for r in cur.fetchall())
    cur.execute("SHOW segment.fit_threads")
    threads = cur.fetchone()[0]

    def q16(seed):
        return ("SELECT segment.model_info(segment.kmeans_fit(f, 16, "
                f"'{{\"seed\": {seed}, \"n_init\": 1, \"max_iter\": 300, \"tol\": 0.0001}}')) -> 'metrics' "
                "FROM overlap")

    cur.execute(q16(0))  # warm the cache
    cur.fetchone()
    t_ours = []
    it_ours = []
    inertia_ours = []
    for seed in seeds:
        t, m = timed(lambda: (cur.execute(q16(seed)), cur.fetchone())[1][0])
        t_ours.append(t)
        it_ours.append(m["n_iter"])
        inertia_ours.append(m["inertia"])
    t_sk = []
    it_sk = []
    inertia_sk = []
    for seed in seeds:
        t, km = timed(lambda: KMeans(n_clusters=16, n_init=1, max_iter=300, tol=1e-4,
                                     algorithm="lloyd", random_state=seed).fit(X))
        t_sk.append(t)
        it_sk.append(km.n_iter_)
        inertia_sk.append(km.inertia_)
    print("1. kmeans_fit k=16 (overlapping blobs) vs scikit-learn KMeans (data in numpy), seeds 0, 1, 2")
    print(f"   plan: {plan}; segment.fit_threads = {threads}")
    print(f"   segment: {sum(t_ours):.2f} s in all ({', '.join(f'{t:.2f}' for t in t_ours)}), "
          f"iterations {it_ours}, {1000 * sum(t_ours) / sum(it_ours):.1f} ms per iteration incl. load")
    print(f"   sklearn: {sum(t_sk):.2f} s in all ({', '.join(f'{t:.2f}' for t in t_sk)}), "
          f"iterations {it_sk}, {1000 * sum(t_sk) / sum(it_sk):.1f} ms per iteration")
    print(f"   best inertia: segment {min(inertia_ours):.6g}, sklearn {min(inertia_sk):.6g}")
    print(f"   ratio segment/sklearn = {sum(t_ours) / sum(t_sk):.2f}  (target <= 1.0)")

    # 2. ours vs fetch + fit
    def fetch():
        c2 = conn.cursor()
        c2.execute("SELECT f FROM overlap")
        return np.array([r[0] for r in c2.fetchall()], dtype=np.float64)
    t_fetch, _ = timed(fetch)
    t_wf = t_fetch + sum(t_sk) / len(seeds)
    print("2. kmeans_fit vs psycopg2 fetch + scikit-learn fit (mean fit time of the seeds above)")
    print(f"   fetch {t_fetch:.2f} s + fit {sum(t_sk) / len(seeds):.2f} s = {t_wf:.2f} s; segment {sum(t_ours) / len(seeds):.2f} s")
    print(f"   ratio segment/workflow = {sum(t_ours) / len(seeds) / t_wf:.2f}  (target <= 0.2)")

    # 3. k=8 on separated blobs vs a plain scan
    q8 = "SELECT segment.kmeans_fit(f, 8, '{\"seed\": 0}') IS NOT NULL FROM separated"
    qs = "SELECT sum(f[1]) FROM separated"
    cur.execute(qs)
    t_scan, _ = timed(lambda: (cur.execute(qs), cur.fetchone()), repeat=3)
    runs = [timed(lambda: (cur.execute(q8), cur.fetchone()))[0] for _ in range(2)]
    t_k8 = min(runs)
    print("3. kmeans_fit k=8 (separated blobs) vs SELECT sum(f[1])")
    print(f"   kmeans_fit {t_k8:.2f} s (runs {', '.join(f'{r:.2f}' for r in runs)}: the first may pay "
          f"for fresh memory), scan {t_scan:.3f} s, ratio = {t_k8 / t_scan:.2f}  (target <= 3)")

    # 4. peak memory of a fresh backend running the fit serially
    c3 = psycopg2.connect(dbname=DB)
    c3.autocommit = True
    k3 = c3.cursor()
    k3.execute("SELECT pg_backend_pid()")
    pid = k3.fetchone()[0]
    # touch the table's shared buffers first, so the peak below is private
    # memory: in this backend, so no parallel workers (they would touch most
    # pages instead, and the fit's serial scan would add them to its peak)
    k3.execute("SET max_parallel_workers_per_gather = 0")
    k3.execute("SELECT sum(f[1]) FROM overlap")
    k3.fetchone()
    k3.execute("RESET max_parallel_workers_per_gather")
    base = peak_kb(pid)
    k3.execute(q16(0))
    k3.fetchone()
    peak = peak_kb(pid) - base
    raw = N * D * 8 / 1024
    print("4. backend peak memory (VmHWM) during kmeans_fit k=16 vs raw data")
    print(f"   peak +{peak / 1024:.0f} MB, raw {raw / 1024:.0f} MB, ratio = {peak / raw:.2f}  (target <= 1.5)")
    c3.close()

    conn.close()
    admin.cursor().execute(f"DROP DATABASE {DB}")


if __name__ == "__main__":
    main()
