//! Nothing here: the crate is its tests (`tests/conventions.rs`), which check every tool's
//! command line against docs/conventions.md on the tools' real clap definitions.
