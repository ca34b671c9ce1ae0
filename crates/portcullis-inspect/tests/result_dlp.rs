//! DLP-4 and DLP-5 on the demo connector's customer records: the built-in rules, custom rules,
//! pseudonyms, blocking, minimization, and secrets in `_meta`.

mod result_common;

use portcullis_config::{
    DataAction, DataRule, RuleDirection, RuleMatch, ValidInspection, ValidToolInspect,
};
use portcullis_demo::{CustomerList, customers};
use portcullis_inspect::results::{ResultFacts, ResultMethod};
use result_common::*;
use serde_json::{Value, json};

fn rule(m: RuleMatch, action: DataAction, tools: &[&str]) -> DataRule {
    DataRule {
        matches: m,
        direction: RuleDirection::Response,
        action,
        tools: tools.iter().map(|t| t.to_string()).collect(),
    }
}

fn export() -> Value {
    structured(&CustomerList {
        customers: customers().to_vec(),
    })
}

fn sc_text(result: &Value) -> String {
    serde_json::to_string(&result["structuredContent"]).unwrap()
}

// DLP-4: the embedded default: cards, SSNs and IBANs redacted, e-mail addresses and phone
// numbers masked, in the text block and in structuredContent alike.
#[test]
fn default_rules_on_the_whole_export() {
    let original = export();
    let sc = &original["structuredContent"];
    let cards = values_of(sc, &["pii.credit_card"]);
    let ssns = values_of(sc, &["pii.us_ssn"]);
    let ibans = values_of(sc, &["pii.iban"]);
    let emails = values_of(sc, &["pii.email"]);
    let phones = values_of(sc, &["pii.phone"]);
    for (name, v) in [("cards", &cards), ("ssns", &ssns), ("ibans", &ibans)] {
        assert!(v.len() >= 3, "the demo table should hold {name}: {v:?}");
    }
    assert!(emails.len() >= 190 && phones.len() >= 190);

    let mut result = original.clone();
    let v = run(&ValidInspection::default(), "export_customers", &mut result);
    assert!(v.blocked.is_none(), "{:?}", v.blocked);
    assert!(v.changed);
    let text = text(&result, 0).to_string();
    let structured = sc_text(&result);
    // The text block is still exactly the JSON of structuredContent.
    assert_eq!(text, structured);
    for value in cards
        .iter()
        .chain(&ssns)
        .chain(&ibans)
        .chain(&emails)
        .chain(&phones)
    {
        assert!(!text.contains(value.as_str()), "{value} leaked");
    }
    for t in ["[CARD_1]", "[SSN_1]", "[IBAN_1]"] {
        assert!(text.contains(t), "{t} missing");
    }
    assert!(
        !text.contains("[EMAIL_"),
        "e-mail addresses are masked, not redacted"
    );
    // Masked shapes, checked record by record against the originals.
    let out = &result["structuredContent"]["customers"];
    for (i, c) in customers().iter().enumerate() {
        let (local, domain) = c.email.split_once('@').unwrap();
        let first = local.chars().next().unwrap();
        assert_eq!(out[i]["email"], format!("{first}***@{domain}"));
        let phone = out[i]["phone"].as_str().unwrap();
        assert_eq!(phone.len(), c.phone.len());
        assert_eq!(&phone[phone.len() - 2..], &c.phone[c.phone.len() - 2..]);
        assert!(phone.contains("***"), "{phone}");
        // Fields without a rule pass as they are.
        assert_eq!(out[i]["id"], c.id.as_str());
        assert_eq!(out[i]["full_name"], c.full_name.as_str());
    }
    for r in [
        "redacted:pii.credit_card",
        "redacted:pii.us_ssn",
        "redacted:pii.iban",
        "masked:pii.email",
        "masked:pii.phone",
        "records=200",
    ] {
        assert!(
            v.reasons.iter().any(|x| x == r),
            "{r} not in {:?}",
            v.reasons
        );
    }
    // Findings: response side, pointed, and never holding the matched text.
    assert!(v.findings.iter().all(|f| f.direction == "response"));
    assert!(v.findings.iter().all(|f| {
        f.pointer
            .as_deref()
            .unwrap()
            .starts_with("/structuredContent/customers/")
    }));
    let recorded = serde_json::to_string(&v.findings).unwrap();
    for value in cards.iter().chain(&ssns).chain(&emails) {
        assert!(!recorded.contains(value.as_str()));
    }
    assert!(
        v.findings
            .iter()
            .any(|f| f.kind == "pii.credit_card" && f.action == "redact")
    );
    assert!(
        v.findings
            .iter()
            .any(|f| f.kind == "pii.email" && f.action == "mask")
    );
}

// AU-2: repeats in one text are one finding with a count (an audit row per address would make
// a bulk result's event as large as the result), and distinct kinds or places stay apart.
#[test]
fn repeats_in_one_text_are_counted_on_one_finding() {
    let lines: Vec<String> = (0..40)
        .map(|i| format!("user{i}@example.org card 4242 4242 4242 4242"))
        .collect();
    let mut result = structured(&json!({"notes": [lines.join("\n"), "other@example.org"]}));
    let v = run(&ValidInspection::default(), "get_customer", &mut result);
    let find = |kind: &str, ptr: &str| {
        let hits: Vec<_> = v
            .findings
            .iter()
            .filter(|f| f.kind == kind && f.pointer.as_deref() == Some(ptr))
            .collect();
        assert_eq!(hits.len(), 1, "{kind} at {ptr}: {:?}", v.findings);
        hits[0].count
    };
    assert_eq!(find("pii.email", "/structuredContent/notes/0"), 40);
    assert_eq!(find("pii.credit_card", "/structuredContent/notes/0"), 40);
    assert_eq!(find("pii.email", "/structuredContent/notes/1"), 1);
    // the mirrored text block is rewritten from structuredContent, not counted again
    let emails: u32 = v
        .findings
        .iter()
        .filter(|f| f.kind == "pii.email")
        .map(|f| f.count)
        .sum();
    assert_eq!(emails, 41, "{:?}", v.findings);
    // a count of 1 is left out of the recorded form
    let single = v
        .findings
        .iter()
        .find(|f| f.pointer.as_deref() == Some("/structuredContent/notes/1"))
        .unwrap();
    assert!(!serde_json::to_string(single).unwrap().contains("count"));
}

#[test]
fn the_same_value_gets_the_same_placeholder() {
    let mut result = structured(&json!({"notes": [
        "card 4242 4242 4242 4242 on file",
        "again 4242424242424242",
        "second card 5555 5555 5555 4444",
    ]}));
    let v = run(&ValidInspection::default(), "get_customer", &mut result);
    assert!(v.changed);
    assert_eq!(
        result["structuredContent"]["notes"],
        json!([
            "card [CARD_1] on file",
            "again [CARD_1]",
            "second card [CARD_2]"
        ])
    );
    assert_eq!(text(&result, 0), sc_text(&result));
}

#[test]
fn pseudonyms_are_consistent_within_a_session_and_differ_across() {
    // Without the built-in rules: their `redact` of cards is stricter and would win.
    let settings = ValidInspection {
        rules: vec![
            rule(
                RuleMatch::Kind("pii.email".into()),
                DataAction::Pseudonymize,
                &[],
            ),
            // The config's spelling `pii.card`; the detector says `pii.credit_card`.
            rule(
                RuleMatch::Kind("pii.card".into()),
                DataAction::Pseudonymize,
                &[],
            ),
        ],
        ..Default::default()
    };
    let insp = inspector(&settings);
    let c = customers()
        .iter()
        .find(|c| !values_of(&json!(c.notes), &["pii.credit_card"]).is_empty())
        .expect("a customer with a card");
    let pseudo = |session: &str| {
        let k = key(session);
        let mut r = structured(c);
        let v = insp.inspect(&facts("get_customer", None, &k), &mut r);
        assert!(
            v.reasons.iter().any(|x| x == "pseudonymized:pii.email"),
            "{:?}",
            v.reasons
        );
        assert!(
            v.reasons
                .iter()
                .any(|x| x == "pseudonymized:pii.credit_card"),
            "{:?}",
            v.reasons
        );
        r
    };
    let (a, b, other) = (pseudo("s1"), pseudo("s1"), pseudo("s2"));
    let email = a["structuredContent"]["email"]
        .as_str()
        .unwrap()
        .to_string();
    let re = regex::Regex::new(r"^user_[0-9a-f]{8}@pseudonym\.invalid$").unwrap();
    assert!(re.is_match(&email), "{email}");
    assert_eq!(b["structuredContent"]["email"], email.as_str());
    assert_ne!(other["structuredContent"]["email"], email.as_str());
    let notes = a["structuredContent"]["notes"].as_str().unwrap();
    assert!(
        regex::Regex::new(r"CARD_[0-9a-f]{8}")
            .unwrap()
            .is_match(notes),
        "{notes}"
    );
    assert_eq!(text(&a, 0), sc_text(&a));
}

#[test]
fn the_strictest_matching_rule_wins() {
    // The built-in `pii.card: redact` and a looser `pseudonymize`: redact stays.
    let mut settings = ValidInspection::default();
    settings.rules.push(rule(
        RuleMatch::Kind("pii.credit_card".into()),
        DataAction::Pseudonymize,
        &[],
    ));
    // A stricter one for a prefix: `block` wins over the built-in `mask` of phones.
    settings.rules.push(rule(
        RuleMatch::Prefix("pii.ph".into()),
        DataAction::Block,
        &["crm/*"],
    ));
    let mut r = structured(&json!({"note": "card 4242 4242 4242 4242"}));
    let v = run(&settings, "get_customer", &mut r);
    assert_eq!(r["structuredContent"]["note"], "card [CARD_1]");
    assert!(v.blocked.is_none());
    let mut r = structured(&json!({"phone": "+12125550147"}));
    let v = run(&settings, "get_customer", &mut r);
    let msg = v.blocked.expect("blocked");
    assert!(msg.contains("`pii.ph*`"), "{msg}");
}

#[test]
fn a_block_rule_withholds_the_result_for_its_tools_only() {
    let mut settings = ValidInspection::default();
    settings.rules.push(rule(
        RuleMatch::Kind("pii.iban".into()),
        DataAction::Block,
        &["crm/export_customers"],
    ));
    let ibans = values_of(&export()["structuredContent"], &["pii.iban"]);
    let mut result = export();
    let v = run(&settings, "export_customers", &mut result);
    let msg = v.blocked.expect("blocked");
    assert!(
        msg.contains("crm/export_customers") && msg.contains("pii.iban"),
        "{msg}"
    );
    assert!(msg.contains("inspection.rules"), "{msg}");
    assert!(ibans.iter().all(|i| !msg.contains(i.as_str())));
    assert!(
        v.findings
            .iter()
            .any(|f| f.kind == "pii.iban" && f.action == "block")
    );

    // Another tool of the same connector: the default rule redacts instead.
    let c = customers()
        .iter()
        .find(|c| !values_of(&json!(c.notes), &["pii.iban"]).is_empty())
        .unwrap();
    let mut one = structured(c);
    let v = run(&settings, "get_customer", &mut one);
    assert!(v.blocked.is_none());
    assert!(text(&one, 0).contains("[IBAN_1]"));
}

#[test]
fn a_clean_result_is_left_alone() {
    let original = structured(&json!({"customers": [
        {"id": "cus_0001", "plan": "pro"},
        {"id": "cus_0002", "plan": "free"},
    ]}));
    let mut result = original.clone();
    let v = run(&ValidInspection::default(), "search_customers", &mut result);
    assert!(!v.changed);
    assert_eq!(result, original);
    assert!(v.findings.is_empty());
    assert_eq!(v.reasons, vec!["records=2".to_string()]);
    assert!(v.blocked.is_none());
}

// DLP-5
#[test]
fn minimization_keeps_only_allowed_fields_in_both_places() {
    let tool = ValidToolInspect {
        output_fields: Some(vec![
            vec!["customers".into(), "*".into(), "id".into()],
            vec!["customers".into(), "*".into(), "plan".into()],
        ]),
        ..Default::default()
    };
    let list = CustomerList {
        customers: customers()[..10].to_vec(),
    };
    let mut result = structured(&list);
    let k = key("s1");
    let v = inspector(&ValidInspection::default())
        .inspect(&facts("search_customers", Some(&tool), &k), &mut result);
    assert!(v.changed);
    let out = &result["structuredContent"]["customers"];
    for (i, c) in list.customers.iter().enumerate() {
        assert_eq!(out[i], json!({"id": c.id, "plan": c.plan.as_str()}));
    }
    assert_eq!(text(&result, 0), sc_text(&result));
    // 11 fields per record, 2 kept.
    assert!(
        v.reasons.iter().any(|r| r == "fields_dropped:90"),
        "{:?}",
        v.reasons
    );
    assert!(v.reasons.iter().any(|r| r == "records=10"));
    // What was dropped was never scanned, so nothing else was done.
    assert!(v.findings.is_empty(), "{:?}", v.findings);
}

#[test]
fn a_json_text_block_without_structured_content_is_minimized_too() {
    let tool = ValidToolInspect {
        output_fields: Some(vec![vec!["customers".into(), "*".into(), "id".into()]]),
        ..Default::default()
    };
    let json_text = serde_json::to_string_pretty(&CustomerList {
        customers: customers()[..2].to_vec(),
    })
    .unwrap();
    let mut result = text_result(&json_text);
    let k = key("s1");
    let v = inspector(&ValidInspection::default())
        .inspect(&facts("search_customers", Some(&tool), &k), &mut result);
    let out: Value = serde_json::from_str(text(&result, 0)).unwrap();
    assert_eq!(
        out,
        json!({"customers": [{"id": customers()[0].id}, {"id": customers()[1].id}]})
    );
    assert!(
        v.reasons.iter().any(|r| r == "fields_dropped:20"),
        "{:?}",
        v.reasons
    );
}

const TOKEN: &str = "ghp_0123456789abcdefghijABCDEFGHIJ012345";

// DLP-4: no secrets or tokens in _meta or widget props, whatever the rules say.
#[test]
fn a_secret_in_meta_is_removed_even_with_an_allow_rule() {
    let settings = ValidInspection {
        rules: vec![DataRule {
            matches: RuleMatch::Category("secret".into()),
            direction: RuleDirection::Both,
            action: DataAction::Allow,
            tools: vec![],
        }],
        ..Default::default()
    };
    let mut result = json!({
        "content": [{"type": "text", "text": format!("token {TOKEN}")}],
        "_meta": {"openai/widgetState": {"auth": format!("Bearer {TOKEN}")}, "note": TOKEN},
    });
    let v = run(&settings, "get_customer", &mut result);
    assert!(v.blocked.is_none());
    let meta = serde_json::to_string(&result["_meta"]).unwrap();
    assert!(!meta.contains(TOKEN), "{meta}");
    assert!(meta.contains("[SECRET_1]"), "{meta}");
    assert!(v.reasons.iter().any(|r| r == "meta_secret_redacted"));
    assert!(
        v.findings
            .iter()
            .any(|f| f.category == "secret" && f.pointer.as_deref() == Some("/_meta/note"))
    );
    // The allow rule still governs the text block: only _meta is forced.
    assert_eq!(text(&result, 0), format!("token {TOKEN}"));

    // Widget props: structuredContent of a tool that renders a widget.
    let mut result = structured(&json!({"session": TOKEN}));
    let k = key("s1");
    let f = ResultFacts {
        widget: true,
        ..facts("show_board", None, &k)
    };
    let v = inspector(&settings).inspect(&f, &mut result);
    assert_eq!(result["structuredContent"]["session"], "[SECRET_1]");
    assert!(!text(&result, 0).contains(TOKEN));
    assert!(v.changed);
    // Without a widget, the allow rule lets it pass.
    let mut plain = structured(&json!({"session": TOKEN}));
    let v = run(&settings, "show_board", &mut plain);
    assert!(!v.changed);
}

#[test]
fn a_card_number_sent_as_a_json_number_is_redacted() {
    let mut result = structured(&json!({"card": 4242424242424242u64, "count": 3}));
    let v = run(&ValidInspection::default(), "get_customer", &mut result);
    assert!(v.changed);
    assert_eq!(
        result["structuredContent"],
        json!({"card": "[CARD_1]", "count": 3})
    );
    assert!(!text(&result, 0).contains("4242424242424242"));
}

#[test]
fn malformed_results_are_withheld() {
    for (bad, what) in [
        (json!("just a string"), "not a JSON object"),
        (
            json!({"content": {"type": "text"}}),
            "`content` is not an array",
        ),
        (
            json!({"content": [{"type": "text", "text": 5}]}),
            "`text` is not a string",
        ),
        (
            json!({"contents": [{"uri": "crm://x", "text": ["a"]}]}),
            "`text` is not a string",
        ),
        (json!({"content": ["text"]}), "not an object"),
    ] {
        let mut r = bad.clone();
        let v = run(&ValidInspection::default(), "get_customer", &mut r);
        let msg = v.blocked.unwrap_or_else(|| panic!("{bad} passed"));
        assert!(
            msg.contains(what) && msg.contains("crm/get_customer"),
            "{msg}"
        );
    }
    let mut deep = json!("x");
    for _ in 0..250 {
        deep = json!([deep]);
    }
    let mut r = json!({"structuredContent": {"a": deep}});
    assert!(
        run(&ValidInspection::default(), "t", &mut r)
            .blocked
            .is_some()
    );
}

#[test]
fn inspection_off_changes_nothing_but_still_counts_records() {
    let settings = ValidInspection {
        enabled: false,
        ..Default::default()
    };
    let original = export();
    let mut result = original.clone();
    let v = run(&settings, "export_customers", &mut result);
    assert_eq!(result, original);
    assert!(!v.changed && v.findings.is_empty());
    assert_eq!(v.reasons, vec!["records=200".to_string()]);
}

#[test]
fn resources_read_text_gets_the_rules_too() {
    let c = &customers()[0];
    let mut result = json!({"contents": [
        {"uri": "crm://customers/cus_0001", "mimeType": "text/plain", "text": format!("contact {}", c.email)},
        {"uri": "crm://logo", "mimeType": "image/png", "blob": "iVBORw0KGgo="},
    ]});
    let k = key("s1");
    let f = ResultFacts {
        method: ResultMethod::ResourceRead,
        ..facts("crm://customers/cus_0001", None, &k)
    };
    let v = inspector(&ValidInspection::default()).inspect(&f, &mut result);
    let t = result["contents"][0]["text"].as_str().unwrap();
    assert!(!t.contains(&c.email) && t.contains("***@"), "{t}");
    assert_eq!(result["contents"][1]["blob"], "iVBORw0KGgo=");
    assert!(
        v.findings
            .iter()
            .any(|f| f.pointer.as_deref() == Some("/contents/0/text"))
    );
}
