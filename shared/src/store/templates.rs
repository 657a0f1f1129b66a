//! Message templates of a WABA: `pk=TPL#{waba_id}`, `sk={name}#{language}`.
//!
//! One item per template, written by two sources that never clobber each other:
//! - the template sync ([`crate::templates::sync`]) writes what Meta lists: id, category,
//!   parameter format, components, and the status as of the sync's start;
//! - `message_template_status_update` webhooks ([`Store::apply_template_status`]) write only the
//!   status, its reason and time (never the components).
//!
//! The status is newest-wins on `status_at` (ms): a webhook received after a sync started beats
//! the sync's snapshot, and a sync beats an older webhook. A template that Meta no longer lists
//! is kept, flagged `gone` with status `DELETED`, unless something newer was heard of it.
use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use super::dynamo::{
    Item, Store, StoreError, applied, from_item, is_conditional_failure_update, key, n, s,
};
use super::keys;

/// Status given to a template that Meta no longer lists.
pub const GONE_STATUS: &str = "DELETED";

/// A stored template (see the module documentation for who writes what).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTemplate {
    pub pk: String,
    pub sk: String,
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub waba_id: Option<String>,
    /// Meta's template id.
    #[serde(default)]
    pub template_id: Option<String>,
    /// `MARKETING`, `UTILITY`, `AUTHENTICATION`.
    #[serde(default)]
    pub category: Option<String>,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, … (`DELETED` once gone).
    #[serde(default)]
    pub status: Option<String>,
    /// Reason Meta gave with the last status webhook (`NONE` when approved).
    #[serde(default)]
    pub reason: Option<String>,
    /// When the stored status was true (ms): webhook receipt time or sync start.
    #[serde(default)]
    pub status_at: Option<i64>,
    /// The last status webhook, as Meta sent it.
    #[serde(default)]
    pub status_raw: Option<String>,
    /// `POSITIONAL` or `NAMED` (Meta omits it for positional templates).
    #[serde(default)]
    pub parameter_format: Option<String>,
    /// Meta's `components` array, as JSON text. `None` until a sync has seen the template.
    #[serde(default)]
    pub components: Option<String>,
    /// Last sync that listed this template (ms).
    #[serde(default)]
    pub synced_at: Option<i64>,
    /// Last change of this item (ms).
    #[serde(default)]
    pub updated_at: Option<i64>,
    /// Meta no longer lists it.
    #[serde(default)]
    pub gone: bool,
    #[serde(default)]
    pub gone_at: Option<i64>,
    /// Meta's quality rating (`GREEN`, `YELLOW`, `RED`, `UNKNOWN`) from
    /// `message_template_quality_update`, the one before it, and when it changed (ms).
    #[serde(default)]
    pub quality_score: Option<String>,
    #[serde(default)]
    pub quality_previous: Option<String>,
    #[serde(default)]
    pub quality_at: Option<i64>,
    /// The category before the last `template_category_update` (what a send cost before).
    #[serde(default)]
    pub category_previous: Option<String>,
    /// An announced category change: the category the template gets at `category_pending_at`.
    #[serde(default)]
    pub category_pending: Option<String>,
    #[serde(default)]
    pub category_pending_at: Option<i64>,
    #[serde(default)]
    pub category_at: Option<i64>,
    /// When the components were last changed by a `message_template_components_update` (ms).
    #[serde(default)]
    pub components_at: Option<i64>,
}

impl StoredTemplate {
    /// Positional unless Meta says `NAMED`.
    pub fn is_named(&self) -> bool {
        self.parameter_format
            .as_deref()
            .is_some_and(|f| f.eq_ignore_ascii_case("NAMED"))
    }

    /// Approved, still listed by Meta, and loaded (its parameters are known): may be sent.
    pub fn is_sendable(&self) -> bool {
        !self.gone && self.status.as_deref() == Some("APPROVED") && self.components.is_some()
    }

    /// The stored components (empty when never synced or unreadable).
    pub fn components_json(&self) -> Vec<serde_json::Value> {
        self.components
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default()
    }
}

/// What a sync learnt of one template from Meta.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncedTemplate<'a> {
    pub name: &'a str,
    pub language: &'a str,
    pub template_id: &'a str,
    pub status: &'a str,
    pub category: Option<&'a str>,
    pub parameter_format: Option<&'a str>,
    /// Components as JSON text.
    pub components: &'a str,
}

/// A `message_template_status_update`, as the store applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateStatusChange<'a> {
    pub waba_id: &'a str,
    pub name: &'a str,
    pub language: &'a str,
    /// Meta's `event` (the new status).
    pub event: &'a str,
    pub reason: Option<&'a str>,
    pub template_id: Option<&'a str>,
    pub category: Option<&'a str>,
    /// The webhook value as Meta sent it.
    pub raw: &'a str,
    /// When it was received (ms).
    pub at_ms: i64,
}

/// Which template an update is about.
#[derive(Debug, Clone, Copy)]
pub struct TemplateRef<'a> {
    pub waba_id: &'a str,
    pub name: &'a str,
    pub language: &'a str,
}

/// A `template_category_update`.
#[derive(Debug, Clone, Copy)]
pub enum CategoryChange<'a> {
    /// The template's category is now `now` (was `previous`).
    Completed {
        now: &'a str,
        previous: Option<&'a str>,
    },
    /// The template will be `to` from `effective_ms`.
    Impending {
        to: &'a str,
        effective_ms: Option<i64>,
    },
}

/// Filters of a template list; `None` = any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateFilter {
    pub status: Option<String>,
    pub language: Option<String>,
    pub category: Option<String>,
    /// Substring of the name.
    pub name_contains: Option<String>,
    /// Include templates Meta no longer lists.
    pub include_gone: bool,
    /// Only templates a sync has loaded (known only from a status webhook otherwise).
    pub loaded_only: bool,
}

/// The record of a WABA's last template sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateSyncRecord {
    pub pk: String,
    pub sk: String,
    pub waba_id: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub loaded: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub gone: u64,
}

/// Outcome of writing a synced template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncWrite {
    /// Content and status written.
    Written,
    /// Content written; the status was kept, something newer is stored.
    StatusKept,
}

impl Store {
    pub async fn template(
        &self,
        waba_id: &str,
        name: &str,
        language: &str,
    ) -> Result<Option<StoredTemplate>, StoreError> {
        self.get(
            keys::template_pk(waba_id),
            &keys::template_sk(name, language),
        )
        .await
    }

    /// Languages in which a template name is stored (for a helpful "not found").
    pub async fn template_languages(
        &self,
        waba_id: &str,
        name: &str,
    ) -> Result<Vec<StoredTemplate>, StoreError> {
        let prefix = format!("{name}#");
        self.query_templates(
            waba_id,
            Some(&prefix),
            None,
            &TemplateFilter {
                include_gone: true,
                ..Default::default()
            },
            usize::MAX,
        )
        .await
        .map(|(v, _)| v)
    }

    /// Every stored template of a WABA, gone ones included, in `sk` order.
    pub async fn all_templates(&self, waba_id: &str) -> Result<Vec<StoredTemplate>, StoreError> {
        let filter = TemplateFilter {
            include_gone: true,
            ..Default::default()
        };
        self.query_templates(waba_id, None, None, &filter, usize::MAX)
            .await
            .map(|(v, _)| v)
    }

    /// One page of templates matching `filter`, in name / language order, after the `sk`
    /// `after`. The second value is the `sk` to continue from when more may follow.
    pub async fn template_page(
        &self,
        waba_id: &str,
        filter: &TemplateFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<StoredTemplate>, Option<String>), StoreError> {
        self.query_templates(waba_id, None, after, filter, limit.max(1))
            .await
    }

    async fn query_templates(
        &self,
        waba_id: &str,
        prefix: Option<&str>,
        after: Option<&str>,
        filter: &TemplateFilter,
        limit: usize,
    ) -> Result<(Vec<StoredTemplate>, Option<String>), StoreError> {
        let mut names: HashMap<String, String> = HashMap::new();
        let mut values: HashMap<String, AttributeValue> =
            HashMap::from([(":p".to_string(), s(keys::template_pk(waba_id)))]);
        let key_cond = match (prefix, after) {
            (Some(p), _) => {
                values.insert(":pre".into(), s(p));
                "pk = :p AND begins_with(sk, :pre)"
            }
            (None, Some(a)) => {
                values.insert(":after".into(), s(a));
                "pk = :p AND sk > :after"
            }
            (None, None) => "pk = :p",
        };
        let mut conds = Vec::new();
        if let Some(st) = &filter.status {
            names.insert("#st".into(), "status".into());
            values.insert(":st".into(), s(st));
            conds.push("#st = :st");
        }
        if let Some(l) = &filter.language {
            names.insert("#l".into(), "language".into());
            values.insert(":l".into(), s(l));
            conds.push("#l = :l");
        }
        if let Some(c) = &filter.category {
            names.insert("#cat".into(), "category".into());
            values.insert(":c".into(), s(c));
            conds.push("#cat = :c");
        }
        if let Some(nm) = &filter.name_contains {
            names.insert("#n".into(), "name".into());
            values.insert(":n".into(), s(nm));
            conds.push("contains(#n, :n)");
        }
        if !filter.include_gone {
            names.insert("#gone".into(), "gone".into());
            values.insert(":false".into(), AttributeValue::Bool(false));
            conds.push("(attribute_not_exists(#gone) OR #gone = :false)");
        }
        if filter.loaded_only {
            names.insert("#comp".into(), "components".into());
            conds.push("attribute_exists(#comp)");
        }
        let mut out: Vec<StoredTemplate> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(key_cond)
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start.take())
                .consistent_read(true);
            if !names.is_empty() {
                q = q.set_expression_attribute_names(Some(names.clone()));
            }
            if !conds.is_empty() {
                q = q.filter_expression(conds.join(" AND "));
            }
            let page = q.send().await.map_err(StoreError::sdk)?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item(item)?);
            }
            start = page.last_evaluated_key;
            if out.len() > limit {
                out.truncate(limit);
                let next = out.last().map(|t| t.sk.clone());
                return Ok((out, next));
            }
            if start.is_none() {
                return Ok((out, None));
            }
            if out.len() == limit {
                let next = out.last().map(|t| t.sk.clone());
                return Ok((out, next));
            }
        }
    }

    /// Writes what a sync learnt of a template (content always; status only if nothing newer
    /// is stored). `started_ms` is when the sync asked Meta; `now_ms` is now.
    pub async fn put_synced_template(
        &self,
        waba_id: &str,
        t: &SyncedTemplate<'_>,
        clear_reason: bool,
        started_ms: i64,
        now_ms: i64,
    ) -> Result<SyncWrite, StoreError> {
        let build = |with_status: bool| {
            let mut set = vec![
                "#n = :n",
                "#l = :l",
                "waba_id = :w",
                "template_id = :id",
                "#comp = :comp",
                "synced_at = :now",
                "updated_at = :now",
                "#gone = :false",
            ];
            let mut remove = vec!["gone_at"];
            let mut b = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(
                    keys::template_pk(waba_id),
                    keys::template_sk(t.name, t.language),
                )))
                .expression_attribute_names("#n", "name")
                .expression_attribute_names("#l", "language")
                .expression_attribute_names("#comp", "components")
                .expression_attribute_names("#gone", "gone")
                .expression_attribute_names("#cat", "category")
                .expression_attribute_values(":n", s(t.name))
                .expression_attribute_values(":l", s(t.language))
                .expression_attribute_values(":w", s(waba_id))
                .expression_attribute_values(":id", s(t.template_id))
                .expression_attribute_values(":comp", s(t.components))
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":false", AttributeValue::Bool(false));
            match t.category {
                Some(c) => {
                    set.push("#cat = :c");
                    b = b.expression_attribute_values(":c", s(c));
                }
                None => remove.push("#cat"),
            }
            match t.parameter_format {
                Some(f) => {
                    set.push("parameter_format = :pf");
                    b = b.expression_attribute_values(":pf", s(f));
                }
                None => remove.push("parameter_format"),
            }
            if with_status {
                set.push("#st = :st");
                set.push("status_at = :t");
                b = b
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_values(":st", s(t.status))
                    .expression_attribute_values(":t", n(started_ms))
                    .condition_expression("attribute_not_exists(status_at) OR status_at <= :t");
                if clear_reason {
                    remove.push("#rsn");
                    b = b.expression_attribute_names("#rsn", "reason");
                }
            }
            b.update_expression(format!(
                "SET {} REMOVE {}",
                set.join(", "),
                remove.join(", ")
            ))
        };
        match build(true).send().await {
            Ok(_) => Ok(SyncWrite::Written),
            Err(e) if is_conditional_failure_update(&e) => {
                build(false).send().await.map_err(StoreError::sdk)?;
                Ok(SyncWrite::StatusKept)
            }
            Err(e) => Err(StoreError::sdk(e)),
        }
    }

    /// Flags a template Meta no longer lists (`gone`, status `DELETED`), unless it is gone
    /// already or a status newer than the sync's start is stored. `Ok(true)` when flagged.
    pub async fn mark_template_gone(
        &self,
        waba_id: &str,
        name: &str,
        language: &str,
        started_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::template_pk(waba_id),
                keys::template_sk(name, language),
            )))
            .update_expression(
                "SET #gone = :true, gone_at = :now, #st = :del, status_at = :t, updated_at = :now",
            )
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(#gone) OR #gone = :false) \
                 AND (attribute_not_exists(status_at) OR status_at <= :t)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#gone", "gone")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":del", s(GONE_STATUS))
            .expression_attribute_values(":t", n(started_ms))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        applied(r)
    }

    /// Applies a `message_template_status_update` at once: status, reason and time (newest
    /// `status_at` wins); the components a sync stored are left alone. A `DELETED` event flags
    /// the template gone; any other event means Meta has it. `Ok(false)` when a newer status
    /// was already stored.
    pub async fn apply_template_status(
        &self,
        c: &TemplateStatusChange<'_>,
    ) -> Result<bool, StoreError> {
        let gone = c.event.eq_ignore_ascii_case(GONE_STATUS);
        let mut set = vec![
            "#n = :n",
            "#l = :l",
            "waba_id = :w",
            "#st = :e",
            "status_at = :t",
            "status_raw = :raw",
            "updated_at = :t",
            "#gone = :gone",
        ];
        let mut remove = Vec::new();
        let mut b = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::template_pk(c.waba_id),
                keys::template_sk(c.name, c.language),
            )))
            .condition_expression("attribute_not_exists(status_at) OR status_at <= :t")
            .expression_attribute_names("#n", "name")
            .expression_attribute_names("#l", "language")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#gone", "gone")
            .expression_attribute_names("#rsn", "reason")
            .expression_attribute_values(":n", s(c.name))
            .expression_attribute_values(":l", s(c.language))
            .expression_attribute_values(":w", s(c.waba_id))
            .expression_attribute_values(":e", s(c.event))
            .expression_attribute_values(":raw", s(c.raw))
            .expression_attribute_values(":t", n(c.at_ms))
            .expression_attribute_values(":gone", AttributeValue::Bool(gone));
        if gone {
            set.push("gone_at = if_not_exists(gone_at, :t)");
        } else {
            remove.push("gone_at");
        }
        match c.reason.filter(|r| !r.is_empty()) {
            Some(r) => {
                set.push("#rsn = :r");
                b = b.expression_attribute_values(":r", s(r));
            }
            None => remove.push("#rsn"),
        }
        if let Some(id) = c.template_id.filter(|i| !i.is_empty()) {
            set.push("template_id = if_not_exists(template_id, :id)");
            b = b.expression_attribute_values(":id", s(id));
        }
        if let Some(cat) = c.category.filter(|i| !i.is_empty()) {
            set.push("#cat = :c");
            b = b
                .expression_attribute_names("#cat", "category")
                .expression_attribute_values(":c", s(cat));
        }
        let mut expr = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expr.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        applied(b.update_expression(expr).send().await)
    }

    /// Applies a `message_template_quality_update` (newest `quality_at` wins). `Ok(false)` when
    /// a newer rating was stored.
    pub async fn apply_template_quality(
        &self,
        t: &TemplateRef<'_>,
        score: &str,
        previous: Option<&str>,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let r = self
            .template_update(t)
            .update_expression(
                "SET #n = :n, #l = :l, waba_id = :w, quality_score = :q, quality_previous = :p, \
                 quality_at = :t, updated_at = :t",
            )
            .condition_expression("attribute_not_exists(quality_at) OR quality_at <= :t")
            .expression_attribute_values(":q", s(score))
            .expression_attribute_values(":p", s(previous.unwrap_or("")))
            .expression_attribute_values(":t", n(at_ms))
            .send()
            .await;
        applied(r)
    }

    /// Applies a `template_category_update`: a completed change sets the category (and keeps
    /// the previous one); an impending one records the category to come and when. Newest
    /// `category_at` wins. `Ok(false)` when a newer change was stored.
    pub async fn apply_template_category(
        &self,
        t: &TemplateRef<'_>,
        change: &CategoryChange<'_>,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let b = self
            .template_update(t)
            .condition_expression("attribute_not_exists(category_at) OR category_at <= :t")
            .expression_attribute_values(":t", n(at_ms));
        let b = match change {
            CategoryChange::Completed { now, previous } => b
                .update_expression(
                    "SET #n = :n, #l = :l, waba_id = :w, category = :c, category_previous = :p, \
                     category_at = :t, updated_at = :t REMOVE category_pending, category_pending_at",
                )
                .expression_attribute_values(":c", s(*now))
                .expression_attribute_values(":p", s(previous.unwrap_or(""))),
            CategoryChange::Impending { to, effective_ms } => b
                .update_expression(
                    "SET #n = :n, #l = :l, waba_id = :w, category_pending = :c, \
                     category_pending_at = :e, category_at = :t, updated_at = :t",
                )
                .expression_attribute_values(":c", s(*to))
                .expression_attribute_values(":e", n(effective_ms.unwrap_or(0))),
        };
        applied(b.send().await)
    }

    /// Replaces a template's components after a `message_template_components_update`
    /// (`components` as JSON text, merged by the caller). Newest `components_at` wins.
    pub async fn apply_template_components(
        &self,
        t: &TemplateRef<'_>,
        components: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let r = self
            .template_update(t)
            .update_expression(
                "SET #n = :n, #l = :l, waba_id = :w, components = :c, components_at = :t, \
                 updated_at = :t",
            )
            .condition_expression("attribute_not_exists(components_at) OR components_at <= :t")
            .expression_attribute_values(":c", s(components))
            .expression_attribute_values(":t", n(at_ms))
            .send()
            .await;
        applied(r)
    }

    /// An update of one template item, with its name, language and WABA set.
    fn template_update(
        &self,
        t: &TemplateRef<'_>,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::template_pk(t.waba_id),
                keys::template_sk(t.name, t.language),
            )))
            .expression_attribute_names("#n", "name")
            .expression_attribute_names("#l", "language")
            .expression_attribute_values(":n", s(t.name))
            .expression_attribute_values(":l", s(t.language))
            .expression_attribute_values(":w", s(t.waba_id))
    }

    pub async fn put_template_sync(&self, r: &TemplateSyncRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(super::dynamo::to_item(r)?))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    pub async fn template_sync(
        &self,
        waba_id: &str,
    ) -> Result<Option<TemplateSyncRecord>, StoreError> {
        self.get(keys::template_sync_pk(waba_id), keys::TEMPLATE_SYNC_SK)
            .await
    }
}
