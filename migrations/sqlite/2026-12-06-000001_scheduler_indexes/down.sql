DROP INDEX holdings_repayment;
CREATE INDEX holdings_repayment ON holdings(next_repayment_date);
DROP INDEX holdings_maturity;
CREATE INDEX holdings_maturity ON holdings(maturity_date);
DROP INDEX customers_live_lunar_day;
DROP INDEX customers_live_solar;
