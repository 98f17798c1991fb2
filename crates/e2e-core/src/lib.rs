//! Pieces every e2e tool shares, and nothing else: the OCI image reference grammar, exit
//! codes with a user-facing error type, stderr reporting, and the command-line conventions
//! (docs/conventions.md): value parsers, argument parsing, help, completions, man pages and
//! the one `--json` shape.

pub mod cli;
pub mod clidoc;
pub mod exit;
pub mod json;
pub mod path;
pub mod reference;
pub mod report;
pub mod size;
pub mod values;

pub use exit::CliError;
pub use reference::{Reference, ReferenceError};
