#!/usr/bin/env bash
# The demo: build and install segment, start a throwaway cluster, load the
# bundled Online Retail and Mall Customers data, run scripts/demo.sql.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

seg_install_deps
seg_build_install
seg_cluster_start

cd "$SEG_ROOT"
seg_log "loading data/online_retail.csv.gz and data/mall_customers.csv.gz"
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION segment;
CREATE TABLE online_retail (
  invoice_no   text      NOT NULL,
  stock_code   text      NOT NULL,
  description  text,
  quantity     integer   NOT NULL,
  invoice_date timestamp NOT NULL,
  unit_price   numeric   NOT NULL,
  customer_id  integer,
  country      text      NOT NULL
);
\copy online_retail FROM PROGRAM 'gzip -dc data/online_retail.csv.gz' WITH (FORMAT csv, HEADER true)
CREATE TABLE mall_customers (
  customer_id     integer PRIMARY KEY,
  genre           text    NOT NULL,
  age             integer NOT NULL,
  annual_income_k integer NOT NULL,
  spending_score  integer NOT NULL
);
\copy mall_customers FROM PROGRAM 'gzip -dc data/mall_customers.csv.gz' WITH (FORMAT csv, HEADER true)
ANALYZE;
SQL
seg_log "report"
psql -X -q -v ON_ERROR_STOP=1 -P pager=off -f scripts/demo.sql
