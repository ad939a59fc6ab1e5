//! The committed OpenAPI document matches the one generated from the code.

#[test]
fn docs_openapi_json_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let generated = mc_api::openapi::spec_json();
    if std::env::var_os("MC_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &generated).expect("write docs/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is stale: run `scripts/openapi` (or MC_UPDATE_SNAPSHOTS=1 cargo test -p mc-api --test openapi)"
    );
}

#[test]
fn document_is_openapi_3_1_with_every_identity_route() {
    let spec: serde_json::Value = serde_json::from_str(&mc_api::openapi::spec_json()).unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/me",
        "/api/v1/auth/switch-org",
        "/api/v1/organizations",
        "/api/v1/organizations/{id}",
        "/api/v1/members",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{id}/rotate",
        "/api/v1/h5/auth/register",
        "/api/v1/h5/auth/login",
        "/api/v1/h5/auth/refresh",
        "/api/v1/h5/auth/me",
        "/api/v1/h5/users",
        "/api/v1/h5/users/{id}/assign",
        "/api/v1/h5/users/{id}/assign/{agent_id}",
        "/api/v1/audit-log",
    ] {
        assert!(
            spec["paths"].get(path).is_some(),
            "{path} missing from the document"
        );
    }
}

/// A typed client generated from the document must be callable: every `in: path`
/// parameter appears in its path, operation ids are unique, and every enum lists the
/// values on the wire.
#[test]
fn parameters_and_enums_match_the_wire() {
    let spec: serde_json::Value = serde_json::from_str(&mc_api::openapi::spec_json()).unwrap();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for param in op["parameters"].as_array().into_iter().flatten() {
                if param["in"] == "path" {
                    let name = param["name"].as_str().unwrap();
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: path parameter {name} is not in the path"
                    );
                }
            }
        }
    }
    let mut ids = std::collections::HashSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            assert!(
                ids.insert(id.to_owned()),
                "{method} {path}: operationId {id} is not unique"
            );
        }
    }
    let roles = &spec["components"]["schemas"]["Role"]["enum"];
    assert_eq!(
        roles,
        &serde_json::json!(["admin", "operator", "developer", "viewer"])
    );
    let statuses = &spec["components"]["schemas"]["TaskStatus"]["enum"];
    assert!(
        statuses
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("in_progress"))
    );
}
