//! The engine against the baseline and against policies written for each test (AZ-1 to AZ-6,
//! HC-1).

use portcullis_policy::*;

fn crm() -> ConnectorFacts {
    ConnectorFacts {
        classification: Classification::Confidential,
        ..ConnectorFacts::new("crm", "alice")
    }
}

fn tool(name: &str, read_only: bool, destructive: bool, bulk: bool) -> ToolFacts {
    ToolFacts {
        read_only,
        destructive,
        bulk,
        ..ToolFacts::named(name)
    }
}

fn prepared(c: ConnectorFacts, t: ToolFacts) -> PreparedResource {
    PreparedResource::new(ResourceFacts::tool(c, t)).unwrap()
}

fn ctx(scopes: &[&str]) -> ContextFacts {
    ContextFacts {
        scopes: expand_scopes(&scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        source_ip: "10.1.2.3".parse().unwrap(),
        time: TimeFacts::at(chrono::DateTime::from_timestamp(1_767_614_400, 0).unwrap()),
        risk: 0,
        confirmed: false,
        token_environment: Environment::Prod,
    }
}

fn call(
    principal: PrincipalFacts,
    resource: PreparedResource,
    context: ContextFacts,
) -> AuthzRequest {
    AuthzRequest {
        principal,
        action: Action::CallTool,
        resource,
        context,
    }
}

fn engine() -> PolicyEngine {
    PolicyEngine::baseline().with_request_validation(true)
}

fn ids(d: &AuthzDecision) -> Vec<&str> {
    d.reasons.iter().map(|r| r.policy.as_str()).collect()
}

// HC-1: the confirmation obligation.
#[test]
fn destructive_tool_needs_confirmation_then_is_allowed() {
    let e = engine();
    let del = prepared(crm(), tool("delete_customer", false, true, false));
    let bob = PrincipalFacts::user("bob", &["end_user"]);
    let d = e.authorize(&call(bob.clone(), del.clone(), ctx(&["crm:admin"])));
    assert_eq!(d.verdict, Verdict::Confirm, "{d:?}");
    assert_eq!(ids(&d), ["confirm-destructive"]);
    assert!(d.errors.is_empty());

    let mut confirmed = ctx(&["crm:admin"]);
    confirmed.confirmed = true;
    let d = e.authorize(&call(bob, del, confirmed));
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert_eq!(ids(&d), ["use-connectors"]);
}

#[test]
fn confirmation_cannot_lift_another_forbid() {
    let e = engine();
    let del = prepared(crm(), tool("delete_customer", false, true, false));
    let bob = PrincipalFacts::user("bob", &["end_user"]);
    // Destructive and the scope is missing: confirming would not help, so deny, naming the scope.
    let d = e.authorize(&call(bob.clone(), del.clone(), ctx(&["crm:write"])));
    assert_eq!(d.verdict, Verdict::Deny, "{d:?}");
    assert!(ids(&d).contains(&"missing-scope"), "{d:?}");
    // Destructive, but no role grants it: confirming would not help either.
    let auditor = PrincipalFacts::user("carol", &["auditor"]);
    let d = e.authorize(&call(auditor, del, ctx(&["crm:admin"])));
    assert_eq!(d.verdict, Verdict::Deny, "{d:?}");
    assert_eq!(ids(&d), [DEFAULT_DENY]);
}

#[test]
fn risk_asks_a_human_then_blocks() {
    let e = engine();
    let search = prepared(crm(), tool("search_customers", true, false, false));
    let bob = PrincipalFacts::user("bob", &["end_user"]);
    let mut c = ctx(&["crm:read"]);
    c.risk = 60;
    let d = e.authorize(&call(bob.clone(), search.clone(), c.clone()));
    assert_eq!(
        (d.verdict, ids(&d)),
        (Verdict::Confirm, vec!["confirm-risky"])
    );
    c.risk = 95;
    let d = e.authorize(&call(bob, search, c));
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(ids(&d).contains(&"risk-block"), "{d:?}");
}

// AZ-4, both ways.
#[test]
fn environments_are_kept_apart_both_ways() {
    let e = engine();
    let bob = PrincipalFacts::user("bob", &["end_user"]);
    let dev = ConnectorFacts {
        environment: Environment::Dev,
        ..crm()
    };
    let t = tool("search_customers", true, false, false);
    let prod_token = ctx(&["crm:read"]);
    let d = e.authorize(&call(
        bob.clone(),
        prepared(dev.clone(), t.clone()),
        prod_token.clone(),
    ));
    assert_eq!(
        (d.verdict, ids(&d)),
        (Verdict::Deny, vec!["environment-mismatch"])
    );
    let mut dev_token = ctx(&["crm:read"]);
    dev_token.token_environment = Environment::Dev;
    let d = e.authorize(&call(
        bob.clone(),
        prepared(crm(), t.clone()),
        dev_token.clone(),
    ));
    assert_eq!(
        (d.verdict, ids(&d)),
        (Verdict::Deny, vec!["environment-mismatch"])
    );
    // Same environment: allowed.
    let d = e.authorize(&call(bob, prepared(dev, t), dev_token));
    assert_eq!(d.verdict, Verdict::Allow);
}

// AZ-5.
#[test]
fn sharing_modes() {
    let e = engine();
    let t = tool("search_customers", true, false, false);
    let with = |mode: SharingMode, users: &[&str], groups: &[&str]| ConnectorFacts {
        sharing: Sharing {
            mode,
            users: users.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
        },
        ..crm()
    };
    let alice = PrincipalFacts::user("alice", &["end_user"]);
    let bob = PrincipalFacts::user("bob", &["end_user"]);
    let mut sales_dan = PrincipalFacts::user("dan", &["end_user"]);
    sales_dan.groups = vec!["sales".into()];
    let guest = PrincipalFacts {
        member: false,
        ..PrincipalFacts::user("guest", &["end_user"])
    };
    let verdict = |p: &PrincipalFacts, c: ConnectorFacts| {
        e.authorize(&call(p.clone(), prepared(c, t.clone()), ctx(&["crm:read"])))
            .verdict
    };
    use Verdict::{Allow, Deny};
    // owner: the owner only.
    let owner = with(SharingMode::Owner, &[], &[]);
    assert_eq!(
        [verdict(&alice, owner.clone()), verdict(&bob, owner)],
        [Allow, Deny]
    );
    // users: owner, named users, named groups.
    let users = with(SharingMode::Users, &["bob"], &["sales"]);
    assert_eq!(
        [
            verdict(&alice, users.clone()),
            verdict(&bob, users.clone()),
            verdict(&sales_dan, users.clone()),
            verdict(&guest, users)
        ],
        [Allow, Allow, Allow, Deny]
    );
    // organization (the default): members, not guests.
    let org = crm();
    assert_eq!(org.sharing.mode, SharingMode::Organization);
    assert_eq!(
        [verdict(&bob, org.clone()), verdict(&guest, org)],
        [Allow, Deny]
    );
    // link: anyone, guests included.
    let link = with(SharingMode::Link, &[], &[]);
    assert_eq!(verdict(&guest, link), Allow);
    let d = e.authorize(&call(
        bob.clone(),
        prepared(with(SharingMode::Owner, &[], &[]), t.clone()),
        ctx(&["crm:read"]),
    ));
    assert_eq!(ids(&d), ["not-shared"]);
}

#[test]
fn bulk_export_only_for_data_stewards() {
    let e = engine();
    let export = prepared(crm(), tool("export_customers", true, false, true));
    for roles in [
        &["end_user"][..],
        &["security_admin"],
        &["auditor"],
        &["developer"],
        &["approver"],
    ] {
        let d = e.authorize(&call(
            PrincipalFacts::user("bob", roles),
            export.clone(),
            ctx(&["crm:read"]),
        ));
        assert_eq!(d.verdict, Verdict::Deny, "{roles:?}: {d:?}");
    }
    let d = e.authorize(&call(
        PrincipalFacts::user("dora", &["end_user", "data_steward"]),
        export,
        ctx(&["crm:read"]),
    ));
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
}

#[test]
fn reasons_carry_source_line_and_text() {
    let e = engine();
    let del = prepared(crm(), tool("delete_customer", false, true, false));
    let d = e.authorize(&call(
        PrincipalFacts::user("bob", &["end_user"]),
        del,
        ctx(&["crm:admin"]),
    ));
    let r = &d.reasons[0];
    assert_eq!(r.source, BASELINE_NAME);
    assert_eq!(r.obligation.as_deref(), Some("confirm"));
    let line = BASELINE_TEXT.lines().nth(r.line - 1).unwrap();
    assert!(
        line.contains("@id(\"confirm-destructive\")"),
        "line {}: {line}",
        r.line
    );
    assert!(
        e.policy_text("confirm-destructive")
            .unwrap()
            .contains("resource.destructive")
    );
    assert!(r.to_string().contains("a human must confirm"), "{r}");
}

// AZ-6: a bad file stops the load with file, line and column.
#[test]
fn syntax_error_names_file_line_and_column() {
    let text = "@id(\"ok\")\npermit (principal, action, resource);\n\n@id(\"bad\")\npermit (principal, action, resource) when { principal.name == };\n";
    let err = PolicyEngine::load(&[
        PolicySource::baseline(),
        PolicySource::new("extra.cedar", text),
    ])
    .unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!((d.source.as_str(), d.line), ("extra.cedar", 5), "{err}");
    assert!(d.column > 40, "{err}");
    assert!(err.to_string().contains("extra.cedar:5:"), "{err}");
}

#[test]
fn schema_invalid_policy_is_refused_at_load() {
    let text = "@id(\"ok\")\npermit (principal, action, resource);\n@id(\"typo\")\npermit (principal, action == Portcullis::Action::\"call_tool\", resource)\n  when { resource.destructiv };\n";
    let err = PolicyEngine::load(&[PolicySource::new("p.cedar", text)]).unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(d.policy.as_deref(), Some("typo"), "{err}");
    assert_eq!((d.source.as_str(), d.line), ("p.cedar", 5), "{err}");
    assert!(d.message.contains("destructiv"), "{err}");
    // An unknown entity type and an unknown action are refused too.
    for bad in [
        "permit (principal == Portcullis::Admin::\"x\", action, resource);",
        "permit (principal, action == Portcullis::Action::\"delete\", resource);",
    ] {
        assert!(
            PolicyEngine::load(&[PolicySource::new("q.cedar", bad)]).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn duplicate_ids_unknown_obligations_and_templates_are_refused() {
    let dup = "@id(\"use-connectors\")\npermit (principal, action, resource);";
    let err = PolicyEngine::load(&[PolicySource::baseline(), PolicySource::new("d.cedar", dup)])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("duplicate policy id `use-connectors`"),
        "{err}"
    );
    let obl = "@id(\"x\") @obligation(\"notify\") forbid (principal, action, resource);";
    let err = PolicyEngine::load(&[PolicySource::new("o.cedar", obl)]).unwrap_err();
    assert!(
        err.to_string().contains("unknown obligation `notify`"),
        "{err}"
    );
    let obl = "@id(\"x\") @obligation(\"confirm\") permit (principal, action, resource);";
    assert!(PolicyEngine::load(&[PolicySource::new("o.cedar", obl)]).is_err());
    let tpl = "permit (principal == ?principal, action, resource);";
    let err = PolicyEngine::load(&[PolicySource::new("t.cedar", tpl)]).unwrap_err();
    assert!(err.to_string().contains("templates"), "{err}");
}

// Fail closed: a policy that errors at run time makes the decision a deny.
#[test]
fn evaluation_error_denies() {
    // Validates (Long arithmetic is well typed) but overflows at run time.
    let text = "@id(\"allow-all\") permit (principal, action, resource);\n\
                @id(\"overflow\") permit (principal, action, resource) when { context.time.unix * 9223372036854775807 > 0 };";
    let e = PolicyEngine::load(&[PolicySource::new("e.cedar", text)]).unwrap();
    let t = prepared(crm(), tool("search_customers", true, false, false));
    let d = e.authorize(&call(
        PrincipalFacts::user("bob", &[]),
        t,
        ctx(&["crm:read"]),
    ));
    assert_eq!(d.verdict, Verdict::Deny, "{d:?}");
    assert!(d.errors.iter().any(|e| e.contains("overflow")), "{d:?}");
}

#[test]
fn bad_facts_deny_with_the_field_named() {
    let e = engine();
    let t = prepared(crm(), tool("search_customers", true, false, false));
    let d = e.authorize(&call(
        PrincipalFacts::user("", &["end_user"]),
        t.clone(),
        ctx(&["crm:read"]),
    ));
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.errors[0].contains("principal.subject"), "{d:?}");
    let mut c = ctx(&["crm:read"]);
    c.risk = 101;
    let d = e.authorize(&call(
        PrincipalFacts::user("bob", &["end_user"]),
        t.clone(),
        c,
    ));
    assert!(d.errors[0].contains("context.risk"), "{d:?}");
    // An action on the wrong kind of resource.
    let d = e.authorize(&AuthzRequest {
        action: Action::ReadResource,
        ..call(
            PrincipalFacts::user("bob", &["end_user"]),
            t,
            ctx(&["crm:read"]),
        )
    });
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.errors[0].contains("applies to a Resource"), "{d:?}");
    let err = PreparedResource::new(ResourceFacts::tool(
        ConnectorFacts::new("a/b", "x"),
        ToolFacts::named("t"),
    ))
    .unwrap_err();
    assert!(err.to_string().contains("connector.name"), "{err}");
}

// AZ-6: the shadow set is reported and logged, never enforced.
#[test]
fn shadow_reports_without_enforcing() {
    let shadow = "@id(\"no-deletes\") @reason(\"deletes are frozen\")\n\
                  forbid (principal, action == Portcullis::Action::\"call_tool\", resource) when { resource.destructive };\n\
                  @id(\"all\") permit (principal, action, resource);";
    let e = engine()
        .with_shadow(&[PolicySource::new("new.cedar", shadow)])
        .unwrap();
    let del = prepared(crm(), tool("delete_customer", false, true, false));
    let mut c = ctx(&["crm:admin"]);
    c.confirmed = true;
    let d = e.authorize(&call(PrincipalFacts::user("bob", &["end_user"]), del, c));
    assert_eq!(d.verdict, Verdict::Allow);
    let s = d.shadow.unwrap();
    assert_eq!(s.verdict, Verdict::Deny);
    assert_eq!(s.reasons[0].policy, "no-deletes");
    assert_eq!(s.reasons[0].source, "new.cedar");
    // A bad shadow set is refused like any other.
    assert!(
        engine()
            .with_shadow(&[PolicySource::new("bad.cedar", "permit (")])
            .is_err()
    );
}

// AZ-3: listings show what may be used.
#[test]
fn listing_shows_only_usable_items() {
    let e = engine();
    let items = vec![
        prepared(crm(), tool("search_customers", true, false, false)),
        prepared(crm(), tool("delete_customer", false, true, false)),
        prepared(crm(), tool("export_customers", true, false, true)),
        prepared(crm(), tool("update_note", false, false, false)),
    ];
    let auditor = PrincipalFacts::user("carol", &["auditor"]);
    assert_eq!(
        e.usable(&auditor, &ctx(&["crm:admin"]), &items),
        [true, false, false, false]
    );
    let bob = PrincipalFacts::user("bob", &["end_user"]);
    assert_eq!(
        e.usable(&bob, &ctx(&["crm:admin"]), &items),
        [true, true, false, true]
    );
    assert_eq!(
        e.usable(&bob, &ctx(&["crm:read"]), &items),
        [true, false, false, false]
    );
}

#[test]
fn resources_prompts_and_listing_actions() {
    let e = engine();
    let res = PreparedResource::new(ResourceFacts {
        connector: crm(),
        item: ResourceItem::Resource {
            uri: "crm://schema".into(),
            classification: None,
        },
    })
    .unwrap();
    let prompt = PreparedResource::new(ResourceFacts {
        connector: crm(),
        item: ResourceItem::Prompt {
            name: "summarize".into(),
        },
    })
    .unwrap();
    let conn = PreparedResource::new(ResourceFacts::connector(crm())).unwrap();
    let cases = [
        (Action::ReadResource, res, "auditor", Verdict::Allow),
        (
            Action::GetPrompt,
            prompt.clone(),
            "end_user",
            Verdict::Allow,
        ),
        (Action::GetPrompt, prompt, "it_admin", Verdict::Deny),
        (Action::List, conn.clone(), "it_admin", Verdict::Allow),
        (Action::List, conn, "nobody", Verdict::Deny),
    ];
    for (action, resource, role, want) in cases {
        let d = e.authorize(&AuthzRequest {
            principal: PrincipalFacts::user("bob", &[role]),
            action,
            resource,
            context: ctx(&["crm:read"]),
        });
        assert_eq!(d.verdict, want, "{action} as {role}: {d:?}");
    }
}

// The index is an optimisation only: with and without it, the same decisions.
#[test]
fn index_and_full_set_agree() {
    let extra = "@id(\"bob-no-search\") forbid (principal == Portcullis::User::\"bob\", action, resource == Portcullis::Tool::\"crm/search_customers\");\n\
                 @id(\"sales-wiki\") permit (principal in Portcullis::Group::\"sales\", action, resource in Portcullis::Connector::\"wiki\");";
    let sources = [
        PolicySource::baseline(),
        PolicySource::new("x.cedar", extra),
    ];
    let a = PolicyEngine::load(&sources).unwrap();
    let b = PolicyEngine::load(&sources).unwrap().without_index();
    let wiki = ConnectorFacts::new("wiki", "erin");
    let resources = [
        prepared(crm(), tool("search_customers", true, false, false)),
        prepared(crm(), tool("get_customer", true, false, false)),
        prepared(wiki.clone(), tool("search", true, false, false)),
        prepared(wiki, tool("edit", false, false, false)),
    ];
    let mut sales = PrincipalFacts::user("dan", &[]);
    sales.groups = vec!["sales".into()];
    for p in [
        PrincipalFacts::user("bob", &["end_user"]),
        sales,
        PrincipalFacts::user("eve", &[]),
    ] {
        for r in &resources {
            for scopes in [&["crm:write", "wiki:write"][..], &["crm:read"]] {
                let req = call(p.clone(), r.clone(), ctx(scopes));
                let (x, y) = (a.authorize(&req), b.authorize(&req));
                assert_eq!(x, y, "{req:?}");
            }
        }
    }
    let bob = PrincipalFacts::user("bob", &["end_user"]);
    assert_eq!(
        a.authorize(&call(bob, resources[0].clone(), ctx(&["crm:read"])))
            .verdict,
        Verdict::Deny
    );
}

/// Many generated policies over users, groups, roles, tools and connectors: the index must give
/// exactly the decisions of the full set, call after call.
#[test]
fn index_agrees_with_full_set_on_generated_policies() {
    let mut text = String::new();
    for i in 0..120 {
        let (u, g, c, t) = (i % 10, i % 4, i % 5, (i / 5) % 4);
        text += &match i % 6 {
            0 => format!(
                "@id(\"p{i}\") permit (principal == Portcullis::User::\"u{u}\", action == Portcullis::Action::\"call_tool\", resource == Portcullis::Tool::\"c{c}/t{t}\");\n"
            ),
            1 => format!(
                "@id(\"p{i}\") permit (principal in Portcullis::Group::\"g{g}\", action in [Portcullis::Action::\"list\", Portcullis::Action::\"call_tool\"], resource in Portcullis::Connector::\"c{c}\") when {{ context.risk < 40 }};\n"
            ),
            2 => format!(
                "@id(\"p{i}\") forbid (principal == Portcullis::User::\"u{u}\", action, resource == Portcullis::Tool::\"c{c}/t{t}\") unless {{ context.confirmed }};\n"
            ),
            3 => format!(
                "@id(\"p{i}\") forbid (principal in Portcullis::Group::\"g{g}\", action, resource is Portcullis::Tool) when {{ resource.destructive }};\n"
            ),
            4 => format!(
                "@id(\"p{i}\") permit (principal in Portcullis::Role::\"r{g}\", action, resource is Portcullis::Tool) when {{ resource.read_only }};\n"
            ),
            _ => format!(
                "@id(\"p{i}\") @obligation(\"confirm\") forbid (principal, action, resource == Portcullis::Tool::\"c{c}/t{t}\") when {{ principal.name == \"u{u}\" }} unless {{ context.confirmed }};\n"
            ),
        };
    }
    let sources = [
        PolicySource::baseline(),
        PolicySource::new("gen.cedar", text),
    ];
    let indexed = PolicyEngine::load(&sources).unwrap();
    let full = PolicyEngine::load(&sources).unwrap().without_index();
    let mut verdicts = std::collections::HashSet::new();
    for i in 0..400usize {
        let c = ConnectorFacts::new(format!("c{}", i % 5), "owner");
        let t = tool(
            &format!("t{}", (i / 5) % 4),
            i.is_multiple_of(3),
            i.is_multiple_of(4),
            false,
        );
        let mut p = PrincipalFacts::user(format!("u{}", i % 10), &[]);
        p.groups = vec![format!("g{}", i % 4)];
        p.roles = vec![format!("r{}", (i / 3) % 4), "end_user".into()];
        let mut cx = ctx(&[&format!("c{}:admin", i % 5)]);
        cx.risk = (i % 3 * 20) as u8;
        cx.confirmed = i.is_multiple_of(7);
        let req = if i % 5 == 1 {
            AuthzRequest {
                principal: p,
                action: Action::List,
                resource: PreparedResource::new(ResourceFacts::connector(c)).unwrap(),
                context: cx,
            }
        } else {
            call(p, prepared(c, t), cx)
        };
        let (a, b) = (indexed.authorize(&req), full.authorize(&req));
        assert_eq!(a, b, "request {i}");
        verdicts.insert(a.verdict);
    }
    // The generated calls cover every verdict, so agreement is not trivial.
    assert_eq!(verdicts.len(), 3, "{verdicts:?}");
}

/// The index leaves out policies a resource's annotations rule out, and re-evaluates a
/// confirmation with only the policies a confirmation can change: both must give exactly the
/// full set's decisions, reasons and errors, including where a policy errs before or after the
/// annotation it tests, and where a tool is registered again with other annotations.
#[test]
fn pruned_and_confirmation_subsets_agree_with_full_set() {
    let text = r#"
@id("grant") permit (principal, action, resource) when { principal.member };
@id("grant-ro") permit (principal in Portcullis::Group::"g1", action, resource is Portcullis::Tool) when { context.risk < 60 && resource.read_only };
@id("grant-not-bulk") permit (principal, action == Portcullis::Action::"call_tool", resource) unless { resource.bulk };
@id("ban-destructive-weekday") forbid (principal in Portcullis::Group::"g0", action == Portcullis::Action::"call_tool", resource) when { context.time.weekday < 5 && resource.destructive };
@id("ban-open") forbid (principal == Portcullis::User::"u2", action == Portcullis::Action::"call_tool", resource) when { principal.name == "u2" } when { resource.open_world && !resource.read_only };
@id("ban-unconfirmed-bulk") forbid (principal in Portcullis::Group::"g2", action == Portcullis::Action::"call_tool", resource) when { resource.bulk } unless { context.confirmed };
@id("ban-confirmed") forbid (principal == Portcullis::User::"u4", action, resource) when { context.confirmed && context.risk > 30 };
@id("confirm-writes") @obligation("confirm") forbid (principal in Portcullis::Group::"g3", action == Portcullis::Action::"call_tool", resource) unless { resource.read_only || context.confirmed };
@id("confirm-open") @obligation("confirm") forbid (principal, action == Portcullis::Action::"call_tool", resource) when { resource.open_world } unless { context.confirmed };
@id("err-after") forbid (principal == Portcullis::User::"u5", action == Portcullis::Action::"call_tool", resource) when { resource.idempotent && context.time.unix * 9223372036854775807 > 0 };
@id("err-before") permit (principal == Portcullis::User::"u6", action == Portcullis::Action::"call_tool", resource) when { context.time.unix * 9223372036854775807 > 0 && resource.bulk };
"#;
    let sources = [
        PolicySource::baseline(),
        PolicySource::new("prune.cedar", text),
    ];
    let indexed = PolicyEngine::load(&sources).unwrap();
    let full = PolicyEngine::load(&sources).unwrap().without_index();
    let mut verdicts = std::collections::HashSet::new();
    let mut errors = 0;
    for i in 0..1200usize {
        let bits = i % 32;
        let t = ToolFacts {
            read_only: bits & 1 != 0,
            destructive: bits & 2 != 0,
            idempotent: bits & 4 != 0,
            open_world: bits & 8 != 0,
            bulk: bits & 16 != 0,
            ..ToolFacts::named("t")
        };
        // The same tool uid with every combination of annotations.
        let c = ConnectorFacts::new(format!("c{}", i / 32 % 2), "owner");
        let mut p = PrincipalFacts::user(format!("u{}", i / 64 % 8), &["end_user"]);
        p.groups = vec![format!("g{}", i / 7 % 4)];
        p.member = i % 11 != 0;
        let mut cx = ctx(&[&format!("c{}:admin", i / 32 % 2)]);
        cx.risk = (i / 3 % 4 * 20) as u8;
        cx.confirmed = i % 5 == 0;
        let req = if i % 13 == 0 {
            AuthzRequest {
                principal: p,
                action: Action::List,
                resource: PreparedResource::new(ResourceFacts::connector(c)).unwrap(),
                context: cx,
            }
        } else {
            call(p, prepared(c, t), cx)
        };
        let (a, b) = (indexed.authorize(&req), full.authorize(&req));
        assert_eq!(a, b, "request {i}: {req:?}");
        verdicts.insert(a.verdict);
        errors += usize::from(!a.errors.is_empty());
    }
    assert_eq!(verdicts.len(), 3, "{verdicts:?}");
    assert!(errors > 0, "the erring policies were reached");
}

/// What the engine caches per resource (the index's subsets, the entity stores) follows the
/// prepared resource, not its uid: a tool registered again with other annotations, or another
/// owner, is decided on its new facts, call after call.
#[test]
fn a_resource_prepared_again_is_decided_on_its_new_facts() {
    let e = PolicyEngine::baseline();
    let bob = PrincipalFacts::user("bob", &["end_user"]);
    let decide = |t: &PreparedResource| {
        e.authorize(&call(bob.clone(), t.clone(), ctx(&["crm:admin"])))
            .verdict
    };
    let plain = prepared(crm(), tool("purge", false, false, false));
    let destructive = prepared(crm(), tool("purge", false, true, false));
    let owned = prepared(
        ConnectorFacts {
            sharing: Sharing {
                mode: SharingMode::Owner,
                ..Sharing::default()
            },
            ..crm()
        },
        tool("purge", false, false, false),
    );
    for _ in 0..3 {
        assert_eq!(decide(&plain), Verdict::Allow);
        assert_eq!(decide(&destructive), Verdict::Confirm);
        assert_eq!(decide(&owned), Verdict::Deny);
    }
}

#[test]
fn one_diagnostic_per_mistake_even_across_resource_types() {
    let text =
        "@id(\"x\")\npermit (principal, action, resource)\n  when { resource.nme == \"a\" };\n";
    let err = PolicyEngine::load(&[PolicySource::new("x.cedar", text)]).unwrap_err();
    assert_eq!(err.diagnostics().len(), 1, "{err}");
    let d = &err.diagnostics()[0];
    assert_eq!((d.line, d.column), (3, 10), "{err}");
    assert_eq!(d.help.as_deref(), Some("did you mean `name`?"), "{err}");
}

#[test]
fn debug_output_holds_no_subject() {
    let e = engine();
    let t = prepared(crm(), tool("search_customers", true, false, false));
    e.authorize(&call(
        PrincipalFacts::user("jane.doe@example.com", &["end_user"]),
        t,
        ctx(&["crm:read"]),
    ));
    let d = format!("{e:?}");
    assert!(!d.contains("jane"), "{d}");
    assert!(d.contains("policies: 12"), "{d}");
}

/// A small deterministic generator (an LCG), so that the generated policies and calls are the
/// same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Policies of every scope kind, permits, forbids and confirmation forbids, with `when` and
/// `unless` clauses on the context (each operator of the plans' residual language), on the
/// principal and resource, mixed, and some the plans leave to Cedar (`isLoopback`, `like`,
/// `has`, `context.client`, an arithmetic overflow).
fn generated_with_context(seed: u64, n: usize) -> String {
    let mut g = Lcg(seed);
    let mut text = String::new();
    for i in 0..n {
        let (u, gr, r, c, t) = (g.next(12), g.next(6), g.next(4), g.next(4), g.next(5));
        let (k, h) = (g.next(100), g.next(20));
        let context_clauses = [
            format!("when {{ context.risk >= {k} }}"),
            format!("unless {{ context.risk < {k} }}"),
            format!(
                "when {{ context.time.hour >= {h} && context.time.hour < {} }}",
                h + 4
            ),
            "when { context.time.weekday >= 5 }".to_string(),
            format!(
                "when {{ context.time.unix > {} }}",
                1_767_000_000 + k * 10_000
            ),
            "unless { context.confirmed }".to_string(),
            "when { context.confirmed && context.risk > 20 }".to_string(),
            "when { context.token_environment == \"dev\" }".to_string(),
            format!("when {{ context.scopes.contains(\"c{c}:write\") }}"),
            format!(
                "when {{ context.scopes.containsAny([\"c{c}:admin\", \"c{}:read\"]) }}",
                (c + 1) % 4
            ),
            format!("unless {{ context.scopes.containsAll([\"c{c}:read\", \"c{c}:write\"]) }}"),
            format!(
                "when {{ if context.risk > {k} then context.confirmed else context.time.hour < 12 }}"
            ),
            format!("when {{ context.risk + {k} > 90 }}"),
            "when { context.risk - 10 * context.time.weekday < 20 }".to_string(),
            "when { context.scopes.contains(resource.required_scope) }".to_string(),
            "when { context.token_environment != resource.environment }".to_string(),
            format!("when {{ principal.member && context.risk < {k} }}"),
            format!("when {{ context.risk > {k} || principal.name == \"u{u}\" }}"),
            format!("unless {{ resource.sharing.mode == \"users\" && context.risk < {k} }}"),
        ];
        // Outside the residual language: calls that meet one take Cedar's path.
        let cedar_clauses = [
            "when { context.source_ip.isLoopback() }".to_string(),
            format!("when {{ context has risk && context.risk > {k} }}"),
            format!(
                "when {{ context.client == Portcullis::Client::\"app{}\" }}",
                u % 3
            ),
            "when { context.token_environment like \"d*\" }".to_string(),
        ];
        let outside = i % 10 == 0;
        let tool_clauses = [
            "when { resource.destructive }",
            "when { resource.read_only || context.risk < 30 }",
            "when { context.risk > 40 && !resource.bulk }",
        ];
        let entity_clauses = [
            "unless { principal.member }",
            "when { principal.name == \"u3\" || principal.name == \"u7\" }",
        ];
        let mut clauses = vec![if outside {
            cedar_clauses[i / 10 % cedar_clauses.len()].clone()
        } else {
            context_clauses[g.next(context_clauses.len())].clone()
        }];
        let mut tool_attrs = false;
        match g.next(4) {
            0 => {
                clauses.push(tool_clauses[g.next(tool_clauses.len())].to_string());
                tool_attrs = true;
            }
            1 => clauses.push(entity_clauses[g.next(entity_clauses.len())].to_string()),
            2 => clauses.push(context_clauses[g.next(context_clauses.len())].clone()),
            _ => {}
        }
        if g.next(2) == 0 {
            clauses.reverse();
        }
        let (annotation, effect) = match g.next(4) {
            0 | 1 => ("", "permit"),
            2 => ("", "forbid"),
            _ => {
                clauses.push("unless { context.confirmed }".to_string());
                ("@obligation(\"confirm\") ", "forbid")
            }
        };
        // Forbids narrower than permits (as organizations write them), so that every verdict
        // is common.
        let principal = match g.next(if outside {
            1
        } else if effect == "forbid" {
            2
        } else {
            4
        }) {
            0 => format!("principal == Portcullis::User::\"u{u}\""),
            1 => format!("principal in Portcullis::Group::\"g{gr}\""),
            2 => format!("principal in Portcullis::Role::\"r{r}\""),
            _ => "principal".to_string(),
        };
        let action = match (tool_attrs, g.next(3)) {
            (true, _) | (_, 0) => "action == Portcullis::Action::\"call_tool\"",
            (_, 1) => "action in [Portcullis::Action::\"call_tool\", Portcullis::Action::\"list\"]",
            _ => "action",
        };
        let resource = match g.next(4) {
            0 => format!("resource == Portcullis::Tool::\"c{c}/t{t}\""),
            1 => format!("resource in Portcullis::Connector::\"c{c}\""),
            2 => "resource is Portcullis::Tool".to_string(),
            _ => "resource".to_string(),
        };
        text += &format!(
            "@id(\"gen-{i}\") {annotation}{effect} ({principal}, {action}, {resource}) {};\n",
            clauses.join(" ")
        );
    }
    // One erring policy per user at most (so that a call meets one error: Cedar lists errors
    // in its set's order, which a subset need not keep).
    for u in [5, 9] {
        text += &format!(
            "@id(\"gen-overflow-u{u}\") forbid (principal == Portcullis::User::\"u{u}\", action, resource) when {{ context.risk > 50 && context.time.unix * 9223372036854775807 > 0 }};\n"
        );
    }
    text
}

/// The plans (partial evaluation per principal, resource and action, then the residuals over
/// the context: `src/plan.rs`) and the index are optimisations only: on generated policies and
/// calls with varied contexts, the default engine, the index with Cedar on every call, and Cedar
/// over the whole set give exactly the same decisions, reasons, errors and shadow outcomes, call
/// after call, with both the plans and Cedar's path used.
#[test]
fn plans_and_index_agree_with_full_set_on_generated_policies_and_contexts() {
    let sources = [
        PolicySource::baseline(),
        PolicySource::new("gen.cedar", generated_with_context(7, 160)),
    ];
    let shadow = [
        PolicySource::baseline(),
        PolicySource::new("shadow.cedar", generated_with_context(11, 60)),
    ];
    let planned = PolicyEngine::load(&sources)
        .unwrap()
        .with_shadow(&shadow)
        .unwrap();
    let indexed = PolicyEngine::load(&sources)
        .unwrap()
        .without_plans()
        .with_shadow(&shadow)
        .unwrap();
    let full = PolicyEngine::load(&sources)
        .unwrap()
        .without_index()
        .with_shadow(&shadow)
        .unwrap();
    let mut g = Lcg(3);
    // Pools, so that plans are made once and reused over many contexts; the same tool uid is
    // prepared twice with other annotations.
    let principals: Vec<PrincipalFacts> = (0..24)
        .map(|i| {
            let mut roles = vec![format!("r{}", g.next(4))];
            if g.next(3) > 0 {
                roles.push("end_user".into());
            }
            let mut p = PrincipalFacts::user(format!("u{}", i % 12), &[]);
            p.roles = roles;
            p.groups = (0..g.next(3)).map(|_| format!("g{}", g.next(6))).collect();
            p.member = g.next(4) > 0;
            p.client_id = format!("app{}", g.next(3));
            p
        })
        .collect();
    let mut resources: Vec<PreparedResource> = (0..40)
        .map(|i| {
            let c = ConnectorFacts {
                sharing: Sharing {
                    mode: [
                        SharingMode::Organization,
                        SharingMode::Users,
                        SharingMode::Link,
                    ][g.next(3)],
                    users: vec!["u1".into(), "u3".into()],
                    groups: vec!["g2".into()],
                },
                ..ConnectorFacts::new(format!("c{}", i % 4), "u0")
            };
            let t = ToolFacts {
                read_only: g.next(3) == 0,
                destructive: g.next(4) == 0,
                bulk: g.next(6) == 0,
                open_world: g.next(2) == 0,
                ..ToolFacts::named(format!("t{}", i / 4 % 5))
            };
            prepared(c, t)
        })
        .collect();
    resources.extend((0..4).map(|c| {
        PreparedResource::new(ResourceFacts::connector(ConnectorFacts::new(
            format!("c{c}"),
            "u0",
        )))
        .unwrap()
    }));
    let mut verdicts = std::collections::HashMap::new();
    let (mut errors, mut shadow_disagrees) = (0, 0);
    for i in 0..3000usize {
        let p = principals[g.next(principals.len())].clone();
        let r = resources[g.next(resources.len())].clone();
        // Mostly a scope of the resource's connector, at some level.
        let c: usize = r.connector_uid().id().unescaped()[1..].parse().unwrap();
        let granted: Vec<String> = (0..1 + g.next(2))
            .map(|_| {
                let level = ["read", "write", "admin", "admin"][g.next(4)];
                format!("c{}:{level}", (c + usize::from(g.next(5) == 0)) % 4)
            })
            .collect();
        let context = ContextFacts {
            scopes: expand_scopes(&granted),
            source_ip: if g.next(4) == 0 {
                "127.0.0.1".parse().unwrap()
            } else {
                "10.1.2.3".parse().unwrap()
            },
            time: TimeFacts {
                hour: g.next(24) as u8,
                weekday: g.next(7) as u8,
                unix: 1_767_000_000 + g.next(1_000_000) as i64,
            },
            risk: g.next(101) as u8,
            confirmed: g.next(3) == 0,
            token_environment: if g.next(10) == 0 {
                Environment::Dev
            } else {
                Environment::Prod
            },
        };
        let action = if r.kind() == ResourceKind::Connector {
            Action::List
        } else {
            Action::CallTool
        };
        let req = AuthzRequest {
            principal: p,
            action,
            resource: r,
            context,
        };
        let (a, b, c) = (
            planned.authorize(&req),
            indexed.authorize(&req),
            full.authorize(&req),
        );
        assert_eq!(a, c, "planned vs full, call {i}: {req:?}");
        assert_eq!(b, c, "indexed vs full, call {i}: {req:?}");
        *verdicts.entry(a.verdict).or_insert(0) += 1;
        errors += usize::from(!a.errors.is_empty());
        shadow_disagrees += usize::from(a.shadow.as_ref().unwrap().verdict != a.verdict);
    }
    // Not trivial agreement: every verdict, errors, and shadow outcomes of both kinds occur.
    assert_eq!(verdicts.len(), 3, "{verdicts:?}");
    assert!(verdicts.values().all(|&n| n >= 30), "{verdicts:?}");
    assert!(errors > 0, "the erring policy was reached");
    assert!((1..3000).contains(&shadow_disagrees), "{shadow_disagrees}");
    // Both paths were taken: plans for most triples, Cedar's for those with a residual outside
    // the plans' language.
    let (made, cedar) = planned.plan_counts();
    println!(
        "{verdicts:?}, {errors} with errors, {shadow_disagrees} shadow disagreements, {made} plans, {cedar} triples on Cedar's path"
    );
    assert!(
        made > 300 && cedar > 30,
        "{made} plans, {cedar} on Cedar's path"
    );
}
