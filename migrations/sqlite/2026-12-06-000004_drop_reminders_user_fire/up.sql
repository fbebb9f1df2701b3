-- Every read of a user's reminders also names a status, which `reminders_user_status (user_id, status,
-- fire_date)` serves; this index only slowed the scheduler's bulk inserts (one index of seven).
DROP INDEX reminders_user_fire;
