//! The OpenAPI 3.1 document, generated from the route annotations. Served at
//! `/api/v1/openapi.json` and committed as `docs/openapi.json` (a test fails on drift).

use crate::AppState;
use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Mission Control API",
        description = "Control plane for fleets of AI agents behind OpenClaw gateways. \
            Errors are `{\"error\":{\"code\",\"message\",\"details\"}}`; lists take `limit` \
            (1-100, default 20) and an opaque `cursor` and return `{items, next_cursor, total?}`. \
            Console users authenticate with `Authorization: Bearer <access token>`, agents and \
            service accounts with an API key (`Authorization: Bearer mc_live_…` or \
            `X-API-Key`), H5 end users with their own token on `/h5/auth/*`. `X-Org-Id` selects \
            the organization for callers that belong to several.",
        license(name = "Apache-2.0"),
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Console login and tokens"),
        (name = "organizations", description = "Tenants and their lifecycle"),
        (name = "members", description = "People in an organization"),
        (name = "api-keys", description = "Keys for agents and service accounts"),
        (name = "h5", description = "H5 end-user authentication"),
        (name = "h5-users", description = "H5 user administration"),
        (name = "audit", description = "Audit log"),
        (name = "boards", description = "Boards and board groups"),
        (name = "tasks", description = "Tasks, dependencies, comments"),
        (name = "tags", description = "Tags"),
        (name = "approvals", description = "Approval requests"),
        (name = "events", description = "Event log and live stream"),
        (name = "agent", description = "Agent-facing endpoints (agent API key)"),
        (name = "jobs", description = "Job queue: depth, jobs, dead letters"),
        (name = "gateways", description = "Gateway registry and fleet"),
        (name = "agents", description = "Agents bound to gateways"),
        (name = "suggestions", description = "Suggestions from rules and agents, accept and dismiss"),
        (name = "proactive-rules", description = "Rules that turn events into suggestions"),
        (name = "web", description = "Settings for the browser apps"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT or mc_live_ API key")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "h5_bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("H5 JWT")
                    .build(),
            ),
        );
    }
}

/// The `/api/v1` router and its OpenAPI document.
pub fn build() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let (router, mut doc) = OpenApiRouter::with_openapi(doc)
        .nest("/api/v1", crate::routes::api_v1())
        .split_for_parts();
    unique_operation_ids(&mut doc);
    (router, doc)
}

/// Handlers in different modules share names (`list`, `get`, `login`), and utoipa uses
/// the function name as `operationId`; generated clients key operations by it, so a
/// shared id silently merges two endpoints. A shared id gets the path's first segment
/// as a prefix: `members_list`, `h5_login`.
fn unique_operation_ids(doc: &mut utoipa::openapi::OpenApi) {
    use std::collections::HashMap;
    fn operations(
        item: &mut utoipa::openapi::PathItem,
    ) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
        [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ]
        .into_iter()
        .flatten()
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for item in doc.paths.paths.values_mut() {
        for op in operations(item) {
            if let Some(id) = &op.operation_id {
                *counts.entry(id.clone()).or_default() += 1;
            }
        }
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let prefix = path
            .trim_start_matches("/api/v1/")
            .split('/')
            .next()
            .unwrap_or_default()
            .replace('-', "_");
        for op in operations(item) {
            if let Some(id) = op.operation_id.as_mut()
                && counts.get(id.as_str()).is_some_and(|n| *n > 1)
                && !id.starts_with(&prefix)
            {
                *id = format!("{prefix}_{id}");
            }
        }
    }
}

/// The document as pretty JSON with a trailing newline (the form committed to docs/).
pub fn spec_json() -> String {
    let mut json = build()
        .1
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    json.push('\n');
    json
}
