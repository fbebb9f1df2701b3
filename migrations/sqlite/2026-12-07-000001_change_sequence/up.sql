-- PostgreSQL only (a sequence with advisory locks for the change numbers): SQLite's one writer commits in
-- number order and keeps `sync_counter`. Kept here so both backends list the same migrations.
SELECT 1;
