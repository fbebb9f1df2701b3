UPDATE sync_counter SET value = GREATEST(value, (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM change_seq)) WHERE id = 1;
DROP FUNCTION settled_change_seq();
DROP FUNCTION take_change_seq();
DROP SEQUENCE change_seq;
