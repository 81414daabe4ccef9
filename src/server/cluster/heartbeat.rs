//! The node's heartbeat: every third of the TTL it (re)connects to Redis if
//! needed, rewrites its node record (URL, load), refreshes the claims of the
//! rooms it holds, releases those of rooms that are gone, and reads the live
//! nodes' URLs. At shutdown it releases everything and deregisters, so its
//! rooms can move at once instead of after the TTL.

use std::sync::{Arc, Weak};

use tokio::sync::watch;

use super::keys::{self, NodeRecord, Owner, Placement};
use super::{Cluster, ClusterError, Link, lock, ttl_ms};
use crate::protocol::Event;
use crate::server::Shared;
use crate::server::room::Rooms;

/// Runs until the server shuts down (or is dropped).
pub(crate) async fn run(shared: Weak<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let period = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let Some(cluster) = &shared.cluster else {
                return;
            };
            cluster.beat(&shared.rooms).await;
            cluster.config.ttl / 3
        };
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            _ = shutdown.wait_for(|down| *down) => return,
        }
    }
}

/// At shutdown: gives up every claim and the node's registration (best
/// effort, bounded by `redis_timeout` per request).
pub(crate) async fn leave(shared: &Arc<Shared>) {
    let Some(cluster) = &shared.cluster else {
        return;
    };
    let claimed: Vec<_> = lock(&cluster.claims)
        .drain()
        .map(|(room, _)| room)
        .collect();
    for room in claimed {
        if cluster.release(&room).await.is_err() {
            return; // Redis is gone: the claims expire by themselves
        }
    }
    if let Ok(mut conn) = cluster.connection() {
        let mut pipe = redis::pipe();
        pipe.cmd("DEL")
            .arg(keys::node_key(&cluster.node_id))
            .cmd("SREM")
            .arg(keys::NODES)
            .arg(&cluster.node_id);
        let done = cluster.timed(pipe.query_async::<()>(&mut conn)).await;
        if matches!(done, Ok(Ok(()))) {
            tracing::info!(node = %cluster.node_id, "left the cluster");
        }
    }
}

impl Cluster {
    /// One heartbeat. A failure marks the link down; the next beat retries.
    async fn beat(&self, rooms: &Rooms) {
        if let Err(e) = self.try_beat(rooms).await {
            tracing::debug!(node = %self.node_id, "heartbeat: {e}");
        }
    }

    async fn try_beat(&self, rooms: &Rooms) -> Result<(), ClusterError> {
        self.connect().await?;
        self.register(rooms).await?;
        let here = rooms.ids();
        for room in &here {
            // A room here stays here: a claim Redis lost (it restarted) is
            // taken back, never placed elsewhere.
            if let Owner::Node { node_id, .. } = self.claim(room, Placement::Here).await? {
                // Only after a partition: two nodes created the room while
                // they could not see each other's claims.
                tracing::warn!(
                    node = %self.node_id,
                    room = %room,
                    "room {room} is also held by node {node_id}; its users here stay here"
                );
            }
        }
        // A claim younger than one period may belong to a join that has not
        // put its user in the room yet.
        let grace = self.config.ttl / 3;
        let stale: Vec<_> = lock(&self.claims)
            .iter()
            .filter(|(room, at)| !here.contains(room) && at.elapsed() >= grace)
            .map(|(room, _)| room.clone())
            .collect();
        for room in stale {
            self.release(&room).await?;
            lock(&self.claims).remove(&room);
            tracing::debug!(node = %self.node_id, room = %room, "released the room's claim");
        }
        self.read_nodes(rooms).await
    }

    /// Connects if the link is down.
    async fn connect(&self) -> Result<(), ClusterError> {
        let since = match &*lock(&self.link) {
            Link::Up(_) => return Ok(()),
            Link::Down { since } => *since,
        };
        let Some(client) = &self.client else {
            return Err(ClusterError::Unavailable("the redis URL is invalid".into()));
        };
        let conn = self
            .timed(client.get_multiplexed_async_connection())
            .await
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(ClusterError::Unavailable)?;
        *lock(&self.link) = Link::Up(conn);
        tracing::info!(
            node = %self.node_id,
            "connected to Redis after {:.1?} without; registering",
            since.elapsed()
        );
        Ok(())
    }

    /// Writes the node's record with a fresh TTL.
    async fn register(&self, rooms: &Rooms) -> Result<(), ClusterError> {
        let (room_count, users) = rooms.counts();
        let record = NodeRecord {
            url: lock(&self.public_url).clone(),
            rooms: room_count,
            users,
        };
        let json =
            serde_json::to_string(&record).map_err(|e| ClusterError::Unavailable(e.to_string()))?;
        let mut conn = self.connection()?;
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(keys::node_key(&self.node_id))
            .arg(json)
            .arg("PX")
            .arg(ttl_ms(self.config.ttl))
            .cmd("SADD")
            .arg(keys::NODES)
            .arg(&self.node_id);
        self.timed(pipe.query_async::<()>(&mut conn))
            .await
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|e| self.went_down(e))
    }

    /// Reads the live nodes' URLs; forgets the ids of dead ones. When the
    /// list changed, every client here is told (`nodes-changed`).
    async fn read_nodes(&self, rooms: &Rooms) -> Result<(), ClusterError> {
        let mut conn = self.connection()?;
        let ids: Vec<String> = self
            .timed(
                redis::cmd("SMEMBERS")
                    .arg(keys::NODES)
                    .query_async(&mut conn),
            )
            .await
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|e| self.went_down(e))?;
        if ids.is_empty() {
            return Ok(());
        }
        let node_keys: Vec<String> = ids.iter().map(|id| keys::node_key(id)).collect();
        let records: Vec<Option<String>> = self
            .timed(redis::cmd("MGET").arg(&node_keys).query_async(&mut conn))
            .await
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|e| self.went_down(e))?;
        let mut urls = Vec::new();
        for (id, record) in ids.iter().zip(records) {
            match record.and_then(|json| serde_json::from_str::<NodeRecord>(&json).ok()) {
                Some(record) => urls.push(record.url),
                None => {
                    let removed = self
                        .timed(
                            redis::cmd("SREM")
                                .arg(keys::NODES)
                                .arg(id)
                                .query_async::<i64>(&mut conn),
                        )
                        .await;
                    if matches!(removed, Ok(Ok(1))) {
                        tracing::info!(node = %self.node_id, "node {id} is gone from the cluster");
                    }
                }
            }
        }
        urls.sort();
        urls.dedup();
        let changed = {
            let mut nodes = lock(&self.nodes);
            let changed = *nodes != urls;
            nodes.clone_from(&urls);
            changed
        };
        if changed {
            tracing::debug!(node = %self.node_id, "the cluster's nodes now: {urls:?}");
            rooms.tell_everyone(&Event::NodesChanged { nodes: urls });
        }
        Ok(())
    }
}
