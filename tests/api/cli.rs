//! The `rcsync` binary itself: bootstrap output, idempotent migrate, key management, and
//! one-line configuration errors.

use std::process::{Command, Output};

use serde_json::Value;

use crate::helpers::{in_one_hour, jwt, TestDatabase, JWT_SECRET, TEST_MASTER_KEY};

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

/// `rcsync` with nothing but `PATH`, a quiet log and `env`, run in the test's directory (so a
/// setting that is ignored cannot touch a database elsewhere).
fn bare_rcsync(db: &TestDatabase, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rcsync"))
        .args(args)
        .current_dir(db.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("run rcsync")
}

/// Asserts a failed start with one `error: …` line, and returns it.
fn one_error_line(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure");
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[tokio::test]
async fn help_says_secrets_come_from_the_environment_or_files_never_flags() {
    let db = TestDatabase::create().await;
    let output = bare_rcsync(&db, &["--help"], &[]);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "RCSYNC_MASTER_KEY_FILE",
        "RCSYNC_JWT_SECRET_FILE",
        "RCSYNC_DATABASE_URL_FILE",
        "never from a flag",
        "--database-url",
    ] {
        assert!(help.contains(expected), "{expected} missing from:\n{help}");
    }
    for removed in ["--master-key", "--jwt-secret"] {
        assert!(!help.contains(removed), "{removed} still offered:\n{help}");
    }
}

#[tokio::test]
async fn secret_flag_values_are_refused_with_one_line() {
    let db = TestDatabase::create().await;
    let refused: [(&[&str], &str); 3] = [
        (
            &["--master-key", TEST_MASTER_KEY, "migrate"],
            "RCSYNC_MASTER_KEY_FILE",
        ),
        (
            &[
                "--jwt-secret",
                "a-secret-of-more-than-thirty-two-bytes",
                "migrate",
            ],
            "RCSYNC_JWT_SECRET_FILE",
        ),
        (
            &[
                "--database-url",
                "postgres://rcsync:hunter2@127.0.0.1/none",
                "migrate",
            ],
            "RCSYNC_DATABASE_URL_FILE",
        ),
    ];
    for (args, remedy) in refused {
        let line = one_error_line(&bare_rcsync(&db, args, &[]));
        assert!(line.contains(args[0]) && line.contains(remedy), "{line}");
        assert!(
            !line.contains("hunter2") && !line.contains(TEST_MASTER_KEY),
            "{line}"
        );
    }
    assert!(
        !db.dir.path().join("rcsync.db").exists(),
        "nothing ran with a refused flag"
    );
    // A URL without a password is fine as a flag.
    let sqlite = format!(
        "sqlite://{}?mode=rwc",
        db.dir.path().join("flag.db").display()
    );
    let output = bare_rcsync(&db, &["--database-url", &sqlite, "migrate"], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn secrets_are_read_from_the_files_their_file_variables_name() {
    let db = TestDatabase::create().await;
    let secrets = db.dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    let write = |name: &str, value: &str| {
        let path = secrets.join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        path.display().to_string()
    };
    let env_files = [
        ("RCSYNC_DATABASE_URL_FILE", write("database_url", &db.url)),
        (
            "RCSYNC_MASTER_KEY_FILE",
            write("master_key", TEST_MASTER_KEY),
        ),
        ("RCSYNC_JWT_SECRET_FILE", write("jwt_secret", JWT_SECRET)),
    ];
    let env: Vec<(&str, &str)> = env_files.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let output = bare_rcsync(
        &db,
        &["bootstrap", "--team-name", "Files", "--project-name", "App"],
        &env,
    );
    let created = stdout_json(&output);
    assert!(
        !db.dir.path().join("rcsync.key").exists(),
        "the master key came from its file, none was generated"
    );

    let fake = fake_revenuecat::FakeRevenueCat::start(Default::default()).unwrap();
    let (_server, base) = crate::process::start_serve(&db, &fake, 1, &env).await;
    let token = jwt(
        serde_json::json!([{"id": created["team_id"], "role": "member"}]),
        Some(in_one_hour()),
    );
    let response = reqwest::Client::new()
        .get(format!(
            "{base}/v1/projects/{}/integrations",
            created["project_id"].as_str().unwrap()
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "the JWT secret and the database came from their files"
    );
}

#[tokio::test]
async fn bad_secrets_fail_at_start_with_one_line_naming_the_variable() {
    let db = TestDatabase::create().await;
    let url = db.url.as_str();
    // (environment, variable named, reason given)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 4] = [
        (
            &[("RCSYNC_JWT_SECRET", "only-26-bytes-0123456789ab")],
            "RCSYNC_JWT_SECRET",
            "at least 32 bytes",
        ),
        (
            &[("RCSYNC_JWT_SECRET_FILE", "/nonexistent/jwt_secret")],
            "RCSYNC_JWT_SECRET_FILE",
            "cannot read /nonexistent/jwt_secret",
        ),
        (
            &[("RCSYNC_MASTER_KEY_FILE", "/nonexistent/master_key")],
            "RCSYNC_MASTER_KEY_FILE",
            "cannot read /nonexistent/master_key",
        ),
        (
            &[
                ("RCSYNC_MASTER_KEY", TEST_MASTER_KEY),
                ("RCSYNC_MASTER_KEY_FILE", "/run/secrets/master_key"),
            ],
            "RCSYNC_MASTER_KEY_FILE",
            "not both",
        ),
    ];
    for (env, variable, reason) in cases {
        let mut env = env.to_vec();
        env.push(("RCSYNC_DATABASE_URL", url));
        let line = one_error_line(&bare_rcsync(&db, &["migrate"], &env));
        assert!(
            line.starts_with(&format!("error: {variable}: ")) && line.contains(reason),
            "{line}"
        );
    }
}

/// Issue 18 item 7: `rcsync keys revoke` run against the database of a running server takes
/// effect on that server: the key that answered 200 answers 401 on its next request.
#[tokio::test]
async fn a_key_revoked_with_the_cli_is_refused_by_the_running_server() {
    let db = TestDatabase::create().await;
    let created = stdout_json(&rcsync(
        &db,
        &[
            "bootstrap",
            "--team-name",
            "Revoke",
            "--project-name",
            "App",
        ],
    ));
    let key = created["api_key"].as_str().unwrap();
    let team_id = created["team_id"].as_str().unwrap();
    let project_id = created["project_id"].as_str().unwrap();
    let fake = fake_revenuecat::FakeRevenueCat::start(Default::default()).unwrap();
    let (_server, base) = crate::process::start_server(&db, &fake, 1).await;
    let client = reqwest::Client::new();
    let users = format!("{base}/v1/projects/{project_id}/users?limit=1");
    let status = |response: reqwest::Response| response.status().as_u16();
    assert_eq!(
        status(client.get(&users).bearer_auth(key).send().await.unwrap()),
        200,
        "the bootstrap key works before the revoke"
    );

    let listed = stdout_json(&rcsync(&db, &["keys", "list", "--team-id", team_id]));
    let keys = listed["api_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{listed}");
    let id = keys[0]["id"].as_str().unwrap();
    let revoked = stdout_json(&rcsync(&db, &["keys", "revoke", id]));
    assert_eq!(revoked["revoked"], true, "{revoked}");

    let response = client.get(&users).bearer_auth(key).send().await.unwrap();
    assert_eq!(status(response), 401, "a revoked key is refused");
    // Any other route the key could reach, too.
    let integrations = format!("{base}/v1/projects/{project_id}/integrations");
    let (code, body) = crate::helpers::status_json(
        client
            .get(&integrations)
            .bearer_auth(key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 401, "{body}");
    assert!(body["error"].is_string(), "{body}");
}
