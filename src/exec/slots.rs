//! A counting semaphore for blocking threads: `--jobs N` allows N sandboxed processes at a
//! time, while the bookkeeping around them (hashing, signing, writing) overlaps with the
//! next process, as ninja's main thread does while its commands run.

use std::sync::{Condvar, Mutex};

pub struct ProcessSlots {
    free: Mutex<usize>,
    released: Condvar,
}

/// Held while a process runs.
pub struct ProcessSlot<'a> {
    slots: &'a ProcessSlots,
}

impl ProcessSlots {
    #[must_use]
    pub fn new(count: usize) -> Self {
        Self {
            free: Mutex::new(count.max(1)),
            released: Condvar::new(),
        }
    }

    pub fn acquire(&self) -> ProcessSlot<'_> {
        let mut free = self
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while *free == 0 {
            free = self
                .released
                .wait(free)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *free -= 1;
        ProcessSlot { slots: self }
    }
}

impl Drop for ProcessSlot<'_> {
    fn drop(&mut self) {
        *self
            .slots
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        self.slots.released.notify_one();
    }
}
