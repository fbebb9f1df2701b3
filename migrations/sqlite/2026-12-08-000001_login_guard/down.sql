DELETE FROM login_throttle;
ALTER TABLE login_throttle RENAME COLUMN subject TO employee_no;
