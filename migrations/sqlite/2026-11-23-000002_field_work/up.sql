-- Field work: customers and their contacts, holdings, teams, ownership and transfers, the customer archive,
-- visits with reports, opportunities, work logs and plans, idempotent creates, and sync bookkeeping.

-- One row: the change sequence. Every write transaction bumps it once and stamps the rows it touches, so
-- the order of `seq` is the order of commits (the row lock serialises the bump) and `sync` never misses one.
CREATE TABLE sync_counter (
    id INTEGER PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
INSERT INTO sync_counter (id, value) VALUES (1, 0);

-- Admin-managed lists: customer_category, customer_tier, product_type.
CREATE TABLE dictionaries (
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    label TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT 1,
    position INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, code)
);
INSERT INTO dictionaries (kind, code, label, position) VALUES
    ('customer_category', 'retail', '个人零售客户', 1),
    ('customer_category', 'private_banking', '私人银行客户', 2),
    ('customer_category', 'small_business', '小微企业客户', 3),
    ('customer_category', 'corporate', '公司客户', 4),
    ('customer_tier', 'strategic', '战略客户', 1),
    ('customer_tier', 'key', '重点客户', 2),
    ('customer_tier', 'ordinary', '普通客户', 3),
    ('product_type', 'time_deposit', '定期存款', 1),
    ('product_type', 'large_cd', '大额存单', 2),
    ('product_type', 'notice_deposit', '通知存款', 3),
    ('product_type', 'wealth', '理财产品', 4),
    ('product_type', 'fund', '基金', 5),
    ('product_type', 'insurance', '保险', 6),
    ('product_type', 'loan', '贷款', 7),
    ('product_type', 'acceptance_bill', '承兑汇票', 8);

CREATE TABLE teams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    created_by BIGINT NOT NULL REFERENCES users(id),
    archived_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX teams_org ON teams(org_id);

CREATE TABLE team_members (
    team_id BIGINT NOT NULL REFERENCES teams(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    role TEXT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members(user_id);

CREATE TABLE customers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    category TEXT,
    tier TEXT,
    industry TEXT,
    phone TEXT,
    id_number TEXT,
    birthday DATE,
    birthday_md TEXT,
    lunar_month INTEGER,
    lunar_day INTEGER,
    lunar_leap BOOLEAN NOT NULL DEFAULT 0,
    gender TEXT,
    address TEXT,
    latitude DOUBLE,
    longitude DOUBLE,
    location_datum TEXT,
    traits TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL,
    manager_id BIGINT NOT NULL REFERENCES users(id),
    originator_id BIGINT NOT NULL REFERENCES users(id),
    team_id BIGINT REFERENCES teams(id),
    archived_at TIMESTAMP,
    seq BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX customers_manager ON customers(manager_id, id);
CREATE INDEX customers_team ON customers(team_id);
CREATE INDEX customers_seq ON customers(seq);
CREATE INDEX customers_birthday_md ON customers(birthday_md);

CREATE TABLE customer_contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    name TEXT NOT NULL,
    title TEXT,
    phone TEXT,
    birthday DATE,
    birthday_md TEXT,
    lunar_month INTEGER,
    lunar_day INTEGER,
    lunar_leap BOOLEAN NOT NULL DEFAULT 0,
    archived_at TIMESTAMP,
    seq BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX customer_contacts_customer ON customer_contacts(customer_id);
CREATE INDEX customer_contacts_seq ON customer_contacts(seq);

CREATE TABLE holdings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    product_type TEXT NOT NULL,
    product_name TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    open_date DATE,
    maturity_date DATE,
    rate TEXT,
    status TEXT NOT NULL,
    next_repayment_date DATE,
    overdue BOOLEAN NOT NULL DEFAULT 0,
    archived_at TIMESTAMP,
    seq BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX holdings_customer ON holdings(customer_id);
CREATE INDEX holdings_maturity ON holdings(maturity_date);
CREATE INDEX holdings_repayment ON holdings(next_repayment_date);
CREATE INDEX holdings_seq ON holdings(seq);

-- Who owned a customer when: performance is attributed by it.
CREATE TABLE ownership (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    manager_id BIGINT NOT NULL REFERENCES users(id),
    effective_from TIMESTAMP NOT NULL,
    effective_to TIMESTAMP,
    reason TEXT NOT NULL,
    transfer_id BIGINT
);
CREATE INDEX ownership_customer ON ownership(customer_id);

CREATE TABLE transfers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    from_manager_id BIGINT NOT NULL REFERENCES users(id),
    to_manager_id BIGINT NOT NULL REFERENCES users(id),
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    proposed_by BIGINT NOT NULL REFERENCES users(id),
    decided_by BIGINT REFERENCES users(id),
    decided_at TIMESTAMP,
    decision_note TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX transfers_customer ON transfers(customer_id);

-- The customer archive (timeline): append-only.
CREATE TABLE customer_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    kind TEXT NOT NULL,
    ref_id BIGINT,
    summary TEXT NOT NULL,
    actor_id BIGINT,
    at TIMESTAMP NOT NULL
);
CREATE INDEX customer_events_customer ON customer_events(customer_id, id);

CREATE TABLE customer_notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    author_id BIGINT NOT NULL REFERENCES users(id),
    text TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX customer_notes_customer ON customer_notes(customer_id);

CREATE TABLE visits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    manager_id BIGINT NOT NULL REFERENCES users(id),
    purpose TEXT NOT NULL,
    phone_time TIMESTAMP NOT NULL,
    checked_in_at TIMESTAMP NOT NULL,
    latitude DOUBLE NOT NULL,
    longitude DOUBLE NOT NULL,
    accuracy_m DOUBLE NOT NULL,
    datum TEXT NOT NULL,
    distance_m DOUBLE,
    flags TEXT NOT NULL,
    checked_out_at TIMESTAMP,
    duration_secs BIGINT,
    seq BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX visits_manager ON visits(manager_id, checked_in_at);
-- A manager's open visit (at most one), found without reading their history.
CREATE INDEX visits_open ON visits(manager_id) WHERE checked_out_at IS NULL;
CREATE INDEX visits_customer ON visits(customer_id);
CREATE INDEX visits_seq ON visits(seq);

CREATE TABLE visit_reports (
    visit_id BIGINT PRIMARY KEY NOT NULL REFERENCES visits(id),
    author_id BIGINT NOT NULL REFERENCES users(id),
    persons_met TEXT NOT NULL,
    summary TEXT NOT NULL,
    needs TEXT,
    outcome TEXT,
    next_visit_date DATE,
    important_change BOOLEAN NOT NULL DEFAULT 0,
    important_change_text TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE visit_report_amendments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    visit_id BIGINT NOT NULL REFERENCES visits(id),
    author_id BIGINT NOT NULL REFERENCES users(id),
    text TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX visit_report_amendments_visit ON visit_report_amendments(visit_id);

CREATE TABLE opportunities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    manager_id BIGINT NOT NULL REFERENCES users(id),
    title TEXT NOT NULL,
    product_type TEXT NOT NULL,
    need TEXT,
    estimated_fen BIGINT NOT NULL,
    probability INTEGER NOT NULL,
    expected_close_date DATE,
    stage TEXT NOT NULL,
    lost_reason TEXT,
    landed_fen BIGINT,
    source TEXT NOT NULL,
    source_visit_id BIGINT REFERENCES visits(id),
    referral TEXT,
    seq BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX opportunities_manager ON opportunities(manager_id);
CREATE INDEX opportunities_customer ON opportunities(customer_id);
CREATE INDEX opportunities_seq ON opportunities(seq);

CREATE TABLE opportunity_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    opportunity_id BIGINT NOT NULL REFERENCES opportunities(id),
    from_stage TEXT,
    to_stage TEXT NOT NULL,
    actor_id BIGINT NOT NULL REFERENCES users(id),
    note TEXT,
    at TIMESTAMP NOT NULL
);
CREATE INDEX opportunity_history_opportunity ON opportunity_history(opportunity_id);

CREATE TABLE worklogs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    manager_id BIGINT NOT NULL REFERENCES users(id),
    log_date DATE NOT NULL,
    content TEXT NOT NULL,
    visit_ids TEXT NOT NULL DEFAULT '[]',
    review_mark TEXT,
    review_comment TEXT,
    reviewed_by BIGINT REFERENCES users(id),
    reviewed_at TIMESTAMP,
    seq BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (manager_id, log_date)
);
CREATE INDEX worklogs_seq ON worklogs(seq);

CREATE TABLE plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    manager_id BIGINT NOT NULL REFERENCES users(id),
    period TEXT NOT NULL,
    period_start DATE NOT NULL,
    title TEXT NOT NULL,
    items TEXT NOT NULL DEFAULT '[]',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX plans_manager ON plans(manager_id, period_start);

-- Offline-safe creates: the first answer to (user, key) is replayed for every retry.
CREATE TABLE idempotency_keys (
    user_id BIGINT NOT NULL REFERENCES users(id),
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, key)
);

-- What left someone's view (archived, deleted, moved away), for delta sync: who could see it before.
CREATE TABLE tombstones (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq BIGINT NOT NULL,
    entity TEXT NOT NULL,
    entity_id BIGINT NOT NULL,
    manager_id BIGINT,
    team_id BIGINT,
    org_id BIGINT,
    at TIMESTAMP NOT NULL
);
CREATE INDEX tombstones_seq ON tombstones(seq);
