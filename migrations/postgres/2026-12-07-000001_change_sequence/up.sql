-- The change sequence behind delta sync, without a lock held through commit.
--
-- Before, every write took its number by updating the one `sync_counter` row, which kept sequence order equal
-- to commit order but held that row locked from the number until the commit's WAL flush: every write in the
-- database queued behind the one before it (measured: 630 check-ins/s). Now a write takes its number from a
-- sequence and marks it in flight with a transaction-level advisory lock (released after its commit is
-- visible, or at rollback). Sync reads only up to the settled number (`settled_change_seq`): the highest
-- number below every number still in flight, so a phone's token never passes a change that commits later.
--
-- Advisory locks are database-wide, but the sequence belongs to a schema, and one database may hold several
-- schemas of this application (the tests run each in a schema of their own): every key therefore carries the
-- sequence's oid, so one schema's writes in flight never hold back another schema's readers. A number in
-- flight is the two-int key (sequence oid, the number's low 32 bits); the gate that makes taking a number and
-- marking it one step for the reader is the one-bigint key (1986622315 << 32 | sequence oid) — a one-bigint
-- key shows as objsubid 1 in pg_locks, so the two kinds never meet. The per-manager visit lock
-- (`visits::lock_manager`) is the two-int class 1986622313; an oid never reaches it in practice.
-- The sequence must not cache values in a backend (CACHE 1): the reader takes `last_value` as handed out.
CREATE SEQUENCE change_seq AS BIGINT MINVALUE 1 CACHE 1;
SELECT setval('change_seq', (SELECT value FROM sync_counter WHERE id = 1) + 1, false);

CREATE FUNCTION take_change_seq() RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    k BIGINT := 'change_seq'::regclass::oid::BIGINT;
    gate BIGINT := (1986622315::BIGINT << 32) | k;
    s BIGINT;
BEGIN
    PERFORM pg_advisory_lock_shared(gate);
    BEGIN
        s := nextval('change_seq');
        PERFORM pg_advisory_xact_lock(k::BIT(32)::INT, s::BIT(32)::INT);
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_advisory_unlock_shared(gate);
        RAISE;
    END;
    PERFORM pg_advisory_unlock_shared(gate);
    RETURN s;
END
$$;

CREATE FUNCTION settled_change_seq() RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    k BIGINT := 'change_seq'::regclass::oid::BIGINT;
    gate BIGINT := (1986622315::BIGINT << 32) | k;
    last BIGINT;
    low BIGINT;
BEGIN
    PERFORM pg_advisory_lock(gate);
    BEGIN
        SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END INTO last FROM change_seq;
        SELECT min(last - ((last - objid::BIGINT) & 4294967295)) INTO low
            FROM pg_locks
            WHERE locktype = 'advisory' AND classid::BIGINT = k AND objsubid = 2
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database());
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_advisory_unlock(gate);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(gate);
    RETURN COALESCE(low - 1, last);
END
$$;
