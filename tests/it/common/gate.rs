//! The gate that keeps the tests of one former test binary apart from every other file's.
//!
//! Each file of `tests/it/` used to be a binary of its own: cargo ran the binaries one after
//! another, and only the tests of one binary in parallel. The files choose their 127.x
//! addresses and ports, and time their attacks and benchmarks, on that promise. In one
//! binary, libtest would run tests of two files at once; the gate restores the promise.
//! It owns nothing but that: it must not know what the tests start.

use std::{
    panic::Location,
    sync::{Condvar, Mutex, MutexGuard, PoisonError},
};

/// The file whose tests hold the gate (none when it is open), and how many of them.
static HELD: Mutex<(Option<&'static str>, usize)> = Mutex::new((None, 0));
/// Signalled when the last test of a file leaves.
static OPENED: Condvar = Condvar::new();

/// One test inside the gate; it leaves when this is dropped.
#[must_use = "the gate is left when this is dropped: bind it to `_gate`, not `_`"]
pub struct Gate {
    _private: (),
}

/// Waits until no test of another file is running, then enters. The group is the file of the
/// calling test (`#[track_caller]`), so it cannot be misnamed or copied wrong from another
/// file; call it first thing in every test, before anything binds or starts.
#[track_caller]
pub fn gate() -> Gate {
    let file = Location::caller().file();
    let mut held = lock();
    loop {
        match held.0 {
            None => *held = (Some(file), 0),
            Some(holder) if holder == file => break,
            Some(_) => held = OPENED.wait(held).unwrap_or_else(PoisonError::into_inner),
        }
    }
    held.1 += 1;
    Gate { _private: () }
}

// A failed test poisons nothing: the lock is never held across test code, and a test that
// panics still drops its `Gate` while unwinding.
fn lock() -> MutexGuard<'static, (Option<&'static str>, usize)> {
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for Gate {
    fn drop(&mut self) {
        let mut held = lock();
        held.1 -= 1;
        if held.1 == 0 {
            held.0 = None;
            OPENED.notify_all();
        }
    }
}
