//! A campaign's recipients, read page by page from their source, so a 100,000-recipient
//! campaign is never held in memory at once. The position between pages is a [`Cursor`] the
//! scheduler stores on the run: a crash resumes at the page it was writing.
//!
//! Sources: CRM leads and contacts (the directory: by id, or all of them through the sparse
//! `GSI2` listing of live records, converted leads left out), WhatsApp contacts (by id, or all),
//! members of WhatsApp groups (the chosen groups, or every group).
use serde::{Deserialize, Serialize};

use super::model::{CampaignSpec, Source};
use crate::store::{Store, StoreError};

/// One recipient as its source has it (the number not yet normalised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `lead:12`, `contact:7`, `wacontact:0191…`.
    pub source: String,
    pub phone: Option<String>,
    pub name: Option<String>,
}

/// Where the reading stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case")]
pub enum Cursor {
    /// The next index into the campaign's ids.
    Ids { index: usize },
    /// A group (index into the chosen ids, or into the list of every group) and the last
    /// member read.
    Members { group: usize, after: Option<String> },
    /// All WhatsApp contacts, after this id.
    Contacts { after: Option<String> },
    /// All live directory records of the kind, shard by shard.
    Directory { shard: u8, after: Option<String> },
}

fn kind(source: Source) -> &'static str {
    match source {
        Source::Leads => "lead",
        _ => "contact",
    }
}

/// The first page's cursor.
pub fn start(spec: &CampaignSpec) -> Cursor {
    match (spec.rel_type, spec.all) {
        (Source::WhatsappGroups, _) => Cursor::Members {
            group: 0,
            after: None,
        },
        (Source::WhatsappContacts, true) => Cursor::Contacts { after: None },
        (Source::Leads | Source::Contacts, true) => Cursor::Directory {
            shard: 0,
            after: None,
        },
        (_, false) => Cursor::Ids { index: 0 },
    }
}

/// Reads one page of about `size` candidates from `at`; the next cursor is `None` at the end.
pub async fn page(
    store: &Store,
    spec: &CampaignSpec,
    at: &Cursor,
    size: usize,
) -> Result<(Vec<Candidate>, Option<Cursor>), StoreError> {
    match at {
        Cursor::Ids { index } => {
            let ids: Vec<&str> = spec
                .ids
                .iter()
                .skip(*index)
                .take(size)
                .map(String::as_str)
                .collect();
            let next = index + ids.len();
            let out = match spec.rel_type {
                Source::WhatsappContacts => {
                    let mut found = store.wa_contacts_by_id(&ids).await?;
                    ids.iter()
                        .filter_map(|i| found.remove(*i))
                        .map(|c| Candidate {
                            source: format!("wacontact:{}", c.id),
                            phone: Some(c.phone),
                            name: Some(c.name),
                        })
                        .collect()
                }
                Source::Leads | Source::Contacts => store
                    .directory_records(kind(spec.rel_type), &ids)
                    .await?
                    .into_iter()
                    .filter(|r| !(r.deleted || (r.kind == "lead" && r.converted)))
                    .map(|r| Candidate {
                        source: format!("{}:{}", r.kind, r.id),
                        phone: r.phone_raw,
                        name: r.name,
                    })
                    .collect(),
                Source::WhatsappGroups => Vec::new(),
            };
            Ok((
                out,
                (next < spec.ids.len()).then_some(Cursor::Ids { index: next }),
            ))
        }
        Cursor::Members { group, after } => {
            // The group to read: one of the chosen ids, or the n-th of every group.
            let group_id = if spec.all {
                let (groups, _) = store.wa_groups(None, 1000).await?;
                groups.get(*group).map(|g| g.id.clone())
            } else {
                spec.ids.get(*group).cloned()
            };
            let Some(group_id) = group_id else {
                return Ok((Vec::new(), None));
            };
            let (members, next) = store
                .wa_group_members(&group_id, after.as_deref(), size)
                .await?;
            let out = members
                .into_iter()
                .map(|c| Candidate {
                    source: format!("wacontact:{}", c.id),
                    phone: Some(c.phone),
                    name: Some(c.name),
                })
                .collect();
            let cursor = match next {
                Some(n) => Cursor::Members {
                    group: *group,
                    after: Some(n),
                },
                None => Cursor::Members {
                    group: group + 1,
                    after: None,
                },
            };
            Ok((out, Some(cursor)))
        }
        Cursor::Contacts { after } => {
            let (rows, next) = store.wa_contacts(after.as_deref(), size).await?;
            let out = rows
                .into_iter()
                .map(|c| Candidate {
                    source: format!("wacontact:{}", c.id),
                    phone: Some(c.phone),
                    name: Some(c.name),
                })
                .collect();
            Ok((out, next.map(|n| Cursor::Contacts { after: Some(n) })))
        }
        Cursor::Directory { shard, after } => {
            let (rows, next) = store
                .directory_listing(kind(spec.rel_type), *shard, after.as_deref(), size)
                .await?;
            let out = rows
                .into_iter()
                .map(|r| Candidate {
                    source: format!("{}:{}", r.kind, r.id),
                    phone: r.phone_raw,
                    name: r.name,
                })
                .collect();
            let cursor = match next {
                Some(n) => Some(Cursor::Directory {
                    shard: *shard,
                    after: Some(n),
                }),
                None if shard + 1 < crate::store::directory_list::DIRECTORY_LIST_SHARDS => {
                    Some(Cursor::Directory {
                        shard: shard + 1,
                        after: None,
                    })
                }
                None => None,
            };
            Ok((out, cursor))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_as_json() {
        for c in [
            Cursor::Ids { index: 3 },
            Cursor::Members {
                group: 1,
                after: Some("x".into()),
            },
            Cursor::Contacts { after: None },
            Cursor::Directory {
                shard: 2,
                after: Some("12".into()),
            },
        ] {
            let j = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<Cursor>(&j).unwrap(), c);
        }
    }
}
