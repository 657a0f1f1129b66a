//! The permission matrix: every staff route (from the same table that generates the OpenAPI
//! document) called without a token, without its permission, with exactly its permission,
//! with every permission but not as admin, and as admin.
use integration_tests::*;
use serde_json::{Value, json};
use staff_api::openapi::{Access, ROUTES};

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x1" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_with_and_without_each_permission() {
    let (t, _graph) = start_with_graph(500).await;
    let all_perms: Vec<String> = shared::auth::Permission::all()
        .map(|p| p.to_string())
        .collect();
    let all_refs: Vec<&str> = all_perms.iter().map(String::as_str).collect();
    let everything_but_admin = t.info().mint_token("5", false, &all_refs);
    let nothing = t.info().mint_token("6", false, &[]);
    let admin = t.admin_token();
    let mut checked = 0;
    for d in ROUTES {
        let path = concrete(d.path);
        let body: Option<Value> = matches!(d.method, "POST" | "PUT").then(|| json!({}));
        let call = |token: Option<String>| {
            let (m, p, b) = (d.method, path.clone(), body.clone());
            let t = &t;
            async move { t.api(m, &p, token.as_deref(), b).await }
        };
        let label = format!("{} {}", d.method, d.path);
        match d.access {
            Access::Public => {
                assert_eq!(call(None).await.0, 200, "{label}");
                continue;
            }
            Access::Admin => {
                let (s, v) = call(Some(everything_but_admin.clone())).await;
                assert_eq!(s, 403, "{label} must be admin-only: {v}");
                assert!(
                    v["error"]["message"]
                        .as_str()
                        .unwrap_or("")
                        .contains("admin"),
                    "{label}: {v}"
                );
            }
            Access::Perms(perms) => {
                let exact = t.info().mint_token("8", false, perms);
                let (s, v) = call(Some(exact)).await;
                assert!(
                    s != 401 && s != 403,
                    "{label} with exactly {perms:?} → {s} {v}"
                );
                let (s, _) = call(Some(everything_but_admin.clone())).await;
                assert!(s != 401 && s != 403, "{label} with every permission → {s}");
                // Each required permission alone missing → 403 naming it.
                for missing in perms.iter() {
                    let rest: Vec<&str> =
                        all_refs.iter().copied().filter(|p| p != missing).collect();
                    let tok = t.info().mint_token("9", false, &rest);
                    let (s, v) = call(Some(tok)).await;
                    assert_eq!(s, 403, "{label} without {missing}: {v}");
                    assert!(
                        v["error"]["message"]
                            .as_str()
                            .unwrap_or("")
                            .contains(missing),
                        "{label}: {v}"
                    );
                }
            }
        }
        let (s, v) = call(None).await;
        assert_eq!(s, 401, "{label} without a token: {v}");
        let (s, v) = call(Some(nothing.clone())).await;
        assert_eq!(s, 403, "{label} with no permission: {v}");
        let (s, v) = call(Some(admin.clone())).await;
        assert!(s != 401 && s != 403, "{label} as admin → {s} {v}");
        checked += 1;
    }
    assert!(checked >= 50, "{checked}");
    // The served document is the generated one.
    let (s, doc) = t.api("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(doc, staff_api::openapi::document());
}
