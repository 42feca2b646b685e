#!/usr/bin/python3
"""MLP benchmark (issue 6), side by side in one run: mlp_fit training time per
epoch on 100,000 x 16 (8 classes), hidden [100, 20], batch norm, dropout 0.5,
Adam, batch 256, vs PyTorch (Debian's python3-torch) on the same data,
architecture and thread count (1: mlp_fit trains on one thread), in float64
(our precision) and float32.  Per-epoch time is the difference between 6 and
1 epochs over 5, so loading and standardising the rows are left out.  Also
mlp_predict rows/second.  BENCH_ROWS overrides the row count.
"""
import os
import sys
import time

import numpy as np
from psycopg2.extras import execute_values

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from segtest import fresh_database, timed  # noqa: E402

N = int(os.environ.get("BENCH_ROWS", "100000"))
DB = "segment_bench_mlp"


def torch_epoch(X, y, dtype):
    import torch
    torch.set_num_threads(1)
    torch.manual_seed(0)
    Xt = torch.tensor(X, dtype=dtype)
    yt = torch.tensor(y)
    net = torch.nn.Sequential(
        torch.nn.Linear(16, 100), torch.nn.BatchNorm1d(100), torch.nn.ReLU(), torch.nn.Dropout(0.5),
        torch.nn.Linear(100, 20), torch.nn.BatchNorm1d(20), torch.nn.ReLU(), torch.nn.Dropout(0.5),
        torch.nn.Linear(20, 8)).to(dtype)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss = torch.nn.CrossEntropyLoss()
    best = None
    for _ in range(3):
        t = time.perf_counter()
        perm = torch.randperm(len(X))
        net.train()
        for i in range(0, len(X), 256):
            idx = perm[i:i + 256]
            if len(idx) < 2:
                continue
            opt.zero_grad()
            loss(net(Xt[idx]), yt[idx]).backward()
            opt.step()
        el = time.perf_counter() - t
        best = el if best is None else min(best, el)
    return best


def main():
    rng = np.random.default_rng(0)
    centres = rng.uniform(-10, 10, size=(8, 16))
    y = rng.integers(0, 8, size=N)
    X = centres[y] + rng.normal(0, 3, size=(N, 16))
    admin, conn, cur = fresh_database(DB)
    cur.execute("CREATE TABLE rows (f float8[], label int)")
    execute_values(cur, "INSERT INTO rows VALUES %s",
                   [(list(map(float, x)), int(c)) for x, c in zip(X, y)], page_size=5000)
    opts = '{{"seed": 1, "batch_size": 256, "validation": 0, "patience": 100000, "epochs": {}}}'
    q = "SELECT segment.mlp_fit(f, label, '{}') FROM rows"
    t1 = timed(cur, q.format(opts.format(1)), repeat=2)
    t6 = timed(cur, q.format(opts.format(6)), repeat=2)
    ours = (t6 - t1) / 5
    print(f"MLP benchmark: {N} rows x 16, 8 classes, hidden [100, 20], batch norm, dropout 0.5, Adam, batch 256, 1 thread")
    print(f"   mlp_fit: {ours:.3f} s per epoch (1 epoch {t1:.2f} s, 6 epochs {t6:.2f} s)")
    try:
        t64 = torch_epoch(X, y, __import__("torch").float64)
        t32 = torch_epoch(X, y, __import__("torch").float32)
        print(f"   PyTorch: {t64:.3f} s per epoch in float64, {t32:.3f} s in float32")
        print(f"   ratio mlp_fit/PyTorch = {ours / t64:.2f} (float64), {ours / t32:.2f} (float32)  (target <= 1.0)")
    except ImportError:
        print("   PyTorch not installed (apt-get install python3-torch): no comparison")
    cur.execute(q.format(opts.format(3)))
    model = cur.fetchone()[0]
    cur.execute("CREATE TABLE m AS SELECT %s::segment.model AS model", (model,))
    t = timed(cur, "SELECT count(segment.mlp_predict(f, m.model)) FROM rows, m", repeat=3)
    print(f"   mlp_predict: {N / t:,.0f} rows/s")
    conn.close()
    admin.cursor().execute(f"DROP DATABASE {DB}")


if __name__ == "__main__":
    main()
