//! sigstream: signal files of any size, filtered and searched for events with constant memory.

pub mod detect;
pub mod error;
pub mod pool;
pub mod source;

pub use error::{Error, Result};
