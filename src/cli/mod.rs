//! The `bindings`, `tenants`, `keys`, `accounts` and `check-config` commands: operator
//! tools that work on the store directly, so they run beside or without a
//! live `serve`. Each change is logged (`store::changes`) in its own unit
//! of work, and a running server applies it within a second.
//! (`serve` itself is in `server`.) Output is for the operator's terminal,
//! so numbers are shown in full here, unlike in logs.

use std::io::Write;

use crate::bindings::limits::for_each_limit;
use crate::bindings::{Conditions, Normaliser, Zone};
use crate::config::Config;
use crate::store::Location;

mod accounts;
mod import;
mod tenants;
pub use import::import;

use crate::service::operator;
use crate::store::{NewBinding, StoreError};
pub use accounts::{add_account, list_accounts, remove_account, set_password, AccountLine};
pub use tenants::{add_key, add_tenant, list_calls, list_tenants, revoke_key, TenantKeys};

/// Errors of the operator commands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The CSV has bad rows; nothing was imported.
    #[error("{path}: {count} bad row(s), nothing imported:\n{}", list.join("\n"))]
    BadRows {
        /// Path.
        path: String,
        /// How many rows are bad.
        count: usize,
        /// The first ones, "line N: reason".
        list: Vec<String>,
    },
    /// A value given on the command line is unusable.
    #[error("{0}")]
    Invalid(String),
    /// A tenant or key operation was refused.
    #[error(transparent)]
    Keys(#[from] crate::service::tenants::TenantError),
    /// An operator change was refused.
    #[error(transparent)]
    Operator(#[from] crate::service::operator::OperatorError),
    /// An account change was refused.
    #[error(transparent)]
    Account(#[from] crate::service::accounts::AccountError),
    /// A command that reads or changes what is there found no database.
    #[error("{0}: no sipmask database here (sipmask.db); check --data-dir (or storage.data_dir)")]
    NoDatabase(String),
}

/// The store `at` names, which must hold a database already: a command
/// that reads (or removes, or re-keys) must not make an empty SQLite file
/// in a mistyped folder and report it as empty. (A database server's
/// database is made by its operator.)
pub(crate) fn open_existing(at: Location) -> Result<Box<dyn crate::store::Backend>, CliError> {
    if let Some(file) = at.sqlite_file() {
        if !file.is_file() {
            let dir = file
                .parent()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            return Err(CliError::NoDatabase(dir));
        }
    }
    Ok(at.open()?)
}

/// Options of `bindings add`.
#[derive(Debug, Default, clap::Args)]
pub struct AddArgs {
    /// A of an AXB binding; leave out for AX.
    #[arg(long)]
    pub caller: Option<String>,
    /// Virtual number X.
    #[arg(long = "virtual")]
    pub virtual_number: String,
    /// B of AXB, or the owner of AX.
    #[arg(long)]
    pub callee: String,
    /// The binding's limits, a flag each.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Valid from (unix seconds or RFC 3339).
    #[arg(long)]
    pub not_before: Option<String>,
    /// Valid until (unix seconds or RFC 3339).
    #[arg(long)]
    pub not_after: Option<String>,
    /// Caller allowed on an AX binding (repeatable; default: anyone).
    #[arg(long = "allow-caller")]
    pub allow: Vec<String>,
    /// Record answered calls (stereo WAV in the data dir).
    #[arg(long)]
    pub record: bool,
    /// IANA time zone where the binding's days begin (default UTC).
    #[arg(long)]
    pub time_zone: Option<String>,
}

// `tt` fragments: clap's derive reads a doc comment only as a plain
// literal, not as a `literal` fragment's invisible group.
macro_rules! limit_args {
    ($($id:ident $name:ident: $ty:ty = $def:tt, $min:tt..=$max:tt,
       counts $counts:ident, refusal $refusal:ident, $doc:tt;)*) => {
        /// The limits of `bindings add`, a flag each (`--max-calls`, ...;
        /// 0 = unlimited, absent = the config's default).
        #[derive(Debug, Default, clap::Args)]
        pub struct LimitArgs {
            $(#[doc = $doc] #[arg(long)] pub $name: Option<$ty>,)*
        }

        impl LimitArgs {
            fn apply(&self, c: &mut Conditions) -> Result<(), CliError> {
                $(if let Some(v) = self.$name {
                    if i64::try_from(v).map_or(true, |v| v > $max) {
                        return Err(CliError::Invalid(format!(
                            "{}: must be at most {}",
                            stringify!($name).replace('_', "-"),
                            $max
                        )));
                    }
                    c.$name = Some(v);
                })*
                Ok(())
            }
        }
    };
}

for_each_limit!(limit_args);

/// Adds one binding; returns its id.
pub fn add(cfg: &Config, at: impl Into<Location>, a: AddArgs) -> Result<i64, CliError> {
    let norm = normaliser(cfg);
    let num = |what: &str, v: &str| {
        norm.party(v)
            .map_err(|e| CliError::Invalid(format!("{what}: {e}")))
    };
    let caller = a.caller.as_deref().map(|c| num("caller", c)).transpose()?;
    let x = norm
        .virtual_number(&a.virtual_number)
        .map_err(|e| CliError::Invalid(format!("virtual: {e}")))?;
    let b = num("callee", &a.callee)?;
    let allowed = if a.allow.is_empty() {
        None
    } else {
        Some(
            a.allow
                .iter()
                .map(|c| num("allow-caller", c))
                .collect::<Result<Vec<_>, _>>()?,
        )
    };
    let mut conditions = Conditions {
        not_before: time_arg("not-before", &a.not_before)?,
        not_after: time_arg("not-after", &a.not_after)?,
        allowed_callers: allowed,
        record: a.record,
        time_zone: a
            .time_zone
            .as_deref()
            .map(Zone::parse)
            .transpose()
            .map_err(|e| CliError::Invalid(format!("time-zone: {e}")))?,
        ..Default::default()
    };
    a.limits.apply(&mut conditions)?;
    if let (Some(s), Some(e)) = (conditions.not_before, conditions.not_after) {
        if e <= s {
            return Err(CliError::Invalid(
                "not-after must be later than not-before".into(),
            ));
        }
    }
    let row = NewBinding {
        tenant: crate::bindings::OPERATOR,
        kind: crate::bindings::Kind::Cli,
        a: caller,
        x,
        b,
        conditions,
        created_at: crate::time::now(),
    };
    let now = row.created_at;
    let rows = std::slice::from_ref(&row);
    let mut store = at.into().open()?;
    if let Some((_, why)) = operator::clashes(store.as_mut(), cfg.binding_defaults(), rows)?
        .into_iter()
        .next()
    {
        return Err(CliError::Invalid(why));
    }
    let ids = operator::add_bindings(store.as_mut(), rows, now, &mut |_| {})?;
    ids.first()
        .copied()
        .ok_or_else(|| CliError::Invalid("nothing inserted".into()))
}

/// A time given on the command line (`what` names its flag): unix
/// seconds or RFC 3339.
fn time_arg(what: &str, v: &Option<String>) -> Result<Option<i64>, CliError> {
    v.as_deref()
        .map(|s| {
            crate::time::parse(s).ok_or_else(|| {
                CliError::Invalid(format!(
                    "{what}: {s:?} is neither unix seconds nor an RFC 3339 time (years 1 to 9999)"
                ))
            })
        })
        .transpose()
}

/// Removes a binding; `false` if there was none. The operator's claim on
/// its X ends with the last binding on it.
pub fn remove(at: impl Into<Location>, id: i64) -> Result<bool, CliError> {
    let mut store = open_existing(at.into())?;
    Ok(crate::service::operator::remove_binding(
        store.as_mut(),
        id,
    )?)
}

/// Writes every binding as a table.
pub fn list(at: impl Into<Location>, out: &mut dyn Write) -> Result<(), CliError> {
    let mut store = open_existing(at.into())?;
    let io = |source| CliError::Io {
        path: "stdout".into(),
        source,
    };
    writeln!(
        out,
        "id\tcaller\tvirtual\tcallee\tcalls_used\ttalk_secs_used\tmax_calls\tnot_after"
    )
    .map_err(io)?;
    for b in store.load_all()? {
        let c = &b.conditions;
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            b.id,
            b.a.as_ref().map_or("", |a| a.as_str()),
            b.x.as_str(),
            b.b.as_str(),
            b.usage.calls_used,
            b.usage.talk_secs_used,
            c.max_calls.map_or("-".to_string(), |v| v.to_string()),
            c.not_after.map_or("-".to_string(), crate::time::format),
        )
        .map_err(io)?;
    }
    Ok(())
}

fn normaliser(cfg: &Config) -> Normaliser {
    Normaliser {
        default_country_code: cfg.numbers.default_country_code.clone(),
    }
}
