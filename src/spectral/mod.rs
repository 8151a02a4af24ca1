//! Spectral analysis of whole recordings: the exact DFT of a signal larger
//! than memory ([`ooc_fft`]).
//!
//! Why a module of its own: the chunk engine in [`crate::pipeline`] works on
//! one block at a time, but a spectrum of the whole signal needs every
//! sample at once. The transforms here keep memory bounded another way: a
//! decomposition of the transform into many small ones that run block by
//! block, with a scratch file holding the intermediate results.

pub mod ooc_fft;
