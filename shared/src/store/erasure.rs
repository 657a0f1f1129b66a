//! Erasing what is stored of a customer (privacy requests): the items of its conversations,
//! their wamid and media records, send intents, aliases and auto-lead claim, and the profile.
use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};

use super::dynamo::{Item, from_item, key, s};
use super::model::MessageItem;
use super::{Store, StoreError, keys};

impl Store {
    /// Every message item under a conversation (and whether the conversation item exists).
    pub async fn conversation_items(
        &self,
        phone_number_id: &str,
        customer_id: &str,
    ) -> Result<(bool, Vec<MessageItem>), StoreError> {
        let pk = keys::conversation_pk(phone_number_id, customer_id);
        let mut messages = Vec::new();
        let mut conversation = false;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(&pk))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::sdk)?;
            for item in out.items.unwrap_or_default() {
                let sk = item.get("sk").and_then(|v| v.as_s().ok()).cloned();
                match sk.as_deref() {
                    Some(keys::CONV_SK) => conversation = true,
                    Some(sk) if sk.starts_with(keys::MSG_PREFIX) => messages.push(from_item(item)?),
                    _ => {}
                }
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok((conversation, messages)),
            }
        }
    }

    /// Deletes items by key, 25 per `BatchWriteItem`, retrying what DynamoDB leaves
    /// unprocessed. Deleting an item that does not exist is not an error.
    pub async fn delete_keys(&self, items: &[(String, String)]) -> Result<(), StoreError> {
        let requests = items
            .iter()
            .map(|(pk, sk)| {
                DeleteRequest::builder()
                    .set_key(Some(key(pk.clone(), sk.clone())))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
                    .map_err(|e| StoreError::Dynamo(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(requests).await
    }
}
