//! Business phone numbers (senders) and the default one.
//!
//! Keys: every number in one partition (`pk=NUMBERS`, `sk={phone_number_id}`), so the list is
//! one Query; the default sender is ONE settings item (`pk=SETTINGS`, `sk=default_number`)
//! pointing to a number, so there is exactly one default at any time. Setting it is a
//! transaction of a `ConditionCheck` (the number exists) and the `Put` of that item.
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::crud::{CrudError, TxOutcome};
use super::dynamo::{Store, StoreError, key, n, s};
use super::keys::SETTINGS_PK;

pub const NUMBERS_PK: &str = "NUMBERS";
pub const DEFAULT_NUMBER_SK: &str = "default_number";

/// A WhatsApp Business phone number we send from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhatsappNumber {
    pub pk: String,
    pub sk: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub verified_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `manual` (added through the API).
    pub source: String,
    /// Meta's throughput for this number (80 by default, up to 1000 after an upgrade): the
    /// pace of every send from it. `None`: the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_second: Option<u32>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl WhatsappNumber {
    pub fn new(
        phone_number_id: String,
        display_phone_number: String,
        verified_name: String,
        label: Option<String>,
        now_ms: i64,
    ) -> Self {
        Self {
            pk: NUMBERS_PK.into(),
            sk: phone_number_id.clone(),
            phone_number_id,
            display_phone_number,
            verified_name,
            label,
            source: "manual".into(),
            messages_per_second: None,
            created_at: now_ms,
            updated_at: now_ms,
        }
    }
}

#[async_trait::async_trait]
impl crate::pacing::LimitSource for Store {
    async fn limit_of(
        &self,
        phone_number_id: &str,
    ) -> Result<Option<u32>, crate::pacing::PaceError> {
        self.number(phone_number_id)
            .await
            .map(|n| n.and_then(|n| n.messages_per_second))
            .map_err(|e| crate::pacing::PaceError::Store(e.to_string()))
    }
}

#[derive(Deserialize)]
struct DefaultPointer {
    phone_number_id: String,
}

impl Store {
    /// Every business number, by `phone_number_id`.
    pub async fn numbers(&self) -> Result<Vec<WhatsappNumber>, StoreError> {
        self.partition_all(NUMBERS_PK).await
    }

    pub async fn number(
        &self,
        phone_number_id: &str,
    ) -> Result<Option<WhatsappNumber>, StoreError> {
        self.get(NUMBERS_PK.into(), phone_number_id).await
    }

    /// Adds a number (`already_exists` if its id is known). The first number added becomes
    /// the default when there is none yet.
    pub async fn add_number(&self, num: &WhatsappNumber) -> Result<(), CrudError> {
        if !self.put_new(num).await? {
            return Err(CrudError::conflict(
                "already_exists",
                format!("number {} is already added", num.phone_number_id),
            ));
        }
        let mut item = key(SETTINGS_PK, DEFAULT_NUMBER_SK);
        item.insert("phone_number_id".into(), s(&num.phone_number_id));
        item.insert("updated_at".into(), n(num.created_at));
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if super::dynamo::is_conditional_failure_put(&e) => Ok(()),
            Err(e) => Err(StoreError::sdk(e).into()),
        }
    }

    /// Replaces a number's editable fields; `NotFound` when it was never added.
    pub async fn update_number(&self, num: &WhatsappNumber) -> Result<(), CrudError> {
        let item = self.tx_put(num, Some("attribute_exists(pk)"), vec![])?;
        match self.transact(vec![item]).await? {
            TxOutcome::Done => Ok(()),
            TxOutcome::ConditionFailed(_) => Err(CrudError::NotFound(format!(
                "number {}",
                num.phone_number_id
            ))),
            TxOutcome::Conflict => Err(super::quick_replies::concurrent()),
        }
    }

    /// Makes `phone_number_id` the default sender, atomically with the check that it exists.
    pub async fn set_default_number(
        &self,
        phone_number_id: &str,
        staff_id: &str,
        now_ms: i64,
    ) -> Result<(), CrudError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(NUMBERS_PK, phone_number_id)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(|e| StoreError::Dynamo(e.to_string()))?;
        #[derive(Serialize)]
        struct Pointer<'a> {
            pk: &'a str,
            sk: &'a str,
            phone_number_id: &'a str,
            updated_by: &'a str,
            updated_at: i64,
        }
        let put = self.tx_put(
            &Pointer {
                pk: SETTINGS_PK,
                sk: DEFAULT_NUMBER_SK,
                phone_number_id,
                updated_by: staff_id,
                updated_at: now_ms,
            },
            None,
            vec![],
        )?;
        let items = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            put,
        ];
        match self.transact(items).await? {
            TxOutcome::Done => Ok(()),
            TxOutcome::ConditionFailed(_) => {
                Err(CrudError::NotFound(format!("number {phone_number_id}")))
            }
            TxOutcome::Conflict => Err(super::quick_replies::concurrent()),
        }
    }

    /// The id of the default sender, if one was set.
    pub async fn default_number_id(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .get::<DefaultPointer>(SETTINGS_PK.into(), DEFAULT_NUMBER_SK)
            .await?
            .map(|p| p.phone_number_id))
    }

    /// The default sender (used when a send does not name a number), if any.
    pub async fn default_number(&self) -> Result<Option<WhatsappNumber>, StoreError> {
        match self.default_number_id().await? {
            Some(id) => self.number(&id).await,
            None => Ok(None),
        }
    }
}
