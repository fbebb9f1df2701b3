//! Demo data for newcomers: 总行 → 2 branches → 4 sub-branches, `admin`, leaders `L0001`–`L0004` and managers
//! `M0001`–`M0024`, all with the password `demo1234`. Loaded only into an empty database.

pub mod calendar;
pub mod field;
pub mod work;

use chrono::NaiveDateTime;

use crate::auth::password;
use crate::db::DbConn;
use crate::db::models::{NewOrg, NewUser};
use crate::db::repo::{orgs, users};
use crate::error::AppError;

/// The demo password of every demo user.
pub const DEMO_PASSWORD: &str = "demo1234";

/// (code, name) of an org.
type Named = (&'static str, &'static str);

const BRANCHES: [(&str, &str, [Named; 2]); 2] = [
    (
        "NJ",
        "南京分行",
        [("NJ-GL", "鼓楼支行"), ("NJ-XW", "玄武支行")],
    ),
    (
        "SZ",
        "苏州分行",
        [("SZ-GS", "姑苏支行"), ("SZ-YQ", "园区支行")],
    ),
];

const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙",
];
const GIVEN: [&str; 12] = [
    "伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "婷",
];

fn demo_name(i: usize) -> String {
    format!(
        "{}{}",
        SURNAMES[i % SURNAMES.len()],
        GIVEN[(i * 7 + 3) % GIVEN.len()]
    )
}

fn demo_phone(i: usize) -> String {
    format!("139{:08}", 10_000_000 + i * 7919)
}

fn org(
    parent: Option<&crate::db::models::Org>,
    code: &str,
    name: &str,
    kind: &str,
    now: NaiveDateTime,
) -> NewOrg {
    NewOrg {
        parent_id: parent.map(|p| p.id),
        code: code.into(),
        name: name.into(),
        kind: kind.into(),
        path: String::new(),
        created_at: now,
        updated_at: now,
    }
}

fn user(
    no: String,
    name: String,
    role: &str,
    org_id: i64,
    hash: &str,
    now: NaiveDateTime,
) -> NewUser {
    NewUser {
        phone: Some(demo_phone(
            no.bytes().map(usize::from).sum::<usize>() + no.len(),
        )),
        employee_no: no,
        name,
        role: role.into(),
        org_id,
        grade: (role == "manager").then(|| "manager".to_owned()),
        active: true,
        password_hash: hash.into(),
        must_change_password: false,
        created_at: now,
        updated_at: now,
    }
}

/// Loads the demo org tree and users into an empty database; returns false (and changes nothing) if any
/// org exists.
pub fn load(conn: &mut DbConn, now: NaiveDateTime) -> Result<bool, AppError> {
    use diesel::Connection;
    // One hash for all demo users: they share a password, and hashing 29 times would only slow start-up.
    let hash = password::hash(DEMO_PASSWORD)?;
    conn.transaction(|c| load_people(c, &hash, now))
}

/// Loads the whole demo — org tree, users and field work — in one transaction, only into an empty database.
pub fn load_with_field_work(
    conn: &mut DbConn,
    now: chrono::DateTime<chrono::Utc>,
    size: field::Size,
) -> Result<Option<usize>, AppError> {
    use chrono::SubsecRound;
    use diesel::Connection;
    let hash = password::hash(DEMO_PASSWORD)?;
    let now = now.trunc_subsecs(6);
    conn.transaction(|c| {
        if !load_people(c, &hash, now.naive_utc())? {
            return Ok(None);
        }
        let customers = field::load(c, now, size)?;
        work::load(c, now)?;
        Ok(Some(customers))
    })
}

fn load_people(c: &mut DbConn, hash: &str, now: NaiveDateTime) -> Result<bool, AppError> {
    {
        if orgs::any(c)? {
            return Ok(false);
        }
        let head = orgs::insert(c, org(None, "HO", "总行", "head_office", now), None)?;
        let mut people = vec![user(
            "admin".into(),
            "系统管理员".into(),
            "admin",
            head.id,
            hash,
            now,
        )];
        let mut sub_index = 0;
        for (code, name, subs) in BRANCHES {
            let branch = orgs::insert(c, org(Some(&head), code, name, "branch", now), Some(&head))?;
            for (sub_code, sub_name) in subs {
                let sub = orgs::insert(
                    c,
                    org(Some(&branch), sub_code, sub_name, "sub_branch", now),
                    Some(&branch),
                )?;
                sub_index += 1;
                let leader_no = format!("L{sub_index:04}");
                people.push(user(
                    leader_no,
                    demo_name(sub_index * 13),
                    "leader",
                    sub.id,
                    hash,
                    now,
                ));
                for k in 0..6 {
                    let m = (sub_index - 1) * 6 + k + 1;
                    people.push(user(
                        format!("M{m:04}"),
                        demo_name(m),
                        "manager",
                        sub.id,
                        hash,
                        now,
                    ));
                }
            }
        }
        users::insert_many(c, &people)?;
        calendar::load(c)?;
        Ok(true)
    }
}

/// Creates the first admin of an empty database with a random password, which the caller prints once.
pub fn bootstrap_admin(conn: &mut DbConn, now: NaiveDateTime) -> Result<Option<String>, AppError> {
    use diesel::Connection;
    let temporary = crate::auth::tokens::random_password();
    let hash = password::hash(&temporary)?;
    conn.transaction(|c| {
        if users::any(c)? {
            return Ok(None);
        }
        let head = if orgs::any(c)? {
            orgs::list(c, &root_scope(), None, None, 1)?
                .into_iter()
                .next()
        } else {
            None
        };
        let head = match head {
            Some(h) => h,
            None => orgs::insert(c, org(None, "HO", "总行", "head_office", now), None)?,
        };
        let mut admin = user(
            "admin".into(),
            "系统管理员".into(),
            "admin",
            head.id,
            &hash,
            now,
        );
        admin.phone = None;
        admin.must_change_password = true;
        users::insert(c, &admin)?;
        Ok(Some(temporary))
    })
}

fn root_scope() -> crate::auth::caller::Scope {
    crate::auth::caller::Scope {
        user_id: 0,
        org_id: 0,
        org_path: "/".into(),
        reach: crate::auth::caller::Reach::Subtree,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_and_phones_look_real() {
        assert_eq!(super::demo_name(0).chars().count(), 2);
        assert_eq!(super::demo_phone(5).len(), 11);
    }
}
