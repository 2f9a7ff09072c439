//! The table's rows in one dense vector, found by open-addressed indexes
//! of row numbers: by id, by (party, X) for AXB bindings (an entry for
//! each party) and by X for AX ones. Parties are integers: a phone number
//! its own [`Number::code`], anything else a name interned once. A
//! binding costs its row and a few bytes of index, where maps of owned
//! keys cost several hundred bytes (docs/benchmarks.md, issue 32).

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::row::Row;
use super::{Binding, BindingId, TableError, TenantId};
use crate::bindings::number::Number;
use crate::ids::Keyed;

/// The top bit of an index entry: the entry is for the binding's B (else
/// its A, or an AX binding's X).
const B_SIDE: u32 = 1 << 31;
/// The top bit of a party's integer: an interned name.
const NAMED: u64 = 1 << 63;

/// Names that are not phone numbers, each kept once while a binding uses
/// it.
#[derive(Default)]
struct Names {
    list: Vec<(Number, u32)>,
    free: Vec<u32>,
    index: HashTable<u32>,
}

impl Names {
    fn find(&self, keys: &Keyed, n: &Number) -> Option<u64> {
        let h = keys.hash_one(n.as_str());
        let list = &self.list;
        self.index
            .find(h, |&i| list[i as usize].0 == *n)
            .map(|&i| NAMED | u64::from(i))
    }

    fn intern(&mut self, keys: &Keyed, n: &Number) -> u64 {
        if let Some(code) = self.find(keys, n) {
            self.list[(code & !NAMED) as usize].1 += 1;
            return code;
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.list[i as usize] = (n.clone(), 1);
                i
            }
            None => {
                self.list.push((n.clone(), 1));
                (self.list.len() - 1) as u32
            }
        };
        let list = &self.list;
        self.index
            .insert_unique(keys.hash_one(n.as_str()), i, |&j| {
                keys.hash_one(list[j as usize].0.as_str())
            });
        NAMED | u64::from(i)
    }

    fn release(&mut self, keys: &Keyed, code: u64) {
        let i = (code & !NAMED) as usize;
        let Some((n, refs)) = self.list.get_mut(i) else {
            return;
        };
        *refs -= 1;
        if *refs > 0 {
            return;
        }
        let h = keys.hash_one(n.as_str());
        if let Ok(e) = self.index.find_entry(h, |&j| j as usize == i) {
            e.remove();
        }
        self.list[i].0 = Number::from_normalised(String::new());
        self.free.push(i as u32);
    }
}

/// How many bindings use an X, and whose they are: pool status,
/// allocation order, and "caller not allowed" versus "unknown number"
/// without a scan.
#[derive(Clone, Copy, Debug)]
pub(super) struct XUse {
    pub count: u32,
    pub tenant: TenantId,
}

/// Rows and their indexes.
#[derive(Default)]
pub(super) struct Rows {
    rows: Vec<Row>,
    free: Vec<u32>,
    by_id: HashTable<u32>,
    pairs: HashTable<u32>,
    ax: HashTable<u32>,
    xs: hashbrown::HashMap<u64, XUse, Keyed>,
    names: Names,
    keys: Keyed,
}

impl Rows {
    /// The top bit of a party's integer: an interned name.
    pub const NAMED: u64 = NAMED;

    /// Live bindings.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Bytes held: the rows' room, each index's slots (a row number and a
    /// control byte each), the conditions rows set, the interned names.
    pub fn bytes(&self) -> usize {
        let slot = std::mem::size_of::<u32>() + 1;
        let own: usize = self
            .iter()
            .filter(|r| r.sets_conditions())
            .map(|_| std::mem::size_of::<crate::bindings::conditions::Conditions>())
            .sum();
        let names: usize = self
            .names
            .list
            .iter()
            .map(|(n, _)| std::mem::size_of::<(Number, u32)>() + n.as_str().len())
            .sum();
        self.rows.capacity() * std::mem::size_of::<Row>()
            + self.xs.capacity() * (std::mem::size_of::<(u64, XUse)>() + 1)
            + (self.by_id.capacity() + self.pairs.capacity() + self.ax.capacity()) * slot
            + (self.names.index.capacity() + self.free.capacity()) * slot
            + own
            + names
    }

    /// A party's integer, if any binding could have it.
    pub fn code(&self, n: &Number) -> Option<u64> {
        n.code().or_else(|| self.names.find(&self.keys, n))
    }

    /// The party an integer stands for.
    pub fn number(&self, code: u64) -> Number {
        if code & NAMED != 0 {
            let i = (code & !NAMED) as usize;
            return self
                .names
                .list
                .get(i)
                .map(|e| e.0.clone())
                .unwrap_or_else(|| Number::from_normalised(String::new()));
        }
        Number::from_code(code).unwrap_or_else(|| Number::from_normalised(String::new()))
    }

    fn intern(&mut self, n: &Number) -> u64 {
        n.code().unwrap_or_else(|| self.names.intern(&self.keys, n))
    }

    fn release(&mut self, code: u64) {
        if code & NAMED != 0 {
            self.names.release(&self.keys, code);
        }
    }

    fn pair_hash(keys: &Keyed, party: u64, x: u64) -> u64 {
        keys.hash_one((party, x))
    }

    /// The hash of a (party, X) index entry, when the index grows.
    fn rehash<'a>(rows: &'a [Row], keys: &'a Keyed) -> impl Fn(&u32) -> u64 + 'a {
        move |&e| {
            let r = &rows[(e & !B_SIDE) as usize];
            let party = if e & B_SIDE == 0 { r.a } else { r.b };
            Self::pair_hash(keys, party, r.x)
        }
    }

    /// The row number of binding `id`.
    fn slot(&self, id: BindingId) -> Option<usize> {
        let rows = &self.rows;
        self.by_id
            .find(self.keys.hash_one(id), |&s| rows[s as usize].id == id)
            .map(|&s| s as usize)
    }

    /// Binding `id`'s row.
    pub fn get(&self, id: BindingId) -> Option<&Row> {
        self.slot(id).map(|s| &self.rows[s])
    }

    /// Binding `id`'s row, to change.
    pub fn get_mut(&mut self, id: BindingId) -> Option<&mut Row> {
        self.slot(id).map(|s| &mut self.rows[s])
    }

    /// The AXB binding where `party` is A or B on `x`.
    pub fn pair(&self, party: u64, x: u64) -> Option<&Row> {
        let rows = &self.rows;
        self.pairs
            .find(
                Self::pair_hash(&self.keys, party, x),
                Self::entry_of(rows, party, x),
            )
            .map(|&e| &rows[(e & !B_SIDE) as usize])
    }

    /// Whether a (party, X) index entry is `party`'s on `x`.
    fn entry_of(rows: &[Row], party: u64, x: u64) -> impl Fn(&u32) -> bool + '_ {
        move |&e| {
            let r = &rows[(e & !B_SIDE) as usize];
            r.x == x && party == if e & B_SIDE == 0 { r.a } else { r.b }
        }
    }

    /// Whether `party` has an AXB binding on `x`.
    pub fn serves(&self, party: &Number, x: &Number) -> bool {
        match (self.code(party), self.code(x)) {
            (Some(p), Some(x)) => self.pair(p, x).is_some(),
            _ => false,
        }
    }

    /// Whether `x` has an AX binding (an identifier's).
    pub fn is_identifier(&self, x: &Number) -> bool {
        self.code(x).is_some_and(|x| self.ax(x).is_some())
    }

    /// The AX binding on `x`.
    pub fn ax(&self, x: u64) -> Option<&Row> {
        let rows = &self.rows;
        self.ax
            .find(self.keys.hash_one(x), |&s| rows[s as usize].x == x)
            .map(|&s| &rows[s as usize])
    }

    /// Makes room for `n` more bindings, `pairs` of them AXB.
    pub fn reserve(&mut self, n: usize, pairs: usize) {
        let Rows {
            rows,
            by_id,
            pairs: index,
            ax,
            keys,
            ..
        } = self;
        rows.reserve(n);
        by_id.reserve(n, |&s| keys.hash_one(rows[s as usize].id));
        index.reserve(2 * pairs, Self::rehash(rows, keys));
        ax.reserve(n - pairs, |&s| keys.hash_one(rows[s as usize].x));
    }

    /// Adds a row for parties `(a, x, b)`: the indexes refuse a (party,
    /// X) or an AX X that is taken, and an X of another tenant, so that a
    /// clash costs no lookup of its own.
    pub fn insert(
        &mut self,
        mut row: Row,
        (a, x, b): (Option<&Number>, &Number, &Number),
    ) -> Result<(), TableError> {
        row.a = a.map_or(0, |a| self.intern(a));
        row.x = self.intern(x);
        row.b = self.intern(b);
        if self.xs.get(&row.x).is_some_and(|u| u.tenant != row.tenant) {
            self.release_parties(&row);
            return Err(TableError::VirtualOwned(x.clone()));
        }
        let (id, xc, tenant) = (row.id, row.x, row.tenant);
        // In place before the indexes point at it: growing one rehashes
        // its entries from their rows.
        let slot = match self.free.pop() {
            Some(s) => {
                self.rows[s as usize] = row;
                s
            }
            None => {
                self.rows.push(row);
                (self.rows.len() - 1) as u32
            }
        };
        if let Err(e) = self.index(slot, (a, x, b)) {
            let r = std::mem::replace(&mut self.rows[slot as usize], Row::vacant());
            self.release_parties(&r);
            self.free.push(slot);
            return Err(e);
        }
        let keys = &self.keys;
        let rows = &self.rows;
        self.by_id.insert_unique(keys.hash_one(id), slot, |&s| {
            keys.hash_one(rows[s as usize].id)
        });
        Self::count_x(&mut self.xs, xc, tenant);
        Ok(())
    }

    /// Enters row `slot` in the index of its kind, unless its place there
    /// is taken.
    fn index(
        &mut self,
        slot: u32,
        (a, x, b): (Option<&Number>, &Number, &Number),
    ) -> Result<(), TableError> {
        use hashbrown::hash_table::Entry;
        let Rows {
            rows,
            pairs,
            ax,
            keys,
            ..
        } = self;
        let r = &rows[slot as usize];
        let (ac, xc, bc) = (r.a, r.x, r.b);
        let Some(a) = a else {
            let taken = |&s: &u32| rows[s as usize].x == xc;
            return match ax.entry(keys.hash_one(xc), taken, |&s| {
                keys.hash_one(rows[s as usize].x)
            }) {
                Entry::Occupied(_) => Err(TableError::VirtualTaken(x.clone())),
                Entry::Vacant(v) => {
                    v.insert(slot);
                    Ok(())
                }
            };
        };
        for (party, code, e) in [(a, ac, slot), (b, bc, slot | B_SIDE)] {
            let h = Self::pair_hash(keys, code, xc);
            match pairs.entry(h, Self::entry_of(rows, code, xc), Self::rehash(rows, keys)) {
                Entry::Vacant(v) => {
                    v.insert(e);
                }
                Entry::Occupied(_) => {
                    if e & B_SIDE != 0 {
                        // A's entry went in: take it out again.
                        let h = Self::pair_hash(keys, ac, xc);
                        if let Ok(mine) = pairs.find_entry(h, |&f| f == slot) {
                            mine.remove();
                        }
                    }
                    return Err(TableError::PartyTaken {
                        party: party.clone(),
                        x: x.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// One more binding of `tenant` on `x`.
    fn count_x(xs: &mut hashbrown::HashMap<u64, XUse, Keyed>, x: u64, tenant: TenantId) {
        xs.entry(x).or_insert(XUse { count: 0, tenant }).count += 1;
    }

    fn release_parties(&mut self, r: &Row) {
        for code in [r.a, r.x, r.b] {
            self.release(code);
        }
    }

    /// How many bindings use `x`, and whose.
    pub fn x_use(&self, x: &Number) -> Option<XUse> {
        self.code(x).and_then(|c| self.xs.get(&c).copied())
    }

    /// The binding a row holds.
    pub fn binding(&self, r: &Row) -> Binding {
        Binding {
            id: r.id,
            tenant: r.tenant,
            kind: r.kind,
            a: (r.a != 0).then(|| self.number(r.a)),
            x: self.number(r.x),
            b: self.number(r.b),
            conditions: r.conditions().clone(),
            created_at: r.created_at,
            usage: r.usage,
        }
    }

    /// The interned names as they are (a row's integers index them), to
    /// save with the rows.
    pub fn names(&self) -> &[(Number, u32)] {
        &self.names.list
    }

    /// Rows as saved by [`Rows::iter`] and [`Rows::names`], their indexes
    /// built afresh (the ids' on a second thread): what was saved agreed,
    /// so nothing is checked for clashes.
    pub fn rebuilt(rows: Vec<Row>, names: Vec<(Number, u32)>) -> Rows {
        let keys = Keyed::default();
        let mut named = Names {
            list: names,
            ..Default::default()
        };
        for (i, (n, refs)) in named.list.iter().enumerate() {
            if *refs == 0 {
                named.free.push(i as u32);
            } else {
                let list = &named.list;
                named
                    .index
                    .insert_unique(keys.hash_one(n.as_str()), i as u32, |&j| {
                        keys.hash_one(list[j as usize].0.as_str())
                    });
            }
        }
        let paired = rows.iter().filter(|r| r.a != 0).count();
        let (by_id, pairs, ax, xs) = std::thread::scope(|scope| {
            let (rows, keys) = (&rows, &keys);
            let ids = scope.spawn(move || {
                let mut by_id = HashTable::with_capacity(rows.len());
                for (slot, r) in rows.iter().enumerate() {
                    by_id.insert_unique(keys.hash_one(r.id), slot as u32, |&s| {
                        keys.hash_one(rows[s as usize].id)
                    });
                }
                by_id
            });
            let mut pairs = HashTable::with_capacity(2 * paired);
            let mut ax = HashTable::with_capacity(rows.len() - paired);
            let mut xs = hashbrown::HashMap::with_hasher(keys.clone());
            for (slot, r) in rows.iter().enumerate() {
                let slot = slot as u32;
                if r.a == 0 {
                    ax.insert_unique(keys.hash_one(r.x), slot, |&s| {
                        keys.hash_one(rows[s as usize].x)
                    });
                } else {
                    let rehash = Self::rehash(rows, keys);
                    pairs.insert_unique(Self::pair_hash(keys, r.a, r.x), slot, &rehash);
                    pairs.insert_unique(Self::pair_hash(keys, r.b, r.x), slot | B_SIDE, &rehash);
                }
                Self::count_x(&mut xs, r.x, r.tenant);
            }
            let by_id = ids
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (by_id, pairs, ax, xs)
        });
        Rows {
            rows,
            free: Vec::new(),
            by_id,
            pairs,
            ax,
            xs,
            names: named,
            keys,
        }
    }

    /// Takes binding `id` out.
    pub fn remove(&mut self, id: BindingId) -> Option<Binding> {
        let slot = self.slot(id)? as u32;
        let keys = &self.keys;
        if let Ok(e) = self.by_id.find_entry(keys.hash_one(id), |&s| s == slot) {
            e.remove();
        }
        let r = &self.rows[slot as usize];
        let gone = self.binding(r);
        let (a, x, b) = (r.a, r.x, r.b);
        if a == 0 {
            if let Ok(e) = self.ax.find_entry(keys.hash_one(x), |&s| s == slot) {
                e.remove();
            }
        } else {
            for (party, e) in [(a, slot), (b, slot | B_SIDE)] {
                let h = Self::pair_hash(keys, party, x);
                if let Ok(found) = self.pairs.find_entry(h, |&v| v == e) {
                    found.remove();
                }
            }
        }
        if let Some(u) = self.xs.get_mut(&x) {
            u.count -= 1;
            if u.count == 0 {
                self.xs.remove(&x);
            }
        }
        for code in [a, x, b] {
            self.release(code);
        }
        self.free.push(slot);
        self.rows[slot as usize] = Row::vacant();
        Some(gone)
    }

    /// Every live row.
    pub fn iter(&self) -> impl Iterator<Item = &Row> {
        self.by_id.iter().map(|&s| &self.rows[s as usize])
    }
}
