//! Petrel's deterministic matching core. See docs/ARCHITECTURE.md.
