-- The demo report: the bundled data, then segmentation with segment.
\pset footer off
\echo
\echo '## Online Retail (UCI, CC BY 4.0): what was loaded'
SELECT count(*) AS invoice_lines,
       count(DISTINCT customer_id) AS customers,
       count(DISTINCT invoice_no) AS invoices,
       count(DISTINCT stock_code) AS stock_codes,
       min(invoice_date)::date AS first_day,
       max(invoice_date)::date AS last_day,
       count(*) FILTER (WHERE invoice_no LIKE 'C%') AS cancellation_lines
FROM online_retail;

\echo '## Revenue of clean purchase lines (known customer, not cancelled, quantity and price > 0), top countries'
SELECT country, count(DISTINCT customer_id) AS customers,
       round(sum(quantity * unit_price)) AS revenue_gbp
FROM online_retail
WHERE customer_id IS NOT NULL AND invoice_no NOT LIKE 'C%' AND quantity > 0 AND unit_price > 0
GROUP BY country ORDER BY revenue_gbp DESC LIMIT 5;

\echo '## RFM of every Online Retail customer (segment.rfm_table; as_of = the day after the last invoice)'
CREATE TEMP VIEW retail_lines AS
SELECT customer_id, invoice_no, invoice_date, quantity * unit_price AS amount FROM online_retail;
CREATE TEMP TABLE retail_rfm AS
SELECT * FROM segment.rfm_table('retail_lines', 'customer_id', 'invoice_date', 'amount', 'invoice_no');
SELECT segment, count(*) AS customers,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct,
       round(avg(recency_days)) AS avg_recency_days, round(avg(frequency), 1) AS avg_orders,
       round(avg(monetary)::numeric) AS avg_monetary_gbp
FROM retail_rfm WHERE segment IS NOT NULL
GROUP BY segment ORDER BY avg(r_score + (f_score + m_score) / 2.0) DESC;

\echo '## Training a segmentation on RFM (log orders, log spend, recency; k chosen by silhouette over 2..8)'
CREATE TABLE retail_customers AS
SELECT r.customer::int AS customer_id, r.recency_days,
       ln(r.frequency) AS log_orders, ln(greatest(r.monetary, 0) + 1) AS log_spend, c.country
FROM retail_rfm r
JOIN (SELECT customer_id::text AS customer, mode() WITHIN GROUP (ORDER BY country) AS country
      FROM online_retail WHERE customer_id IS NOT NULL GROUP BY 1) c USING (customer)
WHERE r.frequency > 0;
SELECT s ->> 'version' AS version, s ->> 'k' AS k, s -> 'columns' AS columns, s ->> 'rows_used' AS customers
FROM segment.train('retail', 'retail_customers', '{recency_days,log_orders,log_spend}', NULL,
                   '{"seed": 1, "k_max": 8}') s;
\echo 'the k sweep kept in the model (elbow and silhouette):'
SELECT (e ->> 'k')::int AS k, round((e ->> 'inertia')::numeric) AS inertia,
       round((e ->> 'silhouette')::numeric, 3) AS silhouette, round((e ->> 'davies_bouldin')::numeric, 3) AS davies_bouldin
FROM segment.latest_models m, jsonb_array_elements(m.metrics -> 'sweep') e WHERE m.name = 'retail' ORDER BY 1;
\echo 'the profile: what each segment is (means in original units)'
SELECT segment, label, customers, round((100 * share)::numeric) AS pct,
       round(max(mean) FILTER (WHERE feature = 'recency_days')::numeric) AS recency_days,
       round(exp(max(mean) FILTER (WHERE feature = 'log_orders'))::numeric, 1) AS orders_geo_mean,
       round((exp(max(mean) FILTER (WHERE feature = 'log_spend')) - 1)::numeric) AS spend_geo_mean
FROM segment.profile('retail') GROUP BY segment, label, customers, share ORDER BY segment;
\echo 'scoring customers with segment_of (the model trained on their table) and explaining one'
SELECT customer_id, recency_days, round(exp(log_orders)::numeric) AS orders, round((exp(log_spend) - 1)::numeric) AS spend, country,
       segment.segment_of(c) AS segment, segment.segment_label(c) AS label
FROM retail_customers c ORDER BY customer_id LIMIT 5;
SELECT feature, round(value::numeric, 2) AS value, round(segment_mean::numeric, 2) AS segment_mean,
       round(share_of_distance::numeric, 2) AS share_of_distance
FROM retail_customers c, segment.segment_explain(c) WHERE c.customer_id = 12347 AND abs(value - segment_mean) > 0.01;

\echo '## Recommendations: a hybrid recommender (ALS + item-item + popularity per segment) trained on purchases before 2011-11-01'
CREATE TABLE retail_purchases AS
SELECT customer_id, stock_code, quantity, invoice_date FROM online_retail WHERE quantity > 0 AND customer_id IS NOT NULL;
CREATE TEMP VIEW purchases_before_nov AS SELECT * FROM retail_purchases WHERE invoice_date < '2011-11-01';
CREATE TEMP VIEW products AS
SELECT stock_code, mode() WITHIN GROUP (ORDER BY description) AS description
FROM online_retail WHERE customer_id IS NOT NULL GROUP BY 1;
SELECT r ->> 'version' AS version, r ->> 'users' AS customers, r ->> 'items' AS items, r ->> 'pairs' AS pairs,
       r ->> 'segments' AS segments, round((r -> 'loss_curve' ->> 0)::numeric) AS als_loss_first,
       round((r -> 'loss_curve' ->> -1)::numeric) AS als_loss_last
FROM segment.train_recommender('retail_recs', 'purchases_before_nov', 'customer_id', 'stock_code', 'quantity',
                               '{"segments": {"model": "retail"}}') r;
\echo 'customer 12347 bought, among others:'
SELECT p.stock_code, min(d.description) AS description, sum(p.quantity) AS quantity
FROM purchases_before_nov p JOIN products d USING (stock_code) WHERE p.customer_id = 12347
GROUP BY p.stock_code ORDER BY sum(p.quantity) DESC LIMIT 5;
\echo 'recommend(12347, 5):'
SELECT r.item_id, d.description, round(r.score::numeric, 3) AS score, r.reason
FROM segment.recommend(12347, 5, 'retail_recs') r JOIN products d ON d.stock_code = r.item_id ORDER BY r.score DESC;
\echo 'a customer first seen after 2011-11-01 (unknown to the model) gets the favourites of their segment:'
SELECT c.customer_id, r.item_id, d.description, r.reason
FROM (SELECT customer_id FROM retail_customers
      WHERE customer_id NOT IN (SELECT customer_id FROM purchases_before_nov) ORDER BY customer_id LIMIT 1) c,
     segment.recommend(c.customer_id, 3, 'retail_recs') r JOIN products d ON d.stock_code = r.item_id
ORDER BY r.score DESC;
\echo 'similar_items(85123A, 5): bought by the same customers as the white hanging heart T-light holder'
SELECT s.item_id, d.description, round(s.score::numeric, 3) AS cosine
FROM segment.similar_items('85123A'::text, 5, 'retail_recs') s JOIN products d ON d.stock_code = s.item_id
ORDER BY s.score DESC;
\echo 'evaluate_recommender: trained before 2011-11-01, judged on the items each customer buys later and had not bought before'
SELECT method, users, round(hit_rate_at_k::numeric, 3) AS hit_rate_at_10, round(precision_at_k::numeric, 3) AS precision_at_10,
       round(recall_at_k::numeric, 3) AS recall_at_10, round(ndcg_at_k::numeric, 3) AS ndcg_at_10,
       round(coverage::numeric, 3) AS coverage
FROM segment.evaluate_recommender('retail_purchases', 'customer_id', 'stock_code', 'invoice_date', '2011-11-01', 10, 'quantity');

\echo '## Mall Customers: choosing k on standardized income and spending score (kmeans_sweep)'
CREATE TEMP VIEW mall_scaled AS
SELECT m.customer_id, m.annual_income_k, m.spending_score,
       ARRAY[(m.annual_income_k - s.mi) / s.si, (m.spending_score - s.ms) / s.ss] AS f
FROM mall_customers m,
     (SELECT avg(annual_income_k)::float8 AS mi, stddev_pop(annual_income_k)::float8 AS si,
             avg(spending_score)::float8 AS ms, stddev_pop(spending_score)::float8 AS ss
      FROM mall_customers) s;
SELECT r.k, round(r.inertia::numeric, 1) AS inertia, round(r.silhouette::numeric, 3) AS silhouette,
       round(r.davies_bouldin::numeric, 3) AS davies_bouldin,
       round(r.calinski_harabasz::numeric, 1) AS calinski_harabasz
FROM (SELECT segment.kmeans_sweep(f, 2, 8, '{"seed": 1, "n_init": 10}') AS s FROM mall_scaled) t,
     jsonb_to_recordset(t.s) AS r(k int, inertia float8, silhouette float8, davies_bouldin float8,
                                  calinski_harabasz float8)
ORDER BY r.k;

\echo '## Fit k = 5, store it as model "mall" in segment.models, score every customer by name'
SELECT segment.register_model('mall', segment.kmeans_fit(f, 5, '{"seed": 1, "n_init": 10}'), 'mall_customers')
       AS version
FROM mall_scaled;
SELECT segment.kmeans_assign(f, 'mall') AS segment, count(*) AS customers,
       round(avg(annual_income_k), 1) AS avg_income_k, round(avg(spending_score), 1) AS avg_score
FROM mall_scaled GROUP BY 1 ORDER BY avg_income_k, avg_score;
SELECT round(segment.silhouette(f, segment.kmeans_assign(f, 'mall'))::numeric, 3) AS silhouette
FROM mall_scaled;
SELECT name, version, kind, source, metrics -> 'inertia' AS inertia, metrics -> 'n_iter' AS iterations
FROM segment.models;
