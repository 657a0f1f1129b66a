//! WhatsApp contacts and groups: the audiences campaigns send to.
//!
//! Keys:
//! - contact: `pk=WACONTACTS`, `sk={id}` (ids sort by creation: the list is one Query);
//! - phone claim: `pk=WAPHONE#{canonical E.164}`, `sk=CLAIM`, `claimed_by={contact id}`: one
//!   contact per number, written in the same transaction as the contact;
//! - group: `pk=WAGROUPS`, `sk={id}`, with a `member_count`;
//! - membership: `pk=WAGROUP#{group id}`, `sk=MEMBER#{contact id}`: the members of a group are
//!   one Query (then one `BatchGetItem` of the contacts); the contact keeps its `group_ids`.
//!
//! Every contact change is a diff of the old and new item written in ONE transaction: the
//! contact (optimistic lock on `version`), the phone claims, the membership items and the
//! groups' `member_count`. So `group_ids` and the membership items never disagree.
use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{ReturnValue, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::crud::{CrudError, TxOutcome};
use super::dynamo::{Store, StoreError, from_item, key, n, s};
use super::quick_replies::concurrent;

pub const CONTACTS_PK: &str = "WACONTACTS";
pub const GROUPS_PK: &str = "WAGROUPS";
const MEMBER_PREFIX: &str = "MEMBER#";
/// Groups one contact may belong to (keeps every contact write within one transaction).
pub const MAX_GROUPS_PER_CONTACT: usize = 40;
/// Tries of a contact write that lost an optimistic-lock race.
const ATTEMPTS: u32 = 8;

/// Jittered pause before a retry (none before the first try).
async fn backoff(attempt: u32) {
    if attempt > 0 {
        let cap = 10u64 << attempt.min(5);
        tokio::time::sleep(std::time::Duration::from_millis(rand::random_range(
            cap / 2..=cap,
        )))
        .await;
    }
}

pub fn phone_claim_pk(canonical_e164: &str) -> String {
    format!("WAPHONE#{canonical_e164}")
}

pub fn group_members_pk(group_id: &str) -> String {
    format!("WAGROUP#{group_id}")
}

pub fn member_sk(contact_id: &str) -> String {
    format!("{MEMBER_PREFIX}{contact_id}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaContact {
    pub pk: String,
    pub sk: String,
    pub id: String,
    pub name: String,
    /// E.164.
    pub phone: String,
    /// Canonical matching key of `phone` (the claim's key).
    pub phone_key: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub opted_in: bool,
    #[serde(default)]
    pub group_ids: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default)]
    pub version: i64,
}

impl WaContact {
    pub fn new(id: String, name: String, e164: String, now_ms: i64) -> Self {
        Self {
            pk: CONTACTS_PK.into(),
            sk: id.clone(),
            id,
            name,
            phone_key: crate::phone::PhoneNormalizer::canonical_key(&e164),
            phone: e164,
            tags: Vec::new(),
            opted_in: false,
            group_ids: Vec::new(),
            created_at: now_ms,
            updated_at: now_ms,
            version: 1,
        }
    }

    /// Sets the phone (E.164) and its claim key.
    pub fn set_phone(&mut self, e164: String) {
        self.phone_key = crate::phone::PhoneNormalizer::canonical_key(&e164);
        self.phone = e164;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaGroup {
    pub pk: String,
    pub sk: String,
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub member_count: i64,
    /// Set when a deletion started: hidden, no new members; the deletion resumes on retry.
    #[serde(default)]
    pub deleting: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl WaGroup {
    pub fn new(id: String, name: String, description: Option<String>, now_ms: i64) -> Self {
        Self {
            pk: GROUPS_PK.into(),
            sk: id.clone(),
            id,
            name,
            description,
            member_count: 0,
            deleting: false,
            created_at: now_ms,
            updated_at: now_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMember {
    pub pk: String,
    pub sk: String,
    pub group_id: String,
    pub contact_id: String,
    pub added_at: i64,
}

/// Progress of a group deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupDeletion {
    /// The group and all its memberships are gone.
    Done { removed: usize },
    /// The budget ran out: members remain; call again to continue.
    InProgress { removed: usize },
}

/// What each item of a contact transaction stands for (to explain a failed condition).
enum Part {
    Contact,
    PhoneClaim,
    OldPhoneClaim,
    Membership,
    GroupAdded(String),
    GroupRemoved(String),
}

impl Store {
    // ---------- contacts ----------

    pub async fn wa_contacts(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<WaContact>, Option<String>), StoreError> {
        self.partition_page(CONTACTS_PK, after, limit).await
    }

    pub async fn wa_contact(&self, id: &str) -> Result<Option<WaContact>, StoreError> {
        self.get(CONTACTS_PK.into(), id).await
    }

    /// Creates a contact with its phone claim and memberships (`phone_taken`, or `NotFound`
    /// naming a group that does not exist).
    pub async fn create_wa_contact(&self, c: &WaContact) -> Result<(), CrudError> {
        self.save_contact(None, Some(c)).await
    }

    /// Reads the contact, lets `change` edit it (returning whether anything changed) and
    /// writes the difference; retried when someone else changed the contact meanwhile.
    pub async fn modify_wa_contact<F>(
        &self,
        id: &str,
        now_ms: i64,
        mut change: F,
    ) -> Result<WaContact, CrudError>
    where
        F: FnMut(&mut WaContact) -> Result<bool, CrudError>,
    {
        for attempt in 0..ATTEMPTS {
            backoff(attempt).await;
            let old = self
                .wa_contact(id)
                .await?
                .ok_or_else(|| CrudError::NotFound(format!("contact {id}")))?;
            let mut new = old.clone();
            if !change(&mut new)? {
                return Ok(old);
            }
            new.version = old.version + 1;
            new.updated_at = now_ms;
            match self.save_contact(Some(&old), Some(&new)).await {
                Ok(()) => return Ok(new),
                Err(CrudError::Conflict {
                    code: "concurrent_update",
                    ..
                }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(concurrent())
    }

    /// Deletes a contact, its phone claim and its memberships.
    pub async fn delete_wa_contact(&self, id: &str) -> Result<(), CrudError> {
        for attempt in 0..ATTEMPTS {
            backoff(attempt).await;
            let old = self
                .wa_contact(id)
                .await?
                .ok_or_else(|| CrudError::NotFound(format!("contact {id}")))?;
            match self.save_contact(Some(&old), None).await {
                Ok(()) => return Ok(()),
                Err(CrudError::Conflict {
                    code: "concurrent_update",
                    ..
                }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(concurrent())
    }

    /// Writes the difference between `old` and `new` in one transaction.
    async fn save_contact(
        &self,
        old: Option<&WaContact>,
        new: Option<&WaContact>,
    ) -> Result<(), CrudError> {
        let empty: Vec<String> = Vec::new();
        let old_groups: HashSet<&String> = old.map_or(&empty, |c| &c.group_ids).iter().collect();
        let new_groups: HashSet<&String> = new.map_or(&empty, |c| &c.group_ids).iter().collect();
        let added: Vec<String> = new
            .map_or(&empty, |c| &c.group_ids)
            .iter()
            .filter(|g| !old_groups.contains(g))
            .cloned()
            .collect();
        let removed: Vec<String> = old
            .map_or(&empty, |c| &c.group_ids)
            .iter()
            .filter(|g| !new_groups.contains(g))
            .cloned()
            .collect();
        if new_groups.len() > MAX_GROUPS_PER_CONTACT {
            return Err(CrudError::Invalid {
                field: "group_ids",
                message: format!("a contact can be in at most {MAX_GROUPS_PER_CONTACT} groups"),
            });
        }
        if added.len() + removed.len() > MAX_GROUPS_PER_CONTACT {
            return Err(CrudError::Invalid {
                field: "group_ids",
                message: format!(
                    "at most {MAX_GROUPS_PER_CONTACT} group memberships can change at once"
                ),
            });
        }
        let id = new.or(old).map(|c| c.id.clone()).unwrap_or_default();
        let now = new.map_or(0, |c| c.updated_at);
        // Groups found gone while removing memberships: only the membership item is deleted.
        let mut gone: HashSet<String> = HashSet::new();
        for _ in 0..=removed.len() {
            let mut items: Vec<TransactWriteItem> = Vec::new();
            let mut parts: Vec<Part> = Vec::new();
            match (old, new) {
                (None, Some(c)) => {
                    items.push(self.tx_put(c, Some("attribute_not_exists(pk)"), vec![])?);
                }
                (Some(o), Some(c)) => {
                    items.push(self.tx_put(c, Some("version = :v"), vec![(":v", n(o.version))])?);
                }
                (Some(o), None) => {
                    items.push(self.tx_delete(
                        o.pk.clone(),
                        &o.sk,
                        Some("version = :v"),
                        vec![(":v", n(o.version))],
                    )?);
                }
                (None, None) => return Ok(()),
            }
            parts.push(Part::Contact);
            let old_claim = old.map(|c| phone_claim_pk(&c.phone_key));
            let new_claim = new.map(|c| phone_claim_pk(&c.phone_key));
            if old_claim != new_claim {
                let moves = self.tx_claim_moves(old_claim.clone(), new_claim.clone(), &id)?;
                if new_claim.is_some() {
                    parts.push(Part::PhoneClaim);
                }
                if old_claim.is_some() {
                    parts.push(Part::OldPhoneClaim);
                }
                items.extend(moves);
            }
            for g in &added {
                items.push(self.tx_put(
                    &GroupMember {
                        pk: group_members_pk(g),
                        sk: member_sk(&id),
                        group_id: g.clone(),
                        contact_id: id.clone(),
                        added_at: now,
                    },
                    None,
                    vec![],
                )?);
                parts.push(Part::Membership);
                items.push(self.tx_group_count(
                    g,
                    1,
                    "attribute_exists(pk) AND (attribute_not_exists(deleting) OR deleting = :f)",
                    true,
                )?);
                parts.push(Part::GroupAdded(g.clone()));
            }
            for g in &removed {
                items.push(self.tx_delete(group_members_pk(g), &member_sk(&id), None, vec![])?);
                parts.push(Part::Membership);
                if !gone.contains(g) {
                    items.push(self.tx_group_count(g, -1, "attribute_exists(pk)", false)?);
                    parts.push(Part::GroupRemoved(g.clone()));
                }
            }
            match self.transact(items).await? {
                TxOutcome::Done => return Ok(()),
                TxOutcome::Conflict => return Err(concurrent()),
                TxOutcome::ConditionFailed(i) => match parts.get(i) {
                    Some(Part::Contact) if old.is_none() => {
                        return Err(CrudError::conflict(
                            "already_exists",
                            format!("contact {id} already exists"),
                        ));
                    }
                    Some(Part::PhoneClaim) => {
                        let c = new.expect("a new claim comes with a new contact");
                        let owner = self.claim_owner(phone_claim_pk(&c.phone_key)).await?;
                        return Err(CrudError::conflict(
                            "phone_taken",
                            match owner {
                                Some(o) => {
                                    format!("phone {} is already used by contact {o}", c.phone)
                                }
                                None => {
                                    format!("phone {} is already used by another contact", c.phone)
                                }
                            },
                        ));
                    }
                    Some(Part::GroupAdded(g)) => {
                        return Err(CrudError::NotFound(format!("group {g}")));
                    }
                    Some(Part::GroupRemoved(g)) => {
                        tracing::warn!(group_id = %g, contact_id = %id, "membership of a group that no longer exists dropped");
                        gone.insert(g.clone());
                        continue;
                    }
                    Some(Part::Contact | Part::OldPhoneClaim | Part::Membership) | None => {
                        return Err(concurrent());
                    }
                },
            }
        }
        Err(concurrent())
    }

    fn tx_group_count(
        &self,
        group_id: &str,
        delta: i64,
        condition: &str,
        with_false: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(GROUPS_PK, group_id)))
            .update_expression("ADD member_count :d")
            .condition_expression(condition)
            .expression_attribute_values(":d", n(delta));
        if with_false {
            u = u.expression_attribute_values(
                ":f",
                aws_sdk_dynamodb::types::AttributeValue::Bool(false),
            );
        }
        Ok(TransactWriteItem::builder()
            .update(u.build().map_err(|e| StoreError::Dynamo(e.to_string()))?)
            .build())
    }

    // ---------- groups ----------

    /// Groups in creation order (groups being deleted are left out, so a page may be short).
    pub async fn wa_groups(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<WaGroup>, Option<String>), StoreError> {
        let (rows, next) = self
            .partition_page::<WaGroup>(GROUPS_PK, after, limit)
            .await?;
        Ok((rows.into_iter().filter(|g| !g.deleting).collect(), next))
    }

    /// A group (`None` when it does not exist or is being deleted).
    pub async fn wa_group(&self, id: &str) -> Result<Option<WaGroup>, StoreError> {
        Ok(self
            .get::<WaGroup>(GROUPS_PK.into(), id)
            .await?
            .filter(|g| !g.deleting))
    }

    pub async fn create_wa_group(&self, g: &WaGroup) -> Result<(), CrudError> {
        if self.put_new(g).await? {
            Ok(())
        } else {
            Err(CrudError::conflict(
                "already_exists",
                format!("group {} already exists", g.id),
            ))
        }
    }

    /// Changes a group's name and description (`None` removes the description).
    pub async fn update_wa_group(
        &self,
        id: &str,
        name: &str,
        description: Option<&str>,
        now_ms: i64,
    ) -> Result<WaGroup, CrudError> {
        let mut u = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(GROUPS_PK, id)))
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(deleting) OR deleting = :f)",
            )
            .expression_attribute_names("#n", "name")
            .expression_attribute_values(":n", s(name))
            .expression_attribute_values(":u", n(now_ms))
            .expression_attribute_values(":f", aws_sdk_dynamodb::types::AttributeValue::Bool(false))
            .return_values(ReturnValue::AllNew);
        u = match description {
            Some(d) => u
                .update_expression("SET #n = :n, updated_at = :u, description = :d")
                .expression_attribute_values(":d", s(d)),
            None => u.update_expression("SET #n = :n, updated_at = :u REMOVE description"),
        };
        match u.send().await {
            Ok(out) => Ok(from_item(out.attributes.unwrap_or_default())?),
            Err(e) if super::dynamo::is_conditional_failure_update(&e) => {
                Err(CrudError::NotFound(format!("group {id}")))
            }
            Err(e) => Err(StoreError::sdk(e).into()),
        }
    }

    /// Deletes a group: marks it (hidden, no new members), removes up to `budget` members
    /// (each from its contact's `group_ids`, transactionally), then deletes the group once it
    /// is empty. `InProgress` means call again; a crash in between is resumed the same way.
    pub async fn delete_wa_group(
        &self,
        id: &str,
        budget: usize,
        now_ms: i64,
    ) -> Result<GroupDeletion, CrudError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(GROUPS_PK, id)))
            .update_expression("SET deleting = :t, updated_at = :u")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
            .expression_attribute_values(":u", n(now_ms))
            .send()
            .await;
        match r {
            Ok(_) => {}
            Err(e) if super::dynamo::is_conditional_failure_update(&e) => {
                return Err(CrudError::NotFound(format!("group {id}")));
            }
            Err(e) => return Err(StoreError::sdk(e).into()),
        }
        let mut removed = 0;
        loop {
            let (members, _) = self
                .partition_page::<GroupMember>(&group_members_pk(id), None, 25)
                .await?;
            if members.is_empty() {
                break;
            }
            for m in members {
                if removed >= budget {
                    return Ok(GroupDeletion::InProgress { removed });
                }
                let mut listed = false;
                let r = self
                    .modify_wa_contact(&m.contact_id, now_ms, |c| {
                        let before = c.group_ids.len();
                        c.group_ids.retain(|g| g != id);
                        listed = c.group_ids.len() != before;
                        Ok(listed)
                    })
                    .await;
                match r {
                    // Removed with its membership item in one transaction.
                    Ok(_) if listed => {}
                    // A membership item its contact does not list (or of a deleted contact).
                    Ok(_) | Err(CrudError::NotFound(_)) => {
                        self.delete_membership(id, &m.contact_id).await?
                    }
                    Err(e) => return Err(e),
                }
                removed += 1;
            }
        }
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(GROUPS_PK, id)))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(GroupDeletion::Done { removed })
    }

    async fn delete_membership(&self, group_id: &str, contact_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(group_members_pk(group_id), member_sk(contact_id))))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// Adds a contact to a group; `Ok(false)` when it already was a member.
    pub async fn add_group_member(
        &self,
        group_id: &str,
        contact_id: &str,
        now_ms: i64,
    ) -> Result<bool, CrudError> {
        let mut added = false;
        self.modify_wa_contact(contact_id, now_ms, |c| {
            added = !c.group_ids.iter().any(|g| g == group_id);
            if added {
                c.group_ids.push(group_id.to_string());
            }
            Ok(added)
        })
        .await?;
        Ok(added)
    }

    /// Removes a contact from a group; `NotFound` when it was not a member.
    pub async fn remove_group_member(
        &self,
        group_id: &str,
        contact_id: &str,
        now_ms: i64,
    ) -> Result<(), CrudError> {
        let mut was_member = false;
        self.modify_wa_contact(contact_id, now_ms, |c| {
            let before = c.group_ids.len();
            c.group_ids.retain(|g| g != group_id);
            was_member = c.group_ids.len() != before;
            Ok(was_member)
        })
        .await?;
        if was_member {
            Ok(())
        } else {
            Err(CrudError::NotFound(format!(
                "contact {contact_id} in group {group_id}"
            )))
        }
    }

    /// Members of a group in contact-id order (one Query, then the contacts in one batch),
    /// after the sort key `after`.
    pub async fn wa_group_members(
        &self,
        group_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<WaContact>, Option<String>), StoreError> {
        let (rows, next) = self
            .partition_page::<GroupMember>(&group_members_pk(group_id), after, limit)
            .await?;
        let ids: Vec<&str> = rows.iter().map(|m| m.contact_id.as_str()).collect();
        let mut found = self.wa_contacts_by_id(&ids).await?;
        Ok((ids.iter().filter_map(|i| found.remove(*i)).collect(), next))
    }

    /// Contacts by id (missing ones are absent from the map).
    pub async fn wa_contacts_by_id(
        &self,
        ids: &[&str],
    ) -> Result<HashMap<String, WaContact>, StoreError> {
        let items = self
            .batch_get(ids.iter().map(|i| key(CONTACTS_PK, *i)).collect(), None)
            .await?;
        let mut found = HashMap::new();
        for it in items {
            let c: WaContact = from_item(it)?;
            found.insert(c.id.clone(), c);
        }
        Ok(found)
    }
}
