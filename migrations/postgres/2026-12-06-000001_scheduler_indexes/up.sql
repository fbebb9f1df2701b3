-- The scheduler's pass (issue 4) reads what it selects from indexes alone (index-only scans once vacuum
-- has marked the pages visible, as autovacuum does after a load): live customers by solar birthday key
-- and by lunar day with their manager, each live customer's manager by id (the holdings' join), and
-- holdings by maturity or repayment date with the columns the pass filters on. The two holding indexes
-- replace the plain date indexes (same leading column, so every other use stays).
CREATE INDEX customers_live_solar ON customers (birthday_md) INCLUDE (manager_id)
    WHERE archived_at IS NULL AND lunar_month IS NULL;
CREATE INDEX customers_live_lunar_day ON customers (lunar_month, lunar_day, lunar_leap) INCLUDE (manager_id)
    WHERE archived_at IS NULL;
CREATE INDEX customers_live_id ON customers (id) INCLUDE (manager_id) WHERE archived_at IS NULL;
DROP INDEX holdings_maturity;
CREATE INDEX holdings_maturity ON holdings (maturity_date) INCLUDE (customer_id, status, product_type, archived_at);
DROP INDEX holdings_repayment;
CREATE INDEX holdings_repayment ON holdings (next_repayment_date) INCLUDE (customer_id, status, product_type, archived_at);
