//! `sipmask bindings import`: a CSV file made into the operator's
//! bindings, all or nothing. The file is read and checked a chunk at a
//! time on this thread while a thread of its own writes the chunks checked
//! so far in one unit of work, committed once every row proved good: the
//! two halves of an import take their time side by side (issue 32).

use std::io::{BufReader, IsTerminal, Write};
use std::path::Path;

use super::{normaliser, CliError};
use crate::bindings::{csv, Conditions};
use crate::config::Config;
use crate::service::operator::{self, Feed};
use crate::store::{Location, NewBinding};

/// Lines read and checked before they are handed to the writer.
const CHUNK: usize = 50_000;

/// Imports a CSV file, all or nothing. Returns the number of bindings added.
pub fn import(cfg: &Config, at: impl Into<Location>, file: &Path) -> Result<usize, CliError> {
    let at = at.into();
    let io = |source| CliError::Io {
        path: file.display().to_string(),
        source,
    };
    let norm = normaliser(cfg);
    let reader = BufReader::with_capacity(1 << 20, std::fs::File::open(file).map_err(io)?);
    let now = crate::time::now();
    let mut store = at.open()?;
    // Room for as many rows as the file could hold (a line of three
    // numbers is rarely shorter than 24 bytes): the check's table does not
    // grow step by step.
    let lines = std::fs::metadata(file).map_or(0, |m| m.len() / 24);
    let expected = usize::try_from(lines).unwrap_or(0);
    let mut check = operator::Clashes::new(store.as_mut(), cfg.binding_defaults(), expected)?;
    let (feed, fed) = std::sync::mpsc::sync_channel(4);
    let writer = {
        let at = at.clone();
        std::thread::spawn(move || -> Result<usize, CliError> {
            let mut store = at.open()?;
            Ok(operator::add_fed(
                store.as_mut(),
                fed,
                now,
                &mut progress(),
            )?)
        })
    };
    // Rows that parse are checked further even when others did not, so
    // one report names every bad row; once one is bad, nothing more is
    // written and the writer is told to let go.
    let mut bad: Vec<(usize, String)> = Vec::new();
    let mut failed = None;
    csv::parse_chunks(reader, &norm, CHUNK, &mut |rows, errors| {
        bad.extend(errors.iter().map(|e| (e.line, e.to_string())));
        let news: Vec<NewBinding> = rows.iter().map(|r| new_binding(r, now)).collect();
        match check.check(store.as_mut(), &news) {
            Ok(clashes) => bad.extend(clashes.into_iter().map(|(i, why)| {
                let line = rows.get(i).map_or(0, |r| r.line);
                (line, format!("line {line}: {why}"))
            })),
            Err(e) => failed = Some(e),
        }
        if bad.is_empty() && failed.is_none() {
            // A writer that failed has said why; it is asked at the end.
            let _ = feed.send(Feed::Rows(news));
        }
    });
    if bad.is_empty() && failed.is_none() {
        let _ = feed.send(Feed::Commit);
    }
    drop(feed);
    let written = writer
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    if let Some(e) = failed {
        return Err(e.into());
    }
    if !bad.is_empty() {
        bad.sort();
        let count = bad.len();
        bad.truncate(csv::MAX_REPORTED);
        return Err(CliError::BadRows {
            path: file.display().to_string(),
            count,
            list: bad.into_iter().map(|(_, e)| e).collect(),
        });
    }
    written
}

/// The operator's binding a CSV row asks for.
fn new_binding(r: &csv::Row, now: i64) -> NewBinding {
    NewBinding {
        tenant: crate::bindings::OPERATOR,
        kind: crate::bindings::Kind::Cli,
        a: r.caller.clone(),
        x: r.virtual_number.clone(),
        b: r.callee.clone(),
        conditions: Conditions::default(),
        created_at: now,
    }
}

/// Shows the count written so far on a terminal (the total is not known
/// until the whole file is read).
fn progress() -> impl FnMut(usize) {
    let tty = std::io::stderr().is_terminal();
    move |done: usize| {
        if tty && done.is_multiple_of(10_000) {
            eprint!("\r{done} bindings written");
            let _ = std::io::stderr().flush();
        }
    }
}
