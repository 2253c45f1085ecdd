//! certzone

pub mod bundle;
