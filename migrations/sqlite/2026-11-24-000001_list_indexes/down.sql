DROP INDEX reminders_user_status;
DROP INDEX customers_live_lunar;
DROP INDEX customers_live_birthday;
DROP INDEX customers_live_team;
DROP INDEX customers_live_manager;
