//! The in-memory binding table: every lookup on the call path lands here.
//!
//! AXB bindings are keyed (caller, X) in both directions, AX bindings by X;
//! lookup tries AXB first, then AX. Counters live with the binding under the
//! map's shard lock, so a reservation is atomic with its check and concurrent
//! INVITEs can never exceed a call limit. Persisting changes is the caller's
//! job (see `store`); the table never touches a disk or a socket.

use dashmap::DashMap;

use crate::ids::Keyed;

use super::conditions::{check, Conditions, Defaults, Refusal, Usage, Way};
pub use super::kinds::{Claim, Kind};
use super::number::Number;

#[cfg(test)]
mod model_tests;
mod row;
mod rows;
mod snapshot;
mod usage;
use row::Row;
use rows::Rows;
pub use snapshot::{SnapshotError, Stamp};
pub use usage::Counted;

/// Row id of a binding in the store.
pub type BindingId = i64;

/// Tenant that owns a binding; [`OPERATOR`] for bindings made with the CLI.
pub type TenantId = i64;

/// The tenant of bindings created from the command line.
pub const OPERATOR: TenantId = 0;

/// An AX or AXB binding with its usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// Store row id.
    pub id: BindingId,
    /// Owner.
    pub tenant: TenantId,
    /// How it was made.
    pub kind: Kind,
    /// A of an AXB binding; `None` for AX.
    pub a: Option<Number>,
    /// The virtual number.
    pub x: Number,
    /// B of an AXB binding, or the owner of an AX binding.
    pub b: Number,
    /// Conditions as set on this binding.
    pub conditions: Conditions,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// What has been used.
    pub usage: Usage,
}

/// Why a binding cannot be added.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableError {
    /// (party, X) already names a live binding.
    #[error("{party} already has a binding on virtual number {x}")]
    PartyTaken {
        /// The party, masked when displayed.
        party: Number,
        /// The virtual number.
        x: Number,
    },
    /// X already has an AX binding.
    #[error("virtual number {0} already has an AX binding")]
    VirtualTaken(Number),
    /// A and B are the same party.
    #[error("caller and callee are the same party")]
    SameParty,
    /// X serves another tenant (or the operator): one owner per X.
    #[error("virtual number {0} belongs to someone else")]
    VirtualOwned(Number),
}

/// A call that passed its conditions and holds a reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    /// The binding that admitted the call.
    pub binding: BindingId,
    /// The real party to call.
    pub callee: Number,
    /// The number shown to the callee (X).
    pub virtual_number: Number,
    /// Longest the call may last in seconds, 0 = unlimited.
    pub max_secs: u64,
    /// Talk time leased from the binding's budget (`None`: no budget);
    /// the call renews it with [`BindingTable::extend_lease`].
    pub lease: Option<u64>,
    /// Owner of the binding.
    pub tenant: TenantId,
    /// How the caller relates to the binding: the call's direction.
    pub direction: Way,
    /// Whether the call is recorded.
    pub record: bool,
    /// Whether prompts play (`None`: the configured default).
    pub announce: Option<bool>,
}

/// The table.
#[derive(Default)]
pub struct BindingTable {
    // Every binding, by id, by (party, X) and by X (`rows.rs`). One lock:
    // the SIP thread takes it for each step of a call, the API for each
    // change, each for a few lookups.
    rows: std::sync::RwLock<Rows>,
    // Blocked callers per tenant.
    blocked: DashMap<(TenantId, Number), (), Keyed>,
    // Live soft numbers (as dialled), with how many tenants hold each:
    // never callable, never an X or a party.
    soft: DashMap<Number, u32, Keyed>,
    // Flow 2: per acquired binding, the soft number that stands for its
    // user (B) wherever the tenant is shown the binding or its calls, and
    // how long an answered call renews it for.
    shown: DashMap<BindingId, (Number, u64), Keyed>,
    defaults: Defaults,
}

impl BindingTable {
    /// An empty table applying `defaults`.
    pub fn new(defaults: Defaults) -> Self {
        BindingTable {
            defaults,
            ..Default::default()
        }
    }

    /// Number of bindings.
    pub fn len(&self) -> usize {
        self.read_rows().len()
    }

    /// Bytes its rows and indexes hold (their room, not only what is in
    /// use; conditions a binding sets and interned names included).
    pub fn bytes(&self) -> usize {
        self.read_rows().bytes()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.read_rows().len() == 0
    }

    fn read_rows(&self) -> std::sync::RwLockReadGuard<'_, Rows> {
        // A panic while holding the lock leaves rows and indexes that
        // agree: each change is made whole before the guard drops.
        self.rows.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_rows(&self) -> std::sync::RwLockWriteGuard<'_, Rows> {
        self.rows.write().unwrap_or_else(|e| e.into_inner())
    }

    /// `f` of binding `id`'s row.
    fn read<T>(&self, id: BindingId, f: impl FnOnce(&Row) -> T) -> Option<T> {
        self.read_rows().get(id).map(f)
    }

    /// `f` of binding `id`'s row, to change.
    fn write<T>(&self, id: BindingId, f: impl FnOnce(&mut Row) -> T) -> Option<T> {
        self.write_rows().get_mut(id).map(f)
    }

    /// Checks that a binding of `tenant` could be added without clashing.
    /// The last line of defence for "one owner per X": the store's claims
    /// decide first, this keeps two owners out of the live table even if a
    /// path forgot to claim.
    pub fn check_new(
        &self,
        tenant: TenantId,
        a: Option<&Number>,
        x: &Number,
        b: &Number,
    ) -> Result<(), TableError> {
        self.check_in(&self.read_rows(), tenant, (a, x, b))
    }

    /// [`BindingTable::check_new`] against `rows`.
    fn check_in(
        &self,
        rows: &Rows,
        tenant: TenantId,
        (a, x, b): (Option<&Number>, &Number, &Number),
    ) -> Result<(), TableError> {
        if rows.x_use(x).is_some_and(|u| u.tenant != tenant) {
            return Err(TableError::VirtualOwned(x.clone()));
        }
        match a {
            Some(a) if a == b => Err(TableError::SameParty),
            Some(a) => match [a, b].into_iter().find(|p| rows.serves(p, x)) {
                Some(p) => Err(TableError::PartyTaken {
                    party: p.clone(),
                    x: x.clone(),
                }),
                None => Ok(()),
            },
            None if rows.is_identifier(x) => Err(TableError::VirtualTaken(x.clone())),
            None => Ok(()),
        }
    }

    /// Adds a binding (already stored) after checking for clashes, both
    /// under one lock.
    pub fn insert(&self, binding: Binding) -> Result<(), TableError> {
        let mut rows = self.write_rows();
        self.add(&mut rows, binding)
    }

    fn add(&self, rows: &mut Rows, binding: Binding) -> Result<(), TableError> {
        if binding.a.as_ref() == Some(&binding.b) {
            return Err(TableError::SameParty);
        }
        let parties = (binding.a.as_ref(), &binding.x, &binding.b);
        rows.insert(Row::of(&binding), parties)
    }

    /// Makes room for `n` more bindings (AXB ones, as most are).
    pub fn reserve(&self, n: usize) {
        self.write_rows().reserve(n, n);
    }

    /// Adds the bindings read back from the store at start, under one
    /// lock and with room made for them at once; one that clashes (a
    /// store changed by hand) is left out and told to `skipped`.
    pub fn load(&self, all: Vec<Binding>, skipped: &mut dyn FnMut(TableError)) {
        let mut rows = self.write_rows();
        let pairs = all.iter().filter(|b| b.a.is_some()).count();
        rows.reserve(all.len(), pairs);
        for b in all {
            if let Err(e) = self.add(&mut rows, b) {
                skipped(e);
            }
        }
    }

    /// Removes a binding; calls in progress are not affected.
    pub fn remove(&self, id: BindingId) -> Option<Binding> {
        let b = self.write_rows().remove(id)?;
        self.shown.remove(&id);
        Some(b)
    }

    /// A copy of one binding.
    pub fn get(&self, id: BindingId) -> Option<Binding> {
        let rows = self.read_rows();
        rows.get(id).map(|r| rows.binding(r))
    }

    /// Finds the binding for a call from `caller` to `dialled` and reserves a
    /// use if its conditions hold. AXB first, then AX.
    pub fn admit(&self, caller: &Number, dialled: &Number, now: i64) -> Result<Admission, Refusal> {
        let mut rows = self.write_rows();
        let caller_code = rows.code(caller);
        let found = rows.code(dialled).and_then(|x| {
            let pair = caller_code.and_then(|c| rows.pair(c, x)).map(|r| r.id);
            pair.or_else(|| rows.ax(x).map(|r| r.id))
        });
        let id = match found {
            Some(id) => id,
            // X in use, not by this caller: the tenant's blocklist first.
            None => match rows.x_use(dialled) {
                Some(u) if self.blocked.contains_key(&(u.tenant, caller.clone())) => {
                    return Err(Refusal::CallerBlocked)
                }
                Some(_) => return Err(Refusal::CallerNotAllowed),
                None => return Err(Refusal::UnknownNumber),
            },
        };
        let b = rows.get_mut(id).ok_or(Refusal::UnknownNumber)?;
        if self.blocked.contains_key(&(b.tenant, caller.clone())) {
            return Err(Refusal::CallerBlocked);
        }
        let way = match b.a {
            0 => Way::Ax,
            a if Some(a) == caller_code => Way::FromA,
            _ => Way::FromB,
        };
        let eff = b.conditions().effective(&self.defaults, b.created_at);
        let grant = check(b.conditions(), &eff, &b.usage, caller, way, now)?;
        b.usage.reserved += 1;
        b.usage.talk_leased += grant.lease.unwrap_or(0);
        let callee = if way == Way::FromB { b.a } else { b.b };
        let (x, tenant) = (b.x, b.tenant);
        let (record, announce) = (b.conditions().record, b.conditions().announce);
        Ok(Admission {
            binding: id,
            callee: rows.number(callee),
            virtual_number: rows.number(x),
            max_secs: grant.max_secs,
            lease: grant.lease,
            tenant,
            direction: way,
            record,
            announce,
        })
    }

    /// Replaces a binding's conditions; usage is kept. Returns the binding.
    pub fn set_conditions(&self, id: BindingId, c: Conditions) -> Option<Binding> {
        let mut rows = self.write_rows();
        rows.get_mut(id)?.set_conditions(c);
        rows.get(id).map(|r| rows.binding(r))
    }

    /// Bindings of API tenants whose validity (absolute end or idle
    /// lifetime) is over at `now`.
    pub fn expired(&self, now: i64) -> Vec<Binding> {
        let rows = self.read_rows();
        rows.iter()
            .filter(|b| {
                let eff = b.conditions().effective(&self.defaults, b.created_at);
                let idle = super::conditions::idle_end(&b.usage, &eff);
                b.tenant != OPERATOR
                    && (eff.not_after.is_some_and(|t| now >= t) || idle.is_some_and(|t| now >= t))
            })
            .map(|b| rows.binding(b))
            .collect()
    }

    /// The tenant whose bindings use X, if any.
    pub fn tenant_of(&self, x: &Number) -> Option<TenantId> {
        self.read_rows().x_use(x).map(|u| u.tenant)
    }

    /// Whether X is an identifier's (an AX binding): such an X reaches its
    /// owner alone and is never allocated to a pair.
    pub fn is_identifier(&self, x: &Number) -> bool {
        self.read_rows().is_identifier(x)
    }

    /// Live bindings on X.
    pub fn uses_of(&self, x: &Number) -> u32 {
        self.read_rows().x_use(x).map_or(0, |u| u.count)
    }

    /// Whether `party` has an AXB binding on `x`. Allocation asks it of
    /// each X of a pool rather than keeping every party's list of X (a
    /// list per party cost a few hundred bytes a binding).
    pub fn serves(&self, party: &Number, x: &Number) -> bool {
        self.read_rows().serves(party, x)
    }

    /// Shows `soft` for the user (B) of acquired binding `id` (flow 2)
    /// wherever the tenant sees the binding or its calls; an answered call
    /// renews it for `life` seconds.
    pub fn set_shown(&self, id: BindingId, soft: Number, life: u64) {
        self.shown.insert(id, (soft, life));
    }

    /// An answered call on acquired binding `id` at `now` renews it (its
    /// end no sooner than `now` + its lifetime), as an interaction does;
    /// the new conditions to store, `None` for any other binding or one
    /// already over.
    pub fn renew_acquired(&self, id: BindingId, now: i64) -> Option<Conditions> {
        let life = i64::try_from(self.shown.get(&id)?.1).unwrap_or(i64::MAX);
        self.write(id, |b| {
            let end = b.conditions().not_after.filter(|t| *t > now)?;
            let until = end.max(now.saturating_add(life));
            if until == end {
                return None;
            }
            let mut c = b.conditions().clone();
            c.not_after = Some(until);
            b.set_conditions(c.clone());
            Some(c)
        })
        .flatten()
    }

    /// `b` as its tenant is shown it: an acquired binding's user is its
    /// soft number, never the real one.
    pub fn display(&self, b: &Binding) -> Binding {
        let mut out = b.clone();
        if let Some(shown) = self.shown.get(&b.id) {
            out.b = shown.0.clone();
        }
        out
    }

    /// A party `n` of a call on binding `id` as its tenant is shown it
    /// (see [`BindingTable::display`]).
    pub fn display_party(&self, id: BindingId, n: &str) -> String {
        // Every call asks: most bindings are not acquired, and for them
        // this is one lookup, not two.
        let Some(shown) = self.shown.get(&id) else {
            return n.to_string();
        };
        let rows = self.read_rows();
        match rows.get(id) {
            Some(b) if rows.number(b.b).as_str() == n => shown.0.as_str().to_string(),
            _ => n.to_string(),
        }
    }

    /// Notes a live soft number (or, `live` false, one recycled).
    pub fn set_soft(&self, n: Number, live: bool) {
        if live {
            *self.soft.entry(n).or_insert(0) += 1;
        } else if let Some(mut c) = self.soft.get_mut(&n) {
            *c = c.saturating_sub(1);
            let gone = *c == 0;
            drop(c);
            if gone {
                self.soft.remove_if(&n, |_, c| *c == 0);
            }
        }
    }

    /// Whether `n` is a live soft number.
    pub fn is_soft(&self, n: &Number) -> bool {
        self.soft.contains_key(n)
    }

    /// Puts a caller on a tenant's blocklist (or takes it off).
    pub fn set_blocked(&self, tenant: TenantId, caller: Number, blocked: bool) {
        if blocked {
            self.blocked.insert((tenant, caller), ());
        } else {
            self.blocked.remove(&(tenant, caller));
        }
    }

    /// The defaults applied to bindings without their own conditions.
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        Number::from_normalised(s.into())
    }

    fn binding(id: i64, a: Option<&str>, x: &str, b: &str) -> Binding {
        Binding {
            id,
            tenant: OPERATOR,
            kind: Kind::Cli,
            a: a.map(n),
            x: n(x),
            b: n(b),
            conditions: Conditions::default(),
            created_at: 0,
            usage: Usage::default(),
        }
    }

    #[test]
    fn axb_routes_both_ways_and_ax_is_the_fallback() {
        let t = BindingTable::new(Defaults::default());
        t.insert(binding(1, Some("+1"), "+9", "+2")).expect("axb");
        t.insert(binding(2, None, "+9", "+3")).expect("ax");
        assert_eq!(
            t.admit(&n("+1"), &n("+9"), 0).expect("a->b").callee,
            n("+2")
        );
        assert_eq!(
            t.admit(&n("+2"), &n("+9"), 0).expect("b->a").callee,
            n("+1")
        );
        assert_eq!(t.admit(&n("+5"), &n("+9"), 0).expect("ax").callee, n("+3"));
        assert_eq!(t.admit(&n("+5"), &n("+8"), 0), Err(Refusal::UnknownNumber));
    }

    #[test]
    fn a_stranger_on_an_axb_number_is_not_allowed() {
        let t = BindingTable::new(Defaults::default());
        t.insert(binding(1, Some("+1"), "+9", "+2")).expect("axb");
        assert_eq!(
            t.admit(&n("+7"), &n("+9"), 0),
            Err(Refusal::CallerNotAllowed)
        );
    }

    #[test]
    fn x_is_never_live_twice_for_the_same_party() {
        let t = BindingTable::new(Defaults::default());
        t.insert(binding(1, Some("+1"), "+9", "+2")).expect("axb");
        assert!(matches!(
            t.insert(binding(2, Some("+3"), "+9", "+1")),
            Err(TableError::PartyTaken { .. })
        ));
        t.insert(binding(3, Some("+3"), "+9", "+4"))
            .expect("other pair");
    }

    #[test]
    fn reservations_are_released_or_consumed() {
        let t = BindingTable::new(Defaults::default());
        let mut b = binding(1, None, "+9", "+2");
        b.conditions.max_calls = Some(1);
        t.insert(b).expect("ax");
        t.admit(&n("+5"), &n("+9"), 0).expect("first");
        assert_eq!(t.admit(&n("+5"), &n("+9"), 0), Err(Refusal::CallsUsedUp));
        t.settle(1, false, 0);
        t.admit(&n("+5"), &n("+9"), 0).expect("released");
        assert_eq!(t.settle(1, true, 0).map(|u| u.calls_used), Some(1));
        assert_eq!(t.admit(&n("+5"), &n("+9"), 0), Err(Refusal::CallsUsedUp));
    }

    #[test]
    fn blocked_callers_are_refused_for_that_tenant_only() {
        let t = BindingTable::new(Defaults::default());
        t.insert(binding(1, None, "+9", "+2")).expect("ax");
        t.set_blocked(OPERATOR, n("+5"), true);
        assert_eq!(t.admit(&n("+5"), &n("+9"), 0), Err(Refusal::CallerBlocked));
        t.set_blocked(7, n("+6"), true);
        assert!(t.admit(&n("+6"), &n("+9"), 0).is_ok());
    }

    #[test]
    fn party_index_follows_inserts_and_removals() {
        let t = BindingTable::new(Defaults::default());
        t.insert(binding(1, Some("+1"), "+9", "+2")).expect("axb");
        t.insert(binding(2, Some("+1"), "+8", "+3")).expect("axb");
        let serves = |p: &str, x: &str| t.serves(&n(p), &n(x));
        assert!(serves("+1", "+9") && serves("+1", "+8") && serves("+2", "+9"));
        assert!(!serves("+2", "+8") && !serves("+9", "+1"));
        t.remove(1);
        assert!(!serves("+1", "+9") && serves("+1", "+8") && !serves("+2", "+9"));
        assert_eq!(t.uses_of(&n("+9")), 0);
    }
}
