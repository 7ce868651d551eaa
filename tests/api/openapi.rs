//! The OpenAPI document and the router agree: every documented operation is routed, every
//! routed path is documented, and undocumented methods on documented paths are refused.

use axum::http::Method;
use tests::inproc::{InProc, OPERATIONS};

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
    let mut listed: Vec<(String, String)> = OPERATIONS
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
    for path in OPERATIONS
        .iter()
        .map(|(_, p)| *p)
        .collect::<std::collections::BTreeSet<_>>()
    {
        let concrete = path.replace("{id}", "no-such-id");
        for m in &methods {
            let documented = OPERATIONS
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

#[test]
fn every_route_in_the_source_is_documented() {
    // Routes name their paths by constants of `routes::paths::api`: read both files.
    let src = include_str!("../../control-plane/src/routes/api.rs");
    let paths = include_str!("../../control-plane/src/routes/paths.rs");
    let value_of = |name: &str| {
        let decl = format!("pub const {name}: &str = \"");
        let at = paths
            .find(&decl)
            .unwrap_or_else(|| panic!("no path constant {name}"));
        let rest = &paths[at + decl.len()..];
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
    assert!(routed.len() >= 10);
    for p in routed {
        assert!(
            OPERATIONS.iter().any(|(_, op)| *op == p),
            "{p} is routed but not in OPERATIONS"
        );
    }
}
