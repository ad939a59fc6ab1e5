//! The role × endpoint matrix: every role against every organization endpoint, with the
//! expected outcome computed from the permission matrix in mc-domain (which also
//! generates docs/permissions.md). Non-members get 404 everywhere.

mod common;

use common::start;
use mc_domain::identity::{Permission, Role};
use mc_testkit::api::{Session, TestApi};
use reqwest::Method;
use serde_json::{Value, json};

struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    permission: Permission,
}

/// Things the cases act on, created by the organization's admin beforehand.
struct Fixture {
    board: String,
    task: String,
    doomed_task: String,
    approval: String,
}

async fn fixture(api: &TestApi, admin: &Session) -> Fixture {
    let board = api
        .post(
            Some(&admin.token),
            "/api/v1/boards",
            json!({"name": "Matrix"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tasks = Vec::new();
    for title in ["kept", "doomed"] {
        let t = api
            .post(
                Some(&admin.token),
                &format!("/api/v1/boards/{board}/tasks"),
                json!({"title": title}),
            )
            .await
            .expect(201);
        tasks.push(t.body["id"].as_str().unwrap().to_owned());
    }
    let approval = api
        .post(
            Some(&admin.token),
            "/api/v1/approvals",
            json!({"board_id": board, "title": "matrix"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Fixture {
        board,
        task: tasks[0].clone(),
        doomed_task: tasks[1].clone(),
        approval,
    }
}

fn cases(org: &str, fx: &Fixture, n: usize) -> Vec<Case> {
    let Fixture {
        board,
        task,
        doomed_task,
        approval,
    } = fx;
    let case = |method: Method, path: String, body: Option<Value>, permission| Case {
        method,
        path,
        body,
        permission,
    };
    vec![
        case(
            Method::GET,
            format!("/api/v1/organizations/{org}"),
            None,
            Permission::OrgRead,
        ),
        case(
            Method::PATCH,
            format!("/api/v1/organizations/{org}"),
            Some(json!({"name": format!("Renamed {n}")})),
            Permission::OrgManage,
        ),
        case(
            Method::GET,
            "/api/v1/members".into(),
            None,
            Permission::MembersRead,
        ),
        case(
            Method::POST,
            "/api/v1/members".into(),
            Some(json!({"email": format!("m{n}@matrix.io"), "role": "viewer"})),
            Permission::MembersManage,
        ),
        case(
            Method::GET,
            "/api/v1/api-keys".into(),
            None,
            Permission::ApiKeysManage,
        ),
        case(
            Method::POST,
            "/api/v1/api-keys".into(),
            Some(json!({"name": format!("k{n}"), "role": "viewer"})),
            Permission::ApiKeysManage,
        ),
        case(
            Method::GET,
            "/api/v1/audit-log".into(),
            None,
            Permission::AuditRead,
        ),
        case(
            Method::GET,
            "/api/v1/h5/users".into(),
            None,
            Permission::H5UsersRead,
        ),
        case(
            Method::POST,
            "/api/v1/h5/users".into(),
            Some(json!({"username": format!("h5user{n}"), "password": "password-123"})),
            Permission::H5UsersManage,
        ),
        case(
            Method::GET,
            "/api/v1/boards".into(),
            None,
            Permission::BoardsRead,
        ),
        case(
            Method::POST,
            "/api/v1/boards".into(),
            Some(json!({"name": format!("Board {n}")})),
            Permission::BoardsManage,
        ),
        case(
            Method::PATCH,
            format!("/api/v1/boards/{board}"),
            Some(json!({"objective": "matrix"})),
            Permission::BoardsManage,
        ),
        case(
            Method::POST,
            "/api/v1/board-groups".into(),
            Some(json!({"name": format!("Group {n}")})),
            Permission::BoardsManage,
        ),
        case(
            Method::GET,
            format!("/api/v1/boards/{board}/tasks"),
            None,
            Permission::TasksRead,
        ),
        case(
            Method::POST,
            format!("/api/v1/boards/{board}/tasks"),
            Some(json!({"title": "from the matrix"})),
            Permission::TasksCreate,
        ),
        case(
            Method::PATCH,
            format!("/api/v1/tasks/{task}"),
            Some(json!({"priority": "high"})),
            Permission::TasksUpdate,
        ),
        case(
            Method::POST,
            format!("/api/v1/tasks/{task}/transition"),
            Some(json!({"status": "in_progress"})),
            Permission::TasksExecute,
        ),
        case(
            Method::POST,
            format!("/api/v1/tasks/{task}/comments"),
            Some(json!({"body": "matrix"})),
            Permission::TasksCreate,
        ),
        case(
            Method::GET,
            "/api/v1/tags".into(),
            None,
            Permission::TagsRead,
        ),
        case(
            Method::POST,
            "/api/v1/tags".into(),
            Some(json!({"name": format!("tag-{n}")})),
            Permission::TagsManage,
        ),
        case(
            Method::GET,
            "/api/v1/approvals".into(),
            None,
            Permission::ApprovalsRead,
        ),
        case(
            Method::POST,
            "/api/v1/approvals".into(),
            Some(json!({"board_id": board, "title": "matrix"})),
            Permission::ApprovalsRequest,
        ),
        case(
            Method::POST,
            format!("/api/v1/approvals/{approval}/approve"),
            Some(json!({})),
            Permission::ApprovalsResolve,
        ),
        case(
            Method::GET,
            "/api/v1/events".into(),
            None,
            Permission::EventsRead,
        ),
        // Destructive ones last.
        case(
            Method::DELETE,
            format!("/api/v1/tasks/{doomed_task}"),
            None,
            Permission::TasksDelete,
        ),
        case(
            Method::POST,
            format!("/api/v1/organizations/{org}/suspend"),
            Some(json!({})),
            Permission::OrgManage,
        ),
    ]
}

async fn run_matrix(api: &TestApi, role: Role, admin: &Session, actor: &Session, org: &str) {
    let fx = fixture(api, admin).await;
    for (n, case) in cases(org, &fx, 0).into_iter().enumerate() {
        let resp = api
            .call(
                case.method.clone(),
                &case.path,
                Some(&actor.token),
                case.body.clone(),
                &[("x-org-id", org)],
            )
            .await;
        let allowed = role.can(case.permission);
        if allowed {
            assert!(
                (200..300).contains(&resp.status),
                "{role} {} {} should succeed (case {n}): {} {}",
                case.method,
                case.path,
                resp.status,
                resp.body
            );
        } else {
            assert_eq!(
                resp.status, 403,
                "{role} {} {}: {}",
                case.method, case.path, resp.body
            );
            assert_eq!(resp.code(), "forbidden");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_every_endpoint() {
    let api = start().await;
    for role in Role::ALL {
        let admin = api.org_admin(&format!("matrix-{role}")).await;
        let org = admin.org_id.unwrap().to_string();
        let actor = if *role == Role::Admin {
            admin.clone()
        } else {
            api.member(&admin, role.as_str()).await
        };
        run_matrix(&api, *role, &admin, &actor, &org).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_follow_the_same_matrix() {
    let api = start().await;
    for role in Role::ALL {
        let admin = api.org_admin(&format!("keys-{role}")).await;
        let org = admin.org_id.unwrap().to_string();
        let key = api
            .post(
                Some(&admin.token),
                "/api/v1/api-keys",
                json!({"name": "matrix", "role": role}),
            )
            .await
            .expect(201);
        let actor = Session {
            token: key.body["secret"].as_str().unwrap().to_owned(),
            ..admin.clone()
        };
        run_matrix(&api, *role, &admin, &actor, &org).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_members_get_404_for_everything() {
    let api = start().await;
    let owner = api.org_admin("private").await;
    let stranger = api.org_admin("stranger").await;
    let org = owner.org_id.unwrap().to_string();
    let fx = fixture(&api, &owner).await;
    for case in cases(&org, &fx, 99) {
        let resp = api
            .call(
                case.method.clone(),
                &case.path,
                Some(&stranger.token),
                case.body.clone(),
                &[("x-org-id", &org)],
            )
            .await;
        assert_eq!(
            resp.status, 404,
            "{} {}: {}",
            case.method, case.path, resp.body
        );
    }
    // Path-addressed organization endpoints too, without the header.
    for path in [
        format!("/api/v1/organizations/{org}"),
        format!("/api/v1/organizations/{org}/restore"),
    ] {
        let resp = api
            .call(Method::GET, &path, Some(&stranger.token), None, &[])
            .await;
        assert!(
            resp.status == 404 || resp.status == 405,
            "{path}: {}",
            resp.status
        );
    }
}
