#!/usr/bin/python3
"""Recommender benchmark (issue 7), side by side in one run, on the bundled
Online Retail purchases (quantity > 0, known customer):
- segment.recommender_fit with 64 factors and 15 ALS iterations (the whole
  aggregate: scan, ids, ALS, item neighbours, popularity) vs a plain numpy
  implicit ALS (Hu, Koren & Volinsky: exact solve per user and item with the
  YᵀY trick, 64 factors, α 40 on log(1 + quantity), λ 0.1, 15 iterations)
  on data already in numpy — the ALS alone, no neighbours, no fetch;
- segment.recommend() latency over 1,000 customers, one query each from a
  client (p50, p99), with the model stored in segment.models.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from segtest import fresh_database, load_online_retail, timed  # noqa: E402

DB = "segment_bench_rec"


def numpy_als(users, items, weights, factors=64, alpha=40.0, lam=0.1, iterations=15, seed=0):
    """Implicit ALS, exact normal equations per row (the textbook numpy version)."""
    _, u = np.unique(users, return_inverse=True)
    _, i = np.unique(items, return_inverse=True)
    nu, ni = u.max() + 1, i.max() + 1
    conf = alpha * np.log1p(weights)
    order_u = np.argsort(u, kind="stable")
    order_i = np.argsort(i, kind="stable")
    rows_u = np.split(order_u, np.cumsum(np.bincount(u, minlength=nu))[:-1])
    rows_i = np.split(order_i, np.cumsum(np.bincount(i, minlength=ni))[:-1])
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 0.01, (nu, factors))
    Y = rng.normal(0, 0.01, (ni, factors))
    reg = lam * np.eye(factors)

    def solve(A, B, rows, other):
        G = B.T @ B + reg
        for r, sel in enumerate(rows):
            Bs = B[other[sel]]
            c = conf[sel]
            A[r] = np.linalg.solve(G + (Bs.T * c) @ Bs, Bs.T @ (1 + c))

    t = time.perf_counter()
    for _ in range(iterations):
        solve(X, Y, rows_u, i)
        solve(Y, X, rows_i, u)
    return time.perf_counter() - t


def main():
    admin, conn, cur = fresh_database(DB)
    load_online_retail(cur)
    cur.execute("""CREATE TABLE purchases AS SELECT customer_id, stock_code, quantity::float8 AS quantity
                   FROM online_retail WHERE quantity > 0 AND customer_id IS NOT NULL""")
    cur.execute("VACUUM ANALYZE purchases")
    cur.execute("SELECT customer_id, stock_code, quantity FROM purchases")
    data = cur.fetchall()
    users = np.array([r[0] for r in data])
    items = np.array([r[1] for r in data])
    w = np.array([r[2] for r in data])
    # repeated (user, item) rows add up, as in recommender_fit
    key = np.unique(np.stack([users.astype(str), items]), axis=1, return_inverse=True)[1]
    sums = np.bincount(key, weights=w)
    first = np.unique(key, return_index=True)[1]
    pu, pi = users[first], items[first]

    fit = """SELECT segment.model_info(segment.recommender_fit(customer_id, stock_code, quantity,
             '{"factors": 64, "iterations": 15}')) -> 'metrics' ->> 'pairs' FROM purchases"""
    t_ours = timed(cur, fit, repeat=3)
    t_np = min(numpy_als(pu, pi, sums) for _ in range(2))
    print(f"Recommender benchmark: Online Retail, {len(data)} purchase lines, {len(sums)} (customer, item) pairs")
    print(f"   recommender_fit (64 factors, 15 iterations; + neighbours, popularity): {t_ours:.3f} s")
    print(f"   numpy implicit ALS (64 factors, 15 iterations, ALS only, data in numpy): {t_np:.3f} s")
    print(f"   ratio recommender_fit/numpy ALS = {t_ours / t_np:.2f}  (target <= 0.5)")

    cur.execute("SELECT segment.train_recommender('retail', 'purchases', 'customer_id', 'stock_code', 'quantity')")
    cur.execute("SELECT DISTINCT customer_id FROM purchases ORDER BY 1")
    customers = [r[0] for r in cur.fetchall()]
    step = max(len(customers) // 1000, 1)
    sample = customers[::step][:1000]
    cur.execute("SELECT count(*) FROM segment.recommend(%s)", (sample[0],))   # warm the cache
    lat = []
    for c in sample:
        t = time.perf_counter()
        cur.execute("SELECT item_id, score, reason FROM segment.recommend(%s)", (c,))
        cur.fetchall()
        lat.append((time.perf_counter() - t) * 1000)
    lat = np.array(lat)
    print(f"   recommend(customer) over {len(sample)} customers, 10 items, from a client: "
          f"p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms  (target p50 <= 2 ms)")
    conn.close()
    admin.cursor().execute(f"DROP DATABASE {DB}")


if __name__ == "__main__":
    main()
