//! Customers are updated attribute by attribute: concurrent writers (an opt-out recorded from
//! another business number's FIFO group, a number change) never lose each other's updates, and
//! a message that changes nothing writes nothing.
use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::*;
use shared::store::keys::{self, AliasKind};

async fn probe(t: &TestStack, pk: &str, sk: &str) {
    t.stack_ddb()
        .update_item()
        .table_name(t.store().table())
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .update_expression("SET probe = :p")
        .expression_attribute_values(":p", AttributeValue::N("1".into()))
        .send()
        .await
        .expect("probe set");
}

async fn has_probe(t: &TestStack, pk: &str, sk: &str) -> bool {
    t.stack_ddb()
        .get_item()
        .table_name(t.store().table())
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
        .is_some_and(|i| i.contains_key("probe"))
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_updates_of_a_customer_are_never_lost() {
    let t = start().await;
    let store = t.store();
    let c = store
        .resolve_customer(
            None,
            Some("15550001111"),
            None,
            Some("+15550001111"),
            Some("Ann"),
            1,
        )
        .await
        .unwrap();
    // Another business number's group records an opt-out meanwhile.
    assert!(
        store
            .set_marketing_preference(&c.customer_id, true, 2_000)
            .await
            .unwrap()
    );
    // A name change from this number keeps it.
    let renamed = store
        .resolve_customer(
            None,
            Some("15550001111"),
            None,
            Some("+15550001111"),
            Some("Ann B."),
            3,
        )
        .await
        .unwrap();
    assert_eq!(renamed.name.as_deref(), Some("Ann B."));
    assert!(renamed.marketing_opt_out, "the opt-out survived the rename");
    let stored = store.customer(&c.customer_id).await.unwrap().unwrap();
    assert!(stored.marketing_opt_out);
    assert_eq!(stored.created_at, 1);
    // A number change, then a name change: previous numbers are kept.
    store
        .move_number(
            &c.customer_id,
            Some("15550001111"),
            "15550002222",
            Some("+15550002222"),
        )
        .await
        .unwrap();
    let moved = store
        .resolve_customer(
            None,
            Some("15550002222"),
            None,
            Some("+15550002222"),
            Some("Ann C."),
            4,
        )
        .await
        .unwrap();
    assert_eq!(moved.customer_id, c.customer_id);
    assert_eq!(moved.previous_wa_ids, vec!["15550001111".to_string()]);
    let stored = store.customer(&c.customer_id).await.unwrap().unwrap();
    assert_eq!(stored.previous_wa_ids, vec!["15550001111".to_string()]);
    assert_eq!(stored.name.as_deref(), Some("Ann C."));
    assert!(stored.marketing_opt_out);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_that_changes_nothing_writes_nothing_and_lost_aliases_are_repaired() {
    let t = start().await;
    let store = t.store();
    let c = store
        .resolve_customer(
            None,
            Some("15550003333"),
            Some("US.bsuid.1"),
            Some("+15550003333"),
            Some("Bo"),
            1,
        )
        .await
        .unwrap();
    let profile = keys::customer_pk(&c.customer_id);
    let wa_alias = keys::alias_pk(AliasKind::WaId, "15550003333");
    let e164_alias = keys::alias_pk(AliasKind::E164, "+15550003333");
    for (pk, sk) in [
        (profile.as_str(), keys::PROFILE_SK),
        (wa_alias.as_str(), keys::ALIAS_SK),
        (e164_alias.as_str(), keys::ALIAS_SK),
    ] {
        probe(&t, pk, sk).await;
    }
    // Same identifiers, same name: no item is written (a write would have dropped the probes).
    store
        .resolve_customer(
            None,
            Some("15550003333"),
            Some("US.bsuid.1"),
            Some("+15550003333"),
            Some("Bo"),
            2,
        )
        .await
        .unwrap();
    assert!(has_probe(&t, &profile, keys::PROFILE_SK).await);
    assert!(has_probe(&t, &wa_alias, keys::ALIAS_SK).await);
    assert!(has_probe(&t, &e164_alias, keys::ALIAS_SK).await);
    // A crash between the profile and an alias write: the alias is missing and not recorded.
    t.stack_ddb()
        .delete_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(e164_alias.clone()))
        .key("sk", AttributeValue::S(keys::ALIAS_SK.into()))
        .send()
        .await
        .unwrap();
    t.stack_ddb()
        .update_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(profile.clone()))
        .key("sk", AttributeValue::S(keys::PROFILE_SK.into()))
        .update_expression("DELETE aliases :a")
        .expression_attribute_values(":a", AttributeValue::Ss(vec![e164_alias.clone()]))
        .send()
        .await
        .unwrap();
    // The next message repairs it.
    store
        .resolve_customer(
            None,
            Some("15550003333"),
            Some("US.bsuid.1"),
            Some("+15550003333"),
            Some("Bo"),
            3,
        )
        .await
        .unwrap();
    let found = store
        .customer_by_alias(AliasKind::E164, "+15550003333")
        .await
        .unwrap()
        .expect("alias repaired");
    assert_eq!(found.customer_id, c.customer_id);
    assert!(found.aliases.contains(&e164_alias));
}

/// An item DynamoDB can never take (over 400 KB) is a permanent failure (the record is parked),
/// not a retryable one that would block its conversation until the DLQ.
#[tokio::test(flavor = "multi_thread")]
async fn an_item_over_dynamodb_s_limit_is_a_permanent_failure() {
    let t = start().await;
    let err = t
        .store()
        .record_business_event("WABAERR#1", "d", "errors", &"x".repeat(450_000), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, shared::store::StoreError::Refused(_)),
        "{err:?}"
    );
    assert!(err.is_permanent());
    // A message's raw JSON is capped so the message itself always fits.
    let raw = format!("{{\"big\":\"{}\"}}", "y".repeat(200_000));
    let capped = inbound::capped_raw(&raw);
    assert!(capped.len() < 200);
    let v: serde_json::Value = serde_json::from_str(&capped).unwrap();
    assert_eq!(v["truncated"], true);
    assert_eq!(v["bytes"], raw.len());
    assert_eq!(inbound::capped_raw("{\"small\":1}"), "{\"small\":1}");
}
