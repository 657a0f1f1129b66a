//! Named settings (`pk=SETTINGS`, `sk={name}`), each one JSON document in `value`.
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::dynamo::{key, n, s};
use super::{Store, StoreError, keys};

impl Store {
    /// The setting `name`, `None` when never set.
    pub async fn setting<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StoreError> {
        #[derive(serde::Deserialize)]
        struct Row {
            value: String,
        }
        match self.get::<Row>(keys::SETTINGS_PK.into(), name).await? {
            None => Ok(None),
            Some(r) => serde_json::from_str(&r.value)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("setting {name}: {e}"))),
        }
    }

    pub async fn put_setting<T: Serialize>(
        &self,
        name: &str,
        value: &T,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut item = key(keys::SETTINGS_PK, name);
        item.insert(
            "value".into(),
            s(serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))?),
        );
        item.insert("updated_at".into(), n(now_ms));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }
}
