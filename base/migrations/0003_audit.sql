-- The audit log: who did what, from where, to what, when, and how it ended. Append-only and
-- hash-chained: each entry's hash covers the previous entry's hash and its own fields, computed here
-- by a trigger in the inserting transaction, so an entry exists exactly when the action it records
-- committed. `liandong audit verify` recomputes the chain independently (base/audit.py).

CREATE TABLE audit_log (
    seq       bigint PRIMARY KEY,                 -- 1, 2, 3 … without gaps: a gap is a removed entry
    at        timestamptz NOT NULL,
    actor_id  integer,                            -- null for the public and the system
    actor     text NOT NULL,                      -- the user name at the time, "public" or "system"
    address   text NOT NULL,                      -- the client's address, '' for the system
    action    text NOT NULL,                      -- "session.login", "video.playback", "account.create" …
    target    text NOT NULL,                      -- "incident:12", "camera:3", "account:7", or ''
    outcome   text NOT NULL CHECK (outcome IN ('ok', 'refused', 'failed')),
    details   jsonb NOT NULL,
    prev_hash bytea NOT NULL,
    hash      bytea NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_target ON audit_log (target, seq);
CREATE INDEX audit_log_at ON audit_log (at);

-- The chain's head: its row lock serialises audited transactions from their audit insert to their
-- commit, which is what gives the chain one order.
CREATE TABLE audit_head (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq      bigint NOT NULL,
    hash     bytea NOT NULL
);
INSERT INTO audit_head VALUES (true, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- Signed checkpoints of the head, so that cutting entries off the end is detectable too.
CREATE TABLE audit_anchors (
    seq         bigint PRIMARY KEY,
    hash        bytea NOT NULL,
    anchored_at timestamptz NOT NULL,
    signature   bytea NOT NULL                    -- Ed25519 over base.audit.anchor_message(...)
);

-- The text an entry's hash covers; base/audit.py builds the same text to verify.
CREATE FUNCTION audit_text(e audit_log) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT concat_ws(chr(31), e.seq::text, (extract(epoch FROM e.at) * 1000000)::bigint::text,
                     coalesce(e.actor_id::text, ''), e.actor, e.address, e.action, e.target, e.outcome,
                     e.details::text)
$$;

CREATE FUNCTION audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head audit_head%ROWTYPE;
BEGIN
    SELECT * INTO head FROM audit_head FOR UPDATE;
    NEW.seq := head.seq + 1;
    NEW.at := clock_timestamp();              -- after the lock, so time follows the chain's order
    NEW.prev_hash := head.hash;
    NEW.hash := sha256(head.hash || convert_to(audit_text(NEW), 'UTF8'));
    UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_chain();

CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The head moves only from audit_chain (one trigger deep); everything else is refused.
    IF TG_TABLE_NAME = 'audit_head' AND TG_OP = 'UPDATE' AND pg_trigger_depth() > 1 THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();
CREATE TRIGGER audit_head_guarded BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_refuse();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();
CREATE TRIGGER audit_anchors_append_only BEFORE UPDATE OR DELETE ON audit_anchors
    FOR EACH ROW EXECUTE FUNCTION audit_refuse();
CREATE TRIGGER audit_anchors_no_truncate BEFORE TRUNCATE ON audit_anchors
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();
