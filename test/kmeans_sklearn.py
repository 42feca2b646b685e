#!/usr/bin/python3
"""Cross-check kmeans_fit and the cluster-quality aggregates against scikit-learn.

- well-separated blobs: the same partition as scikit-learn (adjusted Rand = 1);
- overlapping blobs: inertia within 0.1% of scikit-learn's with the same k,
  n_init, max_iter, tol (or lower);
- silhouette, davies_bouldin, calinski_harabasz, adjusted_rand equal to
  scikit-learn's to 1e-9 relative on the same rows and labels.
"""
import json
import os
import sys

import numpy as np
import psycopg2
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn import metrics

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from segtest import copy_rows  # noqa: E402

DB = f"segtest_sklearn_{os.getpid()}"
failures = []


def check(name, ok, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not ok:
        failures.append(name)


def load(cur, table, X, labels=None):
    cur.execute(f"CREATE TABLE {table} (id int, f float8[], lab int)")
    rows = [(i, [float(v) for v in x], None if labels is None else int(labels[i]))
            for i, x in enumerate(X)]
    cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s)", rows)


def separated(n, seed):
    """6 well-separated blobs in 5 dimensions."""
    return make_blobs(n_samples=n, n_features=5, centers=6, cluster_std=0.5,
                      center_box=(-50, 50), random_state=seed)[0]


def overlapping(n, seed):
    """8 overlapping blobs in 8 dimensions."""
    return make_blobs(n_samples=n, n_features=8, centers=8, cluster_std=4.0,
                      center_box=(-10, 10), random_state=seed)[0]


def same_partition(cur, table, X, k, name):
    """kmeans_fit's labels (kmeans_assign) against KMeans's: adjusted Rand must be 1."""
    cur.execute(f"SELECT segment.kmeans_fit(f, {k}, '{{\"seed\": 1}}') FROM {table}")
    model = cur.fetchone()[0]
    cur.execute(f"SELECT array_agg(segment.kmeans_assign(f, %s::segment.model) ORDER BY id) FROM {table}",
                (model,))
    ours = np.array(cur.fetchone()[0])
    sk = KMeans(n_clusters=k, n_init=1, random_state=0).fit(X)
    ari = metrics.adjusted_rand_score(sk.labels_, ours)
    check(name, ari == 1.0, f"adjusted Rand {ari}")


def same_inertia(cur, table, Y, name, **options):
    """k = 12, seed 2, max_iter 300, tol 1e-4 and options (n_init, init, algorithm) on both
    sides: our inertia at most 0.1% above scikit-learn's."""
    opts = {"seed": 2, "max_iter": 300, "tol": 0.0001, **options}
    cur.execute(f"SELECT segment.model_info(segment.kmeans_fit(f, 12, %s::jsonb)) -> 'metrics' FROM {table}",
                (json.dumps(opts),))
    m = cur.fetchone()[0]
    sk = KMeans(n_clusters=12, max_iter=300, tol=1e-4, random_state=0, **options).fit(Y)
    r = (m["inertia"] - sk.inertia_) / sk.inertia_
    check(name, r <= 1e-3, f"ours {m['inertia']:.8g} sklearn {sk.inertia_:.8g} relative {r:+.2e}")


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def main():
    admin = psycopg2.connect(dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {DB}")
    try:
        conn = psycopg2.connect(dbname=DB)
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("CREATE EXTENSION segment")

        # 1. well-separated blobs: the same partition
        X = separated(3000, 3)
        copy_rows(cur, "sep", X)
        same_partition(cur, "sep", X, 6, "separated blobs, same partition")

        # 2. overlapping blobs: inertia within 0.1%
        Y = overlapping(20000, 5)
        copy_rows(cur, "ovl", Y)
        for init in ("k-means++", "random"):
            same_inertia(cur, "ovl", Y, f"overlapping blobs, init {init}, inertia", n_init=10, init=init)
        # the same with Elkan's algorithm (scikit-learn's algorithm="elkan"), and Elkan runs
        # Lloyd's iterations: from the same initial centres, the same iterations and model
        same_inertia(cur, "ovl", Y, "overlapping blobs, elkan, inertia", n_init=10, algorithm="elkan")
        runs = {}
        for alg in ("lloyd", "elkan"):
            cur.execute("SELECT segment.model_info(segment.kmeans_fit(f, 12, %s::jsonb)) -> 'metrics' FROM ovl",
                        (f'{{"seed": 2, "n_init": 1, "algorithm": "{alg}"}}',))
            runs[alg] = cur.fetchone()[0]
        r = abs(runs["elkan"]["inertia"] - runs["lloyd"]["inertia"]) / runs["lloyd"]["inertia"]
        check("elkan = lloyd from the same start", runs["elkan"]["n_iter"] == runs["lloyd"]["n_iter"] and r <= 1e-9,
              f"iterations {runs['elkan']['n_iter']} / {runs['lloyd']['n_iter']}, "
              f"inertia {runs['elkan']['inertia']:.10g} / {runs['lloyd']['inertia']:.10g}")

        # 2b. past 65,536 rows k-means++ draws from a seeded sample of them (Lloyd runs
        # over all): the same partition on separated blobs, inertia within 0.1% overlapping
        X = separated(100000, 4)
        copy_rows(cur, "bigsep", X)
        same_partition(cur, "bigsep", X, 6, "100,000 separated rows (sampled init), same partition")
        Y = overlapping(200000, 6)
        copy_rows(cur, "bigovl", Y)
        same_inertia(cur, "bigovl", Y, "200,000 overlapping rows (sampled init), inertia", n_init=3)

        # 3. metrics on the same rows and labels
        Z, zl = make_blobs(n_samples=2000, n_features=4, centers=5, cluster_std=2.0,
                           random_state=7)
        zl = np.where(zl == 2, -7, zl * 100)  # arbitrary label values
        load(cur, "lab", Z, zl)
        other = KMeans(n_clusters=4, n_init=1, random_state=0).fit(Z).labels_
        cur.execute("CREATE TABLE other (id int, lab2 int)")
        cur.executemany("INSERT INTO other VALUES (%s, %s)", [(i, int(v)) for i, v in enumerate(other)])
        cur.execute("""SELECT segment.silhouette(f, lab), segment.davies_bouldin(f, lab),
                              segment.calinski_harabasz(f, lab) FROM lab""")
        sil, db, ch = cur.fetchone()
        for name, ours_v, ref in (("silhouette", sil, metrics.silhouette_score(Z, zl)),
                                  ("davies_bouldin", db, metrics.davies_bouldin_score(Z, zl)),
                                  ("calinski_harabasz", ch, metrics.calinski_harabasz_score(Z, zl))):
            check(name, rel(ours_v, ref) <= 1e-9, f"ours {ours_v!r} sklearn {ref!r}")
        cur.execute("SELECT segment.adjusted_rand(lab, lab2) FROM lab JOIN other USING (id)")
        ari = cur.fetchone()[0]
        ref = metrics.adjusted_rand_score(zl, other)
        check("adjusted_rand", rel(ari, ref) <= 1e-9, f"ours {ari!r} sklearn {ref!r}")
    finally:
        try:
            conn.close()
        except Exception:
            pass
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")
    print(f"{len(failures)} failed" if failures else "all checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
