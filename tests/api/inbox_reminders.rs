//! The inbox (`/notifications`), the reminders list with done and snooze, and `/me/today`.

use crate::backend_tests;
use crate::helpers::TestApp;

async fn placeholder_inbox_is_empty_for_a_new_user(app: TestApp) {
    let m = app.login("M0001").await;
    let r = app
        .req(reqwest::Method::GET, "/api/v1/notifications/unread-count", Some(&m), None)
        .await
        .expect(200);
    assert!(r.body.is_object());
}

backend_tests!(placeholder_inbox_is_empty_for_a_new_user);
