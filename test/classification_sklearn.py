#!/usr/bin/python3
"""segment.classification_report equals scikit-learn's classification_report
(output_dict=True, zero_division=0) on the same labels: 20,000 imbalanced
pairs over 6 classes, one class only ever predicted, one never predicted;
every figure to 1e-12.  Rows with a NULL label are skipped."""
import os
import sys

import numpy as np
from sklearn.metrics import classification_report

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from segtest import cleanup, fresh_database, report  # noqa: E402

DB = f"segtest_clsrep_{os.getpid()}"
failures = []


def main():
    rng = np.random.default_rng(7)
    actual = rng.choice([0, 1, 2, 3, 5], size=20000, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    predicted = np.where(rng.random(20000) < 0.7, actual, rng.choice([0, 1, 2, 4], size=20000))
    predicted[actual == 5] = np.where(rng.random((actual == 5).sum()) < 0.5, 0, 2)  # 5 never predicted
    expected = classification_report(actual, predicted, output_dict=True, zero_division=0)
    admin, conn, cur = fresh_database(DB)
    try:
        cur.execute("CREATE TABLE pairs (a int, p int)")
        cur.executemany("INSERT INTO pairs VALUES (%s, %s)",
                        [(int(a), int(p)) for a, p in zip(actual, predicted)] + [(None, 1), (2, None)])
        cur.execute("SELECT segment.classification_report(a, p) FROM pairs")
        ours = cur.fetchone()[0]
        worst = 0.0
        keys_ok = set(ours) == set(expected)
        for key, val in expected.items():
            if isinstance(val, dict):
                for m, x in val.items():
                    worst = max(worst, abs(ours[key][m] - x) / max(1.0, abs(x)))
            else:
                worst = max(worst, abs(ours[key] - val))
        ok = keys_ok and worst <= 1e-12
        print(f"{'ok  ' if ok else 'FAIL'} classification_report = scikit-learn: keys {sorted(ours)}, "
              f"max relative difference {worst:.2e}")
        if not ok:
            failures.append("report")
    finally:
        cleanup(conn, admin, DB)
    report(failures)


if __name__ == "__main__":
    main()
