//! The demo's leader work: a task from each sub-branch leader to their managers (one due in two days, one
//! overdue for the first manager) and a notice from head office, with the notifications they raise — so
//! a newcomer's inbox, `/me/today` and the task screens have something in them.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::repo::notices;
use crate::db::repo::notifications::{Planned, notify};
use crate::db::repo::tasks::{self, NewTask};
use crate::db::schema::{orgs, users};
use crate::domain::calendar::local_date;
use crate::domain::reminders::{Kind, local_instant};

/// Writes the tasks and the notice; returns how many tasks.
pub fn load(c: &mut DbConn, now: DateTime<Utc>) -> QueryResult<usize> {
    let stamp = now.naive_utc();
    let today = local_date(now);
    let leaders: Vec<(i64, i64)> = users::table
        .filter(users::role.eq("leader"))
        .order(users::id)
        .select((users::id, users::org_id))
        .load(c)?;
    let mut planned = Vec::new();
    let mut n = 0;
    for (leader, org) in leaders {
        let team: Vec<i64> = users::table
            .filter(users::org_id.eq(org))
            .filter(users::role.eq("manager"))
            .order(users::id)
            .select(users::id)
            .load(c)?;
        let Some(&first) = team.first() else { continue };
        let jobs = [
            (
                "完成本周存量客户回访",
                "对名下到期客户逐一电话或上门回访，并在拜访记录中登记",
                local_instant(today + Duration::days(2), 17, 0),
                "high",
                team.clone(),
            ),
            (
                "提交上月营销活动总结",
                "按支行模板填写，交支行长审阅",
                local_instant(today - Duration::days(1), 17, 0),
                "normal",
                vec![first],
            ),
        ];
        for (title, description, due, priority, assignees) in jobs {
            let id = tasks::insert(
                c,
                &NewTask {
                    title: title.into(),
                    description: Some(description.into()),
                    due_at: Some(due.naive_utc()),
                    priority: priority.into(),
                    customer_id: None,
                    created_by: leader,
                    org_id: org,
                    status: "open".into(),
                    created_at: stamp,
                    updated_at: stamp,
                },
                &assignees,
            )?;
            n += 1;
            let told = Planned::events(
                assignees,
                Kind::TaskAssigned,
                "task_assigned",
                ("task", id),
                stamp,
            );
            planned.extend(told.into_iter().map(|p| Planned { push: false, ..p }));
        }
    }
    let head: Option<(i64, String)> = orgs::table
        .filter(orgs::parent_id.is_null())
        .select((orgs::id, orgs::path))
        .first(c)
        .optional()?;
    let admin: Option<i64> = users::table
        .filter(users::role.eq("admin"))
        .select(users::id)
        .first(c)
        .optional()?;
    if let (Some((org, path)), Some(admin)) = (head, admin) {
        let (id, recipients) = notices::publish(
            c,
            &path,
            org,
            "关于做好年末存款营销工作的通知",
            "各支行：年末将至，请客户经理梳理名下到期存款与理财客户，提前做好续存方案，按周报送进展。",
            admin,
            stamp,
        )?;
        let told = Planned::events(recipients, Kind::Notice, "notice", ("notice", id), stamp);
        planned.extend(told.into_iter().map(|p| Planned { push: false, ..p }));
    }
    notify(c, &planned, stamp)?;
    Ok(n)
}
