//! The gateway used when no FCM credentials are configured (the embedded default): it records in the log what
//! would have been sent — without the token, title or body — and reports success, so the inbox, the outbox and
//! the dispatcher behave exactly as with real delivery.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{PushGateway, PushMessage, SendFuture, SendOutcome, token_hash};

/// Logs instead of sending. Answers [`SendOutcome::Sent`] with a synthetic id `log:{uuid}`.
#[derive(Debug, Default)]
pub struct LogGateway {
    sent: AtomicU64,
}

impl LogGateway {
    /// A new log gateway.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many messages this gateway has "sent" since it was created.
    pub fn sent_count(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl PushGateway for LogGateway {
    fn send<'a>(&'a self, message: &'a PushMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let message_id = format!("log:{}", uuid::Uuid::new_v4().simple());
            self.sent.fetch_add(1, Ordering::Relaxed);
            let data_keys: Vec<&str> = message.data.keys().map(String::as_str).collect();
            tracing::info!(
                gateway = "log",
                device = %token_hash(&message.device_token),
                platform = %message.platform,
                urgent = message.urgent,
                ttl_secs = message.ttl.as_secs(),
                collapse_key = %message.collapse_key,
                data_keys = ?data_keys,
                message_id = %message_id,
                "push not delivered (no FCM credentials configured); logged instead"
            );
            SendOutcome::Sent { message_id }
        })
    }

    fn name(&self) -> &'static str {
        "log"
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::push::Platform;

    #[tokio::test]
    async fn log_gateway_reports_sent_with_a_synthetic_id() {
        let g = LogGateway::new();
        let m = PushMessage {
            device_token: "t".into(),
            platform: Platform::Android,
            title: "x".into(),
            body: "y".into(),
            data: BTreeMap::new(),
            urgent: false,
            ttl: Duration::from_secs(1),
            collapse_key: String::new(),
        };
        let a = g.send(&m).await;
        let b = g.send(&m).await;
        let (SendOutcome::Sent { message_id: a }, SendOutcome::Sent { message_id: b }) = (a, b)
        else {
            panic!("log gateway must answer Sent");
        };
        assert!(a.starts_with("log:"), "{a}");
        assert_ne!(a, b);
        assert_eq!(g.sent_count(), 2);
        assert_eq!(g.name(), "log");
    }
}
