//! sigstream: signal files of any size, filtered and searched for events with constant memory.

pub mod backend;
pub mod cli;
pub mod commands;
pub mod demo;
pub mod detect;
pub mod error;
pub mod filter;
pub mod pipeline;
pub mod pool;
pub mod sink;
pub mod source;

pub use error::{Error, Result};
