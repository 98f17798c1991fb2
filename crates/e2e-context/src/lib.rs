//! The build context, shared by `image-build` (which sends it) and `tag-gen content` (which
//! digests it), so that the two can never disagree about what a context is.
//!
//! Modules: [`ignore`] (`.dockerignore` with Docker's semantics), [`walk`] (which files are
//! sent, in which order), [`digest`] (a SHA-256 over exactly what is sent and the build
//! settings), [`spec`] (image specs as `--image` flags and spec files).

pub mod digest;
pub mod ignore;
pub mod spec;
pub mod walk;

pub use walk::{plan, ContextError, ContextPlan, Entry, EntryKind};
