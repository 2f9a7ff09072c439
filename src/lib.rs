//! sipmask: a SIP back-to-back user agent that bridges calls to virtual
//! numbers to the real parties behind them, masking each from the other.
//!
//! A message flows [`sip::transport`] (sockets, framing) ->
//! [`sip::transaction`] -> [`b2bua`] (calls), which asks its
//! [`b2bua::Policy`] at each step; the masking policy ([`calls`]) decides
//! with the binding table ([`bindings`]) and answers back down. The
//! engine knows nothing of bindings: the policy is the only bridge.
//! [`store`] persists bindings and counters; [`server`] wires it all from
//! a [`config::Config`]. docs/design.md draws the layers, and
//! `tests/layers.rs` holds the code to them.

pub mod api;
pub mod b2bua;
pub mod bindings;
pub mod calls;
pub mod cli;
pub mod config;
pub mod datagrams;
pub mod events;
pub mod handover;
pub mod hash;
pub mod ids;
pub mod logs;
pub mod mask;
pub mod media;
pub mod metrics;
pub mod net;
pub mod problems;
pub mod registrar;
pub mod server;
pub mod service;
pub mod sip;
pub mod store;
pub mod text;
pub mod time;
pub mod watch;
