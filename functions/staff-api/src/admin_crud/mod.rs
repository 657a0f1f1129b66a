//! Catalogues staff manage: quick replies (`quickreplies`), business numbers
//! (`whatsapp_numbers`), WhatsApp contacts and groups (`whatsapp_contacts`, `whatsapp_groups`).
//!
//! | route | permission |
//! |---|---|
//! | `GET /api/v1/quick-replies?limit=&cursor=`, `GET /api/v1/quick-replies/{id}`, `GET /api/v1/quick-replies/placeholders` | `quickreplies:view` |
//! | `POST /api/v1/quick-replies` | `quickreplies:create` |
//! | `PUT /api/v1/quick-replies/{id}` | `quickreplies:edit` |
//! | `DELETE /api/v1/quick-replies/{id}` | `quickreplies:delete` |
//! | `GET /api/v1/numbers`, `GET /api/v1/numbers/{phone_number_id}` | `whatsapp_numbers:view` |
//! | `POST /api/v1/numbers`, `PUT /api/v1/numbers/{phone_number_id}`, `POST /api/v1/numbers/{phone_number_id}/default` | `whatsapp_numbers:edit` |
//! | `GET /api/v1/contacts?limit=&cursor=`, `GET /api/v1/contacts/{id}` | `whatsapp_contacts:view` |
//! | `POST` / `PUT` / `DELETE` contacts | `whatsapp_contacts:create` / `edit` / `delete` (+ `whatsapp_groups:edit` when `group_ids` changes) |
//! | `GET /api/v1/groups?limit=&cursor=`, `GET /api/v1/groups/{id}` | `whatsapp_groups:view` |
//! | `POST` / `PUT` / `DELETE` groups | `whatsapp_groups:create` / `edit` / `delete` |
//! | `GET /api/v1/groups/{id}/members?limit=&cursor=` | `whatsapp_groups:view` + `whatsapp_contacts:view` |
//! | `PUT` / `DELETE /api/v1/groups/{id}/members/{contact_id}` | `whatsapp_groups:edit` |

use axum::Json;
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer};
use shared::auth::{Action, Permission, Resource};
use shared::store::crud::{CrudError, is_valid_id};
use utoipa::IntoParams;

use crate::conversations::Page;
use crate::{ApiError, Keys};

pub mod audiences;
pub mod numbers;
pub mod quick_replies;

pub fn routes() -> crate::routing::Routes {
    quick_replies::routes()
        .merge(numbers::routes())
        .merge(audiences::routes())
}

pub(crate) const fn perm(resource: Resource, action: Action) -> Permission {
    Permission::new(resource, action)
}

impl From<CrudError> for ApiError {
    fn from(e: CrudError) -> Self {
        match e {
            CrudError::NotFound(what) => ApiError::not_found(&what),
            CrudError::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            CrudError::Invalid { field, message } => {
                ApiError::bad_request(format!("{field}: {message}"))
            }
            CrudError::Store(e) => e.into(),
        }
    }
}

/// The JSON body of a request; a type error names the field (`opted_in: invalid type …`).
pub(crate) fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    axum::Json::<T>::from_bytes(bytes)
        .map(|axum::Json(v)| v)
        .map_err(|e| {
            let text = e.body_text();
            let detail = text
                .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                .or_else(|| text.strip_prefix("Failed to parse the request body as JSON: "))
                .unwrap_or(&text);
            ApiError::bad_request(format!("invalid JSON body: {detail}"))
        })
}

/// A path id that can be a key, else 404 for `what`.
pub(crate) fn path_id<'a>(id: &'a str, what: &str) -> Result<&'a str, ApiError> {
    if is_valid_id(id) {
        Ok(id)
    } else {
        Err(ApiError::not_found(what))
    }
}

/// A signed cursor of the list `scope` back to its position.
pub(crate) fn decode_cursor(
    keys: &Keys,
    scope: &str,
    cursor: Option<&str>,
) -> Result<Option<String>, ApiError> {
    crate::decode_cursor_as(keys, scope, cursor, "cursor is invalid for this list")
}

pub(crate) fn encode_cursor(keys: &Keys, scope: &str, next: Option<String>) -> Option<String> {
    next.map(|n| keys.cursors.encode(scope, &n))
}

/// One page asked of a list `scope`: where to continue (its signed cursor, checked) and how
/// many; [`PageAsked::answer`] signs the next page's position.
pub(crate) struct PageAsked<'k> {
    keys: &'k Keys,
    scope: String,
    after: Option<String>,
    pub limit: usize,
}

impl<'k> PageAsked<'k> {
    /// `cursor` and `limit` as the query gave them; the size `1..=max`, `default` when absent.
    pub(crate) fn read(
        keys: &'k Keys,
        scope: impl Into<String>,
        cursor: Option<&str>,
        limit: Option<&str>,
        (default, max): (usize, usize),
    ) -> Result<Self, ApiError> {
        let scope = scope.into();
        Ok(Self {
            after: decode_cursor(keys, &scope, cursor)?,
            limit: crate::parse_limit(limit, default, max)?,
            keys,
            scope,
        })
    }

    /// The position to continue after (none: the first page).
    pub(crate) fn after(&self) -> Option<&str> {
        self.after.as_deref()
    }

    /// The page read (`rows` and the position after them, if there are more), each row shown
    /// by `view`.
    pub(crate) fn answer<R, V>(
        &self,
        (rows, next): (Vec<R>, Option<String>),
        view: impl FnMut(R) -> V,
    ) -> Json<Page<V>> {
        Json(Page {
            data: rows.into_iter().map(view).collect(),
            next_cursor: encode_cursor(self.keys, &self.scope, next),
        })
    }
}

impl ListQuery {
    /// The page this query asks of the list `scope` (size 1–`max`, default 50).
    pub(crate) fn page<'k>(
        &self,
        keys: &'k Keys,
        scope: impl Into<String>,
        max: usize,
    ) -> Result<PageAsked<'k>, ApiError> {
        PageAsked::read(
            keys,
            scope,
            self.cursor.as_deref(),
            self.limit.as_deref(),
            (50, max),
        )
    }
}

/// Paging of a catalogue list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size: 1–200, default 50 (group members: 1–100).
    pub limit: Option<String>,
}

/// Trimmed text of `min..=max` characters, the error naming `field`.
pub(crate) fn text(field: &str, v: &str, min: usize, max: usize) -> Result<String, ApiError> {
    let t = v.trim();
    let len = t.chars().count();
    if len < min || len > max {
        let what = if min == 0 {
            format!("at most {max} characters")
        } else {
            format!("{min} to {max} characters")
        };
        return Err(ApiError::bad_request(format!(
            "{field} must be {what} (got {len})"
        )));
    }
    if t.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(ApiError::bad_request(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(t.to_string())
}

/// Optional text: empty or blank becomes `None`.
pub(crate) fn opt_text(
    field: &str,
    v: Option<&str>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => text(field, s, 1, max).map(Some),
    }
}

/// For PUT bodies: absent → `None`, `null` → `Some(None)`, a value → `Some(Some(v))`.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
