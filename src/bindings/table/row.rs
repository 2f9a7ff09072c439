//! A binding as the table keeps it: its parties as integers
//! (`super::rows`), and its conditions stored only when it sets any (most
//! bindings use the defaults).

use std::sync::LazyLock;

use super::{Binding, BindingId, Kind, TenantId};
use crate::bindings::conditions::{Conditions, Usage};

/// The conditions of every binding that sets none.
static NONE: LazyLock<Conditions> = LazyLock::new(Conditions::default);

/// One binding in the table.
#[derive(Clone, Debug)]
pub(super) struct Row {
    pub id: BindingId,
    pub tenant: TenantId,
    /// A (0: an AX binding), X and B, as `super::rows` numbers parties.
    pub a: u64,
    pub x: u64,
    pub b: u64,
    /// `None`: the defaults.
    own: Option<Box<Conditions>>,
    pub created_at: i64,
    pub usage: Usage,
    pub kind: Kind,
}

impl Row {
    /// `b`'s row, its parties not numbered yet.
    pub fn of(b: &Binding) -> Row {
        Row {
            id: b.id,
            tenant: b.tenant,
            a: 0,
            x: 0,
            b: 0,
            own: (b.conditions != *NONE).then(|| Box::new(b.conditions.clone())),
            created_at: b.created_at,
            usage: b.usage,
            kind: b.kind,
        }
    }

    /// A free slot's row.
    pub fn vacant() -> Row {
        Row {
            id: BindingId::MIN,
            tenant: 0,
            a: 0,
            x: 0,
            b: 0,
            own: None,
            created_at: 0,
            usage: Usage::default(),
            kind: Kind::Cli,
        }
    }

    /// Its conditions as set.
    pub fn conditions(&self) -> &Conditions {
        self.own.as_deref().unwrap_or(&NONE)
    }

    /// Whether it sets conditions of its own.
    pub fn sets_conditions(&self) -> bool {
        self.own.is_some()
    }

    /// Sets its conditions.
    pub fn set_conditions(&mut self, c: Conditions) {
        self.own = (c != *NONE).then(|| Box::new(c));
    }
}
