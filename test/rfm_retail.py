#!/usr/bin/python3
"""RFM on the bundled Online Retail data, cross-checked against pandas.

Rows with a customer id; amount = quantity x unit price; order id = invoice
number (cancellations, "C..." invoices, are orders of their own and their
negative amounts net off); as_of = midnight after the last invoice day.
segment.rfm_table and the composable form (rfm_score + rfm_breakpoints +
rfm_grade) must give every customer pandas' recency and frequency exactly and
its monetary value to 1e-9 of the customer's gross volume (sum of |amount|,
so that customers whose returns cancel their purchases are compared fairly).
Scores: equal values get equal scores, and both forms agree.
"""
import os
import sys

import numpy as np
import pandas as pd
import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from segtest import ONLINE_RETAIL as DATA, cleanup, load_online_retail, report  # noqa: E402

DB = f"segtest_rfm_{os.getpid()}"
failures = []


def check(name, ok, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not ok:
        failures.append(name)


def pandas_rfm():
    df = pd.read_csv(DATA, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": "Int64"},
                     parse_dates=["InvoiceDate"])
    df = df[df["CustomerID"].notna()].copy()
    df["amount"] = df["Quantity"] * df["UnitPrice"]
    as_of = df["InvoiceDate"].max().normalize() + pd.Timedelta(days=1)
    g = df.groupby("CustomerID")
    out = pd.DataFrame({
        "recency": (as_of - g["InvoiceDate"].max()).dt.days,
        "frequency": g["InvoiceNo"].nunique(),
        "monetary": g["amount"].sum(),
        "gross": g["amount"].apply(lambda a: np.abs(a).sum()),
    })
    out.index = out.index.astype(str)
    return out, as_of, len(df)


def main():
    expected, as_of, lines = pandas_rfm()
    admin = psycopg2.connect(dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {DB}")
    conn = None
    try:
        conn = psycopg2.connect(dbname=DB, options="-c TimeZone=UTC")
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("CREATE EXTENSION segment")
        load_online_retail(cur)

        # the one-call form, as_of left to its default
        cur.execute("""SELECT customer, recency_days, frequency, monetary, r_score, f_score, m_score,
                              rfm_code, segment
                       FROM segment.rfm_table('retail_lines', 'customer_id', 'invoice_date', 'amount',
                                              'invoice_no')""")
        rows = cur.fetchall()
        ours = pd.DataFrame(rows, columns=["customer", "recency", "frequency", "monetary", "r", "f", "m",
                                           "code", "segment"]).set_index("customer")
        check("customers", len(ours) == len(expected) and set(ours.index) == set(expected.index),
              f"{len(ours)} customers, pandas {len(expected)} (from {lines} lines with a customer id)")
        j = ours.join(expected, rsuffix="_pd", how="inner")
        bad_r = int((j["recency"] != j["recency_pd"]).sum())
        bad_f = int((j["frequency"] != j["frequency_pd"]).sum())
        err_m = (j["monetary"] - j["monetary_pd"]).abs() / np.maximum(1.0, j["gross"])
        check("recency exact", bad_r == 0, f"{bad_r} customers differ (as_of {as_of})")
        check("frequency exact", bad_f == 0, f"{bad_f} customers differ")
        check("monetary to 1e-9", err_m.max() <= 1e-9,
              f"max error {err_m.max():.3e} of the gross volume over {len(j)} customers")

        # equal values, equal scores
        for col, score in (("recency", "r"), ("frequency", "f"), ("monetary", "m")):
            spread = j.groupby(col)[score].nunique().max()
            sizes = j[score].value_counts().sort_index().to_dict()
            check(f"{col}: equal values share a score", spread == 1, f"score sizes {sizes}")

        # the composable form agrees with the one-call form
        cur.execute("""
            WITH per AS (
                SELECT customer_id::text AS customer,
                       segment.rfm_score(invoice_date::timestamptz, amount::float8, invoice_no, %s) AS r
                FROM retail_lines WHERE customer_id IS NOT NULL GROUP BY 1),
            bp AS (SELECT segment.rfm_breakpoints(r) AS b FROM per)
            SELECT p.customer, (segment.rfm_grade(p.r, bp.b)).rfm_code FROM per p, bp""", (as_of.to_pydatetime(),))
        codes = dict(cur.fetchall())
        same = sum(1 for c, code in codes.items() if ours.loc[c, "code"] == code)
        check("composable form = one call", same == len(ours), f"{same} of {len(ours)} RFM codes equal")

        seg = ours["segment"].value_counts()
        print("segments: " + ", ".join(f"{k} {v}" for k, v in seg.items()))
    finally:
        cleanup(conn, admin, DB)
    report(failures)


if __name__ == "__main__":
    main()
