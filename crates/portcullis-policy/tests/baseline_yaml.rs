//! The baseline's policy test file (AZ-6), run as a Rust test: every case must get its verdict.

use portcullis_policy::PolicyEngine;
use portcullis_policy::testcases::TestFile;

#[test]
fn baseline_policy_tests_pass() {
    let text = include_str!("../policies/baseline.tests.yaml");
    let file = TestFile::parse("baseline.tests.yaml", text).unwrap();
    assert!(file.cases.len() >= 30, "{}", file.cases.len());
    let engine = PolicyEngine::baseline().with_request_validation(true);
    let failures: Vec<String> = file
        .run(&engine)
        .into_iter()
        .filter(|r| !r.passed())
        .map(|r| {
            format!(
                "line {}: {}: expected {}, got {} {:?} (missing {:?})",
                r.line,
                r.name,
                r.expect,
                r.decision.verdict,
                r.decision.reasons,
                r.missing_policies
            )
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_wrong_expectation_is_reported_with_its_line() {
    let text = "connectors:\n  crm:\n    tools:\n      t: { read_only: true }\ncases:\n  - name: wrong\n    principal: { subject: bob }\n    action: call_tool\n    resource: crm/t\n    expect: allow\n";
    let file = TestFile::parse("w.yaml", text).unwrap();
    let r = &file.run(&PolicyEngine::baseline())[0];
    assert!(!r.passed());
    assert_eq!((r.line, r.name.as_str()), (6, "wrong"));
}

#[test]
fn bad_test_files_name_line_and_field() {
    let unknown_tool = "connectors:\n  crm: {}\ncases:\n  - name: x\n    principal: { subject: bob }\n    action: call_tool\n    resource: crm/nope\n    expect: allow\n";
    let e = TestFile::parse("b.yaml", unknown_tool).unwrap_err();
    assert_eq!(e.line, 4, "{e}");
    assert!(e.to_string().contains("tool `nope`"), "{e}");
    let bad_verdict = "cases:\n  - name: x\n    principal: { subject: bob }\n    action: call_tool\n    resource: crm/t\n    expect: maybe\n";
    let e = TestFile::parse("b.yaml", bad_verdict).unwrap_err();
    assert_eq!(e.line, 6, "{e}");
    let unknown_field = "cases:\n  - name: x\n    principal: { subject: bob, colour: red }\n    action: list\n    resource: crm\n    expect: deny\n";
    let e = TestFile::parse("b.yaml", unknown_field).unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");
    assert!(TestFile::parse("b.yaml", "cases: []\n").is_err());
}
