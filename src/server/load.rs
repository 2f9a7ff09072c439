//! What a server loads at start: the binding table (as saved at the last
//! clean stop if that is current, else from the store a chunk at a time,
//! read ahead by a thread of its own), blocklists, soft numbers, accounts
//! and the registrations saved; and the table saved at the stop.

use std::sync::Arc;

use crate::bindings::BindingTable;
use crate::config::Config;
use crate::store::{Backend, StoreError};

/// What [`load_bindings`] opened and loaded.
pub struct Loaded {
    /// The live table.
    pub table: Arc<BindingTable>,
    /// The store it came from.
    pub store: Box<dyn Backend>,
    /// The operator change the table is current with.
    pub seen: i64,
    /// Accounts.
    pub accounts: Arc<crate::registrar::Directory>,
    /// The registrations saved (before a restart, or by other nodes), to
    /// load once the node knows its own address.
    pub contacts: Vec<(String, crate::registrar::Contact)>,
    /// This start's number, as the store counts them (a table saved at
    /// the stop carries it).
    pub start: Option<i64>,
}

/// Bindings in a table's load order, read from `at` by a thread of their
/// own (a connection of its own), a few chunks ahead of the reader.
fn read_bindings(
    at: crate::store::Location,
) -> (
    std::sync::mpsc::Receiver<Result<Vec<crate::bindings::Binding>, StoreError>>,
    std::thread::JoinHandle<()>,
) {
    const CHUNK: usize = 10_000;
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    let reader = std::thread::spawn(move || {
        let store = match at.open() {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        let mut after = crate::bindings::BindingId::MIN;
        loop {
            let chunk = store.bindings_after(after, CHUNK);
            let last = chunk.as_ref().ok().and_then(|c| c.last().map(|b| b.id));
            let done = last.is_none();
            if tx.send(chunk).is_err() || done {
                return;
            }
            after = last.unwrap_or(after);
        }
    });
    (rx, reader)
}

/// Opens the store under `dir` and loads every binding into a new table.
pub fn load_bindings(cfg: &Config, at: &crate::store::Location) -> Result<Loaded, StoreError> {
    let dir = at.dir.as_path();
    let mut store = at.open()?;
    // Calls of an instance that still runs (draining) are its own.
    // On a shared database, also those of nodes elsewhere that beat.
    let fresh = at.fresh_since(crate::time::now_ms());
    let recovered = store.recover_live(&|id| crate::handover::alive(dir, id), fresh)?;
    store.release_dead_holds(&|id| crate::handover::alive(dir, id), fresh)?;
    if recovered > 0 {
        tracing::warn!(
            calls = recovered,
            "booked calls that were live when sipmask last stopped"
        );
    }
    // Read before loading: a change logged meanwhile is applied again,
    // harmlessly, rather than missed.
    let seen = store.last_change()?;
    let started = std::time::Instant::now();
    let mut skipped = 0usize;
    let table = match restore_saved(cfg, at, store.as_ref())? {
        Some(t) => t,
        None => read_table(cfg, at, store.as_ref(), &mut skipped)?,
    };
    // Counted before this server writes a use: a table saved by an
    // earlier start is stale from now on.
    let start = store.count_serve_start()?;
    let load_ms = started.elapsed().as_millis();
    for (tenant, n) in store.blocklist()? {
        table.set_blocked(tenant, n, true);
    }
    // Users' soft numbers: calls to them are refused.
    let norm = crate::bindings::Normaliser {
        default_country_code: cfg.numbers.default_country_code.clone(),
    };
    for (_, soft) in store.live_softs()? {
        table.set_soft(crate::service::flow::dialled_form(&norm, &soft), true);
    }
    for (binding, soft) in store.acquired_softs()? {
        let Some(tenant) = table.get(binding).map(|b| b.tenant) else {
            continue;
        };
        let life =
            crate::service::flow::settings_of(store.as_ref(), &cfg.flow, tenant)?.x_lifetime_secs;
        table.set_shown(
            binding,
            crate::bindings::Number::from_normalised(soft),
            life,
        );
    }
    tracing::info!(bindings = table.len(), skipped, load_ms, "bindings loaded");
    let accounts = Arc::new(crate::registrar::Directory::default());
    accounts.load_accounts(
        store
            .accounts(None)?
            .into_iter()
            .map(crate::service::accounts::account_of)
            .collect(),
    );
    let contacts = store
        .contacts(crate::time::now_ms())?
        .into_iter()
        .filter_map(|(a, row)| Some((a, crate::registrar::contact_of(row)?)))
        .collect();
    Ok(Loaded {
        table: Arc::new(table),
        store,
        seen,
        accounts,
        contacts,
        start,
    })
}

/// The table read from the store, a chunk at a time; rows that cannot be
/// loaded are counted in `skipped`.
fn read_table(
    cfg: &Config,
    at: &crate::store::Location,
    store: &dyn Backend,
    skipped: &mut usize,
) -> Result<BindingTable, StoreError> {
    let table = BindingTable::new(cfg.binding_defaults());
    // Read on a thread of its own, a chunk ahead of the table.
    let (chunks, reader) = read_bindings(at.clone());
    // Counted while the first chunks are read: room made once, where
    // growing step by step would move every index several times.
    table.reserve(store.binding_count()?);
    for chunk in chunks {
        table.load(chunk?, &mut |e| {
            *skipped += 1;
            tracing::warn!(error = %e, "binding not loaded");
        });
    }
    let _ = reader.join();
    // The chunks were made in the reader's own allocator arena: give what
    // they left back to the system rather than keep it for ever.
    #[cfg(target_env = "gnu")]
    // SAFETY: glibc's malloc_trim only releases free memory; it takes no
    // pointer and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
    Ok(table)
}

/// Where the table is saved at a clean stop: beside a database this node
/// alone writes (on a shared one, other nodes' calls use bindings all
/// the time).
fn saved_path(at: &crate::store::Location) -> Option<std::path::PathBuf> {
    (!at.shared()).then(|| at.dir.join("table.saved"))
}

/// The table saved at the last clean stop, with the operator's changes
/// since applied, if no use was written since and it holds as many
/// bindings as the store. The file goes either way: a later crash must
/// not find it.
fn restore_saved(
    cfg: &Config,
    at: &crate::store::Location,
    store: &dyn Backend,
) -> Result<Option<BindingTable>, StoreError> {
    let Some(path) = saved_path(at).filter(|p| p.exists()) else {
        return Ok(None);
    };
    let got = BindingTable::restore(&path, cfg.binding_defaults());
    if let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!(error = %e, "the saved table could not be removed: reading the store");
        return Ok(None);
    }
    let (table, stamp) = match got {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "saved table not used: reading the store");
            return Ok(None);
        }
    };
    if store.serve_starts()? != Some(stamp.start) {
        tracing::info!("saved table not used: another server started since; reading the store");
        return Ok(None);
    }
    let accounts = crate::registrar::Directory::default();
    crate::watch::apply(store, stamp.seen, &table, &accounts, None)?;
    let stored = store.binding_count()?;
    if stored != table.len() {
        tracing::warn!(
            stored,
            saved = table.len(),
            "saved table not used: it does not hold what the store holds; reading the store"
        );
        return Ok(None);
    }
    Ok(Some(table))
}

/// Saves the table for the next start, current with operator change
/// `seen`, stamped with this server's start number.
pub fn save_table(
    table: &BindingTable,
    at: &crate::store::Location,
    seen: i64,
    start: Option<i64>,
) {
    let (Some(path), Some(start)) = (saved_path(at), start) else {
        return;
    };
    let started = std::time::Instant::now();
    match table.save(&path, crate::bindings::Stamp { seen, start }) {
        Ok(()) => tracing::info!(
            bindings = table.len(),
            ms = started.elapsed().as_millis() as u64,
            "table saved for the next start"
        ),
        Err(e) => tracing::warn!(error = %e, "table not saved: the next start reads the store"),
    }
}
