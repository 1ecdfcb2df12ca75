//! Petrel's deterministic matching core.
//!
//! A single-threaded state machine: [`Engine::apply`] takes a [`Command`] with the sequence
//! number and timestamp the sequencer gave it, and writes [`Event`]s to a sink. The same
//! commands in the same order always produce the same events and the same state
//! ([`Engine::state_hash`]). No clocks, threads, I/O or randomness live here, and nothing
//! allocates once [`Engine::new`] has sized every table from the [`EngineConfig`].
//!
//! The crate is `no_std` (with `alloc`, for the tables sized at start-up) and forbids `unsafe`,
//! so the compiler keeps that rule: without `std` there is no file, socket, clock or thread to
//! reach for. Only its own unit tests may name `std`.
//!
//! See docs/ARCHITECTURE.md for where the core sits in the engine.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod arena;
mod book;
pub mod codec;
mod command;
mod config;
mod divisor;
mod engine;
mod event;
mod index;
mod levelset;
mod matching;
mod order_books;
mod risk;
mod state;
mod types;

pub use command::{Cancel, Command, CommandKind, NewOrder, Note, Replace, NOTE_BYTES};
pub use config::{
    AccountConfig, ConfigError, EngineConfig, InstrumentConfig, RiskLimits, MAX_LEVELS_PER_INSTRUMENT,
    MAX_ORDERS,
};
pub use engine::Engine;
pub use event::{
    Accepted, BookChange, CancelReason, Cancelled, CountingSink, Event, EventSink, Executed, Fill,
    RejectReason, Rejected, Replaced,
};
pub use order_books::OrderView;
pub use state::{SnapshotError, StateHash, STATE_ENCODING_VERSION};
pub use types::{
    AccountId, ClientRef, InstrumentId, MatchId, OrderId, OrderType, Price, Qty, Side, StpMode, Symbol,
    TimeInForce,
};
