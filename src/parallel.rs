//! Data parallelism for pure CPU work over a list (parsing and verifying attestations): scoped
//! threads take small blocks from a shared counter, so one large item does not hold up a
//! whole chunk, and the results come back in the input's order.

use std::num::NonZero;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Items a thread takes at a time: large enough to keep the counter cold.
const BLOCK: usize = 8;

/// `items.iter().map(work).collect()`, on every available core.
pub fn map<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZero::get)
        .min(items.len().div_ceil(BLOCK));
    if threads <= 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut results = Vec::new();
                    loop {
                        let start = next.fetch_add(BLOCK, Ordering::Relaxed);
                        if start >= items.len() {
                            return results;
                        }
                        let end = (start + BLOCK).min(items.len());
                        results.extend((start..end).map(|index| (index, work(&items[index]))));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    done.sort_unstable_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_order_of_any_number_of_items() {
        for count in [0, 1, 7, 8, 9, 100, 1001] {
            let items: Vec<usize> = (0..count).collect();
            let doubled = super::map(&items, |item| item * 2);
            assert_eq!(
                doubled,
                items.iter().map(|item| item * 2).collect::<Vec<_>>()
            );
        }
    }
}
