DROP INDEX holdings_repayment;
CREATE INDEX holdings_repayment ON holdings (next_repayment_date) INCLUDE (customer_id, status, product_type, archived_at);
DROP INDEX holdings_maturity;
CREATE INDEX holdings_maturity ON holdings (maturity_date) INCLUDE (customer_id, status, product_type, archived_at);
DROP INDEX customers_live_lunar_day;
CREATE INDEX customers_live_lunar_day ON customers (lunar_month, lunar_day, lunar_leap) INCLUDE (manager_id)
    WHERE archived_at IS NULL;
DROP INDEX customers_live_solar;
CREATE INDEX customers_live_solar ON customers (birthday_md) INCLUDE (manager_id)
    WHERE archived_at IS NULL AND lunar_month IS NULL;
DROP INDEX reminders_task_once;
CREATE UNIQUE INDEX reminders_task_once ON reminders(kind, subject_id, occasion_date, lead_days, user_id)
    WHERE subject_type = 'task';
DROP INDEX reminders_once;
CREATE UNIQUE INDEX reminders_once ON reminders(kind, subject_type, subject_id, occasion_date, lead_days)
    WHERE subject_type <> 'task';
CREATE INDEX reminders_subject ON reminders(subject_type, subject_id);
ALTER TABLE reminders ADD CONSTRAINT reminders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id);
