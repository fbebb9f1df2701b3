//! Demo field work: about 5,000 customers over the 24 demo managers with realistic names, phones and
//! birthdays (some today, some in 3 days, some on 29 February, some lunar), holdings maturing in the next
//! 1–30 days, loans falling due or overdue, a few customer teams, and visits and opportunities over the last
//! 90 days. Deterministic (seeded), so every newcomer sees the same demo.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::db::DbConn;
use crate::db::models::NewCustomer;
use crate::db::repo::changes;
use crate::db::schema::{
    customers, holdings, opportunities, ownership, team_members, teams, users, visits,
};
use crate::domain::calendar::{local_date, month_day};
use crate::domain::geo::{self, FlagRules, Point};

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
    "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建华", "志强", "文", "海燕", "晓东",
    "雪梅", "子涵", "浩然", "欣怡", "宇轩", "梓萱", "俊杰",
];
const COMPANIES: &[&str] = &[
    "科技",
    "贸易",
    "建设",
    "医药",
    "物流",
    "食品",
    "纺织",
    "电子",
    "新材料",
    "文化传媒",
];
const CITIES: [(&str, f64, f64); 2] = [("南京", 32.0603, 118.7969), ("苏州", 31.2989, 120.5853)];
const PRODUCTS: &[(&str, &str)] = &[
    ("time_deposit", "三年期定期存款"),
    ("large_cd", "大额存单2026年第8期"),
    ("notice_deposit", "七天通知存款"),
    ("wealth", "稳健理财180天"),
    ("fund", "沪深300指数基金"),
    ("insurance", "年金保险"),
    ("loan", "个人经营贷款"),
    ("acceptance_bill", "银行承兑汇票"),
];

/// How much to generate.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Customers per manager (the demo uses 208: about 5,000 in all).
    pub customers_per_manager: usize,
}

fn phone(rng: &mut StdRng) -> String {
    let prefix = ["138", "139", "137", "150", "151", "186", "188", "135"][rng.random_range(0..8)];
    format!("{prefix}{:08}", rng.random_range(0..100_000_000u32))
}

fn id_number(rng: &mut StdRng, birthday: NaiveDate) -> String {
    let area = ["320102", "320106", "320508", "320571"][rng.random_range(0..4)];
    let body = format!(
        "{area}{}{:03}",
        birthday.format("%Y%m%d"),
        rng.random_range(0..1000)
    );
    // ISO 7064 MOD 11-2 check digit, as on a real PRC ID card.
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(weights)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    format!("{body}{check}")
}

fn birthday(rng: &mut StdRng, i: usize, today: NaiveDate) -> NaiveDate {
    let year = rng.random_range(1955..2002);
    let fallback = NaiveDate::from_ymd_opt(year, 6, 15).unwrap_or(today);
    match i % 40 {
        // Some today, some in three days, some on 29 February (a leap year of birth).
        0 => NaiveDate::from_ymd_opt(year, today.month(), today.day()).unwrap_or(fallback),
        1 => {
            let d = today + Duration::days(3);
            NaiveDate::from_ymd_opt(year, d.month(), d.day()).unwrap_or(fallback)
        }
        2 => NaiveDate::from_ymd_opt(1988 + 4 * rng.random_range(0..3), 2, 29).unwrap_or(fallback),
        _ => NaiveDate::from_ymd_opt(year, rng.random_range(1..=12), rng.random_range(1..=28))
            .unwrap_or(fallback),
    }
}

struct Manager {
    id: i64,
    city: usize,
}

fn managers(c: &mut DbConn) -> QueryResult<Vec<Manager>> {
    let rows: Vec<(i64, String)> = users::table
        .filter(users::role.eq("manager"))
        .order(users::id)
        .select((users::id, users::employee_no))
        .load(c)?;
    // M0001–M0012 work in 南京, M0013–M0024 in 苏州.
    Ok(rows
        .into_iter()
        .map(|(id, no)| Manager {
            id,
            city: usize::from(no.as_str() > "M0012"),
        })
        .collect())
}

fn customer(
    rng: &mut StdRng,
    i: usize,
    m: &Manager,
    today: NaiveDate,
    seq: i64,
    now: NaiveDateTime,
) -> NewCustomer {
    let corporate = i % 9 == 4;
    let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
    let (city, lat, lon) = CITIES[m.city];
    let name = if corporate {
        format!(
            "{city}{surname}氏{}有限公司",
            COMPANIES[rng.random_range(0..COMPANIES.len())]
        )
    } else {
        format!("{surname}{}", GIVEN[rng.random_range(0..GIVEN.len())])
    };
    let bday = (!corporate).then(|| birthday(rng, i, today));
    let lunar =
        (!corporate && i % 10 == 7).then(|| (rng.random_range(1..=12), rng.random_range(1..=29)));
    let tier = ["strategic", "key", "ordinary", "ordinary", "ordinary"][rng.random_range(0..5)];
    NewCustomer {
        kind: if corporate { "corporate" } else { "individual" }.into(),
        name,
        category: Some(
            if corporate {
                "corporate"
            } else {
                ["retail", "private_banking"][i % 2]
            }
            .into(),
        ),
        tier: Some(tier.into()),
        industry: corporate.then(|| "制造业".to_owned()),
        phone: Some(phone(rng)),
        id_number: bday.map(|b| id_number(rng, b)),
        birthday: bday,
        birthday_md: bday.map(month_day),
        lunar_month: lunar.map(|l| l.0),
        lunar_day: lunar.map(|l| l.1),
        lunar_leap: false,
        gender: (!corporate).then(|| ["female", "male"][i % 2].to_owned()),
        address: Some(format!(
            "{city}市{}路{}号",
            ["中山", "汉中", "人民", "干将", "星湖"][i % 5],
            1 + i % 300
        )),
        latitude: Some(lat + rng.random_range(-0.08..0.08)),
        longitude: Some(lon + rng.random_range(-0.08..0.08)),
        location_datum: Some("wgs84".into()),
        traits: i
            .is_multiple_of(6)
            .then(|| "喜欢喝茶，周末常去紫金山".to_owned()),
        tags: if i.is_multiple_of(5) {
            r#"["代发工资"]"#
        } else {
            "[]"
        }
        .into(),
        status: "active".into(),
        manager_id: m.id,
        originator_id: m.id,
        team_id: None,
        seq,
        created_at: now,
        updated_at: now,
    }
}

/// Inserts the demo field work (customers and all that hangs off them). Call inside the demo transaction.
pub fn load(c: &mut DbConn, now: DateTime<Utc>, size: Size) -> QueryResult<usize> {
    let mut rng = StdRng::seed_from_u64(20_261_123);
    let stamp = now.naive_utc();
    let today = local_date(now);
    let seq = changes::bump(c)?;
    let managers = managers(c)?;
    let mut rows = Vec::new();
    for (mi, m) in managers.iter().enumerate() {
        for k in 0..size.customers_per_manager {
            rows.push(customer(
                &mut rng,
                mi * size.customers_per_manager + k,
                m,
                today,
                seq,
                stamp,
            ));
        }
    }
    for chunk in rows.chunks(400) {
        let q = diesel::insert_into(customers::table).values(chunk);
        crate::per_backend!(&mut *c, |x| q.execute(x))?;
    }
    let ids: Vec<(i64, i64, Option<f64>, Option<f64>)> = customers::table
        .order(customers::id)
        .select((
            customers::id,
            customers::manager_id,
            customers::latitude,
            customers::longitude,
        ))
        .load(c)?;
    ownership_rows(c, &ids, stamp)?;
    holdings_rows(c, &mut rng, &ids, today, seq, stamp)?;
    teams_rows(c, &managers, &ids, stamp)?;
    visits_and_opportunities(c, &mut rng, &ids, now, seq)?;
    Ok(ids.len())
}

fn ownership_rows(
    c: &mut DbConn,
    ids: &[(i64, i64, Option<f64>, Option<f64>)],
    now: NaiveDateTime,
) -> QueryResult<()> {
    let rows: Vec<_> = ids
        .iter()
        .map(|(id, m, _, _)| {
            (
                ownership::customer_id.eq(*id),
                ownership::manager_id.eq(*m),
                ownership::effective_from.eq(now),
                ownership::reason.eq("originated"),
            )
        })
        .collect();
    for chunk in rows.chunks(1000) {
        let q = diesel::insert_into(ownership::table).values(chunk);
        crate::per_backend!(&mut *c, |x| q.execute(x))?;
    }
    Ok(())
}

type HoldingRow = (
    diesel::dsl::Eq<holdings::customer_id, i64>,
    diesel::dsl::Eq<holdings::product_type, &'static str>,
    diesel::dsl::Eq<holdings::product_name, &'static str>,
    diesel::dsl::Eq<holdings::amount_fen, i64>,
    diesel::dsl::Eq<holdings::open_date, Option<NaiveDate>>,
    diesel::dsl::Eq<holdings::maturity_date, Option<NaiveDate>>,
    diesel::dsl::Eq<holdings::rate, Option<String>>,
    diesel::dsl::Eq<holdings::status, &'static str>,
    diesel::dsl::Eq<holdings::next_repayment_date, Option<NaiveDate>>,
    diesel::dsl::Eq<holdings::overdue, bool>,
    diesel::dsl::Eq<holdings::seq, i64>,
    diesel::dsl::Eq<holdings::created_at, NaiveDateTime>,
    diesel::dsl::Eq<holdings::updated_at, NaiveDateTime>,
);

fn holding(
    rng: &mut StdRng,
    customer: i64,
    today: NaiveDate,
    seq: i64,
    now: NaiveDateTime,
) -> HoldingRow {
    let (ptype, pname) = PRODUCTS[rng.random_range(0..PRODUCTS.len())];
    let open = today - Duration::days(rng.random_range(30..1000));
    let is_loan = ptype == "loan";
    // Maturities 1–30 days ahead for most; loans fall due soon or are overdue.
    let maturity = today + Duration::days(rng.random_range(1..=30));
    let repayment = is_loan.then(|| today + Duration::days(rng.random_range(-5..=10)));
    let overdue = repayment.is_some_and(|d| d < today);
    let amount = rng.random_range(1_000_000..300_000_000i64) / 100 * 100;
    (
        holdings::customer_id.eq(customer),
        holdings::product_type.eq(ptype),
        holdings::product_name.eq(pname),
        holdings::amount_fen.eq(amount),
        holdings::open_date.eq(Some(open)),
        holdings::maturity_date.eq(Some(maturity)),
        holdings::rate.eq(Some(format!(
            "{}.{:02}",
            rng.random_range(1..5),
            rng.random_range(0..100)
        ))),
        holdings::status.eq("active"),
        holdings::next_repayment_date.eq(repayment),
        holdings::overdue.eq(overdue),
        holdings::seq.eq(seq),
        holdings::created_at.eq(now),
        holdings::updated_at.eq(now),
    )
}

fn holdings_rows(
    c: &mut DbConn,
    rng: &mut StdRng,
    ids: &[(i64, i64, Option<f64>, Option<f64>)],
    today: NaiveDate,
    seq: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let mut rows = Vec::new();
    for (i, (id, ..)) in ids.iter().enumerate() {
        for _ in 0..(i % 3) {
            rows.push(holding(rng, *id, today, seq, now));
        }
    }
    for chunk in rows.chunks(500) {
        let q = diesel::insert_into(holdings::table).values(chunk);
        crate::per_backend!(&mut *c, |x| q.execute(x))?;
    }
    Ok(())
}

fn teams_rows(
    c: &mut DbConn,
    managers: &[Manager],
    ids: &[(i64, i64, Option<f64>, Option<f64>)],
    now: NaiveDateTime,
) -> QueryResult<()> {
    // One team per sub-branch: its leader and the first three managers; ten of the first manager's customers.
    let leaders: Vec<(i64, i64)> = users::table
        .filter(users::role.eq("leader"))
        .order(users::id)
        .select((users::id, users::org_id))
        .load(c)?;
    for (k, (leader, org)) in leaders.iter().enumerate() {
        let team: i64 = diesel::insert_into(teams::table)
            .values((
                teams::org_id.eq(org),
                teams::name.eq(format!("重点客户服务小组{}", k + 1)),
                teams::created_by.eq(leader),
                teams::created_at.eq(now),
                teams::updated_at.eq(now),
            ))
            .returning(teams::id)
            .get_result(c)?;
        let members: Vec<(i64, &str)> = std::iter::once((*leader, "leader"))
            .chain(
                managers
                    .iter()
                    .skip(k * 6)
                    .take(3)
                    .map(|m| (m.id, "relationship_manager")),
            )
            .collect();
        for (user, role) in members {
            diesel::insert_into(team_members::table)
                .values((
                    team_members::team_id.eq(team),
                    team_members::user_id.eq(user),
                    team_members::role.eq(role),
                ))
                .execute(c)?;
        }
        if let Some(first) = managers.get(k * 6) {
            let mine: Vec<i64> = ids
                .iter()
                .filter(|r| r.1 == first.id)
                .take(10)
                .map(|r| r.0)
                .collect();
            diesel::update(customers::table.filter(customers::id.eq_any(mine)))
                .set(customers::team_id.eq(team))
                .execute(c)?;
        }
    }
    Ok(())
}

fn visits_and_opportunities(
    c: &mut DbConn,
    rng: &mut StdRng,
    ids: &[(i64, i64, Option<f64>, Option<f64>)],
    now: DateTime<Utc>,
    seq: i64,
) -> QueryResult<()> {
    let stages = [
        "lead",
        "qualified",
        "proposal",
        "negotiation",
        "won",
        "lost",
    ];
    for (i, (customer, manager, lat, lon)) in ids.iter().enumerate().filter(|(i, _)| i % 8 == 0) {
        let (Some(lat), Some(lon)) = (lat, lon) else {
            continue;
        };
        // Check-ins on working hours of the last 90 days, near the customer.
        let when = now
            - Duration::days(rng.random_range(1..90))
            - Duration::minutes(rng.random_range(0..600));
        let at = Point {
            lat: lat + rng.random_range(-0.002..0.002),
            lon: lon + rng.random_range(-0.002..0.002),
        };
        let check = geo::CheckIn {
            at,
            accuracy_m: rng.random_range(5.0..60.0),
            phone_time: when,
            server_time: when,
            customer: Some(Point {
                lat: *lat,
                lon: *lon,
            }),
            previous: None,
        };
        let (distance, flags) = geo::assess(&check, &FlagRules::default());
        let stamp = when.naive_utc();
        let visit: i64 = diesel::insert_into(visits::table)
            .values((
                visits::customer_id.eq(customer),
                visits::manager_id.eq(manager),
                visits::purpose.eq([
                    "产品到期续作沟通",
                    "客户生日回访",
                    "贷款贷后检查",
                    "理财产品推介",
                ][i % 4]),
                visits::phone_time.eq(stamp),
                visits::checked_in_at.eq(stamp),
                visits::latitude.eq(at.lat),
                visits::longitude.eq(at.lon),
                visits::accuracy_m.eq(check.accuracy_m),
                visits::datum.eq("wgs84"),
                visits::distance_m.eq(distance),
                visits::flags.eq(flags.join(",")),
                visits::checked_out_at.eq(stamp + Duration::minutes(40)),
                visits::duration_secs.eq(2400i64),
                visits::seq.eq(seq),
                visits::created_at.eq(stamp),
                visits::updated_at.eq(stamp),
            ))
            .returning(visits::id)
            .get_result(c)?;
        if i % 16 == 0 {
            let stage = stages[rng.random_range(0..stages.len())];
            let estimated = rng.random_range(50_000..5_000_000i64) * 100;
            diesel::insert_into(opportunities::table)
                .values((
                    opportunities::customer_id.eq(customer),
                    opportunities::manager_id.eq(manager),
                    opportunities::title.eq("客户有意向配置大额存单"),
                    opportunities::product_type.eq("large_cd"),
                    opportunities::need.eq(Some("闲置资金约百万，期限一年以内")),
                    opportunities::estimated_fen.eq(estimated),
                    opportunities::probability.eq(rng.random_range(10..90)),
                    opportunities::expected_close_date
                        .eq(Some(local_date(now) + Duration::days(30))),
                    opportunities::stage.eq(stage),
                    opportunities::lost_reason
                        .eq((stage == "lost").then_some("客户选择了他行产品")),
                    opportunities::landed_fen.eq((stage == "won").then_some(estimated)),
                    opportunities::source.eq("visit"),
                    opportunities::source_visit_id.eq(Some(visit)),
                    opportunities::seq.eq(seq),
                    opportunities::created_at.eq(stamp),
                    opportunities::updated_at.eq(stamp),
                ))
                .execute(c)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers_carry_a_valid_check_digit() {
        let mut rng = StdRng::seed_from_u64(1);
        let id = id_number(&mut rng, NaiveDate::from_ymd_opt(1990, 1, 1).unwrap());
        assert_eq!(id.len(), 18);
        assert_eq!(&id[6..14], "19900101");
    }

    #[test]
    fn birthdays_include_today_in_three_days_and_29_february() {
        let mut rng = StdRng::seed_from_u64(1);
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(month_day(birthday(&mut rng, 0, today)), "11-23");
        assert_eq!(month_day(birthday(&mut rng, 1, today)), "11-26");
        assert_eq!(month_day(birthday(&mut rng, 2, today)), "02-29");
    }
}
