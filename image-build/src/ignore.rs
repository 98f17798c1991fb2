//! `.dockerignore` with Docker's own semantics; shared with `tag-gen content` (crate
//! `e2e-context`), so that both tools always agree on what a context is.

pub use e2e_context::ignore::*;
