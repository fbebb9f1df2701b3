-- Guessing state is kept per subject: `no:<employee number as typed>` and `ip:<client address>`.
-- The rows are transient (15-minute windows), so none are carried over.
DELETE FROM login_throttle;
ALTER TABLE login_throttle RENAME COLUMN employee_no TO subject;
