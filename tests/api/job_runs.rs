//! The jobs API (DESIGN §2): get, list with every filter and a stable cursor, cancel, and who
//! may see and do what.

use std::collections::BTreeSet;
use std::sync::Arc;

use rcsync::clock::{Clock, ManualClock, SharedClock};
use rcsync::store::job_runs::{CreateJobRun, NewJobRun, REVENUECAT_SYNC};
use rcsync::store::Store;
use serde_json::{json, Value};

use crate::helpers::{in_one_hour, jwt, spawn_api_only_app, status_json, TestApp};

/// A second handle on the app's database whose clock stands still: runs it creates share
/// their `created_at`, the hard case for a cursor.
async fn frozen_store(app: &TestApp) -> (Store, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let mut raw = app.db.raw_settings();
    raw.master_key = Some(crate::helpers::TEST_MASTER_KEY.into());
    let settings = raw.resolve().unwrap();
    let store = rcsync::startup::open_store_with_clock(&settings, SharedClock::new(clock.clone()))
        .await
        .unwrap();
    (store, clock)
}

async fn create_run(store: &Store, team_id: &str, project_id: &str) -> String {
    let params = json!({"import_missing": false});
    match store
        .create_job_run(NewJobRun {
            job_type: REVENUECAT_SYNC,
            team_id,
            project_id,
            triggered_by: "test",
            params: &params,
            total: 1,
        })
        .await
        .unwrap()
    {
        CreateJobRun::Created(run) => run.id,
        CreateJobRun::AlreadyActive { .. } => panic!("a run is active"),
    }
}

fn list_url(app: &TestApp, query: &str) -> String {
    app.url(&format!("/v1/teams/{}/jobs{query}", app.team_id))
}

async fn list(app: &TestApp, query: &str) -> (u16, Value) {
    status_json(app.get(&list_url(app, query)).send().await.unwrap()).await
}

fn ids(page: &Value) -> Vec<String> {
    page["job_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["id"].as_str().unwrap().to_owned())
        .collect()
}

/// 5 projects × 5 runs, many sharing a timestamp: paging by 4 returns each exactly once, newest
/// first; every filter narrows as documented; bad filters are 400.
#[tokio::test]
async fn the_list_filters_and_pages_without_gaps_or_repeats() {
    let app = spawn_api_only_app().await;
    let (store, clock) = frozen_store(&app).await;
    let mut projects = Vec::new();
    for p in 0..5 {
        let project_id = format!("proj-{p}");
        store
            .create_project(&project_id, &app.team_id, "Jobs project")
            .await
            .unwrap();
        projects.push(project_id);
    }
    let start = clock.now_ms();
    let mut all = Vec::new();
    for round in 0..5 {
        for project_id in &projects {
            let run_id = create_run(&store, &app.team_id, project_id).await;
            if round < 4 {
                // Ends it, so the project may get another.
                store.cancel_job_run(&run_id).await.unwrap();
            }
            all.push(run_id);
        }
        // Rounds 0-1 share one timestamp, later rounds move on.
        if round >= 1 {
            clock.advance(std::time::Duration::from_millis(10));
        }
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=4&cursor={c}"),
            None => "?limit=4".to_owned(),
        };
        let (status, page) = list(&app, &query).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        if page["has_more"] == false {
            assert!(page["cursor"].is_null());
            break;
        }
        cursor = Some(page["cursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen.len(), 25, "{seen:?}");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 25, "no repeats");
    assert_eq!(
        seen.iter().collect::<BTreeSet<_>>(),
        all.iter().collect(),
        "no gaps"
    );

    let (_, pending) = list(&app, "?status=pending").await;
    assert_eq!(ids(&pending).len(), 5);
    assert!(pending["job_runs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "pending"));
    let (_, one_project) = list(&app, &format!("?project_id={}", projects[2])).await;
    assert_eq!(ids(&one_project).len(), 5);
    let (_, typed) = list(&app, "?job_type=revenuecat_sync&limit=200").await;
    assert_eq!(ids(&typed).len(), 25);
    let iso = |ms: i64| rcsync::timestamp::iso_ms(ms).replace('+', "%2B");
    let (_, early) = list(&app, &format!("?until={}", iso(start + 1))).await;
    assert_eq!(ids(&early).len(), 10, "rounds 0 and 1 share the start time");
    let (_, late) = list(&app, &format!("?since={}&limit=200", iso(start + 10))).await;
    assert_eq!(ids(&late).len(), 15);
    // Newest first; runs of one instant by id, descending.
    let (_, newest) = list(&app, "?limit=1").await;
    assert_eq!(
        newest["job_runs"][0]["id"],
        json!(all[20..].iter().max().unwrap())
    );

    for bad in [
        "?limit=0",
        "?limit=201",
        "?status=done",
        "?job_type=other",
        "?since=yesterday",
        "?cursor=%21%21",
        "?colour=blue",
    ] {
        let (status, body) = list(&app, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

/// Another team's run is a 404 like a missing one; `jobs:read` reads, `jobs:write` cancels;
/// JWT members read, admins and owners cancel.
#[tokio::test]
async fn jobs_are_team_scoped_and_need_their_permissions() {
    let app = spawn_api_only_app().await;
    let run_id = create_run(&app.store, &app.team_id, &app.project_id).await;
    let get_url = app.url(&format!("/v1/teams/{}/jobs/{run_id}", app.team_id));
    let cancel_url = format!("{get_url}/cancel");
    let client = &app.client;

    let (status, job) = status_json(app.get(&get_url).send().await.unwrap()).await;
    assert_eq!(status, 200, "{job}");
    for field in [
        "id",
        "job_type",
        "status",
        "team_id",
        "project_id",
        "triggered_by",
        "params",
        "progress",
        "result",
        "error",
        "started_at",
        "completed_at",
        "created_at",
    ] {
        assert!(job.get(field).is_some(), "{field} in {job}");
    }
    assert_eq!(
        job["progress"],
        json!({"processed": 0, "total": 1, "message": null})
    );

    let (other_team, _) = app.create_other_team().await;
    let other_key = app
        .create_api_key(&other_team, &rcsync::domain::permission::Permission::ALL)
        .await;
    let status = client
        .get(&get_url)
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
    let missing = app.url(&format!("/v1/teams/{}/jobs/no-such-run", app.team_id));
    assert_eq!(app.get(&missing).send().await.unwrap().status(), 404);
    let other_teams_url = app.url(&format!("/v1/teams/{other_team}/jobs/{run_id}"));
    assert_eq!(
        app.get(&other_teams_url).send().await.unwrap().status(),
        404
    );

    use rcsync::domain::permission::Permission;
    let no_jobs = app
        .create_api_key(&app.team_id, &[Permission::IntegrationsRead])
        .await;
    let (status, body) = status_json(
        client
            .get(&get_url)
            .bearer_auth(&no_jobs)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("Missing permission: jobs:read"))
    );
    let read_only = app
        .create_api_key(&app.team_id, &[Permission::JobsRead])
        .await;
    let status = client
        .post(&cancel_url)
        .bearer_auth(&read_only)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403);

    let member = jwt(
        json!([{"id": app.team_id, "role": "member"}]),
        Some(in_one_hour()),
    );
    let admin = jwt(
        json!([{"id": app.team_id, "role": "admin"}]),
        Some(in_one_hour()),
    );
    assert_eq!(
        client
            .get(&get_url)
            .bearer_auth(&member)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(app.url(&format!("/v1/teams/{}/jobs", app.team_id)))
            .bearer_auth(&member)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .post(&cancel_url)
            .bearer_auth(&member)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let (status, cancelled) = status_json(
        client
            .post(&cancel_url)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["completed_at"].is_string());
    // The trigger itself is integrations:write (seed 001): a member cannot start a run.
    let trigger = app.project_url("/integrations/revenuecat/sync");
    assert_eq!(
        client
            .post(&trigger)
            .bearer_auth(&member)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}
