#!/usr/bin/python3
"""RFM benchmark (issue 4), measured side by side in one run: segment.rfm_table
over the bundled Online Retail data (~400k lines with a customer id) vs the
equivalent plain SQL (GROUP BY with count(DISTINCT) + ntile(5) windows), both
computing the snapshot date, R, F, M and three quintile scores per customer.
"""
import os
import sys


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from segtest import fresh_database, load_online_retail, timed  # noqa: E402

DB = "segment_bench_rfm"

ONE_CALL = """SELECT count(*), sum(r_score) FROM segment.rfm_table('retail_lines', 'customer_id',
              'invoice_date', 'amount', 'invoice_no')"""

PLAIN_SQL = """
WITH snap AS (SELECT date_trunc('day', max(invoice_date)) + interval '1 day' AS as_of FROM retail_lines),
per AS (
    SELECT customer_id,
           floor(extract(epoch FROM (snap.as_of - max(invoice_date))) / 86400)::int AS recency_days,
           count(DISTINCT invoice_no) AS frequency,
           sum(amount)::float8 AS monetary,
           min(invoice_date) AS first_order, max(invoice_date) AS last_order
    FROM retail_lines, snap WHERE customer_id IS NOT NULL GROUP BY customer_id, snap.as_of),
scored AS (
    SELECT *, ntile(5) OVER (ORDER BY recency_days DESC) AS r_score,
              ntile(5) OVER (ORDER BY frequency) AS f_score,
              ntile(5) OVER (ORDER BY monetary) AS m_score
    FROM per)
SELECT count(*), sum(r_score) FROM scored"""


def main():
    admin, conn, cur = fresh_database(DB)
    load_online_retail(cur)
    cur.execute("VACUUM ANALYZE online_retail")
    cur.execute("SELECT count(*), count(customer_id) FROM online_retail")
    lines, with_customer = cur.fetchone()

    cur.execute(ONE_CALL)
    cur.fetchall()
    t_ours = timed(cur, ONE_CALL)
    cur.execute(PLAIN_SQL)
    cur.fetchall()
    t_sql = timed(cur, PLAIN_SQL)
    print(f"RFM benchmark: Online Retail, {lines} lines ({with_customer} with a customer id)")
    print(f"   segment.rfm_table: {t_ours:.3f} s; plain SQL (GROUP BY + count(DISTINCT) + ntile): {t_sql:.3f} s")
    print(f"   ratio rfm_table/plain SQL = {t_ours / t_sql:.2f}  (target <= 1.5)")
    conn.close()
    admin.cursor().execute(f"DROP DATABASE {DB}")


if __name__ == "__main__":
    main()
