//! Auto-lead claims: one claim per identity (canonical phone or BSUID), its announcement lease,
//! its link to the CRM's lead, and the auto-lead settings.
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::dynamo::{Store, StoreError, applied, from_item, key, n, s};
use super::keys;
use super::model::*;

impl Store {
    pub async fn auto_lead_settings(&self) -> Result<AutoLeadSettings, StoreError> {
        Ok(self.setting("auto_lead").await?.unwrap_or_default())
    }

    pub async fn put_auto_lead_settings(
        &self,
        v: &AutoLeadSettings,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.put_setting("auto_lead", v, now_ms).await
    }

    /// Claims `identity` (canonical phone or BSUID) for an auto-created lead. Returns the claim,
    /// existing or new: only one claim per identity can ever exist.
    pub async fn claim_lead(
        &self,
        identity: &str,
        customer_id: &str,
        conversation_id: &str,
        now_ms: i64,
    ) -> Result<LeadClaim, StoreError> {
        let claim = LeadClaim {
            pk: keys::lead_claim_pk(identity),
            sk: keys::CLAIM_SK.into(),
            correlation_id: keys::lead_correlation_id(identity),
            customer_id: customer_id.into(),
            conversation_id: Some(conversation_id.into()),
            emitted: false,
            lead_id: None,
            claimed_at: now_ms,
        };
        if self.put_new(&claim).await? {
            return Ok(claim);
        }
        self.lead_claim(identity)
            .await?
            .ok_or_else(|| StoreError::Corrupt("lead claim vanished".into()))
    }

    pub async fn lead_claim(&self, identity: &str) -> Result<Option<LeadClaim>, StoreError> {
        self.get(keys::lead_claim_pk(identity), keys::CLAIM_SK)
            .await
    }

    pub async fn mark_claim_emitted(&self, identity: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::lead_claim_pk(identity), keys::CLAIM_SK)))
            .update_expression("SET emitted = :t")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// Takes the right to announce a claim (`lead.created`) for `lease_ms`: two invocations that
    /// both find the claim unannounced (two business numbers, processed at once) publish it
    /// once. A holder that died leaves the lease to expire; the next message re-announces.
    pub async fn take_emit_lease(
        &self,
        identity: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::lead_claim_pk(identity), keys::CLAIM_SK)))
            .update_expression("SET emit_lease_until = :until")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(emitted) OR emitted = :f) \
                 AND (attribute_not_exists(emit_lease_until) OR emit_lease_until < :now)",
            )
            .expression_attribute_values(":until", n(now_ms + lease_ms))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .send()
            .await;
        applied(r)
    }

    /// Gives the lease back after a failed announcement, so the retry can take it at once.
    pub async fn release_emit_lease(&self, identity: &str) -> Result<(), StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::lead_claim_pk(identity), keys::CLAIM_SK)))
            .update_expression("REMOVE emit_lease_until")
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        // A claim that no longer exists holds no lease.
        applied(r).map(|_| ())
    }

    /// Links an auto-lead claim to the CRM's lead id, when the CRM echoes our correlation id.
    pub async fn link_lead_claim(
        &self,
        identity: &str,
        correlation_id: &str,
        lead_id: &str,
    ) -> Result<bool, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::lead_claim_pk(identity), keys::CLAIM_SK)))
            .update_expression("SET lead_id = :l")
            .condition_expression("correlation_id = :c")
            .expression_attribute_values(":l", s(lead_id))
            .expression_attribute_values(":c", s(correlation_id))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let claim: Option<LeadClaim> = match &r {
            Ok(out) => out.attributes.clone().map(from_item).transpose()?,
            Err(_) => None,
        };
        if !applied(r)? {
            return Ok(false);
        }
        // The conversation that asked for the lead points at it at once (it showed
        // `pending:{correlation}` until now); a conversation already re-identified is left alone.
        if let Some((pnid, cid)) = claim
            .as_ref()
            .and_then(|c| c.conversation_id.as_deref())
            .and_then(keys::parse_conversation_id)
        {
            let r = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation_pk(pnid, cid), keys::CONV_SK)))
                .update_expression("SET rel_id = :l")
                .condition_expression("rel_id = :pending")
                .expression_attribute_values(":l", s(lead_id))
                .expression_attribute_values(":pending", s(format!("pending:{correlation_id}")))
                .send()
                .await;
            applied(r)?;
        }
        Ok(true)
    }
}
