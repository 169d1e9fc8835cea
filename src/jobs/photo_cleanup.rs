//! Deletes photos that were uploaded but never attached to a report, once they are
//! older than the configured age (24 h by default): rows and stored objects.
//! Safe with several instances: each deletion is conditional on the photo still
//! being unattached, and deleting an object twice is harmless.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Pass;
use crate::metrics::Metrics;
use crate::objects::{ObjectKey, PhotoStore};
use crate::store::{Repository, StoreError};

const BATCH: i64 = 200;

/// One pass; returns how many photos were removed.
pub async fn run_once(
    repo: &dyn Repository,
    photos: &dyn PhotoStore,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Result<usize, StoreError> {
    let cutoff = now - chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::hours(24));
    let mut removed = 0;
    loop {
        let stale = repo.stale_unattached_photos(cutoff, BATCH).await?;
        // The row goes first, queueing its objects: once it is gone nobody can
        // attach the photo, so its objects can no longer be needed.
        for photo in &stale {
            if repo.delete_unattached_photo(photo.id, now).await? {
                removed += 1;
            }
        }
        if stale.len() < BATCH as usize {
            break;
        }
    }
    delete_queued_objects(repo, photos).await?;
    Ok(removed)
}

/// Deletes the queued objects of deleted photos. One the store fails to delete
/// stays queued for the next pass, as does everything after it: the store is
/// likely down.
async fn delete_queued_objects(
    repo: &dyn Repository,
    photos: &dyn PhotoStore,
) -> Result<(), StoreError> {
    loop {
        let keys = repo.queued_object_deletions(BATCH).await?;
        for raw in &keys {
            match ObjectKey::parse(raw) {
                Ok(key) => {
                    if let Err(e) = photos.delete(&key).await {
                        tracing::warn!(key = %raw, error = %e, "could not delete a stale photo object; trying again at the next pass");
                        return Ok(());
                    }
                }
                Err(e) => {
                    tracing::warn!(key = %raw, error = %e, "a stale photo object key names no object")
                }
            }
            repo.forget_object_deletion(raw).await?;
        }
        if keys.len() < BATCH as usize {
            return Ok(());
        }
    }
}

/// Runs `run_once` every `interval` until the process stops.
pub fn spawn(
    repo: Arc<dyn Repository>,
    photos: Arc<dyn PhotoStore>,
    interval: Duration,
    max_age: Duration,
    metrics: Arc<Metrics>,
) {
    super::every("photo_cleanup", interval, metrics, move || {
        let (repo, photos) = (repo.clone(), photos.clone());
        async move {
            let removed =
                run_once(repo.as_ref(), photos.as_ref(), crate::state::now(), max_age).await;
            match &removed {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "removed unattached photos"),
                Err(e) => tracing::error!(error = %e, "photo cleanup failed"),
            }
            Pass::of(&removed)
        }
    });
}
