//! What the nodes keep in Redis: key names, a node's record, the Lua scripts
//! that claim and release rooms, and how their answers read. Pure: no I/O.
//!
//! ```text
//!  huddle:nodes            SET of node ids (a dead one is removed by whoever notices)
//!  huddle:node:<id>        JSON NodeRecord {url, rooms, users}, PX ttl, rewritten every tick
//!  huddle:room:<roomId>    the owning node's id, PX ttl, refreshed by the owner every tick
//! ```
//!
//! Invariants: a room key only ever changes owner inside [`CLAIM`], which
//! takes it when it is free, already ours, or held by a node whose own key
//! has expired (that node is dead); and it is only deleted by its owner
//! ([`RELEASE`]). Both scripts run atomically in Redis, so two nodes racing
//! for one room get one owner. [`CLAIM`] reads the owner's node key, which
//! is not among its declared keys: fine on one Redis server (what huddle
//! supports), not on a Redis Cluster.

use serde::{Deserialize, Serialize};

use crate::protocol::RoomId;

/// The set of registered node ids.
pub const NODES: &str = "huddle:nodes";

/// Prefix of a node's liveness key (`huddle:node:<id>`).
pub const NODE_PREFIX: &str = "huddle:node:";

/// A node's liveness key.
pub fn node_key(node_id: &str) -> String {
    format!("{NODE_PREFIX}{node_id}")
}

/// A room's claim key.
pub fn room_key(room_id: &RoomId) -> String {
    format!("huddle:room:{}", room_id.as_str())
}

/// What a node publishes about itself: where clients reach it, and its load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Its public signalling URL (`ws://host:port` or `wss://…`).
    pub url: String,
    /// Rooms it holds.
    pub rooms: usize,
    /// Users in them.
    pub users: usize,
}

/// Claims a room for `ARGV[1]` for `ARGV[2]` ms, or keeps the claim alive.
/// KEYS[1]: the room key; KEYS[2]: [`NODES`]; ARGV[3]: [`NODE_PREFIX`];
/// ARGV[4]: the placement margin, `-1` for none.
///
/// A room another live node holds stays there. Otherwise the room is
/// placed: with a margin, on the live node with the fewest users if this
/// node has more than `margin` users more than it ([`Placement`]), else on
/// this node. The chosen node's record counts one user more at once (until
/// its next heartbeat rewrites it), so a burst of new rooms spreads instead
/// of all going to the node that was the least loaded at the last beat.
/// Returns `{owner, owner's NodeRecord JSON or false}`.
pub const CLAIM: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. owner) == 1 then
  return {owner, redis.call('GET', ARGV[3] .. owner)}
end
local function record_of(id)
  local json = redis.call('GET', ARGV[3] .. id)
  if not json then return nil end
  local ok, record = pcall(cjson.decode, json)
  if ok and type(record) == 'table' and type(record.users) == 'number' then
    return record
  end
  return nil
end
local target = ARGV[1]
local margin = tonumber(ARGV[4])
if owner ~= ARGV[1] and margin and margin >= 0 then
  local mine = record_of(ARGV[1])
  if mine then
    local fewest = mine.users
    for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
      local record = id ~= ARGV[1] and record_of(id)
      if record and record.users < fewest and mine.users - record.users > margin then
        fewest = record.users
        target = id
      end
    end
  end
  local chosen = record_of(target)
  if chosen then
    chosen.users = chosen.users + 1
    redis.call('SET', ARGV[3] .. target, cjson.encode(chosen), 'KEEPTTL')
  end
end
redis.call('SET', KEYS[1], target, 'PX', ARGV[2])
return {target, redis.call('GET', ARGV[3] .. target)}
";

/// Where a room no live node holds goes when a join asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// On the node the join reached (also: a heartbeat keeping its rooms).
    Here,
    /// On the live node with the fewest users, when this node has more than
    /// this many users more than it; else here.
    LeastUsers {
        /// Users this node may have over the least loaded before a new room
        /// goes elsewhere.
        margin: usize,
    },
}

impl Placement {
    /// [`CLAIM`]'s ARGV[4].
    pub fn margin_arg(self) -> i64 {
        match self {
            Placement::Here => -1,
            Placement::LeastUsers { margin } => i64::try_from(margin).unwrap_or(i64::MAX),
        }
    }
}

/// Deletes the room key KEYS[1] if `ARGV[1]` owns it. Returns 1 if deleted.
pub const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Who holds a room, as [`CLAIM`] answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This node (it just claimed the room, or already had it).
    Me,
    /// Another live node; clients go to its URL.
    Node {
        /// Its id.
        node_id: String,
        /// Its record (absent if it has not registered its URL yet).
        record: Option<NodeRecord>,
    },
}

/// Reads [`CLAIM`]'s answer for the node `me`.
pub fn read_claim(me: &str, owner: &str, record: Option<&str>) -> Owner {
    if owner == me {
        return Owner::Me;
    }
    Owner::Node {
        node_id: owner.to_owned(),
        record: record.and_then(|json| serde_json::from_str(json).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_claim_answers() {
        assert_eq!(node_key("n-1"), "huddle:node:n-1");
        assert_eq!(room_key(&RoomId("r".into())), "huddle:room:r");
        assert_eq!(read_claim("a", "a", None), Owner::Me);
        let json = r#"{"url":"ws://127.0.0.1:7881","rooms":2,"users":5}"#;
        assert_eq!(
            read_claim("a", "b", Some(json)),
            Owner::Node {
                node_id: "b".into(),
                record: Some(NodeRecord {
                    url: "ws://127.0.0.1:7881".into(),
                    rooms: 2,
                    users: 5
                })
            }
        );
        // A record that does not parse is no URL, not a panic.
        assert_eq!(
            read_claim("a", "b", Some("{")),
            Owner::Node {
                node_id: "b".into(),
                record: None
            }
        );
    }
}
