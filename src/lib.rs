//! certzone
