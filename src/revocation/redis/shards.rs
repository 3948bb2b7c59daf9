//! Which master of a Redis Cluster owns a slot, and whether its shard has replicas:
//! read from `CLUSTER NODES`, for the writes that wait for replicas on the master
//! that owns their key.

use super::super::StoreError;

/// One master serving slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shard {
    /// The master's host.
    pub host: String,
    /// The master's port.
    pub port: u16,
    /// Replicas the cluster lists for it (in any state: a failed replica is still one
    /// the shard was given, so writes wait for it rather than pretend it is not there).
    pub replicas: usize,
}

/// The slot map: every range with the index of its master.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ShardMap {
    ranges: Vec<(u16, u16, usize)>,
    masters: Vec<Shard>,
}

impl ShardMap {
    /// Parse the text `CLUSTER NODES` answers.
    pub(crate) fn parse(text: &str) -> Result<Self, StoreError> {
        struct Node<'a> {
            id: &'a str,
            address: Option<(String, u16)>,
            master_of: Option<&'a str>,
            is_master: bool,
            usable: bool,
            slots: Vec<(u16, u16)>,
        }
        let mut nodes = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [id, address, flags, master, _ping, _pong, _epoch, _link, slots @ ..] = fields.as_slice() else {
                return Err(StoreError::Corrupt(format!("unexpected CLUSTER NODES line: {line:?}")));
            };
            let flags: Vec<&str> = flags.split(',').collect();
            nodes.push(Node {
                id,
                address: node_address(address),
                master_of: (*master != "-").then_some(*master),
                is_master: flags.contains(&"master"),
                usable: !flags.iter().any(|f| matches!(*f, "handshake" | "noaddr")),
                slots: slots.iter().filter_map(|s| slot_range(s)).collect(),
            });
        }
        let mut map = ShardMap::default();
        for node in nodes.iter().filter(|n| n.is_master && !n.slots.is_empty()) {
            let Some((host, port)) = node.address.clone() else {
                continue;
            };
            let replicas = nodes
                .iter()
                .filter(|r| !r.is_master && r.usable && r.master_of == Some(node.id))
                .count();
            let index = map.masters.len();
            map.masters.push(Shard { host, port, replicas });
            map.ranges
                .extend(node.slots.iter().map(|(start, end)| (*start, *end, index)));
        }
        map.ranges.sort_unstable();
        Ok(map)
    }

    /// The master serving `slot`, if any.
    pub(crate) fn for_slot(&self, slot: u16) -> Option<&Shard> {
        let at = self.ranges.partition_point(|(start, _, _)| *start <= slot);
        let (start, end, index) = self.ranges.get(at.checked_sub(1)?)?;
        (*start <= slot && slot <= *end)
            .then(|| self.masters.get(*index))
            .flatten()
    }

    /// Every master serving slots.
    pub(crate) fn masters(&self) -> &[Shard] {
        &self.masters
    }
}

/// `ip:port@cport[,hostname]` into host and port; `None` for a node without address.
fn node_address(field: &str) -> Option<(String, u16)> {
    let endpoint = field.split(['@', ',']).next()?;
    let (host, port) = endpoint.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    (!host.is_empty() && port != 0).then(|| (host.to_owned(), port))
}

/// `5461` or `0-5460`; migrating and importing markers (`[...]`) are not ranges.
fn slot_range(field: &str) -> Option<(u16, u16)> {
    if field.starts_with('[') {
        return None;
    }
    match field.split_once('-') {
        Some((start, end)) => Some((start.parse().ok()?, end.parse().ok()?)),
        None => {
            let slot = field.parse().ok()?;
            Some((slot, slot))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002 master - 0 1 2 connected 5461-10922 [10923->-c3]
c3 127.0.0.1:7003@17003,host-c master - 0 1 3 connected 10923-16383
r1 127.0.0.1:7004@17004 slave a1 0 1 1 connected
r2 127.0.0.1:7005@17005 slave,fail a1 0 1 1 disconnected
h9 :0@0 slave,noaddr,handshake b2 0 0 0 disconnected
";

    #[test]
    fn masters_slots_and_replicas() {
        let map = ShardMap::parse(NODES).unwrap();
        assert_eq!(map.masters().len(), 3);
        let first = map.for_slot(0).unwrap();
        assert_eq!(
            (first.host.as_str(), first.port, first.replicas),
            ("127.0.0.1", 7001, 2)
        );
        assert_eq!(map.for_slot(5460).unwrap().port, 7001);
        let second = map.for_slot(5461).unwrap();
        assert_eq!((second.port, second.replicas), (7002, 0));
        assert_eq!(map.for_slot(16383).unwrap().host, "127.0.0.1");
    }

    #[test]
    fn unserved_slots_and_bad_lines() {
        let map = ShardMap::parse("a1 127.0.0.1:7001@17001 master - 0 0 1 connected 100-200\n").unwrap();
        assert!(map.for_slot(99).is_none());
        assert!(map.for_slot(201).is_none());
        assert!(map.for_slot(150).is_some());
        assert!(ShardMap::parse("garbage line\n").is_err());
    }
}
