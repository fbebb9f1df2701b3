-- `/me/today` keys its kept week of birthdays by the highest `seq` among a manager's live customers and their
-- count: with this index the highest is one index entry and the count reads this index only (`archived_at`
-- is a key column so that SQLite sees the index as covering).
CREATE INDEX customers_live_seq ON customers (manager_id, archived_at, seq) WHERE archived_at IS NULL;
-- The unread count (`/me/today`, `/notifications/unread-count`) reads the unread notifications only, not
-- every notification a user ever had.
CREATE INDEX notifications_unread ON notifications (user_id, read_at, deliver_at) WHERE read_at IS NULL;
-- A reminder's version: every update adds one, so the server keeps its rendered JSON by (id, version).
ALTER TABLE reminders ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
