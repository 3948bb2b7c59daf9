//! [`EventQueue`] for the embedded (redb) store: streams and queued SETs in their own
//! tables of the same file, every publication one write transaction.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable};

use super::StoreError;
use super::embedded::{EmbeddedStore, storage_key};
use super::embedded_tables::{ENTRIES, EVENTS, INDEX, SEQUENCE, STREAMS, USED_ONCE, db_err};
use super::queue::{EventQueue, Pending, Publication, QueuedEvent, StreamRecord, VERIFICATION_JTI_PREFIX};

fn decode(bytes: &[u8]) -> Result<StreamRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("undecodable stream: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
}

#[async_trait]
impl EventQueue for EmbeddedStore {
    async fn put_stream(&self, stream: &StreamRecord) -> Result<(), StoreError> {
        let json = encode(stream)?;
        let id = stream.stream_id.clone();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(db_err)?;
            tx.open_table(STREAMS)
                .map_err(db_err)?
                .insert(id.as_str(), json.as_slice())
                .map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn create_stream(&self, stream: &StreamRecord, max_per_owner: usize) -> Result<bool, StoreError> {
        let json = encode(stream)?;
        let (id, owner) = (stream.stream_id.clone(), stream.owner.clone());
        // One write transaction: redb runs one at a time, so the count holds until commit.
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(db_err)?;
            {
                let mut table = tx.open_table(STREAMS).map_err(db_err)?;
                let mut held = 0;
                for row in table.iter().map_err(db_err)? {
                    let (_, value) = row.map_err(db_err)?;
                    if decode(value.value())?.owner == owner {
                        held += 1;
                    }
                }
                if held >= max_per_owner {
                    return Ok(false);
                }
                table.insert(id.as_str(), json.as_slice()).map_err(db_err)?;
            }
            tx.commit().map_err(db_err)?;
            Ok(true)
        })
        .await
    }

    async fn replace_stream(&self, stream: &StreamRecord) -> Result<bool, StoreError> {
        let json = encode(stream)?;
        let id = stream.stream_id.clone();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(db_err)?;
            {
                let mut table = tx.open_table(STREAMS).map_err(db_err)?;
                if table.get(id.as_str()).map_err(db_err)?.is_none() {
                    return Ok(false);
                }
                table.insert(id.as_str(), json.as_slice()).map_err(db_err)?;
            }
            tx.commit().map_err(db_err)?;
            Ok(true)
        })
        .await
    }

    async fn queue_verification(&self, event: QueuedEvent, max_pending: usize) -> Result<bool, StoreError> {
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(db_err)?;
            {
                let mut index = tx.open_table(INDEX).map_err(db_err)?;
                // The index is ordered by (stream, jti): verification SETs sit together.
                let low = (event.stream_id.as_str(), VERIFICATION_JTI_PREFIX);
                let waiting = index
                    .range(low..)
                    .map_err(db_err)?
                    .map_while(|row| {
                        row.ok().filter(|(key, _)| {
                            let (stream, jti) = key.value();
                            stream == event.stream_id && jti.starts_with(VERIFICATION_JTI_PREFIX)
                        })
                    })
                    .take(max_pending)
                    .count();
                if waiting >= max_pending {
                    return Ok(false);
                }
                let mut sequence = tx.open_table(SEQUENCE).map_err(db_err)?;
                let next = sequence.get("next").map_err(db_err)?.map_or(0, |v| v.value());
                tx.open_table(EVENTS)
                    .map_err(db_err)?
                    .insert(
                        (event.stream_id.as_str(), next),
                        (event.jti.as_str(), event.set.as_str()),
                    )
                    .map_err(db_err)?;
                index
                    .insert((event.stream_id.as_str(), event.jti.as_str()), next)
                    .map_err(db_err)?;
                sequence.insert("next", next.saturating_add(1)).map_err(db_err)?;
            }
            tx.commit().map_err(db_err)?;
            Ok(true)
        })
        .await
    }

    async fn stream(&self, stream_id: &str) -> Result<Option<StreamRecord>, StoreError> {
        let id = stream_id.to_owned();
        self.blocking(move |db| {
            let table = db.begin_read().map_err(db_err)?.open_table(STREAMS).map_err(db_err)?;
            let found = table.get(id.as_str()).map_err(db_err)?;
            found.map(|json| decode(json.value())).transpose()
        })
        .await
    }

    async fn streams(&self) -> Result<Vec<StreamRecord>, StoreError> {
        self.blocking(move |db| {
            let table = db.begin_read().map_err(db_err)?.open_table(STREAMS).map_err(db_err)?;
            let mut streams = Vec::new();
            for row in table.iter().map_err(db_err)? {
                let (_, json) = row.map_err(db_err)?;
                streams.push(decode(json.value())?);
            }
            Ok(streams)
        })
        .await
    }

    async fn delete_stream(&self, stream_id: &str) -> Result<bool, StoreError> {
        let id = stream_id.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(db_err)?;
            let existed = tx
                .open_table(STREAMS)
                .map_err(db_err)?
                .remove(id.as_str())
                .map_err(db_err)?
                .is_some();
            tx.open_table(EVENTS)
                .map_err(db_err)?
                .retain_in((id.as_str(), 0)..=(id.as_str(), u64::MAX), |_, _| false)
                .map_err(db_err)?;
            tx.open_table(INDEX)
                .map_err(db_err)?
                .retain(|(stream, _), _| stream != id.as_str())
                .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(existed)
        })
        .await
    }

    async fn publish(&self, publication: Publication) -> Result<bool, StoreError> {
        let entry = publication
            .revocation
            .as_ref()
            .map(|e| Ok::<_, StoreError>((storage_key(&e.key()), encode(e)?)))
            .transpose()?;
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(db_err)?;
            if let Some((id, expires_at)) = &publication.once {
                let mut used = tx.open_table(USED_ONCE).map_err(db_err)?;
                if used.get(id.as_str()).map_err(db_err)?.is_some() {
                    // Dropping the transaction without commit writes nothing.
                    return Ok(false);
                }
                used.insert(id.as_str(), *expires_at).map_err(db_err)?;
            }
            if let Some((key, json)) = &entry {
                tx.open_table(ENTRIES)
                    .map_err(db_err)?
                    .insert(key.as_str(), json.as_slice())
                    .map_err(db_err)?;
            }
            {
                let mut sequence = tx.open_table(SEQUENCE).map_err(db_err)?;
                let mut next = sequence.get("next").map_err(db_err)?.map_or(0, |v| v.value());
                let mut events = tx.open_table(EVENTS).map_err(db_err)?;
                let mut index = tx.open_table(INDEX).map_err(db_err)?;
                for event in &publication.events {
                    events
                        .insert(
                            (event.stream_id.as_str(), next),
                            (event.jti.as_str(), event.set.as_str()),
                        )
                        .map_err(db_err)?;
                    index
                        .insert((event.stream_id.as_str(), event.jti.as_str()), next)
                        .map_err(db_err)?;
                    next = next.saturating_add(1);
                }
                sequence.insert("next", next).map_err(db_err)?;
            }
            tx.commit().map_err(db_err)?;
            Ok(true)
        })
        .await
    }

    async fn pending(&self, stream_id: &str, max: usize) -> Result<Pending, StoreError> {
        let id = stream_id.to_owned();
        self.blocking(move |db| {
            let table = db.begin_read().map_err(db_err)?.open_table(EVENTS).map_err(db_err)?;
            let mut events = Vec::new();
            let mut more = false;
            for row in table
                .range((id.as_str(), 0)..=(id.as_str(), u64::MAX))
                .map_err(db_err)?
            {
                if events.len() == max {
                    more = true;
                    break;
                }
                let (_, value) = row.map_err(db_err)?;
                let (jti, set) = value.value();
                events.push(QueuedEvent {
                    stream_id: id.clone(),
                    jti: jti.to_owned(),
                    set: set.to_owned(),
                });
            }
            Ok(Pending { events, more })
        })
        .await
    }

    async fn acknowledge(&self, stream_id: &str, jtis: &[String]) -> Result<(), StoreError> {
        if jtis.is_empty() {
            return Ok(());
        }
        let id = stream_id.to_owned();
        let jtis = jtis.to_vec();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(db_err)?;
            {
                let mut index = tx.open_table(INDEX).map_err(db_err)?;
                let mut events = tx.open_table(EVENTS).map_err(db_err)?;
                for jti in &jtis {
                    let seq = index
                        .remove((id.as_str(), jti.as_str()))
                        .map_err(db_err)?
                        .map(|v| v.value());
                    if let Some(seq) = seq {
                        events.remove((id.as_str(), seq)).map_err(db_err)?;
                    }
                }
            }
            tx.commit().map_err(db_err)
        })
        .await
    }
}
