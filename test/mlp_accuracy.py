#!/usr/bin/python3
"""mlp_fit accuracy on a stratified 20% hold-out of k-means segments:
- Mall Customers (bundled): Age, Annual Income, Spending Score, standard-scaled,
  k-means k = 6 (seed 1, 10 restarts).  Issue 6 asks >= 95% (the published
  two-stage study reports 92.5% with Keras).  The hold-out is exactly 20%
  (40 of 200 customers, every fifth row in (segment, id) order, so each segment
  gives a fifth of its rows, rounded as scikit-learn's train_test_split rounds);
  its accuracy, averaged over network seeds 1..5, must be >= 0.95, and so must
  the mean over five random stratified 20% splits (train_test_split,
  random_state 0..4).  Seeds and splits vary, so no single network decides;
- 100,000 x 16 blobs (8 centres, scikit-learn make_blobs), k-means k = 8 -> >= 99%.
Default network (100 -> 20, batch norm, dropout 0.5, Adam, early stopping)."""
import gzip
import os
import sys

import numpy as np
from psycopg2.extras import execute_values
from sklearn.datasets import make_blobs
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from segtest import cleanup, fresh_database, report  # noqa: E402

DB = f"segtest_mlp_{os.getpid()}"
MALL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "mall_customers.csv.gz")
failures = []


def split_table(cur, table, k, kmeans_opts, test_ids=None):
    """{table}_split (id, f, seg, test): k-means segments and a stratified 20% hold-out,
    every fifth row in (segment, id) order unless test_ids names the hold-out."""
    cur.execute(f"SELECT segment.kmeans_fit(f, {k}, %s) FROM {table}", (kmeans_opts,))
    km = cur.fetchone()[0]
    test = "id = ANY(%s)" if test_ids is not None else "row_number() OVER (ORDER BY seg, id) %% 5 = 0"
    args = (test_ids, km) if test_ids is not None else (km,)  # in the order of the placeholders
    cur.execute(f"DROP TABLE IF EXISTS {table}_split")
    cur.execute(f"""CREATE TABLE {table}_split AS
        SELECT id, f, seg, {test} AS test
        FROM (SELECT id, f, segment.kmeans_assign(f, %s::segment.model) AS seg FROM {table}) t""", args)


def holdout_accuracy(cur, table, mlp_opts):
    cur.execute(f"SELECT segment.mlp_fit(f, seg, %s) FROM {table}_split WHERE NOT test", (mlp_opts,))
    mlp = cur.fetchone()[0]
    cur.execute(f"""SELECT avg((segment.mlp_predict(f, %s::segment.model) = seg)::int)::float8, count(*)
                    FROM {table}_split WHERE test""", (mlp,))
    return cur.fetchone()


def check(name, ok, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not ok:
        failures.append(name)


def main():
    admin, conn, cur = fresh_database(DB)
    try:
        rows = []
        with gzip.open(MALL, "rt") as fh:
            next(fh)
            for line in fh:
                cid, _, age, income, score = line.strip().split(",")
                rows.append((int(cid), float(age), float(income), float(score)))
        a = np.array([r[1:] for r in rows])
        z = (a - a.mean(axis=0)) / a.std(axis=0)
        cur.execute("CREATE TABLE mall (id int, f float8[])")
        execute_values(cur, "INSERT INTO mall VALUES %s", [(r[0], list(map(float, zz))) for r, zz in zip(rows, z)])
        mall_km = '{"seed": 1, "n_init": 10}'
        split_table(cur, "mall", 6, mall_km)
        accs = []
        for seed in range(1, 6):
            acc, n = holdout_accuracy(cur, "mall", f'{{"seed": {seed}}}')
            accs.append(acc)
        check("Mall Customers, k = 6, every fifth row", np.mean(accs) >= 0.95 and min(accs) >= 0.90,
              f"hold-out accuracy on {n} customers, network seeds 1..5: "
              f"{' '.join(f'{a:.3f}' for a in accs)}, mean {np.mean(accs):.4f} (target >= 0.95)")
        cur.execute("SELECT id, seg FROM mall_split ORDER BY id")
        ids, segs = map(np.array, zip(*cur.fetchall()))
        accs = []
        for rs in range(5):
            _, test_ids = train_test_split(ids, test_size=0.2, stratify=segs, random_state=rs)
            split_table(cur, "mall", 6, mall_km, sorted(map(int, test_ids)))
            acc, n = holdout_accuracy(cur, "mall", '{"seed": 1}')
            accs.append(acc)
        check("Mall Customers, k = 6, random stratified splits", np.mean(accs) >= 0.95,
              f"hold-out accuracy on {n} customers, train_test_split random_state 0..4: "
              f"{' '.join(f'{a:.3f}' for a in accs)}, mean {np.mean(accs):.4f} (target >= 0.95)")

        X, _ = make_blobs(n_samples=100000, n_features=16, centers=8, cluster_std=2.0, random_state=0)
        cur.execute("CREATE TABLE blobs (id int, f float8[])")
        execute_values(cur, "INSERT INTO blobs VALUES %s", [(i, list(map(float, x))) for i, x in enumerate(X)],
                       page_size=5000)
        split_table(cur, "blobs", 8, '{"seed": 1}')
        acc, n = holdout_accuracy(cur, "blobs", '{"seed": 1, "batch_size": 256, "epochs": 20}')
        check("blobs 100k x 16, k = 8", acc >= 0.99, f"hold-out accuracy {acc:.4f} on {n} rows (target >= 0.99)")
    finally:
        cleanup(conn, admin, DB)
    report(failures)


if __name__ == "__main__":
    main()
