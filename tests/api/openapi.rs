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
    let src = include_str!("../../control-plane/src/routes/api.rs");
    let mut routed = Vec::new();
    for chunk in src.split(".route(").skip(1) {
        let path = chunk.trim_start().trim_start_matches('"');
        let path = &path[..path.find('"').unwrap()];
        routed.push(path.to_owned());
    }
    assert!(routed.len() >= 10);
    for p in routed {
        assert!(
            OPERATIONS.iter().any(|(_, op)| *op == p),
            "{p} is routed but not in OPERATIONS"
        );
    }
}
