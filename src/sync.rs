//! A std mutex's guard whatever happened to it: a panic elsewhere while it was held leaves the
//! value usable, because every update under these locks is one whole step.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
