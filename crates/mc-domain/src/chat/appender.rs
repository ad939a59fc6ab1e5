//! Group commit for chat messages. Every stored message costs a durable commit; at
//! thousands of messages a second, one transaction each spends PostgreSQL's CPU on
//! transaction overhead. The appender gathers the appends that arrive while earlier ones
//! are being written and stores them in one transaction (one statement per organization,
//! one fsync), then answers each caller. Nobody is answered before the commit, so a stored
//! message is as durable as before; a batch that fails is retried row by row so one bad
//! message cannot fail the others. One writer: measured against four concurrent writers
//! at 1,000 messages/s (BENCHMARKS.md, h5), fewer and larger transactions won on two cores.

use super::model::{ChatMessage, ChatRole, MessageStatus};
use super::repo::{self, NewMessage};
use crate::db;
use crate::error::{Error, Result};
use crate::ids::{ChatSessionId, OrgId};
use sqlx::PgPool;
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
}

impl Append {
    fn as_new(&self) -> NewMessage<'_> {
        NewMessage {
            session: self.session,
            role: self.role,
            content: &self.content,
            client_message_id: &self.client_message_id,
            run_id: self.run_id.as_deref(),
            status: self.status,
        }
    }
}

/// The stored message and whether it was stored before (a retry); `None`: no such session.
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
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        // What arrived while the previous batch committed is the next batch.
        if requests.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        // Sessions in one order in every batch (see migration 0012); a session's own
        // messages keep their arrival order (stable sort).
        batch.sort_by_key(|r: &Request| (r.append.org, r.append.session));
        let appends: Vec<Append> = batch.iter().map(|r| r.append.clone()).collect();
        match store(&pool, event_content, &appends).await {
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
                    let result = store(&pool, event_content, std::slice::from_ref(&request.append))
                        .await
                        .map(|mut one| one.pop().flatten());
                    let _ = request.answer.send(result);
                }
            }
        }
    }
}

/// Stores `appends` (sorted by organization) in one transaction; one result per append.
async fn store(pool: &PgPool, event_content: bool, appends: &[Append]) -> Result<Vec<Appended>> {
    let mut results: Vec<Appended> = vec![None; appends.len()];
    let Some(first) = appends.first() else {
        return Ok(results);
    };
    let mut tx = db::begin_org(pool, first.org).await?;
    if event_content {
        sqlx::query("SELECT set_config('app.chat_event_content', 'on', true)")
            .execute(&mut *tx)
            .await?;
    }
    let mut start = 0;
    for group in appends.chunk_by(|a, b| a.org == b.org) {
        if start > 0 {
            // Row-level security stays on: each organization's rows under its own setting.
            db::set_org(&mut tx, group[0].org).await?;
        }
        let news: Vec<NewMessage<'_>> = group.iter().map(Append::as_new).collect();
        for (index, message, duplicate) in repo::append_many(&mut *tx, &news).await? {
            results[start + index] = Some((message, duplicate));
        }
        start += group.len();
    }
    tx.commit().await?;
    Ok(results)
}
