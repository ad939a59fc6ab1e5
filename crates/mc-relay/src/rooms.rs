//! One room per open board: a single ordered, gap-free event feed per board and relay,
//! rendered to a frame once and handed to every socket's bounded queue. A socket whose
//! queue is full is dropped from the room (and closed with 4009 by its task); nobody
//! else waits for it.

use crate::board_protocol::{self, Effect};
use axum::extract::ws::Utf8Bytes;
use mc_domain::events::{CompiledFilter, EventBus, EventFeed, EventFilter, FeedScope};
use mc_domain::ids::{BoardId, OrgId};
use mc_domain::{Error, Result};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A rendered event, shared by every socket of the room.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The event's sequence number.
    pub seq: i64,
    /// The JSON text.
    pub text: Utf8Bytes,
    /// What the socket does after sending it.
    pub effect: Effect,
}

/// Why a membership's queue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The socket could not keep up.
    SlowConsumer,
    /// The room lost its feed (Redis or Postgres trouble) or the relay is stopping.
    Unavailable,
}

type Key = (OrgId, BoardId);

struct Subscriber {
    tx: mpsc::Sender<Frame>,
    slow: Arc<AtomicBool>,
    kick: CancellationToken,
}

struct RoomState {
    /// Every event up to here has been handed to the members present at the time.
    last_seq: i64,
    next_id: u64,
    members: HashMap<u64, Subscriber>,
}

struct Room {
    key: Key,
    state: Mutex<RoomState>,
    stop: CancellationToken,
}

/// The rooms of this relay.
#[derive(Clone)]
pub struct BoardRooms {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    bus: Arc<dyn EventBus>,
    rooms: tokio::sync::Mutex<HashMap<Key, Arc<Room>>>,
    queue: usize,
    check_interval: Duration,
    shutdown: CancellationToken,
}

/// A socket's place in a room; leaving is dropping it.
pub struct Membership {
    room: Weak<Room>,
    rooms: Weak<Inner>,
    id: u64,
    /// Frames for this socket, in seq order.
    pub rx: mpsc::Receiver<Frame>,
    slow: Arc<AtomicBool>,
    /// Cancelled when the room drops this socket for being slow, so a socket blocked
    /// writing to a stalled client stops waiting.
    pub kicked: CancellationToken,
    /// Everything with `seq <= joined_at` was handed out before this socket joined.
    pub joined_at: i64,
}

impl Membership {
    /// Whether the room dropped this socket for being slow (cheaper than the token).
    pub fn dropped_as_slow(&self) -> bool {
        self.slow.load(Ordering::Acquire)
    }

    /// Why the queue ended (after `rx.recv()` returned `None`).
    pub fn ended(&self) -> Ended {
        if self.dropped_as_slow() {
            Ended::SlowConsumer
        } else {
            Ended::Unavailable
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let Some(room) = self.room.upgrade() else {
            return;
        };
        let empty = {
            let mut state = room.state.lock().expect("room lock");
            state.members.remove(&self.id);
            state.members.is_empty()
        };
        if empty
            && let Some(inner) = self.rooms.upgrade()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // Close the room unless someone joined meanwhile (checked under the map lock).
            runtime.spawn(async move {
                let mut rooms = inner.rooms.lock().await;
                let still_empty = room.state.lock().expect("room lock").members.is_empty();
                if still_empty && rooms.get(&room.key).is_some_and(|r| Arc::ptr_eq(r, &room)) {
                    rooms.remove(&room.key);
                    room.stop.cancel();
                }
            });
        }
    }
}

impl BoardRooms {
    /// Rooms over `bus`, with `queue` frames of room per socket.
    pub fn new(
        pool: PgPool,
        bus: Arc<dyn EventBus>,
        queue: usize,
        check_interval: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                bus,
                rooms: tokio::sync::Mutex::new(HashMap::new()),
                queue,
                check_interval,
                shutdown,
            }),
        }
    }

    /// Rooms currently open.
    pub async fn open_rooms(&self) -> usize {
        self.inner.rooms.lock().await.len()
    }

    /// Joins the room of `board` (opening it if needed). The caller must already have
    /// checked that it may read the board.
    pub async fn join(&self, org: OrgId, board: BoardId) -> Result<Membership> {
        let key = (org, board);
        let mut rooms = self.inner.rooms.lock().await;
        let room = match rooms.get(&key) {
            Some(room) if !room.stop.is_cancelled() => room.clone(),
            _ => {
                let room = self.open(key).await?;
                rooms.insert(key, room.clone());
                room
            }
        };
        let (tx, rx) = mpsc::channel(self.inner.queue);
        let slow = Arc::new(AtomicBool::new(false));
        let kicked = CancellationToken::new();
        let mut state = room.state.lock().expect("room lock");
        let id = state.next_id;
        state.next_id += 1;
        state.members.insert(
            id,
            Subscriber {
                tx,
                slow: slow.clone(),
                kick: kicked.clone(),
            },
        );
        Ok(Membership {
            room: Arc::downgrade(&room),
            rooms: Arc::downgrade(&self.inner),
            id,
            rx,
            slow,
            kicked,
            joined_at: state.last_seq,
        })
    }

    async fn open(&self, key: Key) -> Result<Arc<Room>> {
        let (org, board) = key;
        let filter = CompiledFilter::new(EventFilter {
            board_id: Some(board),
            ..Default::default()
        })?;
        let feed = EventFeed::open(
            self.inner.pool.clone(),
            self.inner.bus.as_ref(),
            org,
            FeedScope::Board(board),
            filter,
            None,
        )
        .await?;
        let room = Arc::new(Room {
            key,
            state: Mutex::new(RoomState {
                last_seq: feed.last_seq(),
                next_id: 0,
                members: HashMap::new(),
            }),
            stop: self.inner.shutdown.child_token(),
        });
        tokio::spawn(pump(
            room.clone(),
            Arc::downgrade(&self.inner),
            feed,
            self.inner.check_interval,
        ));
        metrics::gauge!("mc_board_rooms").increment(1.0);
        Ok(room)
    }
}

/// Moves events from the feed into every member's queue until the room closes.
async fn pump(room: Arc<Room>, rooms: Weak<Inner>, mut feed: EventFeed, check: Duration) {
    let mut tick = tokio::time::interval(check);
    tick.tick().await;
    let failure: Option<Error> = loop {
        tokio::select! {
            () = room.stop.cancelled() => break None,
            next = feed.next() => match next {
                Ok(event) => {
                    let frame = board_protocol::render(&event).map(|(text, effect)| Frame {
                        seq: event.seq,
                        text: Utf8Bytes::from(text),
                        effect,
                    });
                    broadcast(&room, event.seq, frame);
                }
                Err(err) => break Some(err),
            },
            _ = tick.tick() => {
                // A publish lost at the tail shows no gap until the next one; look now.
                if let Err(err) = feed.catch_up().await {
                    break Some(err);
                }
            }
        }
    };
    if let Some(err) = failure {
        tracing::warn!(error = %err, board = %room.key.1, "board room lost its feed; members will resume");
    }
    // Members see their queue end and close with "try again"; they resume by seq.
    room.stop.cancel();
    room.state.lock().expect("room lock").members.clear();
    if let Some(inner) = rooms.upgrade() {
        let mut map = inner.rooms.lock().await;
        if map.get(&room.key).is_some_and(|r| Arc::ptr_eq(r, &room)) {
            map.remove(&room.key);
        }
    }
    metrics::gauge!("mc_board_rooms").decrement(1.0);
}

fn broadcast(room: &Room, seq: i64, frame: Option<Frame>) {
    let mut state = room.state.lock().expect("room lock");
    state.last_seq = seq;
    let Some(frame) = frame else { return };
    let mut dropped = 0u64;
    state
        .members
        .retain(|_, sub| match sub.tx.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                sub.slow.store(true, Ordering::Release);
                sub.kick.cancel();
                dropped += 1;
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    metrics::counter!("mc_board_frames_queued_total").increment(state.members.len() as u64);
    if dropped > 0 {
        metrics::counter!("mc_ws_slow_consumers_total", "endpoint" => "board").increment(dropped);
    }
}
