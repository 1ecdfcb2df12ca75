//! Wire codecs for SoupBinTCP 3.0, Nasdaq OUCH 5.0, and TotalView-ITCH 5.0 over MoldUDP64. See docs/ARCHITECTURE.md and
//! `engine/proto/SPEC-NOTES.md` for the byte layouts and the sources they come from.
//!
//! The crate is pure: no sockets, no clocks, no allocation per message. Decoders borrow the
//! caller's receive buffer and return fixed-layout views; encoders write into a caller buffer
//! and return the number of bytes written. Every decoder returns a typed error on any input
//! and never panics (the fuzz targets and property tests check this).

#[doc(hidden)]
pub mod fuzzing;
pub mod itch;
pub mod moldudp64;
pub mod ouch;
pub mod session;
pub mod soupbin;
mod wire;

pub use wire::{Alpha, EncodeError};
