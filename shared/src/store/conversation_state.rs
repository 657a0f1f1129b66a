//! What staff and bots set on a conversation beside its messages: hand-over to a human (bots
//! stay silent until staff release it), closed / reopened, the customer's rating, and the time
//! of the last staff reply (bots keep quiet for a while after it), until when every customer
//! message goes to the bots (`bots_hold_until`). Attribute updates of the
//! conversation item (`pk=CONV#…`, `sk=CONV`), each conditional on the conversation existing.
use aws_sdk_dynamodb::types::AttributeValue;

use super::dynamo::{applied, key, n, s};
use super::keys;
use super::model::AiSuggestion;
use super::{Store, StoreError};

impl Store {
    async fn update_conversation(
        &self,
        phone_number_id: &str,
        customer_id: &str,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut u = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation_pk(phone_number_id, customer_id),
                keys::CONV_SK,
            )))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)");
        for (k, v) in values {
            u = u.expression_attribute_values(k, v);
        }
        applied(u.send().await)
    }

    /// Hands the conversation over to a human (`Some(reason)`), or releases it to the bots
    /// (`None`). `false` when there is no such conversation.
    pub async fn set_handover(
        &self,
        phone_number_id: &str,
        customer_id: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        match reason {
            Some(r) => {
                self.update_conversation(
                    phone_number_id,
                    customer_id,
                    "SET handed_over_at = if_not_exists(handed_over_at, :t), handover_reason = :r",
                    vec![(":t", n(now_ms)), (":r", s(r))],
                )
                .await
            }
            None => {
                self.update_conversation(
                    phone_number_id,
                    customer_id,
                    "REMOVE handed_over_at, handover_reason SET released_at = :t",
                    vec![(":t", n(now_ms))],
                )
                .await
            }
        }
    }

    /// Closes (`true`) or reopens (`false`) the conversation.
    pub async fn set_closed(
        &self,
        phone_number_id: &str,
        customer_id: &str,
        closed: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if closed {
            self.update_conversation(
                phone_number_id,
                customer_id,
                "SET closed_at = :t",
                vec![(":t", n(now_ms))],
            )
            .await
        } else {
            self.update_conversation(
                phone_number_id,
                customer_id,
                "REMOVE closed_at SET reopened_at = :t",
                vec![(":t", n(now_ms))],
            )
            .await
        }
    }

    /// Stores the AI's suggestion (replacing an older one).
    pub async fn set_ai_suggestion(
        &self,
        phone_number_id: &str,
        customer_id: &str,
        suggestion: &AiSuggestion,
    ) -> Result<bool, StoreError> {
        let v = serde_dynamo::to_attribute_value(suggestion)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.update_conversation(
            phone_number_id,
            customer_id,
            "SET ai_suggestion = :s",
            vec![(":s", v)],
        )
        .await
    }

    /// Removes the suggestion `id` (sent or dismissed); `false` when the conversation holds
    /// no suggestion of that id (another replaced it, or it is gone).
    pub async fn clear_ai_suggestion(
        &self,
        phone_number_id: &str,
        customer_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation_pk(phone_number_id, customer_id),
                keys::CONV_SK,
            )))
            .update_expression("REMOVE ai_suggestion")
            .condition_expression("ai_suggestion.id = :id")
            .expression_attribute_values(":id", s(id))
            .send()
            .await;
        applied(r)
    }

    /// The customer's rating (1–5).
    pub async fn set_rating(
        &self,
        phone_number_id: &str,
        customer_id: &str,
        stars: u8,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.update_conversation(
            phone_number_id,
            customer_id,
            "SET rating = :r, rated_at = :t",
            vec![(":r", n(i64::from(stars))), (":t", n(now_ms))],
        )
        .await
    }

    /// A staff member replied (bots keep quiet for a while); never moves back.
    pub async fn note_staff_reply(
        &self,
        phone_number_id: &str,
        customer_id: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.move_forward(phone_number_id, customer_id, "last_staff_reply_at", at_ms)
            .await
    }

    /// Every customer message of the conversation goes to the bots until `until_ms` (a job
    /// handed off and not yet answered, a menu, a flow or a rating request in progress: see
    /// `crate::bots::gate`); never moves back.
    pub async fn hold_bots(
        &self,
        phone_number_id: &str,
        customer_id: &str,
        until_ms: i64,
    ) -> Result<(), StoreError> {
        self.move_forward(phone_number_id, customer_id, "bots_hold_until", until_ms)
            .await
    }

    /// Sets a time attribute of the conversation unless it holds a later one already.
    async fn move_forward(
        &self,
        phone_number_id: &str,
        customer_id: &str,
        attr: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation_pk(phone_number_id, customer_id),
                keys::CONV_SK,
            )))
            .update_expression("SET #t = :t")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(#t) OR #t < :t)")
            .expression_attribute_names("#t", attr)
            .expression_attribute_values(":t", n(at_ms))
            .send()
            .await;
        applied(r).map(|_| ())
    }
}
