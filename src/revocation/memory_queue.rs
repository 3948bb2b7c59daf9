//! [`EventQueue`] for the in-process store (unit tests and throwaway runs).

use async_trait::async_trait;

use super::StoreError;
use super::memory::{MemoryStore, poisoned};
use super::queue::{EventQueue, Pending, Publication, QueuedEvent, StreamRecord, VERIFICATION_JTI_PREFIX};

#[async_trait]
impl EventQueue for MemoryStore {
    async fn put_stream(&self, stream: &StreamRecord) -> Result<(), StoreError> {
        let mut state = self.queue.lock().map_err(poisoned)?;
        state.streams.insert(stream.stream_id.clone(), stream.clone());
        Ok(())
    }

    async fn create_stream(&self, stream: &StreamRecord, max_per_owner: usize) -> Result<bool, StoreError> {
        let mut state = self.queue.lock().map_err(poisoned)?;
        let held = state.streams.values().filter(|s| s.owner == stream.owner).count();
        if held >= max_per_owner {
            return Ok(false);
        }
        state.streams.insert(stream.stream_id.clone(), stream.clone());
        Ok(true)
    }

    async fn replace_stream(&self, stream: &StreamRecord) -> Result<bool, StoreError> {
        let mut state = self.queue.lock().map_err(poisoned)?;
        match state.streams.get_mut(&stream.stream_id) {
            Some(existing) => {
                *existing = stream.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn queue_verification(&self, event: QueuedEvent, max_pending: usize) -> Result<bool, StoreError> {
        let mut state = self.queue.lock().map_err(poisoned)?;
        let queue = state.queues.entry(event.stream_id.clone()).or_default();
        let waiting = queue
            .iter()
            .filter(|e| e.jti.starts_with(VERIFICATION_JTI_PREFIX))
            .count();
        if waiting >= max_pending {
            return Ok(false);
        }
        queue.push_back(event);
        Ok(true)
    }

    async fn stream(&self, stream_id: &str) -> Result<Option<StreamRecord>, StoreError> {
        Ok(self.queue.lock().map_err(poisoned)?.streams.get(stream_id).cloned())
    }

    async fn streams(&self) -> Result<Vec<StreamRecord>, StoreError> {
        Ok(self.queue.lock().map_err(poisoned)?.streams.values().cloned().collect())
    }

    async fn delete_stream(&self, stream_id: &str) -> Result<bool, StoreError> {
        let mut state = self.queue.lock().map_err(poisoned)?;
        state.queues.remove(stream_id);
        Ok(state.streams.remove(stream_id).is_some())
    }

    async fn publish(&self, publication: Publication) -> Result<bool, StoreError> {
        // One lock order everywhere (once, entries, queue) so the three change together.
        let mut used = self.used_once.lock().map_err(poisoned)?;
        let mut entries = self.entries.lock().map_err(poisoned)?;
        let mut state = self.queue.lock().map_err(poisoned)?;
        if let Some((id, expires_at)) = publication.once {
            if used.contains_key(&id) {
                return Ok(false);
            }
            used.insert(id, expires_at);
        }
        if let Some(entry) = publication.revocation {
            entries.insert(entry.key(), entry);
        }
        for event in publication.events {
            state
                .queues
                .entry(event.stream_id.clone())
                .or_default()
                .push_back(event);
        }
        Ok(true)
    }

    async fn pending(&self, stream_id: &str, max: usize) -> Result<Pending, StoreError> {
        let state = self.queue.lock().map_err(poisoned)?;
        let queue = state.queues.get(stream_id);
        let events: Vec<QueuedEvent> = queue.into_iter().flatten().take(max).cloned().collect();
        let more = queue.is_some_and(|q| q.len() > events.len());
        Ok(Pending { events, more })
    }

    async fn acknowledge(&self, stream_id: &str, jtis: &[String]) -> Result<(), StoreError> {
        let mut state = self.queue.lock().map_err(poisoned)?;
        if let Some(queue) = state.queues.get_mut(stream_id) {
            queue.retain(|e| !jtis.contains(&e.jti));
        }
        Ok(())
    }
}
