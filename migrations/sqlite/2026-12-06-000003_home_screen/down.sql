ALTER TABLE reminders DROP COLUMN version;
DROP INDEX notifications_unread;
DROP INDEX customers_live_seq;
