//! Least privilege and human confirmation end to end through the real binary (issue 4): the
//! baseline Cedar policy decides every call; a destructive call is forwarded only after a person
//! confirms it — by elicitation with a TypeScript SDK client that declares it (accepted: done;
//! declined or unanswered: refused), or, for a client that cannot be asked, through the approval
//! queue and `portcullis approvals approve|deny`; listings differ by role; calls across
//! environments are refused.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{CLIENT_TIMEOUT, Clients, Gateway, run_bounded};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn cli(args: &[&str], data: &Path, stdin: Option<&str>) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg("--data-dir").arg(data);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(s) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "portcullis {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

struct Setup {
    gw: Gateway,
    data: std::path::PathBuf,
    c: Clients,
}

impl Setup {
    fn start(config: &str) -> Setup {
        let c = Clients::locate();
        let gw = Gateway::start_authenticated(config, |_| {});
        let data = gw.dir.path().join("data");
        Setup { gw, data, c }
    }

    fn user(&self, name: &str, roles: &[&str]) {
        let mut args = vec!["users", "add", name, "--password-stdin"];
        for r in roles {
            args.push("--role");
            args.push(r);
        }
        cli(&args, &self.data, Some("a-long-enough-password\n"));
    }

    fn token(&self, user: &str, path: &str, scope: &str, env: &str) -> String {
        let resource = self.gw.url(path);
        cli(
            &[
                "tokens",
                "issue",
                "--user",
                user,
                "--client",
                "e2e",
                "--resource",
                &resource,
                "--scope",
                scope,
                "--environment",
                env,
            ],
            &self.data,
            None,
        )
        .trim()
        .to_string()
    }

    /// Runs the SDK client once; its one JSON line.
    fn client(
        &self,
        path: &str,
        token: &str,
        mode: &str,
        tool: &str,
        args: &str,
    ) -> serde_json::Value {
        let mut cmd = Command::new(&self.c.node22);
        cmd.arg(&self.c.tsx)
            .arg("confirm-client.ts")
            .args([&self.gw.url(path), token, mode, tool, args])
            .current_dir(&self.c.dir);
        let run = run_bounded(&format!("confirm-client {mode}"), cmd, CLIENT_TIMEOUT);
        run.assert_ok(&self.gw.proc.stderr_tail());
        serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "confirm-client printed no JSON ({e}): {}\n{}",
                run.stdout, run.stderr
            )
        })
    }
}

const DEMO: &str = "policy:\n  confirmation:\n    elicitation_timeout_secs: 2\n    approval_timeout_secs: 60\nconnectors:\n  crm:\n    type: demo\n    tools:\n      export_customers:\n        bulk: true\n";

#[test]
fn a_destructive_call_is_forwarded_only_after_the_person_at_the_client_confirms_it() {
    let s = Setup::start(DEMO);
    s.user("alice", &["end_user"]);
    let t = s.token("alice", "/mcp/crm", "crm:admin", "dev");

    // Declined: refused by the gateway (-32007), so the connector never saw it.
    let v = s.client(
        "/mcp/crm",
        &t,
        "decline",
        "delete_customer",
        r#"{"id":"cus_0003"}"#,
    );
    assert_eq!(v["elicitations"], 1, "{v}");
    let m = v["message"].as_str().unwrap();
    assert!(
        m.contains("delete_customer") && m.contains("cus_0003") && m.contains("crm"),
        "the person must see the action and its arguments: {m}"
    );
    let e = v["error"].as_str().unwrap_or_default();
    assert!(
        e.contains("-32007") && e.contains("was not confirmed"),
        "{v}"
    );

    // Never answered: denied when the wait is over.
    let v = s.client(
        "/mcp/crm",
        &t,
        "ignore",
        "delete_customer",
        r#"{"id":"cus_0003"}"#,
    );
    let e = v["error"].as_str().unwrap_or_default();
    assert!(e.contains("not confirmed in time"), "{v}");

    // Accepted: forwarded, once.
    let v = s.client(
        "/mcp/crm",
        &t,
        "accept",
        "delete_customer",
        r#"{"id":"cus_0003"}"#,
    );
    assert_eq!(v["elicitations"], 1, "{v}");
    let text = v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains("\"deleted\"") && text.contains("cus_0003"),
        "{v}"
    );

    // A read-only tool needs no confirmation.
    let v = s.client(
        "/mcp/crm",
        &t,
        "accept",
        "get_customer",
        r#"{"id":"cus_0005"}"#,
    );
    assert_eq!(v["elicitations"], 0, "{v}");
    assert!(v.get("result").is_some(), "{v}");

    // Who confirmed is recorded with the call (HC-3).
    let out = cli(&["audit", "export", "--format", "jsonl"], &s.data, None);
    assert!(
        out.lines()
            .any(|l| l.contains("confirmed_by:elicitation:alice") && l.contains("delete_customer")),
        "no audit event names who confirmed:\n{out}"
    );
    assert!(out.contains("confirmation_refused") && out.contains("confirmation_timeout"));
}

/// Polls `portcullis approvals list` (bounded) until a call is waiting; returns its id.
fn waiting_approval(s: &Setup) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = cli(&["approvals", "list", "--json"], &s.data, None);
        if let Some(line) = out.lines().next() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            return v["id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no call was parked for approval");
        // A poll interval, not a synchronisation: the loop ends as soon as the entry exists.
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_client_without_elicitation_waits_for_an_approver_on_the_cli() {
    let s = Setup::start(DEMO);
    s.user("alice", &["end_user"]);
    let t = s.token("alice", "/mcp/crm", "crm:admin", "dev");
    for (decision, expect) in [("deny", "denied by carol"), ("approve", "\"deleted\"")] {
        let (s2, t2) = (&s, t.clone());
        std::thread::scope(|scope| {
            let call = scope.spawn(move || {
                s2.client(
                    "/mcp/crm",
                    &t2,
                    "none",
                    "delete_customer",
                    r#"{"id":"cus_0009"}"#,
                )
            });
            let id = waiting_approval(s2);
            let listed = cli(&["approvals", "list"], &s2.data, None);
            assert!(
                listed.contains("delete_customer") && listed.contains("cus_0009"),
                "{listed}"
            );
            let out = cli(
                &[
                    "approvals",
                    decision,
                    &id,
                    "--by",
                    "carol",
                    "--reason",
                    "ticket 42",
                ],
                &s2.data,
                None,
            );
            assert!(out.contains(&id), "{out}");
            let v = call.join().unwrap();
            assert_eq!(v["elicitations"], 0);
            assert!(v.to_string().contains(expect), "{decision}: {v}");
            // Decided once: a second decision is refused.
            let again = Command::new(BIN)
                .args(["approvals", "approve", &id, "--data-dir"])
                .arg(&s2.data)
                .output()
                .unwrap();
            assert!(!again.status.success());
        });
    }
}

#[test]
fn listings_differ_by_role() {
    let s = Setup::start(DEMO);
    s.user("alice", &["end_user"]);
    s.user("stella", &["data_steward"]);
    let alice = s.token("alice", "/mcp/crm", "crm:admin", "dev");
    let stella = s.token("stella", "/mcp/crm", "crm:admin", "dev");
    let a = s.client("/mcp/crm", &alice, "list", "", "{}");
    let b = s.client("/mcp/crm", &stella, "list", "", "{}");
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    };
    let (a, b) = (names(&a), names(&b));
    assert!(
        a.contains(&"search_customers".into()) && !a.contains(&"export_customers".into()),
        "{a:?}"
    );
    assert!(b.contains(&"export_customers".into()), "{b:?}");
    // And the refused bulk export is refused when called anyway.
    let v = s.client("/mcp/crm", &alice, "accept", "export_customers", "{}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("refused by policy"),
        "{v}"
    );
}

#[test]
fn calls_across_environments_are_denied() {
    let s = Setup::start(
        "environment: dev\nconnectors:\n  crm:\n    type: demo\n  crmprod:\n    type: demo\n    environment: prod\n",
    );
    s.user("alice", &["end_user"]);
    let search = |path: &str, scope: &str, env: &str| {
        let t = s.token("alice", path, scope, env);
        s.client(path, &t, "accept", "search_customers", r#"{"query":"a"}"#)
    };
    let error = |v: &serde_json::Value| v["error"].as_str().unwrap_or_default().to_string();
    // A dev token on a prod connector: refused by policy.
    let v = search("/mcp/crmprod", "crmprod:read", "dev");
    assert!(error(&v).contains("refused by policy"), "{v}");
    // A prod token on this dev gateway: refused before anything else.
    let v = search("/mcp/crm", "crm:read", "prod");
    assert!(error(&v).contains("another environment"), "{v}");
    // The same user with a dev token on the dev connector: allowed.
    let v = search("/mcp/crm", "crm:read", "dev");
    assert!(v.get("result").is_some(), "{v}");
}

#[test]
fn an_invalid_policy_file_stops_start_up_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("bad.cedar");
    std::fs::write(
        &policy,
        "@id(\"x\")\npermit (principal, action, resource) when { resource.no_such_attribute };\n",
    )
    .unwrap();
    let config = dir.path().join("portcullis.yaml");
    std::fs::write(
        &config,
        format!(
            "policy:\n  files: [{:?}]\nconnectors:\n  crm:\n    type: demo\n",
            policy.display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.cedar:2:"),
        "no file:line in the error: {err}"
    );
    assert!(err.contains("no_such_attribute"), "{err}");
}

/// A one-shot HTTP receiver on loopback: the body of the first POST it gets.
fn webhook_receiver() -> (String, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Read, Write};
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).unwrap();
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        String::from_utf8(body).unwrap()
    });
    (url, handle)
}

#[test]
fn the_approval_webhook_is_told_and_the_shadow_set_is_recorded_not_enforced() {
    let (hook, received) = webhook_receiver();
    let dir = tempfile::tempdir().unwrap();
    let shadow = dir.path().join("next.cedar");
    std::fs::write(
        &shadow,
        "@id(\"no-search\")\n@reason(\"trying: nobody searches\")\nforbid (principal, action == Portcullis::Action::\"call_tool\", resource) when { resource.name == \"search_customers\" };\n",
    )
    .unwrap();
    let s = Setup::start(&format!(
        "policy:\n  shadow: [{:?}]\n  confirmation:\n    approval_timeout_secs: 60\n    approval_webhook: {hook}\nconnectors:\n  crm:\n    type: demo\n",
        shadow.display().to_string()
    ));
    s.user("alice", &["end_user"]);
    let t = s.token("alice", "/mcp/crm", "crm:admin", "dev");
    // The shadow set would forbid the search; the enforced baseline allows it.
    let v = s.client(
        "/mcp/crm",
        &t,
        "none",
        "search_customers",
        r#"{"query":"a"}"#,
    );
    assert!(v.get("result").is_some(), "{v}");
    let out = cli(&["audit", "export", "--format", "jsonl"], &s.data, None);
    assert!(
        out.lines()
            .any(|l| l.contains("search_customers") && l.contains("shadow:deny")),
        "the shadow decision is not recorded:\n{out}"
    );
    // A parked call is announced to the webhook, then denied on the CLI.
    std::thread::scope(|scope| {
        let call = scope.spawn(|| {
            s.client(
                "/mcp/crm",
                &t,
                "none",
                "delete_customer",
                r#"{"id":"cus_0002"}"#,
            )
        });
        let id = waiting_approval(&s);
        let body: serde_json::Value = serde_json::from_str(&received.join().unwrap()).unwrap();
        assert_eq!(body["approval"], id.as_str(), "{body}");
        assert!(
            body["summary"].as_str().unwrap().contains("cus_0002"),
            "{body}"
        );
        cli(&["approvals", "deny", &id, "--by", "dave"], &s.data, None);
        let v = call.join().unwrap();
        assert!(v.to_string().contains("denied by dave"), "{v}");
    });
}
