//! The config file: the embedded defaults (`config/sipmask.toml`), the
//! operator's file laid over them, and every problem said with its file,
//! line and key. Each section is its module's (struct, defaults and the
//! check of its values, next to the code that uses it); this module
//! assembles them, checks the rules across sections and reports.

use std::path::Path;

use serde::Deserialize;

mod report;

pub use crate::api::config::ApiSection;
pub use crate::bindings::config::{DefaultsConfig, NumbersConfig, Refusals, Status};
pub use crate::calls::config::TrunkSection;
pub use crate::events::config::WebhooksConfig;
pub use crate::logs::config::LogConfig;
pub use crate::media::config::{MediaMode, MediaSection};
pub use crate::registrar::config::RegistrarSection;
pub use crate::service::flow::config::FlowSection;
pub use crate::sip::config::SipConfig;
pub use crate::store::config::{RecordsConfig, StorageConfig};

use report::{locate, merge, syntax_problem};
pub use report::{ConfigError, Problem};

use crate::bindings::conditions::Defaults;
use crate::problems::Problems;

/// `[shutdown]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Grace period for live calls.
    pub drain_secs: u64,
}

/// The embedded default config.
pub const DEFAULT_TOML: &str = include_str!("../../config/sipmask.toml");

/// Whole config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[sip]`
    pub sip: SipConfig,
    /// `[numbers]`
    pub numbers: NumbersConfig,
    /// `[storage]`
    pub storage: StorageConfig,
    /// `[defaults]`
    pub defaults: DefaultsConfig,
    /// `[refusals]`
    pub refusals: Refusals,
    /// `[api]`
    pub api: ApiSection,
    /// `[records]`
    pub records: RecordsConfig,
    /// `[webhooks]`
    pub webhooks: WebhooksConfig,
    /// `[shutdown]`
    pub shutdown: ShutdownConfig,
    /// `[log]`
    pub log: LogConfig,
    /// `[registrar]`
    pub registrar: RegistrarSection,
    /// `[[trunks]]`: carriers calls to phone numbers go out through.
    pub trunks: Vec<TrunkSection>,
    /// `[flow]`: soft numbers and acquisition (tenants may override).
    pub flow: FlowSection,
    /// `[media]`: the RTP relay.
    pub media: MediaSection,
}

impl Config {
    /// Reads and validates a file.
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Self::from_toml(&text, &file)
    }

    /// The embedded default.
    pub fn embedded() -> Result<Config, ConfigError> {
        Self::from_toml(DEFAULT_TOML, "<embedded config/sipmask.toml>")
    }

    /// Parses and validates text; `file` names it in errors. The text
    /// needs only the keys it changes: the rest come from the embedded
    /// defaults. Every unknown key, wrong type and bad value is reported,
    /// each with its line and key.
    pub fn from_toml(text: &str, file: &str) -> Result<Config, ConfigError> {
        let invalid = |problems| ConfigError::Invalid {
            file: file.to_string(),
            problems,
        };
        let user: toml::Table = text
            .parse()
            .map_err(|e| invalid(vec![syntax_problem(text, &e)]))?;
        let defaults: toml::Table = DEFAULT_TOML.parse().map_err(|e: toml::de::Error| {
            invalid(vec![Problem {
                line: None,
                key: "(embedded defaults)".into(),
                reason: e.message().to_string(),
            }])
        })?;
        let mut problems = Vec::new();
        // Unknown keys and wrong types are left out of the merge, so the
        // values can still be checked and every problem said at once.
        let leaves = report::leaves(&user, "");
        let merged = merge(defaults.clone(), user, "", text, &mut problems);
        let cfg: Config = match toml::Value::Table(merged.clone()).try_into() {
            Ok(c) => c,
            // A value of the right TOML type the typed config still
            // refuses (a negative count, an unknown variant): found one by
            // one, each said with its line, and left out so the rest are
            // checked too.
            Err(_) => {
                let kept = report::typed_leaves(defaults, &merged, leaves, text, &mut problems);
                match toml::Value::Table(kept).try_into() {
                    Ok(c) => c,
                    Err(e) => {
                        let e: toml::de::Error = e;
                        problems.push(Problem {
                            line: None,
                            key: "(value)".into(),
                            reason: e.message().to_string(),
                        });
                        return Err(invalid(problems));
                    }
                }
            }
        };
        problems.extend(cfg.validate(text));
        if problems.is_empty() {
            Ok(cfg)
        } else {
            // In the file's order, those without a line last.
            problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
            Err(invalid(problems))
        }
    }

    /// Every problem, each with its key and line: each section checks its
    /// own values (in its module), and the rules across sections here.
    pub fn validate(&self, text: &str) -> Vec<Problem> {
        let set = |key: &str| locate(text, key).is_some();
        let mut p = Problems::new(&set);
        self.sip.check(&mut p);
        self.flow.check(&self.numbers.default_country_code, &mut p);
        self.media.check(&mut p);
        crate::calls::config::check_trunks(&self.trunks, &mut p);
        self.api.check(&mut p);
        self.numbers.check(&mut p);
        self.refusals.check(&mut p);
        self.webhooks.check(&mut p);
        self.registrar.check(&mut p);
        self.log.check(&mut p);
        self.storage.check(&mut p);
        p.done()
            .into_iter()
            .map(|(key, reason)| Problem {
                line: locate(text, &key),
                key,
                reason,
            })
            .collect()
    }

    /// Default conditions for the binding table.
    pub fn binding_defaults(&self) -> Defaults {
        self.defaults.binding_defaults()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_problem_is_said_with_its_line_and_key_whatever_else_is_wrong() {
        let text = "[sip]\nt1_ms = 0\nsource_rate = -5\nunknownkey = 3\n\n\
                    [media]\nmode = \"bogus\"\n";
        let err = Config::from_toml(text, "t.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        for want in [
            "t.toml:2: sip.t1_ms: must be at least 1",
            "t.toml:3: sip.source_rate: invalid value: integer `-5`",
            "t.toml:4: sip.unknownkey: unknown key",
            "t.toml:7: media.mode: unknown variant `bogus`",
        ] {
            assert!(err.contains(want), "{want} in:\n{err}");
        }
        let dup = Config::from_toml("[sip]\nt1_ms = 100\n[sip]\nt2_ms = 200\n", "d.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(dup.starts_with("d.toml:3: sip: "), "{dup}");
        assert!(dup.contains("duplicate key `sip`"), "{dup}");
        let cross = Config::from_toml("[sip]\nt2_ms = 100\n", "c.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(cross.starts_with("c.toml:2: sip.t2_ms: "), "{cross}");
    }
    use super::*;

    #[test]
    fn the_embedded_defaults_are_the_limits_definitions() {
        let cfg = Config::embedded().expect("embedded config");
        let d = cfg.binding_defaults();
        let eff = crate::bindings::Conditions::default().effective(&d, 0);
        for l in crate::bindings::conditions::LIMITS {
            assert_eq!(eff.limit(l.id), l.default, "[defaults] {}", l.name);
        }
        for r in crate::bindings::Refusal::ALL {
            assert!(DEFAULT_TOML.contains(&format!("\n{} = {{ status", r.name())));
        }
    }

    #[test]
    fn a_bad_trunk_is_named_by_its_place_and_line() {
        let text = "[[trunks]]\nname = \"a\"\naddress = \"127.0.0.1:5070\"\n\n\
                    [[trunks]]\nname = \"b\"\naddress = \"nowhere\"\nweight = 0\n";
        let err = Config::from_toml(text, "t.toml")
            .expect_err("invalid")
            .to_string();
        assert!(err.contains("t.toml:7: trunks[1].address"), "{err}");
        assert!(err.contains("t.toml:8: trunks[1].weight"), "{err}");
        let ok = Config::from_toml(
            "[[trunks]]\nname = \"a\"\naddress = \"127.0.0.1:5070\"\n",
            "t.toml",
        )
        .expect("valid");
        assert_eq!(ok.trunks[0].priority, 1);
        assert_eq!(ok.trunks[0].options_secs, 30);
    }

    #[test]
    fn embedded_config_is_valid() {
        let c = Config::embedded().expect("embedded config must validate");
        assert_eq!(c.sip.listen, vec!["0.0.0.0:5060".to_string()]);
    }

    #[test]
    fn bad_value_names_file_line_and_key() {
        let text = DEFAULT_TOML.replace("t1_ms = 500", "t1_ms = 0");
        let err = Config::from_toml(&text, "x.toml")
            .expect_err("invalid")
            .to_string();
        let line = text
            .lines()
            .position(|l| l.starts_with("t1_ms"))
            .expect("line")
            + 1;
        assert!(err.contains(&format!("x.toml:{line}: sip.t1_ms")), "{err}");
    }

    #[test]
    fn unknown_key_is_rejected_with_its_line() {
        let text = DEFAULT_TOML.replace("t1_ms = 500", "t1_ms = 500\ntypo_ms = 1");
        let err = Config::from_toml(&text, "x.toml")
            .expect_err("invalid")
            .to_string();
        assert!(err.contains("typo_ms"), "{err}");
        assert!(err.contains("x.toml:"), "{err}");
    }

    #[test]
    fn a_short_file_takes_the_defaults() {
        let c = Config::from_toml("[sip]\ntrunk = \"127.0.0.1:5090\"\n", "short.toml")
            .expect("only what changes");
        assert_eq!(c.sip.trunk, "127.0.0.1:5090");
        assert_eq!(c.sip.t1_ms, 500);
        assert_eq!(c.api.rate_per_sec, 100);
    }

    #[test]
    fn every_problem_is_reported_with_its_own_line_and_key() {
        let text = "[sip]\n# retransmit interval\nt1_msec = 5\nt2_ms = \"x\"\n\n[api]\nburst = 0\n[nope]\n";
        let err = Config::from_toml(text, "typo.toml")
            .expect_err("invalid")
            .to_string();
        assert!(
            err.contains("typo.toml:3: sip.t1_msec: unknown key"),
            "{err}"
        );
        assert!(
            err.contains("typo.toml:4: sip.t2_ms: expected integer, found string"),
            "{err}"
        );
        assert!(err.contains("typo.toml:8: nope: unknown key"), "{err}");
        let err = Config::from_toml("[api]\nburst = 0\n[sip]\nno_answer_secs = 0\n", "v.toml")
            .expect_err("invalid")
            .to_string();
        assert!(err.contains("v.toml:2: api.burst"), "{err}");
        assert!(err.contains("v.toml:4: sip.no_answer_secs"), "{err}");
    }

    #[test]
    fn bad_refusal_status_is_reported() {
        let text = DEFAULT_TOML.replace(
            "status = 404, reason = \"Not Found\"",
            "status = 200, reason = \"Not Found\"",
        );
        let err = Config::from_toml(&text, "x.toml")
            .expect_err("invalid")
            .to_string();
        assert!(err.contains("refusals.unknown_number"), "{err}");
    }
}
