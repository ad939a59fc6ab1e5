//! Authentication and rate limiting of `/api/v1`, and the extractors handlers use.
//!
//! One middleware authenticates the caller (console token, API key, or H5 token on the
//! H5 end-user routes), resolves the organization (`X-Org-Id`, else the token's), applies
//! the per-caller rate limit for the organization's tier, and leaves what it learned in
//! the request for the extractors. A bad credential is not rejected here: routes that do
//! not need one (login, refresh) still work; routes that do get the reason as a 401.

use crate::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mc_domain::Error;
use mc_domain::config::Quota;
use mc_domain::identity::{H5Context, OrgContext, OrgTier, Principal};
use mc_domain::ids::OrgId;
use mc_domain::ratelimit::Decision;
use mc_web::ApiError;
use mc_web::extract::client_ip;
use std::net::IpAddr;

/// Header that selects the organization for callers that belong to several.
pub const ORG_HEADER: &str = "x-org-id";

/// What the middleware learned about the caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Client address.
    pub ip: IpAddr,
    admin: Option<Result<Principal, ErrorCell>>,
    org: Option<Result<OrgContext, ErrorCell>>,
    h5: Option<Result<H5Context, ErrorCell>>,
    /// The credential as presented (for long-lived streams that re-check it).
    credential: Option<std::sync::Arc<str>>,
    /// The organization the caller asked for (header or stream ticket).
    requested_org: Option<OrgId>,
}

/// An error kept in request extensions (which need `Clone`).
#[derive(Debug)]
struct ErrorCell(Error);

impl Clone for ErrorCell {
    fn clone(&self) -> Self {
        ErrorCell(self.0.public_clone())
    }
}

fn credential(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim());
    }
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn requested_org(headers: &HeaderMap) -> Result<Option<OrgId>, Error> {
    match headers.get(ORG_HEADER) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<OrgId>().ok())
            .map(Some)
            .ok_or_else(|| Error::invalid_field("X-Org-Id", "must be an organization id (UUID)")),
    }
}

/// Routes whose bearer token is an H5 end user's, not a console user's.
fn is_h5_end_user_route(path: &str) -> bool {
    path.starts_with("/api/v1/h5/auth/") || path.starts_with("/api/v1/h5/chat/")
}

fn quota_for(state: &AppState, tier: OrgTier) -> Quota {
    let limits = &state.identity.rate_limits;
    match tier {
        OrgTier::Free => limits.free,
        OrgTier::Pro => limits.pro,
        OrgTier::Enterprise => limits.enterprise,
    }
}

/// Failures of our own dependencies while authenticating must not pass as "anonymous".
fn is_client_error(err: &Error) -> bool {
    !matches!(
        err,
        Error::ServiceUnavailable { .. } | Error::Internal { .. }
    )
}

/// The `/api/v1` middleware: authenticate, resolve the organization, rate-limit.
pub async fn authenticate_and_limit(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let ip = client_ip(&parts, state.identity.rate_limits.trust_forwarded_for);
    let mut caller = Caller {
        ip,
        admin: None,
        org: None,
        h5: None,
        credential: None,
        requested_org: None,
    };
    let mut rate: Option<(String, Quota)> = None;

    // EventSource cannot set headers: stream endpoints accept `?ticket=` instead.
    let mut ticket_org = None;
    let mut presented = credential(&parts.headers).map(str::to_owned);
    if presented.is_none()
        && parts.uri.path().ends_with("/stream")
        && let Some(ticket) = query_param(parts.uri.query(), "ticket")
    {
        match state.identity.redeem_stream_ticket(&ticket).await {
            Ok((credential, org)) => {
                presented = Some(credential);
                ticket_org = org;
            }
            Err(err) if is_client_error(&err) => caller.admin = Some(Err(ErrorCell(err))),
            Err(err) => return ApiError(err).into_response(),
        }
    }

    if let Some(token) = presented.as_deref() {
        caller.credential = Some(std::sync::Arc::from(token));
        if is_h5_end_user_route(parts.uri.path()) {
            match state.identity.authenticate_h5(token).await {
                Ok(h5) => {
                    rate = Some((format!("h5:{}", h5.user_id), state.identity.rate_limits.pro));
                    caller.h5 = Some(Ok(h5));
                }
                Err(err) if is_client_error(&err) => caller.h5 = Some(Err(ErrorCell(err))),
                Err(err) => return ApiError(err).into_response(),
            }
        } else {
            match state.identity.authenticate(token).await {
                Ok(principal) => {
                    let org = match requested_org(&parts.headers).map(|r| r.or(ticket_org)) {
                        Err(err) => Some(Err(err)),
                        Ok(requested) => {
                            caller.requested_org = requested;
                            let has_org = requested.is_some()
                                || matches!(principal, Principal::ApiKey(_))
                                || matches!(
                                    principal,
                                    Principal::User {
                                        token_org: Some(_),
                                        ..
                                    }
                                );
                            if has_org {
                                Some(state.identity.org_context(&principal, requested).await)
                            } else {
                                None
                            }
                        }
                    };
                    let tier = match &org {
                        Some(Ok(ctx)) => ctx.org_tier,
                        _ => OrgTier::Pro,
                    };
                    // The tier is part of the key: a tier change starts a fresh allowance.
                    rate = Some((
                        format!("{}:{}", tier.as_str(), principal.rate_key()),
                        quota_for(&state, tier),
                    ));
                    match org {
                        Some(Err(err)) if !is_client_error(&err) => {
                            return ApiError(err).into_response();
                        }
                        Some(result) => caller.org = Some(result.map_err(ErrorCell)),
                        None => {}
                    }
                    caller.admin = Some(Ok(principal));
                }
                Err(err) if is_client_error(&err) => caller.admin = Some(Err(ErrorCell(err))),
                Err(err) => return ApiError(err).into_response(),
            }
        }
    }

    let (key, quota) =
        rate.unwrap_or_else(|| (format!("anon:{ip}"), state.identity.rate_limits.anonymous));
    let decision = match state.identity.limiter.check(&key, quota).await {
        Ok(decision) => decision,
        Err(err) => return ApiError(err).into_response(),
    };
    if !decision.allowed {
        let mut response = ApiError(Error::RateLimited {
            retry_after_secs: decision.retry_after.as_secs().max(1),
        })
        .into_response();
        add_rate_headers(response.headers_mut(), &decision);
        return response;
    }
    parts.extensions.insert(caller);
    let mut response = next.run(Request::from_parts(parts, body)).await;
    add_rate_headers(response.headers_mut(), &decision);
    response
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn add_rate_headers(headers: &mut HeaderMap, decision: &Decision) {
    for (name, value) in [
        ("x-ratelimit-limit", i64::from(decision.limit)),
        ("x-ratelimit-remaining", i64::from(decision.remaining)),
        ("x-ratelimit-reset", decision.reset_at),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

fn caller(parts: &Parts) -> Result<&Caller, ApiError> {
    parts.extensions.get::<Caller>().ok_or_else(|| {
        ApiError(Error::internal(
            "authentication middleware did not run",
            std::io::Error::other("missing Caller extension"),
        ))
    })
}

fn missing_credentials() -> ApiError {
    ApiError(Error::Unauthorized(
        "missing credentials: send Authorization: Bearer <token> or X-API-Key".into(),
    ))
}

/// An authenticated console user or API key, before an organization is chosen.
#[derive(Debug, Clone)]
pub struct Authed(pub Principal);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        match &caller(parts)?.admin {
            Some(Ok(principal)) => Ok(Authed(principal.clone())),
            Some(Err(cell)) => Err(ApiError(cell.clone().0)),
            None => Err(missing_credentials()),
        }
    }
}

/// An authenticated caller acting in an organization, with its role there.
#[derive(Debug, Clone)]
pub struct Ctx(pub OrgContext);

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Authed::from_request_parts(parts, state).await?;
        match &caller(parts)?.org {
            Some(Ok(ctx)) => Ok(Ctx(ctx.clone())),
            Some(Err(cell)) => Err(ApiError(cell.clone().0)),
            None => Err(ApiError(Error::invalid_field(
                "X-Org-Id",
                "no organization selected: send X-Org-Id or call /api/v1/auth/switch-org",
            ))),
        }
    }
}

/// An authenticated H5 end user (H5 routes only).
#[derive(Debug, Clone)]
pub struct H5Authed(pub H5Context);

impl FromRequestParts<AppState> for H5Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        match &caller(parts)?.h5 {
            Some(Ok(ctx)) => Ok(H5Authed(ctx.clone())),
            Some(Err(cell)) => Err(ApiError(cell.clone().0)),
            None => Err(missing_credentials()),
        }
    }
}

/// The client's IP address as the middleware determined it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(caller(parts)?.ip))
    }
}

/// The credential the caller presented and the organization it asked for, for streams
/// that re-check authorization while they stay open.
#[derive(Debug, Clone)]
pub struct Presented {
    /// Token or API key.
    pub credential: std::sync::Arc<str>,
    /// Requested organization.
    pub org: Option<OrgId>,
}

impl FromRequestParts<AppState> for Presented {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let caller = caller(parts)?;
        caller
            .credential
            .clone()
            .map(|credential| Presented {
                credential,
                org: caller.requested_org,
            })
            .ok_or_else(missing_credentials)
    }
}
