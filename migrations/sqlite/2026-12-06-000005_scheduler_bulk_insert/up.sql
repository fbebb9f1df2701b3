-- PostgreSQL only (see its migration of the same name): there the scheduler's bulk insert dropped the
-- foreign-key trigger and an index. SQLite keeps its schema: its covering indexes already carry the rowid,
-- its foreign-key check is a b-tree probe, and a partial unique index cannot serve its lookups by subject
-- (the subject type is a bound parameter). Kept as a no-op so both backends list the same migrations.
SELECT 1;
