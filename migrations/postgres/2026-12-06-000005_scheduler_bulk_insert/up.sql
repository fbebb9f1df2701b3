-- The scheduler's pass (issue 4) inserts every reminder of a 7-day window in bulk: over 1,000,000 customers
-- and 2,000,000 holdings, 134,206 rows. A profile of that pass on PostgreSQL put 21 % of the server's time
-- in the foreign-key trigger of `reminders.user_id` (one `SELECT … FOR KEY SHARE` on users per row) and
-- 38 % in index inserts. So, on PostgreSQL:
--
-- 1. No foreign key on `reminders.user_id`. Every statement that writes it copies a column that has its
--    own foreign key to users, in the same statement (`customers.manager_id`, `task_assignees.user_id`,
--    `visits.manager_id`, `users.id`), and users are never deleted (deactivated only). SQLite keeps the
--    constraint: there the check is a cheap b-tree probe and the pass is within its figure.
-- 2. The unique keys lead with the subject, so they also serve every lookup by subject (a birthday or a
--    maturity edited, a task cancelled) and `reminders_subject` goes: one index fewer per inserted row.
-- 3. The pass's reads carry the row id in the covering indexes, so they are index-only scans (the
--    holdings' maturity read took a heap page per row before).
ALTER TABLE reminders DROP CONSTRAINT reminders_user_id_fkey;
DROP INDEX reminders_subject;
DROP INDEX reminders_once;
CREATE UNIQUE INDEX reminders_once ON reminders(subject_type, subject_id, kind, occasion_date, lead_days)
    WHERE subject_type <> 'task';
DROP INDEX reminders_task_once;
CREATE UNIQUE INDEX reminders_task_once ON reminders(subject_id, kind, occasion_date, lead_days, user_id)
    WHERE subject_type = 'task';
DROP INDEX customers_live_solar;
CREATE INDEX customers_live_solar ON customers (birthday_md) INCLUDE (manager_id, id)
    WHERE archived_at IS NULL AND lunar_month IS NULL;
DROP INDEX customers_live_lunar_day;
CREATE INDEX customers_live_lunar_day ON customers (lunar_month, lunar_day, lunar_leap) INCLUDE (manager_id, id)
    WHERE archived_at IS NULL;
DROP INDEX holdings_maturity;
CREATE INDEX holdings_maturity ON holdings (maturity_date) INCLUDE (customer_id, status, product_type, archived_at, id);
DROP INDEX holdings_repayment;
CREATE INDEX holdings_repayment ON holdings (next_repayment_date) INCLUDE (customer_id, status, product_type, archived_at, id);
