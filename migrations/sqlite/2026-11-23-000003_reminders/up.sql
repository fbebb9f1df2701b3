-- Reminders and push: devices and preferences, the working-day calendar, reminders (unique per subject and
-- occasion), the inbox, the push outbox with leases, tasks and notices.

CREATE TABLE devices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id),
    session_id TEXT,
    provider TEXT NOT NULL,
    token TEXT NOT NULL,
    platform TEXT NOT NULL,
    app_version TEXT,
    locale TEXT,
    disabled_at TIMESTAMP,
    disabled_reason TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (provider, token)
);
CREATE INDEX devices_user ON devices(user_id);
CREATE INDEX devices_session ON devices(session_id);

-- One row per user who changed a default. `kinds` is JSON: {"customer_birthday": {"enabled": true,
-- "leads": [3, 0]}, ...}; minutes are local (Asia/Shanghai) minutes after midnight.
CREATE TABLE preferences (
    user_id BIGINT PRIMARY KEY NOT NULL REFERENCES users(id),
    kinds TEXT NOT NULL,
    quiet_start INTEGER NOT NULL,
    quiet_end INTEGER NOT NULL,
    language TEXT NOT NULL,
    digest_enabled BOOLEAN NOT NULL,
    digest_minute INTEGER NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Public holidays (working = false) and 调休 make-up working days (working = true); other days follow the
-- weekday.
CREATE TABLE calendar_days (
    day DATE PRIMARY KEY NOT NULL,
    working BOOLEAN NOT NULL,
    name TEXT NOT NULL,
    year INTEGER NOT NULL
);
CREATE INDEX calendar_days_year ON calendar_days(year);

-- One reminder per (kind, subject, occasion, lead), whoever runs the scheduler and however often; a task's
-- reminders are per assignee (the two partial unique indexes below).
CREATE TABLE reminders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id BIGINT NOT NULL,
    occasion_date DATE NOT NULL,
    lead_days INTEGER NOT NULL,
    fire_date DATE NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id),
    customer_id BIGINT,
    status TEXT NOT NULL,
    due_at TIMESTAMP NOT NULL,
    snoozed_until TIMESTAMP,
    notified_at TIMESTAMP,
    done_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX reminders_once ON reminders(kind, subject_type, subject_id, occasion_date, lead_days)
    WHERE subject_type <> 'task';
CREATE UNIQUE INDEX reminders_task_once ON reminders(kind, subject_id, occasion_date, lead_days, user_id)
    WHERE subject_type = 'task';
CREATE INDEX reminders_user_fire ON reminders(user_id, fire_date);
CREATE INDEX reminders_due ON reminders(status, due_at);
CREATE INDEX reminders_subject ON reminders(subject_type, subject_id);

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    link_type TEXT,
    link_id BIGINT,
    urgent BOOLEAN NOT NULL,
    reminder_id BIGINT,
    dedupe_key TEXT,
    deliver_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    read_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (dedupe_key)
);
CREATE INDEX notifications_user ON notifications(user_id, id);

-- One row per (notification, device): the dispatcher leases due rows, sends, and records the outcome.
CREATE TABLE push_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id BIGINT NOT NULL REFERENCES notifications(id),
    device_id BIGINT NOT NULL REFERENCES devices(id),
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_until TIMESTAMP,
    leased_by TEXT,
    last_error TEXT,
    provider_message_id TEXT,
    sent_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (notification_id, device_id)
);
CREATE INDEX push_outbox_due ON push_outbox(status, next_attempt_at);

CREATE TABLE tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    description TEXT,
    due_at TIMESTAMP,
    priority TEXT NOT NULL,
    customer_id BIGINT REFERENCES customers(id),
    created_by BIGINT NOT NULL REFERENCES users(id),
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX tasks_creator ON tasks(created_by);

CREATE TABLE task_assignees (
    task_id BIGINT NOT NULL REFERENCES tasks(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    status TEXT NOT NULL,
    done_at TIMESTAMP,
    PRIMARY KEY (task_id, user_id)
);
CREATE INDEX task_assignees_user ON task_assignees(user_id);

CREATE TABLE notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES orgs(id),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    published_by BIGINT NOT NULL REFERENCES users(id),
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE notice_recipients (
    notice_id BIGINT NOT NULL REFERENCES notices(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    read_at TIMESTAMP,
    PRIMARY KEY (notice_id, user_id)
);
CREATE INDEX notice_recipients_user ON notice_recipients(user_id);

-- What the scheduler's set-based inserts look up per occasion date.
CREATE INDEX customers_lunar ON customers(lunar_month, lunar_day);
CREATE INDEX customer_contacts_birthday_md ON customer_contacts(birthday_md);
CREATE INDEX customer_contacts_lunar ON customer_contacts(lunar_month, lunar_day);
CREATE INDEX visit_reports_next_visit ON visit_reports(next_visit_date);
