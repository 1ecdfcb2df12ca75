//! Wire codecs for SoupBinTCP 3.0 and OUCH 5.0. See docs/ARCHITECTURE.md.
