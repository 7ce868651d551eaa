//! The OpenAPI document and the router agree: every documented operation is routed, every
//! routed path is documented, and undocumented methods on documented paths are refused.

use axum::http::Method;
use tests::inproc::{FACTOR_OPERATIONS, InProc, OPERATIONS, OPERATOR_OPERATIONS, SSO_OPERATIONS};

/// Every documented operation: the people's API and the operator API.
fn all_operations() -> Vec<(&'static str, &'static str)> {
    OPERATIONS
        .iter()
        .chain(OPERATOR_OPERATIONS)
        .chain(FACTOR_OPERATIONS)
        .chain(SSO_OPERATIONS)
        .copied()
        .collect()
}

#[tokio::test]
async fn document_lists_exactly_the_operations() {
    let t = InProc::new().await;
    let doc = t.get("/api/openapi.json", None).await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), p.clone()))
        })
        .collect();
    documented.sort();
    let mut listed: Vec<(String, String)> = all_operations()
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    listed.sort();
    assert_eq!(documented, listed);
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_no_other_method_is() {
    let t = InProc::new().await;
    let methods = [
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::PUT,
    ];
    let operations = all_operations();
    for path in operations
        .iter()
        .map(|(_, p)| *p)
        .collect::<std::collections::BTreeSet<_>>()
    {
        let concrete = path
            .replace("{id}", "no-such-id")
            .replace("{slug}", "no-such-slug")
            .replace("{domain}", "no-such.example");
        for m in &methods {
            let documented = operations
                .iter()
                .any(|(om, op)| *op == path && om.eq_ignore_ascii_case(m.as_str()));
            let a = t.call(m.clone(), &concrete, None, None).await;
            if documented {
                assert_ne!(a.status, 405, "{m} {path}");
                assert!(
                    !(a.status == 404 && path.matches('{').count() == 0),
                    "{m} {path} is not routed"
                );
            } else {
                assert_eq!(a.status, 405, "{m} {path} is routed but not documented");
            }
        }
    }
}

/// The paths routed in a source file whose routes name constants of one module of
/// `routes::paths` (`mod_name`), as `.route(p::NAME, …)`.
fn routed_in(src: &str, mod_name: &str) -> Vec<String> {
    let paths = include_str!("../../control-plane/src/routes/paths.rs");
    let module = &paths[paths
        .find(&format!("pub mod {mod_name} {{"))
        .unwrap_or_else(|| panic!("no module {mod_name}"))..];
    let module = &module[..module.find("\n}").unwrap()];
    let value_of = |name: &str| {
        let decl = format!("pub const {name}: &str = \"");
        let at = module
            .find(&decl)
            .unwrap_or_else(|| panic!("no path constant {name}"));
        let rest = &module[at + decl.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    };
    let mut routed = Vec::new();
    for chunk in src.split(".route(").skip(1) {
        let name = chunk.trim_start().trim_start_matches("p::");
        let name: String = name
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || *c == '_')
            .collect();
        routed.push(value_of(&name));
    }
    routed
}

#[test]
fn every_route_in_the_source_is_documented() {
    // Routes name their paths by constants of `routes::paths`: read the files.
    let people = routed_in(include_str!("../../control-plane/src/routes/api.rs"), "api");
    let operator = routed_in(
        include_str!("../../control-plane/src/routes/operator.rs"),
        "operator",
    );
    assert!(people.len() >= 10 && operator.len() >= 8);
    for p in people {
        assert!(
            OPERATIONS.iter().any(|(_, op)| *op == p),
            "{p} is routed but not in OPERATIONS"
        );
    }
    for p in routed_in(
        include_str!("../../control-plane/src/routes/factors_api.rs"),
        "api",
    ) {
        assert!(
            FACTOR_OPERATIONS.iter().any(|(_, op)| *op == p),
            "{p} is routed but not in FACTOR_OPERATIONS"
        );
    }
    for p in operator {
        assert!(
            OPERATOR_OPERATIONS.iter().any(|(_, op)| *op == p),
            "{p} is routed but not in OPERATOR_OPERATIONS"
        );
    }
}
