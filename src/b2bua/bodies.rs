//! What crosses between the legs in a message body: SDP rebuilt for the
//! leg it goes to (its own origin, our addresses when media is anchored,
//! the parties' own when only masked), other bodies as they are; and the
//! throttled warnings when media cannot be anchored.

use crate::media::{sdp, Anchor, MediaError};
use crate::sip::message::Msg;

use super::{CallId, Leg, Media, Side};

/// A body as it may cross to `leg`: SDP rebuilt for it (other bodies pass
/// unchanged); an error for a body that claims to be SDP and is not.
pub(super) fn cross_body(
    to: Towards<'_>,
    media: Media,
    m: &Msg,
    leg: &mut Leg,
) -> Result<Vec<u8>, CrossError> {
    if !is_sdp(m) {
        return Ok(m.body.clone());
    }
    let parsed = sdp::parse(&m.body).map_err(CrossError::Sdp)?;
    let relay = match (media, to.anchor) {
        (Media::Relay, Some(anchor)) => Some(
            anchor
                .describe(
                    to.call,
                    to.from.party(),
                    host_of(&leg.me).contains(':'),
                    &parsed.streams,
                    to.source,
                )
                .map_err(CrossError::Media)?,
        ),
        _ => None,
    };
    Ok(Offered { parsed, relay }.render(leg))
}

/// A description parsed and anchored, to be rendered for a leg (the
/// caller's offer: once for all its forks).
pub(super) struct Offered<'m> {
    pub(super) parsed: sdp::Parsed<'m>,
    /// Our address facing the callee per stream (the media relayed).
    pub(super) relay: Option<Vec<Option<std::net::SocketAddr>>>,
}

impl Offered<'_> {
    /// The offer as `leg` carries it.
    pub(super) fn render(&self, leg: &mut Leg) -> Vec<u8> {
        self.parsed
            .render(host_of(&leg.me), &mut leg.origin, self.relay.as_deref())
    }
}

/// Whose description crosses, in which call, and the anchor of its media.
#[derive(Clone, Copy)]
pub(super) struct Towards<'a> {
    anchor: Option<&'a dyn Anchor>,
    call: CallId,
    from: Side,
    /// Where `from`'s signalling comes from: its media may too.
    source: std::net::IpAddr,
}

impl<'a> Towards<'a> {
    pub(super) fn new(
        anchor: &'a Option<std::sync::Arc<dyn Anchor>>,
        call: CallId,
        from: Side,
        source: std::net::IpAddr,
    ) -> Self {
        Towards {
            anchor: anchor.as_deref(),
            call,
            from,
            source,
        }
    }
}

/// Why a body cannot cross.
#[derive(Debug, thiserror::Error)]
pub(super) enum CrossError {
    /// It is not usable SDP: 488.
    #[error(transparent)]
    Sdp(sdp::SdpError),
    /// The media cannot be anchored: 503.
    #[error(transparent)]
    Media(MediaError),
}

impl CrossError {
    pub(super) fn status(&self) -> u16 {
        match self {
            CrossError::Sdp(_) => 488,
            CrossError::Media(_) => 503,
        }
    }
}

/// The host of our `host:port` address (an IPv6 host keeps its brackets).
pub(super) fn host_of(me: &str) -> &str {
    me.rsplit_once(':').map_or(me, |(h, _)| h)
}

/// Whether a message carries SDP.
pub(super) fn is_sdp(m: &Msg) -> bool {
    m.content_type
        .as_deref()
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/sdp"))
}

/// Whether a message's body claims to be SDP and is not: a request that
/// carries it is refused (488), never relayed.
pub(super) fn unusable_sdp(m: &Msg) -> bool {
    is_sdp(m) && sdp::parse(&m.body).is_err()
}

/// [`cross_body`] for a response or an ACK, which cannot be refused: an
/// unusable description is left out (and logged), never passed on.
pub(super) fn cross_or_drop(to: Towards<'_>, media: Media, m: &Msg, leg: &mut Leg) -> Vec<u8> {
    cross_body(to, media, m, leg).unwrap_or_else(|e| {
        warn_media(&e, "SDP left out");
        Vec::new()
    })
}

/// Media warnings (a full port range, SDP left out) come with every call
/// in a burst: at most one line a second, with how many were held back.
static MEDIA_LOG: crate::metrics::Throttle =
    crate::metrics::Throttle::new(std::time::Duration::from_secs(1));

/// Logs a media warning through [`MEDIA_LOG`].
pub(super) fn warn_media(e: &dyn std::fmt::Display, what: &'static str) {
    if let Some(held_back) = MEDIA_LOG.allow() {
        tracing::warn!(error = %e, held_back, "{what}");
    }
}

/// Media warning lines held back since the last one logged (taken, for
/// the shutdown's last word).
pub fn media_warnings_held_back() -> u64 {
    MEDIA_LOG.take_held()
}
