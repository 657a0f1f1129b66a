//! Customers (`CUST#{id}` / `PROFILE`) and their aliases (`ALIAS#{WA|BSUID|E164}#{value}`).
//!
//! A customer's profile is only ever changed attribute by attribute (never written whole), so
//! concurrent writers — an opt-out recorded from another business number's FIFO group, a number
//! change moving `previous_wa_ids` — never lose each other's updates. A message that changes
//! nothing costs no write: the profile records which alias items are known to exist
//! (`aliases`), written after the profile; an alias whose write was lost (a crash in between)
//! is not in that set and is written again by the next message.
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::dynamo::{applied, from_item, key, n, s, to_item};
use super::keys::{self, AliasKind};
use super::model::{Alias, Customer};
use super::{Store, StoreError};

impl Store {
    async fn alias(&self, kind: AliasKind, value: &str) -> Result<Option<Alias>, StoreError> {
        self.get(keys::alias_pk(kind, value), keys::ALIAS_SK).await
    }

    pub async fn customer(&self, customer_id: &str) -> Result<Option<Customer>, StoreError> {
        self.get(keys::customer_pk(customer_id), keys::PROFILE_SK)
            .await
    }

    pub async fn customer_by_alias(
        &self,
        kind: AliasKind,
        value: &str,
    ) -> Result<Option<Customer>, StoreError> {
        match self.alias(kind, value).await? {
            Some(a) => self.customer(&a.customer_id).await,
            None => Ok(None),
        }
    }

    /// Finds the customer behind a wa_id and/or BSUID, creating it (with its aliases) on first
    /// contact. The id is derived from the first identifier, so retries and races converge.
    /// Only attributes that changed are written (an update, never a whole-item put); aliases
    /// only when they are not yet recorded on the profile.
    pub async fn resolve_customer(
        &self,
        phone_number_id: Option<&str>,
        wa_id: Option<&str>,
        bsuid: Option<&str>,
        e164: Option<&str>,
        name: Option<&str>,
        now_ms: i64,
    ) -> Result<Customer, StoreError> {
        let mut found = None;
        if let Some(w) = wa_id {
            found = self.alias(AliasKind::WaId, w).await?;
        }
        if found.is_none()
            && let Some(b) = bsuid
        {
            found = self.alias(AliasKind::Bsuid, b).await?;
        }
        let customer_id = match &found {
            Some(a) => a.customer_id.clone(),
            None => {
                let first = match (wa_id, bsuid) {
                    (Some(w), _) => format!("wa:{w}"),
                    (None, Some(b)) => format!("bsuid:{b}"),
                    (None, None) => {
                        return Err(StoreError::Corrupt(
                            "sender has neither wa_id nor BSUID".into(),
                        ));
                    }
                };
                keys::customer_id_for(&first)
            }
        };
        let existing = self.customer(&customer_id).await?;
        let name = name.filter(|n| !n.trim().is_empty());
        let mut changes: Vec<(&str, &str)> = Vec::new();
        for (attr, now, given) in [
            (
                "wa_id",
                existing.as_ref().and_then(|c| c.wa_id.as_deref()),
                wa_id,
            ),
            (
                "bsuid",
                existing.as_ref().and_then(|c| c.bsuid.as_deref()),
                bsuid,
            ),
            (
                "e164",
                existing.as_ref().and_then(|c| c.e164.as_deref()),
                e164,
            ),
            (
                "name",
                existing.as_ref().and_then(|c| c.name.as_deref()),
                name,
            ),
        ] {
            if let Some(v) = given
                && now != Some(v)
            {
                changes.push((attr, v));
            }
        }
        let customer = match existing {
            Some(c) if changes.is_empty() => c,
            _ => self.update_profile(&customer_id, &changes, now_ms).await?,
        };
        // Aliases: written after the profile, so an alias never points at nothing.
        let mut written = Vec::new();
        for (kind, v) in [
            (AliasKind::WaId, wa_id),
            (AliasKind::Bsuid, bsuid),
            (AliasKind::E164, e164),
        ] {
            if let Some(v) = v {
                let pk = keys::alias_pk(kind, v);
                if !customer.aliases.contains(&pk) {
                    self.put_alias(kind, v, &customer_id).await?;
                    written.push(pk);
                }
            }
        }
        // The business numbers it talks to: where to look when the customer is erased.
        let new_number = phone_number_id
            .filter(|p| !p.is_empty() && !customer.phone_number_ids.iter().any(|x| x == p));
        self.record_known(&customer_id, &written, new_number)
            .await?;
        let mut customer = customer;
        customer.aliases.extend(written);
        customer
            .phone_number_ids
            .extend(new_number.map(str::to_string));
        Ok(customer)
    }

    /// Sets the changed attributes (creating the profile if needed) and answers the whole item
    /// as it now is, with what concurrent writers set.
    async fn update_profile(
        &self,
        customer_id: &str,
        changes: &[(&str, &str)],
        now_ms: i64,
    ) -> Result<Customer, StoreError> {
        let mut sets = vec![
            "customer_id = if_not_exists(customer_id, :cid)".to_string(),
            "created_at = if_not_exists(created_at, :now)".to_string(),
            "marketing_opt_out = if_not_exists(marketing_opt_out, :false)".to_string(),
        ];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::customer_pk(customer_id), keys::PROFILE_SK)))
            .expression_attribute_values(":cid", s(customer_id))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .return_values(ReturnValue::AllNew);
        for (i, (attr, v)) in changes.iter().enumerate() {
            sets.push(format!("#a{i} = :v{i}"));
            req = req
                .expression_attribute_names(format!("#a{i}"), *attr)
                .expression_attribute_values(format!(":v{i}"), s(*v));
        }
        let out = req
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let mut item = out
            .attributes
            .ok_or_else(|| StoreError::Corrupt("update returned no customer".into()))?;
        // The key attributes come back too; `Customer` reads them.
        item.entry("pk".into())
            .or_insert_with(|| s(keys::customer_pk(customer_id)));
        item.entry("sk".into())
            .or_insert_with(|| s(keys::PROFILE_SK));
        from_item(item)
    }

    /// Records alias items known to exist on the profile.
    async fn record_aliases(
        &self,
        customer_id: &str,
        alias_pks: &[String],
    ) -> Result<(), StoreError> {
        self.record_known(customer_id, alias_pks, None).await
    }

    /// Records alias items known to exist, and a business number, on the profile (one write,
    /// none when there is nothing new).
    async fn record_known(
        &self,
        customer_id: &str,
        alias_pks: &[String],
        phone_number_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut adds = Vec::new();
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::customer_pk(customer_id), keys::PROFILE_SK)))
            .condition_expression("attribute_exists(pk)");
        if !alias_pks.is_empty() {
            adds.push("aliases :a");
            req = req.expression_attribute_values(":a", AttributeValue::Ss(alias_pks.to_vec()));
        }
        if let Some(p) = phone_number_id {
            adds.push("phone_number_ids :p");
            req = req.expression_attribute_values(":p", AttributeValue::Ss(vec![p.to_string()]));
        }
        if adds.is_empty() {
            return Ok(());
        }
        req.update_expression(format!("ADD {}", adds.join(", ")))
            .send()
            .await
            .map(|_| ())
            .or_else(|e| match &e {
                // The profile is gone (a forgotten customer): nothing to record.
                SdkError::ServiceError(se) if se.err().is_conditional_check_failed_exception() => {
                    Ok(())
                }
                _ => Err(StoreError::sdk(e)),
            })
    }

    /// Deletes an alias item if it still points at `customer_id` (a number given to someone
    /// else meanwhile keeps its new owner's alias).
    pub async fn delete_alias_if_ours(
        &self,
        alias_pk: &str,
        customer_id: &str,
    ) -> Result<bool, StoreError> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(alias_pk, keys::ALIAS_SK)))
            .condition_expression("customer_id = :c")
            .expression_attribute_values(":c", s(customer_id))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(StoreError::sdk(e)),
        }
    }

    async fn put_alias(
        &self,
        kind: AliasKind,
        value: &str,
        customer_id: &str,
    ) -> Result<(), StoreError> {
        let alias = Alias {
            pk: keys::alias_pk(kind, value),
            sk: keys::ALIAS_SK.into(),
            customer_id: customer_id.into(),
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&alias)?))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// A `system` number change: the customer keeps its id; aliases move to the new number.
    pub async fn move_number(
        &self,
        customer_id: &str,
        old_wa_id: Option<&str>,
        new_wa_id: &str,
        new_e164: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut written = vec![keys::alias_pk(AliasKind::WaId, new_wa_id)];
        self.put_alias(AliasKind::WaId, new_wa_id, customer_id)
            .await?;
        if let Some(e) = new_e164 {
            self.put_alias(AliasKind::E164, e, customer_id).await?;
            written.push(keys::alias_pk(AliasKind::E164, e));
        }
        self.record_aliases(customer_id, &written).await?;
        let mut upd = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::customer_pk(customer_id), keys::PROFILE_SK)))
            .update_expression("SET wa_id = :w, previous_wa_ids = list_append(if_not_exists(previous_wa_ids, :empty), :old)")
            .expression_attribute_values(":w", s(new_wa_id))
            .expression_attribute_values(":empty", AttributeValue::L(vec![]))
            .expression_attribute_values(":old", AttributeValue::L(old_wa_id.map(s).into_iter().collect()));
        if let Some(e) = new_e164 {
            upd = upd
                .update_expression(
                    "SET wa_id = :w, e164 = :e, previous_wa_ids = list_append(if_not_exists(previous_wa_ids, :empty), :old)",
                )
                .expression_attribute_values(":e", s(e));
        }
        upd.send().await.map_err(StoreError::sdk)?;
        // The old number may be given to someone else: release its aliases if still ours.
        if let Some(old) = old_wa_id.filter(|o| *o != new_wa_id) {
            let r = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(
                    keys::alias_pk(AliasKind::WaId, old),
                    keys::ALIAS_SK,
                )))
                .condition_expression("customer_id = :c")
                .expression_attribute_values(":c", s(customer_id))
                .send()
                .await;
            if let Err(e) = r
                && !matches!(&e, SdkError::ServiceError(se) if se.err().is_conditional_check_failed_exception())
            {
                return Err(StoreError::sdk(e));
            }
        }
        Ok(())
    }

    /// Marketing opt-out / resume from `user_preferences`, newest timestamp wins.
    pub async fn set_marketing_preference(
        &self,
        customer_id: &str,
        opt_out: bool,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::customer_pk(customer_id), keys::PROFILE_SK)))
            .update_expression("SET marketing_opt_out = :o, marketing_pref_at = :t")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(marketing_pref_at) OR marketing_pref_at <= :t)")
            .expression_attribute_values(":o", AttributeValue::Bool(opt_out))
            .expression_attribute_values(":t", n(at_ms))
            .send()
            .await;
        applied(r)
    }
}
