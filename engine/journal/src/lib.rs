//! Petrel's input journal. See docs/ARCHITECTURE.md.
