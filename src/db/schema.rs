//! Diesel table definitions, written for both backends with portable types only.
//! Ids are `BigInt`, instants are `Timestamp` holding UTC, money (later) is text decimal.
// @generated-style: keep in step with migrations/{sqlite,postgres}.

diesel::table! {
    orgs (id) {
        id -> BigInt,
        parent_id -> Nullable<BigInt>,
        code -> Text,
        name -> Text,
        kind -> Text,
        path -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        seq -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        employee_no -> Text,
        name -> Text,
        phone -> Nullable<Text>,
        role -> Text,
        org_id -> BigInt,
        grade -> Nullable<Text>,
        active -> Bool,
        password_hash -> Text,
        must_change_password -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        seq -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> BigInt,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_throttle (subject) {
        subject -> Text,
        failures -> Integer,
        window_start -> Timestamp,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        actor_id -> Nullable<BigInt>,
        action -> Text,
        entity -> Text,
        entity_id -> Text,
        org_path -> Text,
        at -> Timestamp,
        request_id -> Text,
        client_ip -> Nullable<Text>,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    sync_counter (id) {
        id -> Integer,
        value -> BigInt,
    }
}

diesel::table! {
    dictionaries (kind, code) {
        kind -> Text,
        code -> Text,
        label -> Text,
        active -> Bool,
        position -> Integer,
    }
}

diesel::table! {
    teams (id) {
        id -> BigInt,
        org_id -> BigInt,
        name -> Text,
        created_by -> BigInt,
        archived_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    team_members (team_id, user_id) {
        team_id -> BigInt,
        user_id -> BigInt,
        role -> Text,
    }
}

diesel::table! {
    customers (id) {
        id -> BigInt,
        kind -> Text,
        name -> Text,
        category -> Nullable<Text>,
        tier -> Nullable<Text>,
        industry -> Nullable<Text>,
        phone -> Nullable<Text>,
        id_number -> Nullable<Text>,
        birthday -> Nullable<Date>,
        birthday_md -> Nullable<Text>,
        lunar_month -> Nullable<Integer>,
        lunar_day -> Nullable<Integer>,
        lunar_leap -> Bool,
        gender -> Nullable<Text>,
        address -> Nullable<Text>,
        latitude -> Nullable<Double>,
        longitude -> Nullable<Double>,
        location_datum -> Nullable<Text>,
        traits -> Nullable<Text>,
        tags -> Text,
        status -> Text,
        manager_id -> BigInt,
        originator_id -> BigInt,
        team_id -> Nullable<BigInt>,
        archived_at -> Nullable<Timestamp>,
        seq -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    customer_contacts (id) {
        id -> BigInt,
        customer_id -> BigInt,
        name -> Text,
        title -> Nullable<Text>,
        phone -> Nullable<Text>,
        birthday -> Nullable<Date>,
        birthday_md -> Nullable<Text>,
        lunar_month -> Nullable<Integer>,
        lunar_day -> Nullable<Integer>,
        lunar_leap -> Bool,
        archived_at -> Nullable<Timestamp>,
        seq -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    holdings (id) {
        id -> BigInt,
        customer_id -> BigInt,
        product_type -> Text,
        product_name -> Text,
        amount_fen -> BigInt,
        open_date -> Nullable<Date>,
        maturity_date -> Nullable<Date>,
        rate -> Nullable<Text>,
        status -> Text,
        next_repayment_date -> Nullable<Date>,
        overdue -> Bool,
        archived_at -> Nullable<Timestamp>,
        seq -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    ownership (id) {
        id -> BigInt,
        customer_id -> BigInt,
        manager_id -> BigInt,
        effective_from -> Timestamp,
        effective_to -> Nullable<Timestamp>,
        reason -> Text,
        transfer_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    transfers (id) {
        id -> BigInt,
        customer_id -> BigInt,
        from_manager_id -> BigInt,
        to_manager_id -> BigInt,
        reason -> Text,
        status -> Text,
        proposed_by -> BigInt,
        decided_by -> Nullable<BigInt>,
        decided_at -> Nullable<Timestamp>,
        decision_note -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    customer_events (id) {
        id -> BigInt,
        customer_id -> BigInt,
        kind -> Text,
        ref_id -> Nullable<BigInt>,
        summary -> Text,
        actor_id -> Nullable<BigInt>,
        at -> Timestamp,
    }
}

diesel::table! {
    customer_notes (id) {
        id -> BigInt,
        customer_id -> BigInt,
        author_id -> BigInt,
        text -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    visits (id) {
        id -> BigInt,
        customer_id -> BigInt,
        manager_id -> BigInt,
        purpose -> Text,
        phone_time -> Timestamp,
        checked_in_at -> Timestamp,
        latitude -> Double,
        longitude -> Double,
        accuracy_m -> Double,
        datum -> Text,
        distance_m -> Nullable<Double>,
        flags -> Text,
        checked_out_at -> Nullable<Timestamp>,
        duration_secs -> Nullable<BigInt>,
        seq -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    visit_reports (visit_id) {
        visit_id -> BigInt,
        author_id -> BigInt,
        persons_met -> Text,
        summary -> Text,
        needs -> Nullable<Text>,
        outcome -> Nullable<Text>,
        next_visit_date -> Nullable<Date>,
        important_change -> Bool,
        important_change_text -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    visit_report_amendments (id) {
        id -> BigInt,
        visit_id -> BigInt,
        author_id -> BigInt,
        text -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    opportunities (id) {
        id -> BigInt,
        customer_id -> BigInt,
        manager_id -> BigInt,
        title -> Text,
        product_type -> Text,
        need -> Nullable<Text>,
        estimated_fen -> BigInt,
        probability -> Integer,
        expected_close_date -> Nullable<Date>,
        stage -> Text,
        lost_reason -> Nullable<Text>,
        landed_fen -> Nullable<BigInt>,
        source -> Text,
        source_visit_id -> Nullable<BigInt>,
        referral -> Nullable<Text>,
        seq -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    opportunity_history (id) {
        id -> BigInt,
        opportunity_id -> BigInt,
        from_stage -> Nullable<Text>,
        to_stage -> Text,
        actor_id -> BigInt,
        note -> Nullable<Text>,
        at -> Timestamp,
    }
}

diesel::table! {
    worklogs (id) {
        id -> BigInt,
        manager_id -> BigInt,
        log_date -> Date,
        content -> Text,
        visit_ids -> Text,
        review_mark -> Nullable<Text>,
        review_comment -> Nullable<Text>,
        reviewed_by -> Nullable<BigInt>,
        reviewed_at -> Nullable<Timestamp>,
        seq -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    plans (id) {
        id -> BigInt,
        manager_id -> BigInt,
        period -> Text,
        period_start -> Date,
        title -> Text,
        items -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (user_id, key) {
        user_id -> BigInt,
        key -> Text,
        request_hash -> Text,
        status -> Integer,
        body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    tombstones (id) {
        id -> BigInt,
        seq -> BigInt,
        entity -> Text,
        entity_id -> BigInt,
        manager_id -> Nullable<BigInt>,
        team_id -> Nullable<BigInt>,
        org_id -> Nullable<BigInt>,
        at -> Timestamp,
    }
}

diesel::table! {
    devices (id) {
        id -> BigInt,
        user_id -> BigInt,
        session_id -> Nullable<Text>,
        provider -> Text,
        token -> Text,
        platform -> Text,
        app_version -> Nullable<Text>,
        locale -> Nullable<Text>,
        disabled_at -> Nullable<Timestamp>,
        disabled_reason -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    preferences (user_id) {
        user_id -> BigInt,
        kinds -> Text,
        quiet_start -> Integer,
        quiet_end -> Integer,
        language -> Text,
        digest_enabled -> Bool,
        digest_minute -> Integer,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    calendar_days (day) {
        day -> Date,
        working -> Bool,
        name -> Text,
        year -> Integer,
    }
}

diesel::table! {
    reminders (id) {
        id -> BigInt,
        kind -> Text,
        subject_type -> Text,
        subject_id -> BigInt,
        occasion_date -> Date,
        lead_days -> Integer,
        fire_date -> Date,
        user_id -> BigInt,
        customer_id -> Nullable<BigInt>,
        status -> Text,
        due_at -> Timestamp,
        snoozed_until -> Nullable<Timestamp>,
        notified_at -> Nullable<Timestamp>,
        done_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    notifications (id) {
        id -> BigInt,
        user_id -> BigInt,
        kind -> Text,
        title -> Text,
        body -> Text,
        link_type -> Nullable<Text>,
        link_id -> Nullable<BigInt>,
        urgent -> Bool,
        reminder_id -> Nullable<BigInt>,
        dedupe_key -> Nullable<Text>,
        deliver_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        read_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    push_outbox (id) {
        id -> BigInt,
        notification_id -> BigInt,
        device_id -> BigInt,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        leased_by -> Nullable<Text>,
        last_error -> Nullable<Text>,
        provider_message_id -> Nullable<Text>,
        sent_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    tasks (id) {
        id -> BigInt,
        title -> Text,
        description -> Nullable<Text>,
        due_at -> Nullable<Timestamp>,
        priority -> Text,
        customer_id -> Nullable<BigInt>,
        created_by -> BigInt,
        org_id -> BigInt,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    task_assignees (task_id, user_id) {
        task_id -> BigInt,
        user_id -> BigInt,
        status -> Text,
        done_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    notices (id) {
        id -> BigInt,
        org_id -> BigInt,
        title -> Text,
        body -> Text,
        published_by -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    notice_recipients (notice_id, user_id) {
        notice_id -> BigInt,
        user_id -> BigInt,
        read_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(users -> orgs (org_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));

diesel::joinable!(team_members -> teams (team_id));
diesel::joinable!(customer_contacts -> customers (customer_id));
diesel::joinable!(holdings -> customers (customer_id));
diesel::joinable!(visits -> customers (customer_id));
diesel::joinable!(opportunities -> customers (customer_id));
diesel::joinable!(visit_reports -> visits (visit_id));
diesel::joinable!(push_outbox -> notifications (notification_id));
diesel::joinable!(push_outbox -> devices (device_id));
diesel::joinable!(task_assignees -> tasks (task_id));
diesel::joinable!(notice_recipients -> notices (notice_id));

diesel::allow_tables_to_appear_in_same_query!(
    orgs,
    users,
    sessions,
    refresh_tokens,
    login_throttle,
    audit_events,
    sync_counter,
    dictionaries,
    teams,
    team_members,
    customers,
    customer_contacts,
    holdings,
    ownership,
    transfers,
    customer_events,
    customer_notes,
    visits,
    visit_reports,
    visit_report_amendments,
    opportunities,
    opportunity_history,
    worklogs,
    plans,
    idempotency_keys,
    tombstones,
    devices,
    preferences,
    calendar_days,
    reminders,
    notifications,
    push_outbox,
    tasks,
    task_assignees,
    notices,
    notice_recipients,
);
