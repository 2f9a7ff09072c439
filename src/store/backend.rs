//! The storage interface: what the server, the API, the command line and
//! the webhook deliverer need from a backend, as one trait per area and
//! [`Backend`] over all of them. SQLite ([`super::SqliteStore`]) is the
//! embedded default; a PostgreSQL backend implements the same traits.
//! Backend-neutral logic (units of work, the writer's batches) lives here,
//! on `dyn Backend`, written once for every backend.

use super::accounts::{AccountRow, ContactRow};
use super::changes::Change;
use super::events::NewEvent;
use super::flow::{
    AcquisitionFilter, AcquisitionRecord, Agent, AgentKey, Interacted, NewInteraction, Team, User,
    UserKey,
};
use super::live::Checkpoint;
use super::webhooks::{Attempt, Delivery, Due, Webhook};
use super::{CallFilter, CallRecord, Filter, NewBinding, Page, StoreError, UsageUpdate};
use crate::bindings::{Binding, BindingId, Claim, Conditions, Number, TenantId};

/// Tenants and their API keys.
pub trait TenantStore {
    /// Creates a tenant; returns its id.
    fn add_tenant(&mut self, name: &str, now: i64) -> Result<TenantId, StoreError>;

    /// Stores the hash of a new API key for a tenant under its public id.
    fn add_key(
        &mut self,
        tenant: TenantId,
        key_id: &str,
        hash: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// A tenant's keys: (public id, created at), oldest first.
    fn tenant_keys(&self, tenant: TenantId) -> Result<Vec<(String, i64)>, StoreError>;

    /// Revokes a tenant's key; `false` if the tenant has no such key.
    fn revoke_key(&mut self, tenant: TenantId, key_id: &str) -> Result<bool, StoreError>;

    /// Every tenant: (id, name), by name.
    fn tenants(&self) -> Result<Vec<(TenantId, String)>, StoreError>;

    /// The tenant of one key hash.
    fn key_tenant(&self, hash: &str) -> Result<Option<TenantId>, StoreError>;

    /// Every (key hash, tenant), for the API's key cache.
    fn keys(&self) -> Result<Vec<(String, TenantId)>, StoreError>;

    /// Tenant id by name.
    fn tenant_by_name(&self, name: &str) -> Result<Option<TenantId>, StoreError>;
}

/// The registry of virtual numbers (who owns each X) and the quarantine of released (party, X) pairs.
pub trait NumberStore {
    /// Adds numbers to a tenant's pool; all or nothing. A number that
    /// anyone already holds (in a pool, as an identifier, as the operator's)
    /// is the error, with whether it is the tenant's own.
    fn add_numbers(
        &mut self,
        tenant: TenantId,
        numbers: &[Number],
        now: i64,
    ) -> Result<Result<(), (Number, bool)>, StoreError>;

    /// Who holds X (tenant, and how: `pool`, `token` or `cli`), if anyone.
    fn owner(&self, x: &Number) -> Result<Option<(TenantId, Claim)>, StoreError>;

    /// Claims X for `tenant` as `source` (`token` or `cli`). Claiming what
    /// the same tenant already holds is fine; `false` if someone else does.
    fn claim(
        &mut self,
        tenant: TenantId,
        x: &Number,
        source: Claim,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Lets go of the operator's claim on X once no binding uses it.
    fn release_cli_claim(&mut self, x: &Number) -> Result<(), StoreError>;

    /// A tenant's pool, in number order.
    fn numbers(&self, tenant: TenantId) -> Result<Vec<Number>, StoreError>;

    /// Removes a number from a tenant's pool; `false` if it was not there.
    fn remove_number(&mut self, tenant: TenantId, n: &Number) -> Result<bool, StoreError>;

    /// X values quarantined now for any of `parties` (or for anyone, if
    /// `parties` is empty), each with its end.
    fn quarantined(&self, parties: &[&Number], now: i64) -> Result<Vec<(Number, i64)>, StoreError>;
}

/// Bindings, their conditions and counters, and blocklists.
pub trait BindingStore {
    /// Every binding, for loading the table at start.
    fn load_all(&mut self) -> Result<Vec<Binding>, StoreError>;

    /// At most `limit` bindings with ids above `after`, in id order: the
    /// table loads them a chunk at a time while the next is read.
    fn bindings_after(&self, after: BindingId, limit: usize) -> Result<Vec<Binding>, StoreError>;

    /// How many bindings there are: the table makes room for them at once.
    fn binding_count(&self) -> Result<usize, StoreError>;

    /// One binding by id.
    fn get(&self, id: BindingId) -> Result<Option<Binding>, StoreError>;

    /// Creates bindings in one transaction; all or nothing. Returns the ids.
    fn insert(&mut self, rows: &[NewBinding]) -> Result<Vec<BindingId>, StoreError> {
        self.insert_with_progress(rows, &mut |_| {})
    }

    /// [`BindingStore::insert`], calling `progress` with the count done so far.
    fn insert_with_progress(
        &mut self,
        rows: &[NewBinding],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<BindingId>, StoreError>;

    /// Deletes a binding; `false` if there was none.
    fn remove(&mut self, id: BindingId) -> Result<bool, StoreError>;

    /// Creates bindings (see [`BindingStore::insert`]) and returns them as stored.
    fn create(&mut self, rows: &[super::NewBinding]) -> Result<Vec<Binding>, StoreError> {
        let ids = self.insert(rows)?;
        // As written, not read back (a read per row was most of a bulk
        // request's time).
        Ok(ids
            .into_iter()
            .zip(rows)
            .map(|(id, n)| n.stored_as(id))
            .collect())
    }

    /// Replaces the conditions of a binding.
    fn set_conditions(&mut self, id: BindingId, c: &Conditions, now: i64)
        -> Result<(), StoreError>;

    /// Deletes bindings and quarantines each (party, X) until `until`; all or nothing.
    fn delete(&mut self, bindings: &[Binding], until: i64) -> Result<(), StoreError>;

    /// A page of a tenant's bindings.
    fn list(&self, tenant: TenantId, f: &Filter) -> Result<Page, StoreError>;

    /// Puts a number on (or off) a tenant's blocklist.
    fn set_blocked(
        &mut self,
        tenant: TenantId,
        n: &Number,
        blocked: bool,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Every blocked (tenant, number).
    fn blocklist(&self) -> Result<Vec<(TenantId, Number)>, StoreError>;

    /// Writes counters, all in one transaction.
    fn save_usage(&mut self, updates: &[UsageUpdate]) -> Result<(), StoreError>;

    /// Bindings with ids in `first..=last`.
    fn bindings_between(
        &self,
        first: BindingId,
        last: BindingId,
    ) -> Result<Vec<crate::bindings::Binding>, StoreError>;
}

/// Call records.
pub trait RecordStore {
    /// Writes records in one transaction.
    fn insert_calls(&mut self, records: &[CallRecord]) -> Result<(), StoreError>;

    /// A page of a tenant's call records, in order.
    fn calls(
        &self,
        tenant: TenantId,
        f: &CallFilter,
    ) -> Result<(Vec<CallRecord>, Option<i64>), StoreError>;

    /// Deletes call records placed before `before` (unix ms), and the
    /// events of the same age, delivered or not.
    fn purge_calls(&mut self, before: i64) -> Result<usize, StoreError>;
}

/// The event outbox.
pub trait EventStore {
    /// Stores events in one transaction; returns (tenant, JSON) of each.
    fn insert_events(
        &mut self,
        events: &[NewEvent],
        hooked: &dyn Fn(TenantId) -> bool,
    ) -> Result<Vec<(TenantId, String)>, StoreError>;

    /// Bindings that already had a `binding.expired` event.
    fn expired_notified(&self) -> Result<Vec<i64>, StoreError>;
}

/// Tenants' webhooks and the delivery state of their events.
pub trait WebhookStore {
    /// Sets (or replaces) a tenant's webhook; a replaced one starts afresh,
    /// enabled.
    fn set_webhook(
        &mut self,
        tenant: TenantId,
        url: &str,
        secret: &str,
        masked: bool,
    ) -> Result<(), StoreError>;

    /// A tenant's webhook.
    fn webhook(&self, tenant: TenantId) -> Result<Option<Webhook>, StoreError>;

    /// Removes a tenant's webhook and drops its undelivered events.
    fn delete_webhook(&mut self, tenant: TenantId) -> Result<bool, StoreError>;

    /// Tenants that have a webhook (disabled ones too: their events are
    /// kept for when it is enabled again).
    fn webhook_tenants(&self) -> Result<Vec<TenantId>, StoreError>;

    /// (Webhooks disabled, events failed for good), for metrics.
    fn webhook_health(&self) -> Result<(i64, i64), StoreError>;

    /// Tenants with an enabled webhook and at least one event due now.
    fn due_tenants(&self, now: i64) -> Result<Vec<TenantId>, StoreError>;

    /// A tenant's events due now, oldest first.
    fn due_events(&self, tenant: TenantId, now: i64, limit: u32) -> Result<Vec<Due>, StoreError>;

    /// Records one attempt for `tenant`'s event `id`. Returns `true` when
    /// this failure disabled the webhook (it has been failing since at
    /// least `disable_after_ms` ago).
    fn record_attempt(
        &mut self,
        tenant: TenantId,
        id: i64,
        outcome: &Attempt,
        now: i64,
        disable_after_ms: i64,
    ) -> Result<bool, StoreError>;

    /// A tenant's undelivered events: `failed` ones, or those still
    /// `pending`, oldest first.
    fn deliveries(
        &self,
        tenant: TenantId,
        failed: bool,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Puts a failed event of `tenant` back in line with a fresh set of
    /// attempts; `false` if the tenant has no such failed event.
    fn redeliver(&mut self, tenant: TenantId, event_id: &str, now: i64)
        -> Result<bool, StoreError>;
}

/// The operator's change log, applied by running servers.
pub trait ChangeLog {
    /// Logs a change (call inside the unit of work that makes it).
    fn log_change(&mut self, c: &Change) -> Result<(), StoreError>;

    /// Id of the latest change (0 if none): where a server starts reading.
    fn last_change(&self) -> Result<i64, StoreError>;

    /// How many servers have started on this store, where the backend
    /// counts them: a table saved at a clean stop is current only if no
    /// server started after the one that saved it (a server writes uses;
    /// nothing else does). `None` where it is not counted (a database
    /// other nodes write to all the time).
    fn serve_starts(&self) -> Result<Option<i64>, StoreError>;

    /// Counts a server's start; returns its number, where counted.
    fn count_serve_start(&mut self) -> Result<Option<i64>, StoreError>;

    /// Changes after `after`, in order, with their ids and whether they
    /// were logged with this connection's origin (by the same server).
    fn changes_since(&self, after: i64) -> Result<Vec<(i64, Change, bool)>, StoreError>;

    /// Waits at most `timeout` for a change, returning as soon as anyone
    /// logs one where the backend can say so (PostgreSQL's LISTEN), else
    /// after `timeout`. The log stays the truth: a signal only says when
    /// to read it.
    fn wait_for_change(&mut self, timeout: std::time::Duration) -> Result<(), StoreError>;
}

/// Checkpoints of live calls and their recovery after a crash.
pub trait LiveStore {
    /// Applies a checkpoint.
    fn save_checkpoint(&mut self, c: &Checkpoint) -> Result<(), StoreError>;

    /// Drops the checkpoint rows of calls that ended (booked normally).
    fn end_live(&mut self, keys: &[String]) -> Result<(), StoreError>;

    /// Books the calls of instances that died; returns how many. An
    /// instance is alive when `alive` says so (e.g. one draining on this
    /// host) or when its heartbeat is at or after `fresh_since` (unix ms:
    /// a node on another host; `i64::MAX` where there is none).
    fn recover_live(
        &mut self,
        alive: &dyn Fn(&str) -> bool,
        fresh_since: i64,
    ) -> Result<usize, StoreError>;

    /// Holds (or takes, with `take`) the lease of the node name `node` for
    /// `instance` at `now` (unix ms): held when this instance holds it
    /// already or its holder's heartbeat is older than `stale_before`.
    /// `sip` is where the node's SIP is reached (`host:port`; empty for
    /// none). Whether this instance holds it now.
    fn hold_node(
        &mut self,
        node: (&str, &str),
        instance: &str,
        now: i64,
        stale_before: i64,
        take: bool,
    ) -> Result<bool, StoreError>;

    /// Where the nodes that beat since `fresh_since` (unix ms) reach their
    /// SIP (`host:port`).
    fn node_addresses(&self, fresh_since: i64) -> Result<Vec<String>, StoreError>;
}

/// App accounts and their registered contacts.
pub trait AccountStore {
    /// Creates an account; `false` if the name is taken (by anyone).
    fn add_account(&mut self, a: &AccountRow) -> Result<bool, StoreError>;

    /// Accounts of one tenant, or of all, by name.
    fn accounts(&self, tenant: Option<TenantId>) -> Result<Vec<AccountRow>, StoreError>;

    /// Who holds an account name.
    fn account_tenant(&self, name: &str) -> Result<Option<TenantId>, StoreError>;

    /// Removes a tenant's account and its contacts; `false` if it has none
    /// of that name.
    fn remove_account(&mut self, tenant: TenantId, name: &str) -> Result<bool, StoreError>;

    /// Replaces an account's password hashes; `false` if the tenant has no
    /// such account.
    fn set_password(
        &mut self,
        tenant: TenantId,
        name: &str,
        realm: &str,
        ha1_md5: &str,
        ha1_sha256: &str,
    ) -> Result<bool, StoreError>;

    /// Replaces an account's contacts (none left: all deleted); contacts of
    /// an account that no longer exists are not written.
    fn save_contacts(&mut self, account: &str, rows: &[ContactRow]) -> Result<(), StoreError>;

    /// Every contact expiring after `after_ms`, with its account.
    fn contacts(&self, after_ms: i64) -> Result<Vec<(String, ContactRow)>, StoreError>;

    /// The name and contacts of the account with `uid`, if it exists.
    fn contacts_of(&self, uid: i64) -> Result<Option<(String, Vec<ContactRow>)>, StoreError>;
}

/// Flow 2: users and soft numbers, teams, agents, interactions, pushes,
/// acquired numbers and acquisition decisions.
pub trait FlowStore {
    /// A live (not recycled) user, or with [`UserKey::LastWithSoft`] the
    /// last one that had a soft number.
    fn live_user(&self, tenant: TenantId, by: UserKey<'_>) -> Result<Option<User>, StoreError>;

    /// Whether a soft number is live, or was recycled at or after `since`
    /// (still resting).
    fn soft_resting(&self, tenant: TenantId, soft: &str, since: i64) -> Result<bool, StoreError>;

    /// Adds a user with its soft number; returns its id.
    fn add_user(
        &mut self,
        tenant: TenantId,
        real: &Number,
        soft: &str,
        ext_id: Option<&str>,
        now: i64,
    ) -> Result<i64, StoreError>;

    /// Marks users active at `now`.
    fn touch_users(&mut self, ids: &[i64], now: i64) -> Result<(), StoreError>;

    /// Recycles a live user's soft number; `false` if there is none.
    fn recycle_user(&mut self, tenant: TenantId, id: i64, now: i64) -> Result<bool, StoreError>;

    /// A tenant's live users idle since before `before`, at most `limit`.
    fn idle_users(
        &self,
        tenant: TenantId,
        before: i64,
        limit: u32,
    ) -> Result<Vec<User>, StoreError>;

    /// Every live soft number, with its tenant (calls to them are refused).
    fn live_softs(&self) -> Result<Vec<(TenantId, String)>, StoreError>;

    /// Every acquired binding with its user's soft number (what the tenant
    /// is shown for the user).
    fn acquired_softs(&self) -> Result<Vec<(BindingId, String)>, StoreError>;

    /// Adds a team; `None` if the tenant has one of that name.
    fn add_team(
        &mut self,
        tenant: TenantId,
        name: &str,
        shares: bool,
        now: i64,
    ) -> Result<Option<i64>, StoreError>;

    /// A tenant's teams.
    fn teams(&self, tenant: TenantId) -> Result<Vec<Team>, StoreError>;

    /// One team of a tenant.
    fn team(&self, tenant: TenantId, id: i64) -> Result<Option<Team>, StoreError>;

    /// Sets whether a team shares; `false` if the tenant has no such team.
    fn set_team_shares(
        &mut self,
        tenant: TenantId,
        id: i64,
        shares: bool,
    ) -> Result<bool, StoreError>;

    /// Registers an agent; `None` if the tenant has one with that number.
    fn add_agent(
        &mut self,
        tenant: TenantId,
        real: &Number,
        team: i64,
        name: Option<&str>,
        now: i64,
    ) -> Result<Option<i64>, StoreError>;

    /// One agent.
    fn agent(&self, tenant: TenantId, by: AgentKey<'_>) -> Result<Option<Agent>, StoreError>;

    /// A tenant's agents, of one team or all.
    fn agents(&self, tenant: TenantId, team: Option<i64>) -> Result<Vec<Agent>, StoreError>;

    /// Moves an agent to another team; `false` if there is no such agent.
    fn move_agent(&mut self, tenant: TenantId, id: i64, team: i64) -> Result<bool, StoreError>;

    /// Removes an agent; `false` if there is none.
    fn remove_agent(&mut self, tenant: TenantId, id: i64) -> Result<bool, StoreError>;

    /// Records interactions.
    fn add_interactions(
        &mut self,
        tenant: TenantId,
        items: &[NewInteraction],
    ) -> Result<(), StoreError>;

    /// Whether the user interacted with an agent, or with any agent of a
    /// team, at or after `since`.
    fn interacted(
        &self,
        tenant: TenantId,
        user: i64,
        with: Interacted,
        since: i64,
    ) -> Result<bool, StoreError>;

    /// Notes a push of the user's soft number to the agent at `now` unless
    /// one was made at or after `window_start`; `true` if it is due.
    fn push_due(
        &mut self,
        user: i64,
        agent: i64,
        window_start: i64,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// The binding acquired for (agent, user), if any.
    fn acquired(&self, agent: i64, user: i64) -> Result<Option<BindingId>, StoreError>;

    /// Every (agent, binding) acquired for `user`.
    fn acquired_for_user(&self, user: i64) -> Result<Vec<(i64, BindingId)>, StoreError>;

    /// Sets (or with `None` forgets) the binding acquired for (agent, user).
    fn set_acquired(
        &mut self,
        agent: i64,
        user: i64,
        binding: Option<BindingId>,
    ) -> Result<(), StoreError>;

    /// (tenant, agent, agent's team, user) of an acquired binding.
    fn pair_of_binding(
        &self,
        binding: BindingId,
    ) -> Result<Option<(TenantId, i64, i64, i64)>, StoreError>;

    /// Records an acquisition decision; returns its id.
    fn add_acquisition(&mut self, a: &AcquisitionRecord) -> Result<i64, StoreError>;

    /// A page of a tenant's decisions (fetched `limit + 1` to tell a next).
    fn acquisitions(
        &self,
        tenant: TenantId,
        f: &AcquisitionFilter,
    ) -> Result<Vec<AcquisitionRecord>, StoreError>;

    /// A tenant's own flow-2 settings (JSON), if it set any.
    fn flow_settings(&self, tenant: TenantId) -> Result<Option<String>, StoreError>;

    /// Replaces a tenant's flow-2 settings (JSON).
    fn set_flow_settings(&mut self, tenant: TenantId, body: &str) -> Result<(), StoreError>;
}

/// A storage backend: every area, and units of work over them.
pub trait Backend:
    TenantStore
    + NumberStore
    + BindingStore
    + RecordStore
    + EventStore
    + WebhookStore
    + ChangeLog
    + LiveStore
    + AccountStore
    + FlowStore
    + super::HoldStore
    + Send
{
    /// Runs `f` as one unit of work: its writes commit together, or none
    /// does when it fails. Units nest (the inner one is a savepoint).
    fn unit(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Backend) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Another connection to the same database.
    fn reopen(&self) -> Result<Box<dyn Backend>, StoreError>;

    /// Names who logs changes through this connection (the server's
    /// instance; by default this process): see
    /// [`ChangeLog::changes_since`].
    fn set_origin(&mut self, origin: &str);

    /// Moves committed writes from the log into the database without
    /// blocking anyone (SQLite's passive WAL checkpoint); a no-op where
    /// the database does that itself.
    fn checkpoint(&mut self) -> Result<(), StoreError>;
}

impl<'a> dyn Backend + 'a {
    /// Runs `f` as one unit of work ([`Backend::unit`]) with its own result
    /// and error types: an `Err` rolls everything back.
    pub fn atomically<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut dyn Backend) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut f = Some(f);
        let mut result: Option<Result<T, E>> = None;
        let unit = self.unit(&mut |s| {
            let Some(f) = f.take() else {
                return Err(StoreError::Unavailable("unit of work ran twice".into()));
            };
            let r = f(s);
            let failed = r.is_err();
            result = Some(r);
            if failed {
                Err(StoreError::RolledBack)
            } else {
                Ok(())
            }
        });
        match (unit, result) {
            (_, Some(Err(e))) => Err(e),
            (Err(e), _) => Err(e.into()),
            (Ok(()), Some(Ok(v))) => Ok(v),
            (Ok(()), None) => {
                Err(StoreError::Unavailable("unit of work did not run".into()).into())
            }
        }
    }
}
