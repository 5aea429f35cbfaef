//! The `rcsync` binary itself: bootstrap output, idempotent migrate, key management, and
//! one-line configuration errors.

use std::process::{Command, Output};

use serde_json::Value;

use crate::helpers::{TestDatabase, TEST_MASTER_KEY};

fn rcsync(db: &TestDatabase, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rcsync"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RCSYNC_DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn");
    if db.is_postgres {
        command.env("RCSYNC_MASTER_KEY", TEST_MASTER_KEY);
    }
    command.output().expect("run rcsync")
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(
        stdout.lines().count(),
        1,
        "exactly one line on stdout: {stdout}"
    );
    serde_json::from_str(&stdout).expect("stdout is one JSON object")
}

#[tokio::test]
async fn bootstrap_prints_one_json_object_with_a_working_key() {
    let db = TestDatabase::create().await;
    let output = rcsync(
        &db,
        &[
            "bootstrap",
            "--team-name",
            "Acme",
            "--project-name",
            "App",
            "--project-id",
            "proj-acme",
        ],
    );
    let json = stdout_json(&output);
    assert_eq!(json.as_object().unwrap().len(), 3);
    assert_eq!(json["project_id"], "proj-acme");
    let key = json["api_key"].as_str().unwrap();
    assert!(key.starts_with("rcs_") && key.len() == 44);
    let keys = rcsync(
        &db,
        &[
            "keys",
            "list",
            "--team-id",
            json["team_id"].as_str().unwrap(),
        ],
    );
    let listed = stdout_json(&keys);
    let first = &listed["api_keys"][0];
    assert_eq!(first["permissions"].as_array().unwrap().len(), 6);
    assert!(
        !String::from_utf8_lossy(&keys.stdout).contains(key),
        "list never shows keys"
    );

    let again = rcsync(
        &db,
        &[
            "bootstrap",
            "--team-name",
            "Acme",
            "--project-name",
            "App",
            "--project-id",
            "proj-acme",
        ],
    );
    assert!(!again.status.success(), "duplicate explicit id is refused");
    assert!(again.stdout.is_empty());
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let db = TestDatabase::create().await;
    for _ in 0..3 {
        let output = rcsync(&db, &["migrate"]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test]
async fn teams_projects_and_keys_commands() {
    let db = TestDatabase::create().await;
    let team = stdout_json(&rcsync(
        &db,
        &["teams", "create", "--name", "T", "--id", "team-1"],
    ));
    assert_eq!(team["id"], "team-1");
    let project = stdout_json(&rcsync(
        &db,
        &["projects", "create", "--team-id", "team-1", "--name", "P"],
    ));
    assert_eq!(project["team_id"], "team-1");
    let missing = rcsync(
        &db,
        &["projects", "create", "--team-id", "nope", "--name", "P"],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("team not found"));

    let key = stdout_json(&rcsync(
        &db,
        &[
            "keys",
            "create",
            "--team-id",
            "team-1",
            "--permissions",
            "users:read,jobs:read",
        ],
    ));
    assert_eq!(
        key["permissions"],
        serde_json::json!(["jobs:read", "users:read"])
    );
    let bad = rcsync(
        &db,
        &[
            "keys",
            "create",
            "--team-id",
            "team-1",
            "--permissions",
            "users:delete",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown permission"));

    let id = key["id"].as_str().unwrap();
    let revoked = stdout_json(&rcsync(&db, &["keys", "revoke", id]));
    assert_eq!(revoked["revoked"], true);
    assert!(
        !rcsync(&db, &["keys", "revoke", id]).status.success(),
        "already revoked"
    );
    let listed = stdout_json(&rcsync(&db, &["keys", "list", "--team-id", "team-1"]));
    assert!(listed["api_keys"][0]["revoked_at"].is_string());
}

#[tokio::test]
async fn bad_configuration_fails_with_one_line_naming_the_variable() {
    let db = TestDatabase::create().await;
    let cases: [(&str, &str, &str); 4] = [
        (
            "RCSYNC_DATABASE_URL",
            "mysql://localhost/x",
            "RCSYNC_DATABASE_URL",
        ),
        ("RCSYNC_BIND", "not-an-address", "RCSYNC_BIND"),
        ("RCSYNC_MASTER_KEY", "dG9vIHNob3J0", "RCSYNC_MASTER_KEY"),
        ("RCSYNC_LOG_FORMAT", "xml", "RCSYNC_LOG_FORMAT"),
    ];
    for (variable, value, named) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_rcsync"))
            .arg("migrate")
            .env_clear()
            .env("RCSYNC_DATABASE_URL", &db.url)
            .env(variable, value)
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(named),
            "{stderr}"
        );
    }
    let output = Command::new(env!("CARGO_BIN_EXE_rcsync"))
        .arg("migrate")
        .env_clear()
        .env("RCSYNC_DATABASE_URL", "postgres://127.0.0.1/none")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("RCSYNC_MASTER_KEY") && stderr.contains("required"),
        "{stderr}"
    );
}
