//! URL clients kept as long as their documents' `Cache-Control` allows, within the
//! operator's bounds: at least `min_cache_seconds` (so a client cannot make every
//! request a fetch), at most `max_cache_seconds` (so a changed document counts in time).
//! Time comes from the service clock; the cache holds a bounded number of clients.

use std::sync::Arc;

use quick_cache::sync::Cache;

use super::RegisteredClient;
use crate::clock::UnixTime;

/// Most URL clients remembered at once.
const CAPACITY: usize = 10_000;

/// How long a document may be kept, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CacheBounds {
    /// Least time, also when the document says nothing or forbids caching.
    pub min_seconds: u64,
    /// Most time.
    pub max_seconds: u64,
}

impl CacheBounds {
    /// Seconds to keep a document served with this `Cache-Control`.
    pub(super) fn freshness(self, cache_control: Option<&str>) -> u64 {
        let max_age = cache_control.and_then(|header| {
            header.split(',').find_map(|directive| {
                let (name, value) = directive.trim().split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("max-age")
                    .then(|| value.trim().trim_matches('"').parse::<u64>().ok())
                    .flatten()
            })
        });
        max_age
            .unwrap_or(0)
            .clamp(self.min_seconds, self.max_seconds.max(self.min_seconds))
    }
}

#[derive(Clone)]
struct Kept {
    client: Arc<RegisteredClient>,
    until: UnixTime,
}

/// URL clients by their exact `client_id`.
pub(super) struct DocumentCache {
    bounds: CacheBounds,
    kept: Cache<String, Kept>,
}

impl DocumentCache {
    pub(super) fn new(bounds: CacheBounds) -> Self {
        Self {
            bounds,
            kept: Cache::new(CAPACITY),
        }
    }

    /// The client, while its document is fresh.
    pub(super) fn get(&self, id: &str, now: UnixTime) -> Option<Arc<RegisteredClient>> {
        self.kept
            .get(id)
            .filter(|kept| now < kept.until)
            .map(|kept| kept.client)
    }

    /// Keep a client resolved now from a document served with `cache_control`.
    pub(super) fn put(&self, id: &str, client: Arc<RegisteredClient>, cache_control: Option<&str>, now: UnixTime) {
        let until = now.saturating_add(self.bounds.freshness(cache_control));
        self.kept.insert(id.to_owned(), Kept { client, until });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_is_honoured_within_the_bounds() {
        let bounds = CacheBounds {
            min_seconds: 60,
            max_seconds: 3600,
        };
        assert_eq!(bounds.freshness(None), 60);
        assert_eq!(bounds.freshness(Some("no-store")), 60);
        assert_eq!(bounds.freshness(Some("public, max-age=600")), 600);
        assert_eq!(bounds.freshness(Some("max-age=5")), 60);
        assert_eq!(bounds.freshness(Some("Max-Age=\"86400\", must-revalidate")), 3600);
        assert_eq!(bounds.freshness(Some("max-age=junk")), 60);
    }
}
