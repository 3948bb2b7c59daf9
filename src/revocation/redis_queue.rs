//! [`EventQueue`] for the Redis store, on the same connection.
//!
//! Layout under the store's prefix: `{prefix}ssf:streams` is a hash of stream id to the
//! JSON [`StreamRecord`]; each stream's queue is a list of SET ids in order,
//! `{prefix}ssf:queue:{id}`, beside a hash of SET id to SET, `{prefix}ssf:sets:{id}`,
//! and the set of its verification SETs still waiting, `{prefix}ssf:verifying:{id}`.
//! A publication (revocation entry, once-only marker and every stream's SETs) is one
//! Lua script, so Redis applies it whole or not at all, and with append-only
//! persistence it survives a restart whole. In Redis Cluster the keys of one
//! publication live in different slots and a script cannot span them: the Shared
//! Signals queue needs a single primary (standalone or Sentinel).

use async_trait::async_trait;
use redis::Cmd;

use super::StoreError;
use super::queue::{EventQueue, Pending, Publication, QueuedEvent, StreamRecord};
use super::redis::{RedisStore, Withdrawal, attempt_id};

/// Record the once marker (or stop), the entry, then append every SET.
/// ARGV: events, once attempt id (empty: no marker), has_entry, once_expiry,
/// entry_json, entry_exat, then (jti, set) pairs. KEYS: [once], [entry], then
/// (queue, sets) pairs.
const PUBLISH: &str = r"
local events = tonumber(ARGV[1])
local k = 1
if ARGV[2] ~= '' then
  if not redis.call('SET', KEYS[k], ARGV[2], 'NX', 'EXAT', ARGV[4]) then
    if redis.call('GET', KEYS[k]) ~= ARGV[2] then return 0 end
    -- This attempt's own marker: the same publication sent again after its answer was
    -- lost. It was written whole; write the marker again so a WAIT covers it.
    redis.call('SET', KEYS[k], ARGV[2], 'EXAT', ARGV[4])
    return 1
  end
  k = k + 1
end
if ARGV[3] == '1' then
  if ARGV[6] == '0' then
    redis.call('SET', KEYS[k], ARGV[5])
  else
    redis.call('SET', KEYS[k], ARGV[5], 'EXAT', ARGV[6])
  end
  k = k + 1
end
for i = 0, events - 1 do
  local jti = ARGV[7 + 2 * i]
  redis.call('HSET', KEYS[k + 1 + 2 * i], jti, ARGV[8 + 2 * i])
  redis.call('RPUSH', KEYS[k + 2 * i], jti)
end
return 1
";

/// The first `ARGV[1]` ids of the queue with their SETs, plus one more id if any.
const PENDING: &str = r"
local ids = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]))
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return out
";

/// Remove each acknowledged id from the hash and, when it was there, from the list
/// (and from the stream's waiting verification SETs).
const ACKNOWLEDGE: &str = r"
for _, id in ipairs(ARGV) do
  if redis.call('HDEL', KEYS[2], id) == 1 then redis.call('LREM', KEYS[1], 1, id) end
  redis.call('SREM', KEYS[3], id)
end
return 1
";

/// Count the owner's streams and add this one below the quota, in one step.
/// KEYS: streams hash. ARGV: owner, quota, stream id, stream JSON.
const CREATE_STREAM: &str = r"
local held = 0
for _, json in ipairs(redis.call('HVALS', KEYS[1])) do
  local ok, stream = pcall(cjson.decode, json)
  if ok and type(stream) == 'table' and stream['owner'] == ARGV[1] then held = held + 1 end
end
if held >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
return 1
";

/// Overwrite a stream only while it exists. KEYS: streams hash. ARGV: id, JSON.
const REPLACE_STREAM: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
";

/// Queue a verification SET below the stream's cap of waiting ones.
/// KEYS: queue, sets, waiting verifications. ARGV: jti, SET, cap.
const QUEUE_VERIFICATION: &str = r"
if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[3]) then return 0 end
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('RPUSH', KEYS[1], ARGV[1])
return 1
";

/// Most SETs read from one queue in one call.
const MAX_PAGE: usize = 1_000_000;

/// The largest expiry Redis accepts comfortably; later ones are stored without one.
const MAX_EXPIRE_AT: u64 = 253_402_300_799;

impl RedisStore {
    fn streams_key(&self) -> String {
        format!("{}ssf:streams", self.prefix)
    }

    fn queue_key(&self, stream_id: &str) -> String {
        format!("{}ssf:queue:{stream_id}", self.prefix)
    }

    fn sets_key(&self, stream_id: &str) -> String {
        format!("{}ssf:sets:{stream_id}", self.prefix)
    }

    fn verifying_key(&self, stream_id: &str) -> String {
        format!("{}ssf:verifying:{stream_id}", self.prefix)
    }
}

fn decode(bytes: &[u8]) -> Result<StreamRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("undecodable stream: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
}

fn script(source: &str, keys: &[String]) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(source).arg(keys.len()).arg(keys);
    cmd
}

#[async_trait]
impl EventQueue for RedisStore {
    async fn put_stream(&self, stream: &StreamRecord) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.streams_key()).arg(&stream.stream_id).arg(encode(stream)?);
        self.run::<()>(&cmd).await
    }

    async fn create_stream(&self, stream: &StreamRecord, max_per_owner: usize) -> Result<bool, StoreError> {
        let mut cmd = script(CREATE_STREAM, &[self.streams_key()]);
        cmd.arg(&stream.owner)
            .arg(max_per_owner)
            .arg(&stream.stream_id)
            .arg(encode(stream)?);
        let created: u64 = self.run(&cmd).await?;
        Ok(created == 1)
    }

    async fn replace_stream(&self, stream: &StreamRecord) -> Result<bool, StoreError> {
        let mut cmd = script(REPLACE_STREAM, &[self.streams_key()]);
        cmd.arg(&stream.stream_id).arg(encode(stream)?);
        let replaced: u64 = self.run(&cmd).await?;
        Ok(replaced == 1)
    }

    async fn queue_verification(&self, event: QueuedEvent, max_pending: usize) -> Result<bool, StoreError> {
        let keys = [
            self.queue_key(&event.stream_id),
            self.sets_key(&event.stream_id),
            self.verifying_key(&event.stream_id),
        ];
        let mut cmd = script(QUEUE_VERIFICATION, &keys);
        cmd.arg(&event.jti).arg(&event.set).arg(max_pending);
        let queued: u64 = self.run(&cmd).await?;
        Ok(queued == 1)
    }

    async fn stream(&self, stream_id: &str) -> Result<Option<StreamRecord>, StoreError> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(self.streams_key()).arg(stream_id);
        let found: Option<Vec<u8>> = self.run(&cmd).await?;
        found.map(|b| decode(&b)).transpose()
    }

    async fn streams(&self) -> Result<Vec<StreamRecord>, StoreError> {
        let mut cmd = redis::cmd("HVALS");
        cmd.arg(self.streams_key());
        let all: Vec<Vec<u8>> = self.run(&cmd).await?;
        let mut streams = all.iter().map(|b| decode(b)).collect::<Result<Vec<_>, _>>()?;
        streams.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
        Ok(streams)
    }

    async fn delete_stream(&self, stream_id: &str) -> Result<bool, StoreError> {
        let source = "redis.call('DEL', KEYS[2], KEYS[3], KEYS[4]) return redis.call('HDEL', KEYS[1], ARGV[1])";
        let keys = [
            self.streams_key(),
            self.queue_key(stream_id),
            self.sets_key(stream_id),
            self.verifying_key(stream_id),
        ];
        let mut cmd = script(source, &keys);
        cmd.arg(stream_id);
        let removed: u64 = self.run(&cmd).await?;
        Ok(removed > 0)
    }

    async fn publish(&self, publication: Publication) -> Result<bool, StoreError> {
        let mut keys = Vec::new();
        let mut args: Vec<Vec<u8>> = vec![publication.events.len().to_string().into_bytes()];
        let (once_expiry, has_once) = match &publication.once {
            Some((id, expires_at)) => {
                keys.push(self.once_key(id));
                ((*expires_at).clamp(1, MAX_EXPIRE_AT), true)
            }
            None => (1, false),
        };
        let (entry_json, entry_exat, has_entry) = match &publication.revocation {
            Some(entry) => {
                keys.push(self.entry_key(&entry.key()));
                let exat = if entry.expires_at < MAX_EXPIRE_AT {
                    entry.expires_at.max(1)
                } else {
                    0
                };
                (encode(entry)?, exat, true)
            }
            None => (Vec::new(), 0, false),
        };
        // The once marker holds this attempt's own id, so it can be withdrawn if the
        // write is not confirmed, and the retry finds it unused.
        let withdrawal = match (has_once, keys.first()) {
            (true, Some(key)) => Some(Withdrawal {
                key: key.clone(),
                attempt: attempt_id(),
                already_used: redis::Value::Int(0),
            }),
            _ => None,
        };
        args.push(
            withdrawal
                .as_ref()
                .map(|w| w.attempt.clone().into_bytes())
                .unwrap_or_default(),
        );
        args.push(if has_entry { b"1".to_vec() } else { b"0".to_vec() });
        args.push(once_expiry.to_string().into_bytes());
        args.push(entry_json);
        args.push(entry_exat.to_string().into_bytes());
        for event in &publication.events {
            keys.push(self.queue_key(&event.stream_id));
            keys.push(self.sets_key(&event.stream_id));
            args.push(event.jti.clone().into_bytes());
            args.push(event.set.clone().into_bytes());
        }
        let Some(first) = keys.first().cloned() else {
            return Ok(true);
        };
        let mut cmd = script(PUBLISH, &keys);
        cmd.arg(args);
        let written = self.write_durably(&first, cmd, withdrawal).await?;
        Ok(matches!(written, redis::Value::Int(1)))
    }

    async fn pending(&self, stream_id: &str, max: usize) -> Result<Pending, StoreError> {
        if max == 0 {
            return Ok(Pending::default());
        }
        // LRANGE takes a signed 64-bit index; nobody needs more than this in one read.
        let max = max.min(MAX_PAGE);
        let keys = [self.queue_key(stream_id), self.sets_key(stream_id)];
        let mut cmd = script(PENDING, &keys);
        // LRANGE's end is inclusive: ids 0..=max is one more than asked, to see if more wait.
        cmd.arg(max);
        let flat: Vec<String> = self.run(&cmd).await?;
        let mut events = Vec::new();
        let mut more = false;
        for pair in flat.chunks(2) {
            let [jti, set] = pair else {
                return Err(StoreError::Corrupt("queue script answered an odd list".into()));
            };
            if events.len() == max {
                more = true;
                break;
            }
            // A SET acknowledged between the two reads: skip it.
            if !set.is_empty() {
                events.push(QueuedEvent {
                    stream_id: stream_id.to_owned(),
                    jti: jti.clone(),
                    set: set.clone(),
                });
            }
        }
        Ok(Pending { events, more })
    }

    async fn acknowledge(&self, stream_id: &str, jtis: &[String]) -> Result<(), StoreError> {
        if jtis.is_empty() {
            return Ok(());
        }
        let keys = [
            self.queue_key(stream_id),
            self.sets_key(stream_id),
            self.verifying_key(stream_id),
        ];
        let mut cmd = script(ACKNOWLEDGE, &keys);
        cmd.arg(jtis);
        self.run::<()>(&cmd).await
    }
}
