"""Shared pieces of the Python test scripts in test/ (this folder is not run as a test)."""
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
