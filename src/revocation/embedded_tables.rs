//! The tables of the embedded store's one redb file: revocations and one-time values,
//! and the Shared Signals queue beside them, all created when the file is opened.

use redb::{TableDefinition, WriteTransaction};

use super::StoreError;

/// Revocations by [`RevocationKey::storage_name`] (`{kind}:{value}` for every issuer,
/// `{kind}@{len}:{issuer}:{value}` for one), each value the JSON [`Revocation`].
pub(super) const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("revocations");

/// One-time values and when each may be forgotten.
pub(super) const USED_ONCE: TableDefinition<&str, u64> = TableDefinition::new("used_once");

/// Streams by id, each the JSON [`StreamRecord`].
pub(super) const STREAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("ssf_streams");
/// Queued SETs by (stream, sequence): (jti, SET).
pub(super) const EVENTS: TableDefinition<(&str, u64), (&str, &str)> = TableDefinition::new("ssf_events");
/// (stream, jti) to sequence, so an acknowledgement finds its SET.
pub(super) const INDEX: TableDefinition<(&str, &str), u64> = TableDefinition::new("ssf_event_index");
/// The next sequence number.
pub(super) const SEQUENCE: TableDefinition<&str, u64> = TableDefinition::new("ssf_sequence");

/// Create every table (when the store opens).
pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(ENTRIES).map_err(db_err)?;
    tx.open_table(USED_ONCE).map_err(db_err)?;
    tx.open_table(STREAMS).map_err(db_err)?;
    tx.open_table(EVENTS).map_err(db_err)?;
    tx.open_table(INDEX).map_err(db_err)?;
    tx.open_table(SEQUENCE).map_err(db_err)?;
    Ok(())
}

pub(super) fn db_err(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(detail) => StoreError::Corrupt(detail),
        other => StoreError::Unavailable(format!("embedded store: {other}")),
    }
}
