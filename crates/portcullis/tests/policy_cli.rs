//! `portcullis policy`, run as a binary (AZ-6).

use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out: Output = bin().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn schema_prints_the_published_schema() {
    let (code, out, _) = run(&["policy", "schema"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("namespace Portcullis"), "{out}");
    assert!(out.contains("action call_tool"), "{out}");
}

#[test]
fn check_accepts_the_baseline_and_refuses_a_bad_file_with_its_position() {
    let (code, out, err) = run(&["policy", "check"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("<baseline>: valid"), "{out}");

    let d = tempfile::tempdir().unwrap();
    let good = d.path().join("good.cedar");
    std::fs::write(&good, "@id(\"ok\")\npermit (principal in Portcullis::Role::\"end_user\", action == Portcullis::Action::\"list\", resource);\n").unwrap();
    let (code, out, err) = run(&["policy", "check", "--with-baseline", good.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("good.cedar"), "{out}");

    let bad = d.path().join("bad.cedar");
    std::fs::write(&bad, "@id(\"ok\")\npermit (principal, action, resource);\n@id(\"typo\")\npermit (principal, action == Portcullis::Action::\"call_tool\", resource)\n  when { resource.destructiv };\n").unwrap();
    let (code, _, err) = run(&["policy", "check", bad.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("bad.cedar:5:"), "{err}");
    assert!(err.contains("typo"), "{err}");

    let (code, _, err) = run(&[
        "policy",
        "check",
        d.path().join("missing.cedar").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("missing.cedar"), "{err}");
}

#[test]
fn explain_shows_verdict_and_determining_policies() {
    let (code, out, err) = run(&[
        "policy",
        "explain",
        "--principal",
        "User::\"alice\"",
        "--roles",
        "end_user",
        "--scopes",
        "crm:admin",
        "--action",
        "call_tool",
        "--resource",
        "crm/delete_customer",
        "--annotations",
        "destructive",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("verdict: confirm"), "{out}");
    assert!(out.contains("confirm-destructive"), "{out}");
    assert!(out.contains("a human must confirm"), "{out}");
    assert!(out.contains("<baseline>:"), "{out}");

    let (code, out, err) = run(&[
        "policy",
        "explain",
        "--principal",
        "alice",
        "--roles",
        "end_user",
        "--scopes",
        "crm:admin",
        "--action",
        "call_tool",
        "--resource",
        "crm/delete_customer",
        "--annotations",
        "destructive",
        "--context",
        r#"{"confirmed": true}"#,
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "allow", "{out}");
    assert_eq!(v["reasons"][0]["policy"], "use-connectors", "{out}");

    let (code, out, _) = run(&[
        "policy",
        "explain",
        "--principal",
        "alice",
        "--roles",
        "end_user",
        "--scopes",
        "crm:read",
        "--action",
        "call_tool",
        "--resource",
        "crm/search_customers",
        "--annotations",
        "read_only",
        "--context",
        r#"{"token_environment": "dev"}"#,
    ]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("verdict: deny") && out.contains("environment-mismatch"),
        "{out}"
    );
}

#[test]
fn explain_refuses_bad_input_naming_it() {
    for (args, what) in [
        (vec!["--context", r#"{"colour": 1}"#], "--context"),
        (vec!["--annotations", "dangerous"], "--annotations"),
        (vec!["--environment", "staging"], "--environment"),
    ] {
        let mut all = vec![
            "policy",
            "explain",
            "--principal",
            "alice",
            "--action",
            "call_tool",
            "--resource",
            "crm/t",
        ];
        all.extend(args);
        let (code, _, err) = run(&all);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(what), "{what}: {err}");
    }
    let (code, _, err) = run(&[
        "policy",
        "explain",
        "--principal",
        "Client::\"x\"",
        "--action",
        "list",
        "--resource",
        "crm",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--principal"), "{err}");
}

#[test]
fn test_runs_the_baseline_file_and_reports_mismatches() {
    let baseline = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../portcullis-policy/policies/baseline.tests.yaml"
    );
    let (code, out, err) = run(&["policy", "test", baseline]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(" 0 failed"), "{out}");

    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("t.yaml");
    std::fs::write(
        &f,
        "connectors:\n  crm:\n    tools:\n      search: { read_only: true }\ncases:\n  - name: passes\n    principal: { subject: bob, roles: [end_user] }\n    action: call_tool\n    resource: crm/search\n    context: { scopes: [\"crm:read\"] }\n    expect: allow\n  - name: wrong on purpose\n    principal: { subject: bob }\n    action: call_tool\n    resource: crm/search\n    expect: allow\n",
    )
    .unwrap();
    let (code, out, _) = run(&["policy", "test", f.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("t.yaml:12: case `wrong on purpose`: expected allow, got deny"),
        "{out}"
    );
    assert!(out.contains("1 passed, 1 failed"), "{out}");

    std::fs::write(&f, "cases:\n  - name: x\n    expect: sometimes\n").unwrap();
    let (code, _, err) = run(&["policy", "test", f.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("t.yaml:"), "{err}");
}

#[test]
fn test_uses_other_policies_when_named() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("open.cedar");
    std::fs::write(&p, "@id(\"open\") permit (principal, action, resource);\n").unwrap();
    let f = d.path().join("t.yaml");
    std::fs::write(
        &f,
        "connectors:\n  crm:\n    tools:\n      search: { read_only: true }\ncases:\n  - name: anyone\n    principal: { subject: bob }\n    action: call_tool\n    resource: crm/search\n    expect: allow\n    policies: [open]\n",
    )
    .unwrap();
    let (code, out, err) = run(&[
        "policy",
        "test",
        f.to_str().unwrap(),
        "--policies",
        p.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
}

#[test]
fn explain_reports_a_shadow_set_without_enforcing_it() {
    let d = tempfile::tempdir().unwrap();
    let shadow = d.path().join("new.cedar");
    std::fs::write(
        &shadow,
        "@id(\"freeze\") forbid (principal, action, resource);\n@id(\"all\") permit (principal, action, resource);\n",
    )
    .unwrap();
    let (code, out, err) = run(&[
        "policy",
        "explain",
        "--principal",
        "bob",
        "--roles",
        "end_user",
        "--scopes",
        "crm:read",
        "--action",
        "call_tool",
        "--resource",
        "crm/search_customers",
        "--annotations",
        "read_only",
        "--context",
        r#"{"at": "2026-12-01T10:00:00Z"}"#,
        "--shadow",
        shadow.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("verdict: allow"), "{out}");
    assert!(out.contains("shadow: deny (freeze)"), "{out}");
}
