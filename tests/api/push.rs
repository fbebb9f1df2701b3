//! The FCM HTTP v1 gateway against the fake FCM server (`fake_fcm.rs`): OAuth2, token caching and refresh, the
//! v1 message shape, every answer FCM can give, timeouts, and no PII in the logs. No API server is needed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use fieldwork::clock::Clock;
use fieldwork::push::{
    FcmConfig, FcmGateway, LogGateway, Platform, PushGateway, PushMessage, SendOutcome,
    ServiceAccountKey, token_hash,
};
use serde_json::{Value, json};

use crate::fake_fcm::{CLIENT_EMAIL, FakeFcm, Mode, PROJECT, TEST_PRIVATE_KEY_PEM, Target};

/// A clock the test moves by hand.
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn at(rfc3339: &str) -> Arc<Self> {
        Arc::new(Self(Mutex::new(rfc3339.parse().unwrap())))
    }

    fn advance(&self, d: TimeDelta) {
        *self.0.lock().unwrap() += d;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

const T0: &str = "2026-03-01T08:00:00Z";

fn message(token: &str) -> PushMessage {
    PushMessage {
        device_token: token.to_owned(),
        platform: Platform::Android,
        title: "客户生日提醒".to_owned(),
        body: "您有 1 笔产品 7 天后到期".to_owned(),
        data: BTreeMap::from([
            ("link_type".to_owned(), "customer".to_owned()),
            ("link_id".to_owned(), "1234".to_owned()),
            ("notification_id".to_owned(), "17".to_owned()),
        ]),
        urgent: false,
        ttl: Duration::from_secs(86_400),
        collapse_key: "n17".to_owned(),
    }
}

fn gateway_with(config: FcmConfig, clock: Arc<TestClock>) -> FcmGateway {
    FcmGateway::new(config, clock).expect("gateway")
}

fn gateway(fake: &FakeFcm) -> (FcmGateway, Arc<TestClock>) {
    let clock = TestClock::at(T0);
    (gateway_with(fake.config(), clock.clone()), clock)
}

#[track_caller]
fn assert_sent(outcome: &SendOutcome) -> String {
    match outcome {
        SendOutcome::Sent { message_id } => message_id.clone(),
        other => panic!("expected Sent, got {other:?}"),
    }
}

#[tokio::test]
async fn sends_a_normal_message_in_the_v1_shape() {
    let fake = FakeFcm::start().await;
    let (gw, clock) = gateway(&fake);
    assert_eq!(gw.project_id(), PROJECT);
    assert_eq!(gw.name(), "fcm");

    let id = assert_sent(&gw.send(&message("tok-android-1")).await);
    assert_eq!(id, format!("projects/{PROJECT}/messages/1"));

    assert_eq!(fake.rejected(), Vec::<String>::new());
    let received = fake.received();
    assert_eq!(received.len(), 1);
    let expiration = (clock.now().timestamp() + 86_400).to_string();
    assert_eq!(
        received[0],
        json!({
            "token": "tok-android-1",
            "notification": {"title": "客户生日提醒", "body": "您有 1 笔产品 7 天后到期"},
            "data": {"link_type": "customer", "link_id": "1234", "notification_id": "17"},
            "android": {"priority": "NORMAL", "ttl": "86400s", "collapse_key": "n17"},
            "apns": {"headers": {"apns-priority": "5", "apns-collapse-id": "n17", "apns-expiration": expiration}},
        })
    );
}

#[tokio::test]
async fn urgent_messages_are_high_priority_on_both_platforms() {
    let fake = FakeFcm::start().await;
    let (gw, clock) = gateway(&fake);
    let m = PushMessage {
        platform: Platform::Ios,
        urgent: true,
        ttl: Duration::from_secs(600),
        ..message("tok-ios-1")
    };
    assert_sent(&gw.send(&m).await);
    let got = &fake.received()[0];
    assert_eq!(got["android"]["priority"], "HIGH");
    assert_eq!(got["android"]["ttl"], "600s");
    assert_eq!(got["apns"]["headers"]["apns-priority"], "10");
    assert_eq!(
        got["apns"]["headers"]["apns-expiration"],
        (clock.now().timestamp() + 600).to_string()
    );
    assert_eq!(got["apns"]["headers"]["apns-collapse-id"], "n17");
    assert_eq!(fake.rejected(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_sends_share_one_access_token() {
    let fake = FakeFcm::start().await;
    let (gw, _clock) = gateway(&fake);
    let gw = Arc::new(gw);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let gw = gw.clone();
        tasks.spawn(async move { gw.send(&message(&format!("tok-{i}"))).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert_sent(&outcome.unwrap());
    }
    // And sequential sends afterwards reuse it too.
    for i in 20..25 {
        assert_sent(&gw.send(&message(&format!("tok-{i}"))).await);
    }
    assert_eq!(fake.token_requests(), 1);
    assert_eq!(fake.received().len(), 25);
    assert_eq!(fake.token_rejections(), Vec::<String>::new());
}

#[tokio::test]
async fn the_access_token_is_refreshed_five_minutes_before_it_expires() {
    let fake = FakeFcm::start().await;
    let (gw, clock) = gateway(&fake);
    assert_sent(&gw.send(&message("tok-a")).await);
    assert_eq!(fake.token_requests(), 1);

    // The token lives 3599 s; it is reused until 300 s before that…
    clock.advance(TimeDelta::seconds(3299 - 1));
    assert_sent(&gw.send(&message("tok-a")).await);
    assert_eq!(fake.token_requests(), 1);

    // …and replaced from then on, before FCM could ever refuse it.
    clock.advance(TimeDelta::seconds(1));
    assert_sent(&gw.send(&message("tok-a")).await);
    assert_eq!(fake.token_requests(), 2);
    assert_sent(&gw.send(&message("tok-a")).await);
    assert_eq!(fake.token_requests(), 2);
    assert_eq!(fake.unauthorized(), 0);
    assert_eq!(fake.received().len(), 4);
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_the_send_succeeds() {
    let fake = FakeFcm::start().await;
    let (gw, _clock) = gateway(&fake);
    assert_sent(&gw.send(&message("tok-a")).await);
    fake.expire_access_tokens();

    assert_sent(&gw.send(&message("tok-a")).await);
    assert_eq!(fake.unauthorized(), 1);
    assert_eq!(fake.token_requests(), 2);
    assert_eq!(fake.received().len(), 2);

    // The new token is cached again.
    assert_sent(&gw.send(&message("tok-a")).await);
    assert_eq!(fake.token_requests(), 2);
}

#[tokio::test]
async fn a_second_401_gives_up_with_retry() {
    let fake = FakeFcm::start().await;
    let (gw, _clock) = gateway(&fake);
    fake.set_mode(Target::All, Mode::Unauthorized);
    let outcome = gw.send(&message("tok-a")).await;
    let SendOutcome::Retry {
        after: None,
        reason,
    } = &outcome
    else {
        panic!("expected Retry, got {outcome:?}");
    };
    assert!(reason.contains("401"), "{reason}");
    // One token, one refresh, two attempts: no loop.
    assert_eq!(fake.token_requests(), 2);
    assert_eq!(fake.attempts().len(), 2);
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn unregistered_404_is_a_dead_token() {
    let fake = FakeFcm::start().await;
    let (gw, _clock) = gateway(&fake);
    fake.set_mode("tok-gone", Mode::Unregistered);
    let outcome = gw.send(&message("tok-gone")).await;
    let SendOutcome::DeadToken { reason } = &outcome else {
        panic!("expected DeadToken, got {outcome:?}");
    };
    assert!(reason.contains("UNREGISTERED"), "{reason}");
    assert!(!reason.contains("tok-gone"), "{reason}");
    // Other tokens are unaffected.
    assert_sent(&gw.send(&message("tok-alive")).await);
    assert_eq!(fake.received().len(), 1);
    assert_eq!(fake.received()[0]["token"], "tok-alive");
    assert_eq!(fake.attempts().len(), 2);
}

#[tokio::test]
async fn invalid_argument_about_the_token_is_a_dead_token_and_other_400s_fail() {
    let fake = FakeFcm::start().await;
    let (gw, _clock) = gateway(&fake);
    fake.set_mode("tok-garbled", Mode::InvalidToken);
    let outcome = gw.send(&message("tok-garbled")).await;
    assert!(
        matches!(&outcome, SendOutcome::DeadToken { reason } if reason.contains("INVALID_ARGUMENT")),
        "{outcome:?}"
    );

    fake.set_mode(Target::All, Mode::InvalidArgument);
    let outcome = gw.send(&message("tok-fine")).await;
    assert!(
        matches!(&outcome, SendOutcome::Failed { reason } if reason.starts_with("400 INVALID_ARGUMENT")),
        "{outcome:?}"
    );
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn sender_id_mismatch_is_a_dead_token() {
    let fake = FakeFcm::start().await;
    let (gw, _clock) = gateway(&fake);
    fake.set_mode(Target::All, Mode::SenderIdMismatch);
    let outcome = gw.send(&message("tok-other-project")).await;
    assert!(
        matches!(&outcome, SendOutcome::DeadToken { reason } if reason.contains("SENDER_ID_MISMATCH")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn throttling_and_server_errors_retry_honouring_retry_after() {
    let fake = FakeFcm::start().await;
    let (gw, _clock) = gateway(&fake);

    fake.set_mode(
        Target::All,
        Mode::TooManyRequests {
            retry_after: Some("30".into()),
        },
    );
    let outcome = gw.send(&message("tok-a")).await;
    assert!(
        matches!(&outcome, SendOutcome::Retry { after: Some(d), reason }
            if *d == Duration::from_secs(30) && reason.starts_with("429")),
        "{outcome:?}"
    );

    // An HTTP date counts from the gateway's clock (T0 = 08:00:00).
    fake.set_mode(
        Target::All,
        Mode::Unavailable {
            retry_after: Some("Sun, 01 Mar 2026 08:01:30 GMT".into()),
        },
    );
    let outcome = gw.send(&message("tok-a")).await;
    assert!(
        matches!(&outcome, SendOutcome::Retry { after: Some(d), reason }
            if *d == Duration::from_secs(90) && reason.starts_with("503")),
        "{outcome:?}"
    );

    fake.set_mode(Target::All, Mode::Unavailable { retry_after: None });
    let outcome = gw.send(&message("tok-a")).await;
    assert!(
        matches!(&outcome, SendOutcome::Retry { after: None, reason } if reason.starts_with("503")),
        "{outcome:?}"
    );

    fake.set_mode(Target::All, Mode::InternalError);
    let outcome = gw.send(&message("tok-a")).await;
    assert!(
        matches!(&outcome, SendOutcome::Retry { after: None, reason } if reason.starts_with("500 INTERNAL")),
        "{outcome:?}"
    );
    assert!(fake.received().is_empty());
    assert_eq!(fake.attempts().len(), 4);
}

#[tokio::test]
async fn a_counted_mode_fails_the_next_sends_then_lets_them_through() {
    let fake = FakeFcm::start().await;
    let (gw, _clock) = gateway(&fake);
    fake.set_mode_times(Target::All, Mode::InternalError, 2);
    assert_eq!(gw.send(&message("tok-a")).await.kind(), "retry");
    assert_eq!(gw.send(&message("tok-a")).await.kind(), "retry");
    assert_sent(&gw.send(&message("tok-a")).await);

    // A token's own mode wins over the global one, and falls back to it when used up.
    fake.set_mode(Target::All, Mode::Unregistered);
    fake.set_mode_times("tok-b", Mode::Ok, 1);
    assert_sent(&gw.send(&message("tok-b")).await);
    assert_eq!(gw.send(&message("tok-b")).await.kind(), "dead_token");
    assert_eq!(fake.received().len(), 2);
}

#[tokio::test]
async fn a_hanging_fcm_gives_retry_after_the_client_timeout() {
    let fake = FakeFcm::start().await;
    let clock = TestClock::at(T0);
    let config = FcmConfig {
        timeout: Duration::from_millis(300),
        ..fake.config()
    };
    let gw = gateway_with(config, clock);
    fake.set_mode(Target::All, Mode::Hang);
    let outcome = gw.send(&message("tok-a")).await;
    assert!(
        matches!(&outcome, SendOutcome::Retry { after: None, reason } if reason.contains("timed out")),
        "{outcome:?}"
    );
    // The request did reach FCM (and the token endpoint answered in time).
    assert_eq!(fake.attempts().len(), 1);
    assert_eq!(fake.token_requests(), 1);
}

#[tokio::test]
async fn an_unreachable_fcm_gives_retry() {
    let fake = FakeFcm::start().await;
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = FcmConfig {
        base_url: format!("http://127.0.0.1:{closed_port}"),
        ..fake.config()
    };
    let gw = gateway_with(config, TestClock::at(T0));
    let outcome = gw.send(&message("tok-a")).await;
    assert!(
        matches!(&outcome, SendOutcome::Retry { after: None, reason } if reason.contains("FCM send")),
        "{outcome:?}"
    );
    assert_eq!(fake.token_requests(), 1);
}

#[tokio::test]
async fn a_refused_assertion_gives_retry_and_sends_nothing() {
    let fake = FakeFcm::start().await;
    let mut key: Value =
        serde_json::from_str(&std::fs::read_to_string(fake.service_account_json_path()).unwrap())
            .unwrap();
    key["client_email"] = json!("someone-else@fake-project.iam.gserviceaccount.com");
    let key = ServiceAccountKey::from_json(&key.to_string()).unwrap();
    let gw = FcmGateway::with_key(&fake.config(), key, TestClock::at(T0)).unwrap();
    let outcome = gw.send(&message("tok-a")).await;
    assert!(
        matches!(&outcome, SendOutcome::Retry { after: None, reason }
            if reason.starts_with("OAuth2 token") && reason.contains("invalid_grant")),
        "{outcome:?}"
    );
    assert_eq!(fake.token_requests(), 1);
    assert_eq!(fake.token_rejections().len(), 1);
    assert!(fake.attempts().is_empty());
    assert_eq!(fake.unauthorized(), 0);
}

#[tokio::test]
async fn a_gateway_cannot_be_built_from_a_bad_key() {
    let fake = FakeFcm::start().await;
    let path = fake.service_account_json_path();
    let mut key: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    key["private_key"] =
        json!("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
    let key = ServiceAccountKey::from_json(&key.to_string()).unwrap();
    let err = FcmGateway::with_key(&fake.config(), key, TestClock::at(T0)).unwrap_err();
    assert!(err.to_string().contains("private_key"), "{err}");
    // Nor from a missing file.
    let missing = FcmConfig::new(path.with_file_name("missing.json"));
    assert!(FcmGateway::new(missing, TestClock::at(T0)).is_err());
    // The project comes from the key when not configured.
    let from_key = FcmConfig {
        project_id: None,
        ..fake.config()
    };
    assert_eq!(
        FcmGateway::new(from_key, TestClock::at(T0))
            .unwrap()
            .project_id(),
        PROJECT
    );
}

/// A `MakeWriter` that keeps everything written in memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn nothing_logs_a_token_title_or_body() {
    let fake = FakeFcm::start().await;
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(capture.clone())
        .finish();
    // tracing-core caches per callsite whether anyone listens. With a single registered subscriber it asks the
    // registering thread's own default, so a callsite first hit by a concurrent test (no subscriber) would be
    // cached as silent. A second live dispatcher makes it consult every registered subscriber instead.
    let _second = tracing::Dispatch::new(tracing_subscriber::registry());
    let _guard = tracing::subscriber::set_default(subscriber);

    let (gw, _clock) = gateway(&fake);
    // And a callsite registered concurrently with the installation above gets its interest recomputed.
    tracing::callsite::rebuild_interest_cache();
    let tokens = [
        "SECRET-TOKEN-sent",
        "SECRET-TOKEN-dead",
        "SECRET-TOKEN-retry",
        "SECRET-TOKEN-bad",
    ];
    fake.set_mode(tokens[1], Mode::Unregistered);
    fake.set_mode(
        tokens[2],
        Mode::TooManyRequests {
            retry_after: Some("5".into()),
        },
    );
    fake.set_mode(tokens[3], Mode::InvalidToken);
    let mut kinds = vec![];
    for t in tokens {
        kinds.push(gw.send(&message(t)).await.kind());
    }
    fake.expire_access_tokens();
    kinds.push(gw.send(&message(tokens[0])).await.kind());
    let log_gw = LogGateway::new();
    kinds.push(log_gw.send(&message(tokens[0])).await.kind());
    assert_eq!(
        kinds,
        ["sent", "dead_token", "retry", "dead_token", "sent", "sent"]
    );

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // Logging did happen, identifying devices by hash…
    for t in tokens {
        assert!(logs.contains(&token_hash(t)), "no hash of {t} in:\n{logs}");
    }
    assert!(logs.contains("push not delivered"), "{logs}");
    // …and never with the token, the title, the body or the access token.
    for secret in [
        "SECRET-TOKEN",
        "客户生日提醒",
        "您有",
        "ya29.",
        TEST_PRIVATE_KEY_PEM.lines().nth(1).unwrap(),
    ] {
        assert!(
            !logs.contains(secret),
            "{secret:?} leaked into the logs:\n{logs}"
        );
    }
}

/// Signs an assertion with the test key, as a client other than `FcmGateway` would.
fn assertion(claims: &Value, alg: jsonwebtoken::Algorithm) -> String {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let key = match alg {
        jsonwebtoken::Algorithm::HS256 => jsonwebtoken::EncodingKey::from_secret(b"guess"),
        _ => {
            let private = rsa::RsaPrivateKey::from_pkcs8_pem(TEST_PRIVATE_KEY_PEM).unwrap();
            jsonwebtoken::EncodingKey::from_rsa_der(private.to_pkcs1_der().unwrap().as_bytes())
        }
    };
    jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), claims, &key).unwrap()
}

async fn request_token(fake: &FakeFcm, assertion: &str) -> reqwest::Response {
    let form = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
    );
    reqwest::Client::new()
        .post(fake.token_uri())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_fake_token_endpoint_checks_the_assertion() {
    let fake = FakeFcm::start().await;
    let now = Utc::now().timestamp();
    let good = json!({"iss": CLIENT_EMAIL, "scope": "https://www.googleapis.com/auth/firebase.messaging",
                      "aud": fake.token_uri(), "iat": now, "exp": now + 3600});
    let ok = request_token(&fake, &assertion(&good, jsonwebtoken::Algorithm::RS256)).await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert!(
        body["access_token"]
            .as_str()
            .unwrap()
            .starts_with("ya29.fake-")
    );
    assert_eq!(body["expires_in"], 3599);

    // A forged signature, a tampered payload, another audience or scope, too long a lifetime: refused.
    let hs = assertion(&good, jsonwebtoken::Algorithm::HS256);
    let signed = assertion(&good, jsonwebtoken::Algorithm::RS256);
    let mut parts: Vec<&str> = signed.split('.').collect();
    let tampered_claims = {
        use base64::Engine;
        let mut c = good.clone();
        c["iss"] = json!("attacker@example.com");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string())
    };
    parts[1] = &tampered_claims;
    let tampered = parts.join(".");
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("https://oauth2.googleapis.com/token");
    let mut wrong_scope = good.clone();
    wrong_scope["scope"] = json!("https://www.googleapis.com/auth/cloud-platform");
    let mut too_long = good.clone();
    too_long["exp"] = json!(now + 7200);
    for bad in [
        hs,
        tampered,
        assertion(&wrong_aud, jsonwebtoken::Algorithm::RS256),
        assertion(&wrong_scope, jsonwebtoken::Algorithm::RS256),
        assertion(&too_long, jsonwebtoken::Algorithm::RS256),
    ] {
        let resp = request_token(&fake, &bad).await;
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
    }
    assert_eq!(fake.token_requests(), 6);
    assert_eq!(fake.token_rejections().len(), 5);
}

#[tokio::test]
async fn the_fake_send_endpoint_checks_bearer_and_shape_strictly() {
    let fake = FakeFcm::start().await;
    let now = Utc::now().timestamp();
    let claims = json!({"iss": CLIENT_EMAIL, "scope": "https://www.googleapis.com/auth/firebase.messaging",
                        "aud": fake.token_uri(), "iat": now, "exp": now + 3600});
    let token: Value = request_token(&fake, &assertion(&claims, jsonwebtoken::Algorithm::RS256))
        .await
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap().to_owned();
    let url = format!("{}/v1/projects/{PROJECT}/messages:send", fake.base_url());
    let client = reqwest::Client::new();
    let send = |bearer: String, body: Value| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let resp = client
                .post(url)
                .bearer_auth(bearer)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };

    let good = json!({"message": {"token": "t1", "notification": {"title": "a", "body": "b"}, "data": {"k": "v"}}});
    assert_eq!(send("ya29.forged".into(), good.clone()).await.0, 401);
    let (status, body) = send(access.clone(), good).await;
    assert_eq!(
        (status, &body["name"]),
        (200, &json!(format!("projects/{PROJECT}/messages/1")))
    );

    for (bad, field) in [
        (json!({"message": {"topic": "news"}}), "message.topic"),
        (
            json!({"message": {"notification": {"title": "a"}}}),
            "message.token",
        ),
        (
            json!({"message": {"token": "t", "data": {"n": 1}}}),
            "message.data[0].value",
        ),
        (
            json!({"message": {"token": "t", "data": {"from": "x"}}}),
            "message.data",
        ),
        (
            json!({"message": {"token": "t", "android": {"priority": "high"}}}),
            "message.android.priority",
        ),
        (
            json!({"message": {"token": "t", "android": {"ttl": 3600}}}),
            "message.android.ttl",
        ),
        (
            json!({"message": {"token": "t", "android": {"ttl": "1h"}}}),
            "message.android.ttl",
        ),
        (
            json!({"message": {"token": "t", "apns": {"headers": {"apns-priority": "7"}}}}),
            "message.apns.headers.apns-priority",
        ),
        (
            json!({"message": {"token": "t", "apns": {"headers": {"apns-expiration": "soon"}}}}),
            "message.apns.headers.apns-expiration",
        ),
        (json!({"message": {"token": "t"}, "extra": 1}), ".extra"),
    ] {
        let (status, body) = send(access.clone(), bad.clone()).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["error"]["status"], "INVALID_ARGUMENT", "{bad}");
        assert_eq!(
            body["error"]["details"][1]["fieldViolations"][0]["field"], field,
            "{bad}"
        );
    }
    assert_eq!(fake.rejected().len(), 10);
    assert_eq!(fake.received().len(), 1);
    assert_eq!(fake.unauthorized(), 1);
}
