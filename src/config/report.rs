//! Saying what is wrong with a config file: every problem with its file,
//! line and dotted key; where a key is; and laying a file over the
//! embedded defaults while noting unknown keys and wrong types.

use std::fmt;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Line in the file, when known.
    pub line: Option<usize>,
    /// Dotted key, e.g. `sip.t1_ms`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// Path.
        file: String,
        /// OS error.
        source: std::io::Error,
    },
    /// Syntax or validation problems.
    #[error("{}", render(file, problems))]
    Invalid {
        /// Path.
        file: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn render(file: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| match p.line {
            Some(l) => format!("{file}:{l}: {}: {}", p.key, p.reason),
            None => format!("{file}: {}: {}", p.key, p.reason),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

pub(super) fn syntax_problem(text: &str, e: &toml::de::Error) -> Problem {
    // The line the error starts on (a span at a line's first byte is on
    // that line, not the one before).
    let line = e.span().map(|s| {
        text.as_bytes()[..s.start.min(text.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    });
    let msg = e.message().trim().replace('\n', ": ");
    // serde names the unknown or missing field in its message; keep it whole.
    Problem {
        line,
        key: key_at(text, line).unwrap_or_else(|| "(syntax)".into()),
        reason: msg,
    }
}

/// Lays `user` over `defaults`, noting every key the defaults do not have
/// and every value of another type than the default's.
pub(super) fn merge(
    mut defaults: toml::Table,
    user: toml::Table,
    prefix: &str,
    text: &str,
    problems: &mut Vec<Problem>,
) -> toml::Table {
    for (k, v) in user {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (defaults.remove(&k), v) {
            (None, _) => problems.push(Problem {
                line: locate_any(text, &key),
                key,
                reason: "unknown key".into(),
            }),
            (Some(toml::Value::Table(d)), toml::Value::Table(u)) => {
                let m = merge(d, u, &key, text, problems);
                defaults.insert(k, toml::Value::Table(m));
            }
            (Some(d), u) if d.same_type(&u) => {
                defaults.insert(k, u);
            }
            (Some(d), u) => {
                problems.push(Problem {
                    line: locate_any(text, &key),
                    key,
                    reason: format!("expected {}, found {}", d.type_str(), u.type_str()),
                });
                defaults.insert(k, d);
            }
        }
    }
    defaults
}

/// The line of `key`, or of the nearest enclosing key that has one (an
/// inline table's fields are on its line).
pub(super) fn locate_any(text: &str, key: &str) -> Option<usize> {
    let mut k = key;
    loop {
        if let Some(l) = locate(text, k) {
            return Some(l);
        }
        k = k.rsplit_once('.')?.0;
    }
}

/// The dotted key defined on `line`, from the nearest table header above it.
pub(super) fn key_at(text: &str, line: Option<usize>) -> Option<String> {
    let line = line?;
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line - 1)?.trim();
    let key = here.split('=').next()?.trim();
    let table = lines[..line - 1]
        .iter()
        .rev()
        .find_map(|l| l.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')))
        .map(str::trim);
    match (table, key.starts_with('[')) {
        (_, true) => Some(key.trim_matches(['[', ']']).to_string()),
        (Some(t), false) if !key.is_empty() => Some(format!("{t}.{key}")),
        _ if !key.is_empty() => Some(key.to_string()),
        _ => None,
    }
}

/// The line (1-based) where dotted `key` is set, if it is in the text.
pub(super) fn locate(text: &str, key: &str) -> Option<usize> {
    let Some((table, name)) = key.rsplit_once('.') else {
        // A top-level key: a table header, or a key before any header.
        return text
            .lines()
            .position(|l| {
                let t = l.trim();
                t.strip_prefix('[')
                    .and_then(|t| t.strip_suffix(']'))
                    .is_some_and(|h| h.trim() == key)
                    || t.split('=').next().map(str::trim) == Some(key)
            })
            .map(|i| i + 1);
    };
    // `trunks[2].address`: the key in the third `[[trunks]]`.
    let element = table
        .strip_suffix(']')
        .and_then(|t| t.split_once('['))
        .and_then(|(name, i)| Some((name, i.parse::<usize>().ok()?)));
    let mut seen = 0usize;
    let mut in_table = false;
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if let Some(h) = t.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            in_table = match (
                element,
                h.trim().strip_prefix('[').and_then(|h| h.strip_suffix(']')),
            ) {
                (Some((name, want)), Some(array)) if array.trim() == name => {
                    seen += 1;
                    seen == want + 1
                }
                _ => h.trim() == table,
            };
        } else if in_table && t.split('=').next().map(str::trim) == Some(name) {
            return Some(i + 1);
        }
    }
    None
}

/// Every value a user's table sets, with its dotted key (tables opened,
/// arrays whole: `[[trunks]]` is one value).
pub(super) fn leaves(t: &toml::Table, prefix: &str) -> Vec<(String, toml::Value)> {
    let mut out = Vec::new();
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(inner) => out.extend(leaves(inner, &key)),
            v => out.push((key, v.clone())),
        }
    }
    out
}

/// `defaults` with each of `leaves` that `merged` took (known key, right
/// type) and that the typed config accepts on its own; each it refuses is
/// a problem at its line.
pub(super) fn typed_leaves(
    defaults: toml::Table,
    merged: &toml::Table,
    leaves: Vec<(String, toml::Value)>,
    text: &str,
    problems: &mut Vec<Problem>,
) -> toml::Table {
    let mut kept = defaults.clone();
    for (key, value) in leaves {
        if lookup(merged, &key) != Some(&value) {
            continue; // unknown or of the wrong type: already said
        }
        let mut alone = defaults.clone();
        set(&mut alone, &key, value.clone());
        if let Err(e) = toml::Value::Table(alone).try_into::<super::Config>() {
            problems.push(Problem {
                line: locate_any(text, &key),
                key,
                reason: e.message().trim().to_string(),
            });
        } else {
            set(&mut kept, &key, value);
        }
    }
    kept
}

fn lookup<'a>(t: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    match key.split_once('.') {
        None => t.get(key),
        Some((head, rest)) => lookup(t.get(head)?.as_table()?, rest),
    }
}

fn set(t: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        None => {
            t.insert(key.to_string(), value);
        }
        Some((head, rest)) => {
            if let Some(toml::Value::Table(inner)) = t.get_mut(head) {
                set(inner, rest, value);
            }
        }
    }
}
