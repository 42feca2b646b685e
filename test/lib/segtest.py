"""Shared pieces of the Python test scripts in test/ (this folder is not run as a test)."""
import gzip
import io
import os
import sys


def cleanup(conn, admin, db):
    """Close the test connection, drop the scratch database, close the admin one."""
    try:
        if conn is not None:
            conn.close()
    except Exception:
        pass
    try:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {db}")
    except Exception as e:
        print(f"warning: could not drop {db}: {e}")
    admin.close()


def report(failures):
    """The last line of a test script, and its exit status."""
    if failures:
        print(f"{len(failures)} checks FAILED")
        sys.exit(1)
    print("all checks passed")


ONLINE_RETAIL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data",
                             "online_retail.csv.gz")


def load_online_retail(cur):
    """Table online_retail from the bundled data, and view retail_lines
    (customer_id, invoice_no, invoice_date, amount = quantity x unit price)."""
    cur.execute("""CREATE TABLE online_retail (
        invoice_no text NOT NULL, stock_code text NOT NULL, description text,
        quantity integer NOT NULL, invoice_date timestamp NOT NULL, unit_price numeric NOT NULL,
        customer_id integer, country text NOT NULL)""")
    with gzip.open(ONLINE_RETAIL, "rt", encoding="utf-8") as f:
        cur.copy_expert("COPY online_retail FROM STDIN WITH (FORMAT csv, HEADER true)", f)
    cur.execute("""CREATE VIEW retail_lines AS
        SELECT customer_id, invoice_no, invoice_date, quantity * unit_price AS amount
        FROM online_retail""")
    cur.execute("ANALYZE online_retail")


def copy_rows(cur, table, X):
    """Table `table` (id int, f float8[]) with the rows of X, through COPY
    (INSERT row by row takes minutes for a million rows)."""
    cur.execute(f"CREATE TABLE {table} (id int, f float8[])")
    buf = io.StringIO()
    for i, x in enumerate(X):
        buf.write(f"{i}\t{{{','.join(repr(float(v)) for v in x)}}}\n")
    buf.seek(0)
    cur.copy_expert(f"COPY {table} FROM STDIN", buf)


def timed(cur, sql, repeat=3):
    """Best wall time of `repeat` executions of sql (results fetched when there are any)."""
    import time
    best = None
    for _ in range(repeat):
        t = time.perf_counter()
        cur.execute(sql)
        if cur.description is not None:
            cur.fetchall()
        el = time.perf_counter() - t
        best = el if best is None else min(best, el)
    return best


def fresh_database(name):
    """A new database with the extension: (admin connection, connection, cursor), autocommit."""
    import psycopg2
    admin = psycopg2.connect(dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
    admin.cursor().execute(f"CREATE DATABASE {name}")
    conn = psycopg2.connect(dbname=name, options="-c TimeZone=UTC")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION segment")
    return admin, conn, cur
