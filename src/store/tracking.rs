//! Tracking numbers (`SP20260512-000123`) count per day. Taking each number from a
//! shared counter row inside the report's transaction would make that row the
//! hottest lock in the system, held across every commit. Instead each instance
//! reserves a block of numbers at a time in a short transaction of its own and
//! hands them out from memory, as database sequences do with their cache.
//! Numbers stay unique and increase within an instance; a restart, a failed
//! report or several instances leave gaps and interleave, which is acceptable
//! for a tracking number.

use std::future::Future;

use tokio::sync::Mutex;

use super::StoreError;

/// How many numbers an instance reserves at once.
pub(super) const BLOCK: i64 = 50;

struct Block {
    day: String,
    next: i64,
    last: i64,
}

#[derive(Default)]
pub(super) struct TrackingBlocks {
    current: Mutex<Option<Block>>,
}

impl TrackingBlocks {
    /// The next number of `day`; `reserve(day, size)` moves the stored counter on
    /// by `size` and returns its new value (the last number of the new block).
    pub(super) async fn next<F, Fut>(&self, day: &str, reserve: F) -> Result<i64, StoreError>
    where
        F: FnOnce(String, i64) -> Fut,
        Fut: Future<Output = Result<i64, StoreError>>,
    {
        let mut current = self.current.lock().await;
        match current.as_mut() {
            Some(block) if block.day == day && block.next <= block.last => {
                block.next += 1;
                Ok(block.next - 1)
            }
            _ => {
                let last = reserve(day.to_owned(), BLOCK).await?;
                *current = Some(Block {
                    day: day.to_owned(),
                    next: last - BLOCK + 2,
                    last,
                });
                Ok(last - BLOCK + 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;

    #[tokio::test]
    async fn numbers_come_from_reserved_blocks_per_day() {
        let counter = Arc::new(AtomicI64::new(0));
        let blocks = TrackingBlocks::default();
        let reserve = |counter: Arc<AtomicI64>| {
            move |_day: String, size: i64| {
                let counter = counter.clone();
                async move { Ok(counter.fetch_add(size, Ordering::SeqCst) + size) }
            }
        };
        let mut seen = Vec::new();
        for _ in 0..(BLOCK + 2) {
            seen.push(
                blocks
                    .next("20260512", reserve(counter.clone()))
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(seen, (1..=BLOCK + 2).collect::<Vec<_>>());
        assert_eq!(
            counter.load(Ordering::SeqCst),
            2 * BLOCK,
            "two blocks reserved"
        );
        // A new day reserves afresh (this fake counter is shared by days).
        assert_eq!(
            blocks
                .next("20260513", reserve(counter.clone()))
                .await
                .unwrap(),
            2 * BLOCK + 1
        );
    }
}
