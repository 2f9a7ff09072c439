//! Webhooks and the state of their deliveries: a tenant's URL, secret and
//! number style; which events are due, for which tenants; each attempt's
//! outcome, an event's end as failed after its last attempt, redelivery on
//! request, and a webhook disabled after failing for too long.

/// A tenant's webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    /// Where events go.
    pub url: String,
    /// Signing key.
    pub secret: String,
    /// Numbers in bodies masked (`+86138****0000`) rather than in full.
    pub masked: bool,
    /// Unix ms of the first failure since the last success.
    pub failing_since: Option<i64>,
    /// Unix ms it was disabled, if it is.
    pub disabled_at: Option<i64>,
}

/// An event due for webhook delivery.
#[derive(Clone, Debug)]
pub struct Due {
    /// Outbox row.
    pub id: i64,
    /// The JSON body.
    pub body: String,
    /// Unique event id.
    pub event_id: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Webhook URL.
    pub url: String,
    /// Webhook secret.
    pub secret: String,
    /// Mask numbers before sending.
    pub masked: bool,
}

/// An undelivered event as the API shows it.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Event id.
    pub event_id: String,
    /// Event type.
    pub kind: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Unix ms.
    pub created_at: i64,
    /// Next attempt, unix ms (pending only).
    pub next_attempt_at: Option<i64>,
    /// When it was given up, unix ms.
    pub failed_at: Option<i64>,
    /// What the last attempt met.
    pub last_error: Option<String>,
}

/// The outcome of one attempt.
pub enum Attempt {
    /// 2xx.
    Delivered,
    /// Failed; try again at this unix ms.
    Retry(i64, String),
    /// Failed for the last time.
    Failed(String),
}
