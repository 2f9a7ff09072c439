//! Bindings and conditions: who may call which virtual number, and who it
//! reaches. Owns number normalisation, the in-memory table, the pure
//! conditions check and CSV import parsing. Never touches a socket; the store
//! persists what it changes.

pub mod alloc;
pub mod conditions;
pub mod config;
pub mod csv;
mod kinds;
pub mod limits;
pub mod number;
pub mod table;
mod zone;

pub use conditions::{Conditions, Defaults, Direction, Refusal, Usage, Way, Zone};
pub use number::{Normaliser, Number, NumberError};
pub use table::{
    Admission, Binding, BindingId, BindingTable, Claim, Counted, Kind, SnapshotError, Stamp,
    TableError, TenantId, OPERATOR,
};
