#!/usr/bin/python3
"""A scikit-learn pipeline (StandardScaler + KMeans) imported with
segment.kmeans_model scores every row as scikit-learn does: the same
segment for every row, the same distances (transform) to 1e-9, centroids
back bit-exactly, and model::text::model byte-identical."""
import os
import sys

import numpy as np
import psycopg2
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.preprocessing import StandardScaler

DB = f"segtest_import_{os.getpid()}"


def main():
    X, _ = make_blobs(n_samples=2000, n_features=4, centers=5, cluster_std=3.0,
                      center_box=(-20, 60), random_state=11)
    scaler = StandardScaler().fit(X)
    km = KMeans(n_clusters=5, n_init=10, random_state=0).fit(scaler.transform(X))
    want_labels = km.predict(scaler.transform(X))
    want_dist = km.transform(scaler.transform(X))

    admin = psycopg2.connect(dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {DB}")
    failures = []
    try:
        conn = psycopg2.connect(dbname=DB)
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("CREATE EXTENSION segment")
        cur.execute("CREATE TABLE pts (id int, f float8[])")
        cur.executemany("INSERT INTO pts VALUES (%s, %s)",
                        [(i, [float(v) for v in x]) for i, x in enumerate(X)])
        cur.execute("SELECT segment.kmeans_model(%s::float8[], '{a,b,c,d}', %s, %s, '{\"source\": \"scikit-learn\"}')",
                    (km.cluster_centers_.tolist(), scaler.mean_.tolist(), scaler.scale_.tolist()))
        model = cur.fetchone()[0]
        cur.execute("""SELECT array_agg(segment.kmeans_assign(f, %s::segment.model) - 1 ORDER BY id),
                              array_agg(segment.kmeans_distances(f, %s::segment.model) ORDER BY id)
                       FROM pts""", (model, model))
        labels, dists = cur.fetchone()
        agree = int(np.sum(np.array(labels) == want_labels))
        err = float(np.max(np.abs(np.array(dists) - want_dist) / np.maximum(want_dist, 1e-12)))
        print(f"{agree} of {len(X)} rows in scikit-learn's segment; max relative distance error {err:.1e}")
        if agree != len(X):
            failures.append("labels")
        if err > 1e-9:
            failures.append("distances")
        cur.execute("SELECT segment.centroids(%s::segment.model)", (model,))
        back = np.array(cur.fetchone()[0])
        exact = bool(np.array_equal(back, km.cluster_centers_))
        cur.execute("SELECT segment.model_send(%s::segment.model::text::segment.model) = segment.model_send(%s::segment.model)",
                    (model, model))
        same = cur.fetchone()[0]
        print(f"centroids bit-exact: {exact}; text round trip byte-identical: {same}")
        if not exact:
            failures.append("centroids")
        if not same:
            failures.append("text round trip")
    finally:
        try:
            conn.close()
        except Exception:
            pass
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")
    print("FAIL: " + ", ".join(failures) if failures else "all checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
