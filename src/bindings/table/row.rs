//! A binding as the table keeps it: its id is the key of the map that
//! holds it, and its conditions are stored only when it sets any (most
//! bindings use the defaults), so a row is about half of a [`Binding`].

use std::sync::LazyLock;

use super::{Binding, BindingId, Kind, TenantId};
use crate::bindings::conditions::{Conditions, Usage};
use crate::bindings::number::Number;

/// The conditions of every binding that sets none.
static NONE: LazyLock<Conditions> = LazyLock::new(Conditions::default);

/// One binding in the table.
#[derive(Clone, Debug)]
pub(super) struct Row {
    pub tenant: TenantId,
    pub kind: Kind,
    pub a: Option<Number>,
    pub x: Number,
    pub b: Number,
    /// `None`: the defaults.
    own: Option<Box<Conditions>>,
    pub created_at: i64,
    pub usage: Usage,
}

impl Row {
    /// `b`'s row, and its id.
    pub fn of(b: Binding) -> (BindingId, Row) {
        let own = (b.conditions != *NONE).then(|| Box::new(b.conditions));
        let row = Row {
            tenant: b.tenant,
            kind: b.kind,
            a: b.a,
            x: b.x,
            b: b.b,
            own,
            created_at: b.created_at,
            usage: b.usage,
        };
        (b.id, row)
    }

    /// The binding of id `id`.
    pub fn binding(&self, id: BindingId) -> Binding {
        Binding {
            id,
            tenant: self.tenant,
            kind: self.kind,
            a: self.a.clone(),
            x: self.x.clone(),
            b: self.b.clone(),
            conditions: self.conditions().clone(),
            created_at: self.created_at,
            usage: self.usage,
        }
    }

    /// Its conditions as set.
    pub fn conditions(&self) -> &Conditions {
        self.own.as_deref().unwrap_or(&NONE)
    }

    /// Sets its conditions.
    pub fn set_conditions(&mut self, c: Conditions) {
        self.own = (c != *NONE).then(|| Box::new(c));
    }
}
