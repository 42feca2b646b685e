#!/usr/bin/python3
"""Import a scikit-learn StandardScaler + KMeans model with segment.kmeans_model().

A seeded blob dataset (2,000 x 4, features on very different scales) is fit
with StandardScaler and KMeans(n_clusters=5, n_init=10, random_state=0);
cluster_centers_, mean_ and scale_ go through segment.kmeans_model(), the raw
points into a table.  Checks:
  - kmeans_assign(features, model) - 1 equals KMeans.predict for every row
    (by model value and by registered name);
  - kmeans_distances(features, model) equals KMeans.transform to 1e-9 relative;
  - centroids(model) returns cluster_centers_ bit for bit;
  - model::text::model is byte-identical (model_send), and the model's
    features and metrics are what was imported.
"""
import json
import os
import sys

import numpy as np
import psycopg2
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from segtest import cleanup, report  # noqa: E402
from psycopg2.extras import execute_values
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.preprocessing import StandardScaler

DB = f"segtest_skimport_{os.getpid()}"
NAMES = ["tenure_days", "monthly_spend", "discount_rate", "visits"]
failures = []


def check(name, ok, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not ok:
        failures.append(name)


def main():
    X, _ = make_blobs(n_samples=2000, n_features=4, centers=5, cluster_std=1.2,
                      center_box=(-8, 8), random_state=42)
    X = X * np.array([100.0, 1.0, 0.01, 7.0]) + np.array([500.0, -20.0, 0.3, 40.0])
    scaler = StandardScaler().fit(X)
    Xs = scaler.transform(X)
    km = KMeans(n_clusters=5, n_init=10, random_state=0).fit(Xs)
    sk_labels = km.predict(Xs)
    sk_dist = km.transform(Xs)
    centers = km.cluster_centers_
    metrics = json.dumps({"inertia": float(km.inertia_), "n_iter": int(km.n_iter_), "source": "scikit-learn"})

    admin = psycopg2.connect(dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {DB} TEMPLATE template0 ENCODING 'UTF8' "
                           "LC_COLLATE 'C' LC_CTYPE 'C'")
    conn = None
    try:
        conn = psycopg2.connect(dbname=DB)
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("CREATE EXTENSION segment")
        cur.execute("CREATE TABLE pts (id int PRIMARY KEY, f float8[] NOT NULL)")
        execute_values(cur, "INSERT INTO pts VALUES %s",
                       [(i, [float(v) for v in x]) for i, x in enumerate(X)], page_size=500)
        cur.execute("CREATE TABLE mdl (model segment.model)")
        cur.execute("""INSERT INTO mdl SELECT segment.kmeans_model(%s::float8[], %s::text[],
                                                %s::float8[], %s::float8[], %s::jsonb)""",
                    ([[float(v) for v in c] for c in centers], NAMES,
                     [float(v) for v in scaler.mean_], [float(v) for v in scaler.scale_], metrics))
        cur.execute("SELECT segment.register_model('sk_kmeans', model) FROM mdl")

        # assignments, by value and by name
        cur.execute("""SELECT p.id, segment.kmeans_assign(p.f, m.model) - 1,
                              segment.kmeans_assign(p.f, 'sk_kmeans') - 1
                       FROM pts p, mdl m ORDER BY p.id""")
        rows = cur.fetchall()
        ours = np.array([r[1] for r in rows])
        ours_by_name = np.array([r[2] for r in rows])
        agree = int((ours == sk_labels).sum())
        check("kmeans_assign - 1 = KMeans.predict", agree == len(X) and len(rows) == len(X),
              f"{agree} of {len(X)} rows agree")
        agree_n = int((ours_by_name == sk_labels).sum())
        check("kmeans_assign(f, 'sk_kmeans') - 1 = KMeans.predict", agree_n == len(X),
              f"{agree_n} of {len(X)} rows agree")
        check("all 5 segments used", sorted(set(ours.tolist())) == [0, 1, 2, 3, 4],
              f"segments {sorted(set((ours + 1).tolist()))}")

        # distances
        cur.execute("SELECT segment.kmeans_distances(p.f, m.model) FROM pts p, mdl m ORDER BY p.id")
        dist = np.array([r[0] for r in cur.fetchall()], dtype=float)
        ok_shape = dist.shape == sk_dist.shape
        if ok_shape:
            rel = np.abs(dist - sk_dist) / np.maximum(np.abs(sk_dist), 1e-300)
            direct = np.sqrt(((Xs[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2))
            rel_direct = np.abs(dist - direct) / np.maximum(np.abs(direct), 1e-300)
            check("kmeans_distances = KMeans.transform (1e-9 relative)", rel.max() <= 1e-9,
                  f"max relative difference {rel.max():.3e} over {dist.size} distances "
                  f"(vs. a direct numpy computation: {rel_direct.max():.3e})")
        else:
            check("kmeans_distances shape", False, f"{dist.shape} vs {sk_dist.shape}")

        # centroids bit for bit
        cur.execute("SELECT segment.centroids(model) FROM mdl")
        got = np.array(cur.fetchone()[0], dtype=np.float64)
        check("centroids(model) = cluster_centers_ bit for bit",
              got.shape == centers.shape and got.tobytes() == np.ascontiguousarray(centers).tobytes(),
              f"shape {got.shape}, {int((got == centers).sum()) if got.shape == centers.shape else 0} "
              f"of {centers.size} values identical")

        # text round trip, and what came along
        cur.execute("""SELECT segment.model_send(model::text::segment.model) = segment.model_send(model),
                              length(segment.model_send(model)), segment.model_features(model),
                              segment.model_info(model) -> 'metrics',
                              segment.model_info(model) -> 'scaler'
                       FROM mdl""")
        same, nbytes, feats, got_metrics, got_scaler = cur.fetchone()
        check("model::text::model byte-identical", same is True, f"{nbytes} wire bytes")
        check("model_features = imported names", feats == NAMES, f"{feats}")
        check("metrics kept", got_metrics == json.loads(metrics), f"{got_metrics}")
        check("scaler kept bit for bit",
              got_scaler is not None
              and np.array(got_scaler["offset"]).tobytes() == scaler.mean_.tobytes()
              and np.array(got_scaler["factor"]).tobytes() == scaler.scale_.tobytes(),
              "offset = mean_, factor = scale_")
    finally:
        cleanup(conn, admin, DB)
    report(failures)


if __name__ == "__main__":
    main()
