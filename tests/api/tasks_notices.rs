//! Tasks (`/tasks`) and notices (`/notices`).

use crate::backend_tests;
use crate::helpers::TestApp;

async fn placeholder_tasks_list_answers(app: TestApp) {
    let m = app.login("M0001").await;
    app.req(reqwest::Method::GET, "/api/v1/tasks", Some(&m), None)
        .await
        .expect(200);
}

backend_tests!(placeholder_tasks_list_answers);
