//! petrel-tuner library. See docs/ARCHITECTURE.md.
