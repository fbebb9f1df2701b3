-- The phone's customer list reads a page of (id, seq) from these alone (index-only: seq keys the server's
-- cache of rendered rows), one branch per way a manager sees a customer: as its manager, or through a team.
CREATE INDEX customers_live_manager ON customers (manager_id, id, seq) WHERE archived_at IS NULL;
CREATE INDEX customers_live_team ON customers (team_id, id, seq) WHERE archived_at IS NULL;
-- `/me/today`: a manager's customers by solar birthday key and by lunar month, and their open reminders.
CREATE INDEX customers_live_birthday ON customers (manager_id, birthday_md) WHERE archived_at IS NULL;
CREATE INDEX customers_live_lunar ON customers (manager_id, lunar_month) WHERE archived_at IS NULL;
CREATE INDEX reminders_user_status ON reminders (user_id, status, fire_date);
