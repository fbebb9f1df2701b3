CREATE INDEX reminders_user_fire ON reminders(user_id, fire_date);
