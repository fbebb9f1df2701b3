-- A version of each user and org row, taken from the change sequence (`sync_counter`) on every write, so that
-- `(id, version)` names one content of a user as the user list shows it (with their org): the list keeps
-- rendered rows by it (see `api::rendered`). Rows written before this migration start at 0; their next
-- write takes a real version.
ALTER TABLE users ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orgs ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
