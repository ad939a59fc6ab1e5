//! Group commit for chat messages. Every stored message costs a durable commit; at
//! thousands of messages a second, one transaction each spends PostgreSQL's CPU on
//! transaction overhead. The appender gathers the appends that arrive while earlier ones
//! are being written and stores them in one statement (its own transaction: one round
//! trip, one fsync), then answers each caller. Nobody is answered before the commit, so a stored
//! message is as durable as before; a batch that fails is retried row by row so one bad
//! message cannot fail the others. One writer: measured against four concurrent writers
//! at 1,000 messages/s (BENCHMARKS.md, h5), fewer and larger transactions won on two cores.

use super::model::{ChatMessage, ChatRole, MessageStatus};
use super::repo::{self, NewMessage};
use crate::error::{Error, Result};
use crate::ids::{ChatSessionId, GatewayId, OrgId};
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::{mpsc, oneshot};

/// Messages stored per transaction at most.
const BATCH: usize = 256;
/// Appends queued before callers wait for room.
const QUEUE: usize = 8192;

/// A message to store, owned (it crosses to a writer task).
#[derive(Debug, Clone)]
pub struct Append {
    /// Whose session it is (row-level security is set to it).
    pub org: OrgId,
    /// Session.
    pub session: ChatSessionId,
    /// Author.
    pub role: ChatRole,
    /// Text.
    pub content: String,
    /// Idempotency id within the session.
    pub client_message_id: String,
    /// Gateway run.
    pub run_id: Option<String>,
    /// Initial status.
    pub status: MessageStatus,
    /// For a user message: the gateway it will be handed to. It is stored only while the
    /// session is active there, the agent is on it and the user is assigned to the agent
    /// (otherwise the result is `None`, as for a missing session).
    pub gateway: Option<GatewayId>,
}

impl Append {
    fn as_new(&self) -> NewMessage<'_> {
        NewMessage {
            org: self.org,
            session: self.session,
            role: self.role,
            content: &self.content,
            client_message_id: &self.client_message_id,
            run_id: self.run_id.as_deref(),
            status: self.status,
            gateway: self.gateway,
        }
    }
}

/// The stored message and whether it was stored before (a retry); `None`: no such session,
/// or (for a message naming its gateway) one it may no longer be sent to.
pub type Appended = Option<(ChatMessage, bool)>;

struct Request {
    append: Append,
    answer: oneshot::Sender<Result<Appended>>,
}

/// See the module documentation. Cheap to clone.
#[derive(Clone)]
pub struct Appender {
    queue: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender").finish_non_exhaustive()
    }
}

impl Appender {
    /// Starts the writer. `event_content`: the events of stored messages carry the text
    /// (`CHAT_EVENT_INCLUDE_CONTENT`).
    pub fn start(pool: PgPool, event_content: bool) -> Self {
        let (queue, requests) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(pool, event_content, requests));
        Self { queue }
    }

    /// Stores `append` with its session's next seq, durably, together with whatever
    /// else is waiting.
    pub async fn append(&self, append: Append) -> Result<Appended> {
        self.submit(append).await?.await
    }

    /// Queues `append` now (so appends submitted one after another get their seqs in that
    /// order) and returns what to await for the stored message.
    pub async fn submit(
        &self,
        append: Append,
    ) -> Result<impl std::future::Future<Output = Result<Appended>> + Send + 'static> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Request { append, answer })
            .await
            .map_err(|_| Error::unavailable("the chat store is shutting down"))?;
        Ok(async move {
            answered
                .await
                .map_err(|_| Error::unavailable("the chat store is shutting down"))?
        })
    }
}

async fn write_batches(pool: PgPool, event_content: bool, mut requests: mpsc::Receiver<Request>) {
    let mut writer = Writer {
        pool,
        conn: None,
        event_content,
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut last_batch = 0;
    loop {
        // What arrived while the previous batch committed is the next batch.
        if requests.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        // Under load (the previous batch had company), appends that are on their way
        // (tasks ready to run) join this batch: a statement run as its own transaction
        // took about 0.5 ms of PostgreSQL's time for one row (pgbench), each further row
        // about 0.01 ms. Alone, an append goes at once.
        if last_batch > 1 && batch.len() < BATCH {
            tokio::task::yield_now().await;
            while batch.len() < BATCH {
                let Ok(request) = requests.try_recv() else {
                    break;
                };
                batch.push(request);
            }
        }
        last_batch = batch.len();
        // What waits for PostgreSQL: where a backlog shows when the database is the limit.
        metrics::gauge!("mc_chat_append_queue").set((batch.len() + requests.len()) as f64);
        // Sessions in one order in every batch (see migration 0012); a session's own
        // messages keep their arrival order (stable sort).
        batch.sort_by_key(|r: &Request| (r.append.org, r.append.session));
        let appends: Vec<&Append> = batch.iter().map(|r| &r.append).collect();
        match writer.store(&appends).await {
            Ok(mut stored) => {
                for (request, result) in batch.drain(..).zip(stored.drain(..)) {
                    let _ = request.answer.send(Ok(result));
                }
            }
            Err(err) if batch.len() == 1 => {
                if let Some(request) = batch.pop() {
                    let _ = request.answer.send(Err(err));
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, count = batch.len(), "storing a batch of chat messages failed; storing them one by one");
                for request in batch.drain(..) {
                    let result = writer
                        .store(&[&request.append])
                        .await
                        .map(|mut one| one.pop().flatten());
                    let _ = request.answer.send(result);
                }
            }
        }
    }
}

/// The writer and the connection it keeps between batches: no hand-out from the pool per
/// batch (with its liveness check, a round trip), and a backend whose caches stay warm.
struct Writer {
    pool: PgPool,
    conn: Option<PoolConnection<Postgres>>,
    event_content: bool,
}

impl Writer {
    /// Stores `appends` (sorted by organization and session) in one statement, which is
    /// its own transaction; one result per append.
    async fn store(&mut self, appends: &[&Append]) -> Result<Vec<Appended>> {
        let kept = self.conn.is_some();
        match self.store_once(appends).await {
            // A kept connection may have died since its last use (a database restart):
            // once more on a new one. Safe even if the first attempt committed: a message
            // stored before is found by its client id.
            Err(_) if kept => self.store_once(appends).await,
            result => result,
        }
    }

    async fn store_once(&mut self, appends: &[&Append]) -> Result<Vec<Appended>> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.pool.acquire().await?,
        };
        let news: Vec<NewMessage<'_>> = appends.iter().map(|a| a.as_new()).collect();
        // On an error the connection goes back to the pool, which checks it before
        // handing it out again.
        let rows = repo::append_many(&mut *conn, &news, self.event_content).await?;
        self.conn = Some(conn);
        let mut results: Vec<Appended> = vec![None; appends.len()];
        for (index, message, duplicate) in rows {
            results[index] = Some((message, duplicate));
        }
        Ok(results)
    }
}
