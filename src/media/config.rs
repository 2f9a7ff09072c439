//! `[media]`: the relay's ports and addresses, media timeouts,
//! recordings and prompts, with the checks of its values.
use std::path::Path;

use serde::Deserialize;

use crate::problems::Problems;

/// `[media]`: where calls' media goes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSection {
    /// `relay` (media through sipmask) or `off` (parties' addresses pass).
    pub mode: MediaMode,
    /// Lowest port of the relay's range.
    pub port_min: u16,
    /// Highest port of the relay's range.
    pub port_max: u16,
    /// Address the relay binds; empty: each family's `sip.listen` address.
    pub bind: String,
    /// Address written into SDP; empty: the SIP address peers see.
    pub advertise: String,
    /// An answered call with no RTP from either party for this long ends
    /// (0: never).
    pub timeout_secs: u64,
    /// Days a call recording is kept (0: forever).
    pub recording_keep_days: u32,
    /// Port pairs per address family opened at start and kept open.
    pub warm_pairs: u32,
    /// Whether prompts play, unless a binding says otherwise.
    pub announce: bool,
    /// WAV played to the caller before the call is bridged ("" none).
    pub announcement: String,
    /// WAV played to both parties before the maximum call length ("" none).
    pub warning: String,
    /// How long before the maximum call length the warning starts.
    pub warning_secs: u32,
    /// WAV played to a refused caller before the final status ("" none).
    pub refusal: String,
}

impl MediaSection {
    /// The prompts configured, loaded: (key, sound, prompt or why not).
    pub fn prompts(
        &self,
    ) -> Vec<(
        &'static str,
        crate::media::Sound,
        Result<crate::media::audio::Prompt, crate::media::audio::PromptError>,
    )> {
        use crate::media::Sound;
        [
            (
                "media.announcement",
                Sound::Announcement,
                &self.announcement,
            ),
            ("media.warning", Sound::Warning, &self.warning),
            ("media.refusal", Sound::Refusal, &self.refusal),
        ]
        .into_iter()
        .filter(|(_, _, path)| !path.is_empty())
        .map(|(key, sound, path)| {
            (
                key,
                sound,
                crate::media::audio::Prompt::load(Path::new(path)),
            )
        })
        .collect()
    }
}

/// `[media] mode`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MediaMode {
    /// Every stream through sipmask's relay.
    Relay,
    /// Parties send media to each other and learn each other's address.
    Off,
}

impl MediaSection {
    pub fn check(&self, p: &mut Problems<'_>) {
        if self.port_min < 1024 || self.port_max < self.port_min.saturating_add(3) {
            p.bad(
                "media.port_max",
                "the range needs port_min at least 1024 and two pairs of ports up to port_max",
            );
        }
        for (key, _, loaded) in self.prompts() {
            if let Err(e) = loaded {
                p.bad(key, e.to_string());
            }
        }
        for (key, v) in [
            ("media.bind", &self.bind),
            ("media.advertise", &self.advertise),
        ] {
            if !v.is_empty() && v.parse::<std::net::IpAddr>().is_err() {
                p.bad(key, format!("{v:?} is not an IP address"));
            }
        }
    }
}
