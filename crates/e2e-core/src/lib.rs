//! Pieces every e2e tool shares, and nothing else: the OCI image reference grammar, exit
//! codes with a user-facing error type, and stderr reporting.

pub mod clidoc;
pub mod exit;
pub mod reference;
pub mod report;
pub mod values;

pub use exit::CliError;
pub use reference::{Reference, ReferenceError};
