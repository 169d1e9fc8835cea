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
        let batch_len = stale.len();
        for photo in stale {
            // The row goes first: once it is gone nobody can attach the photo, so
            // its objects can no longer be needed.
            if !repo.delete_unattached_photo(photo.id).await? {
                continue;
            }
            for key in [&photo.display.key, &photo.thumbnail.key] {
                let outcome = match ObjectKey::parse(key) {
                    Ok(key) => photos.delete(&key).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = outcome {
                    tracing::warn!(photo = %photo.id, error = %e, "could not delete a stale photo object");
                }
            }
            removed += 1;
        }
        if batch_len < BATCH as usize {
            return Ok(removed);
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
