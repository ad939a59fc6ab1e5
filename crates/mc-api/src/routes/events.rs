//! `/events` (the event log) and `/events/stream` (SSE with `Last-Event-ID` replay).

use crate::AppState;
use crate::auth::{Ctx, Presented};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use mc_domain::Error;
use mc_domain::events::{self, CompiledFilter, Event, EventFilter, FeedScope, SharedListener};
use mc_domain::identity::tokens::TOKEN_EXPIRED;
use mc_domain::identity::{OrgContext, Permission};
use mc_domain::ids::OrgId;
use mc_domain::pagination::{Page, PageParams};
use mc_web::ApiError;
use mc_web::error::ErrorBody;
use mc_web::extract::ApiQuery;
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Mutex;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(stream))
}

/// The event log, newest first, filtered.
#[utoipa::path(get, path = "/events", tag = "events", params(EventFilter, PageParams), security(("bearer" = [])),
    responses((status = 200, body = Page<Event>), (status = "4XX", body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(filter): ApiQuery<EventFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<Event>>, ApiError> {
    Ok(Json(
        events::list(&s.infra.pool, &ctx, filter, &page).await?,
    ))
}

/// Stream parameters besides the filter.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Resume after this sequence number (same as the `Last-Event-ID` header).
    pub last_event_id: Option<i64>,
    /// A ticket from `POST /auth/stream-ticket`, for clients that cannot send headers.
    pub ticket: Option<String>,
}

/// Live events as Server-Sent Events: `id:` is the sequence number; `Last-Event-ID`
/// replays what was missed from the log, then continues live with no gap and no
/// duplicate. A heartbeat comment every `MC_STREAM_CHECK_INTERVAL_SECONDS` (15 s). A revoked session gets `session.revoked`
/// and the stream ends; an access token that ran out gets `session.expired` (reconnect
/// with a fresh ticket and `Last-Event-ID`).
#[utoipa::path(get, path = "/events/stream", tag = "events", params(EventFilter, StreamParams), security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream", description = "event stream"), (status = "4XX", body = ErrorBody)))]
async fn stream(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    presented: Presented,
    headers: HeaderMap,
    ApiQuery(filter): ApiQuery<EventFilter>,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> Result<Response, ApiError> {
    ctx.authorize(Permission::EventsRead)?;
    let feed = open_feed(&s, &ctx, &headers, &params, filter).await?;
    Ok(sse_response(s, ctx, presented, feed, "event", |event| {
        SseEvent::default()
            .id(event.seq.to_string())
            .event(event.event_type.clone())
            .json_data(event)
            .ok()
    }))
}

/// Listens to the organization's (or, with `board_id`, the board's) shared feed for a
/// stream, resuming after `Last-Event-ID` when the client sent one.
pub async fn open_feed(
    s: &AppState,
    ctx: &OrgContext,
    headers: &HeaderMap,
    params: &StreamParams,
    filter: EventFilter,
) -> Result<SharedListener, ApiError> {
    let after = last_event_id(headers, params.last_event_id)?;
    let scope = filter.board_id.map_or(FeedScope::Org, FeedScope::Board);
    let filter = CompiledFilter::new(filter)?;
    Ok(s.feeds.listen(ctx.org_id, scope, filter, after).await?)
}

/// Reads `Last-Event-ID` (header wins over the query parameter).
pub fn last_event_id(headers: &HeaderMap, query: Option<i64>) -> Result<Option<i64>, ApiError> {
    match headers.get("last-event-id") {
        None => Ok(query),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| {
                ApiError(Error::invalid_field(
                    "Last-Event-ID",
                    "must be a sequence number",
                ))
            }),
    }
}

/// Frames kept by [`SseFrames`]. In `scripts/bench boards` (1,000 streams, 100 events/s,
/// p99 7.6 s behind) the streams are up to about 760 events apart; a stream further behind
/// renders its own frames again, which costs time, not correctness.
const SSE_FRAMES_KEPT: usize = 1024;

/// Recently rendered SSE frames, shared by every stream of the process. The log is
/// append-only, so one renderer always renders one event the same way, and 1,000 streams
/// of a board serialize each event once rather than 1,000 times. Sequence numbers are
/// per organization, so the organization is part of the key.
#[derive(Debug, Default)]
pub struct SseFrames {
    kept: Mutex<KeptFrames>,
}

type FrameKey = (&'static str, OrgId, i64);

#[derive(Debug, Default)]
struct KeptFrames {
    frames: HashMap<FrameKey, SseEvent>,
    order: VecDeque<FrameKey>,
}

impl SseFrames {
    /// The frame `renderer` makes of `event`, rendered now if no stream did yet.
    fn frame(
        &self,
        renderer: &'static str,
        event: &Event,
        render: impl Fn(&Event) -> Option<SseEvent>,
    ) -> Option<SseEvent> {
        let key = (renderer, event.organization_id, event.seq);
        if let Some(frame) = self.kept.lock().expect("sse frames").frames.get(&key) {
            return Some(frame.clone());
        }
        let frame = render(event)?;
        let mut kept = self.kept.lock().expect("sse frames");
        if kept.frames.insert(key, frame.clone()).is_none() {
            kept.order.push_back(key);
            while kept.order.len() > SSE_FRAMES_KEPT {
                if let Some(old) = kept.order.pop_front() {
                    kept.frames.remove(&old);
                }
            }
        }
        Some(frame)
    }
}

/// Runs a feed into an SSE response until the client leaves, the service shuts down, or
/// the caller's access ends. `renderer` names `render` for the shared frame cache: two
/// streams with the same name must render an event the same way.
pub fn sse_response(
    state: AppState,
    ctx: OrgContext,
    presented: Presented,
    mut feed: SharedListener,
    renderer: &'static str,
    render: impl Fn(&Event) -> Option<SseEvent> + Send + 'static,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<SseEvent, Infallible>>(256);
    let interval = state.stream_check_interval;
    tokio::spawn(async move {
        let mut check = tokio::time::interval(state.stream_check_interval);
        check.tick().await;
        loop {
            tokio::select! {
                () = state.shutdown.cancelled() => break,
                () = tx.closed() => break,
                next = feed.next() => match next {
                    Ok(event) => {
                        if let Some(sse) = state.sse_frames.frame(renderer, &event, &render)
                            && tx.send(Ok(sse)).await.is_err()
                        {
                            break;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "event stream failed");
                        break;
                    }
                },
                _ = check.tick() => {
                    let ended = match still_allowed(&state, &ctx, &presented).await {
                        Access::Allowed => None,
                        Access::Expired => Some("session.expired"),
                        Access::Revoked => Some("session.revoked"),
                    };
                    if let Some(name) = ended {
                        let _ = tx.send(Ok(SseEvent::default().event(name).data("{}"))).await;
                        break;
                    }
                }
            }
        }
    });
    let mut response = Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::new().interval(interval).text("heartbeat"))
        .into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Whether the credential still authenticates and still reaches the organization.
/// What the periodic re-check of a stream's caller found.
enum Access {
    Allowed,
    /// The access token ran out: the client gets a new ticket and resumes.
    Expired,
    /// Logged out, removed, demoted or suspended: the stream ends for good.
    Revoked,
}

async fn still_allowed(state: &AppState, ctx: &OrgContext, presented: &Presented) -> Access {
    match state.identity.authenticate(&presented.credential).await {
        Ok(principal) => {
            let allowed = state
                .identity
                .org_context(&principal, Some(ctx.org_id))
                .await
                .is_ok_and(|now| now.role.can(Permission::EventsRead));
            if allowed {
                Access::Allowed
            } else {
                Access::Revoked
            }
        }
        // Our own outage is not a revocation; keep streaming.
        Err(Error::ServiceUnavailable { .. }) => Access::Allowed,
        Err(Error::Unauthorized(reason)) if reason == TOKEN_EXPIRED => Access::Expired,
        Err(_) => Access::Revoked,
    }
}
