//! The click-to-chat widget (the seed's `whatsapp_chat` module, admin only): its settings and
//! a self-contained HTML snippet a website pastes: a `wa.me` link button with a greeting, no
//! third-party script, every configured value escaped for where it lands (HTML text, HTML
//! attribute, URL query), the pages it shows on read by a small inline script from a data
//! attribute (never spliced into the script).
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ApiError, Authed, StaffApp, parse_json};

const SETTING: &str = "widget";

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![get_widget, put_widget, snippet]
}

/// Where the button sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    #[default]
    Right,
    Left,
}

/// The widget's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetSettings {
    /// Shown on the site (the snippet answers 409 while off).
    #[serde(default)]
    pub enabled: bool,
    /// The number customers write to (any format of the default country, or E.164).
    #[schema(example = "+1 555 078 3881")]
    pub phone: String,
    /// Pre-filled message text, at most 500 characters.
    #[serde(default)]
    pub prefilled_text: String,
    /// Bubble text next to the button, at most 200 characters (empty: none).
    #[serde(default)]
    pub greeting: String,
    /// Button label, 1 to 40 characters.
    #[serde(default = "default_label")]
    pub label: String,
    #[serde(default)]
    pub position: Position,
    /// Button colour, `#rrggbb`.
    #[serde(default = "default_color")]
    pub color: String,
    /// Label colour, `#rrggbb`.
    #[serde(default = "default_text_color")]
    pub text_color: String,
    /// Paths it shows on (`/`, `/pricing`, `/blog/*` for a prefix); empty: every page.
    #[serde(default)]
    pub pages: Vec<String>,
}

fn default_label() -> String {
    "Chat with us".into()
}
fn default_color() -> String {
    "#25d366".into()
}
fn default_text_color() -> String {
    "#ffffff".into()
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(e.to_string())
}

fn is_hex_color(v: &str) -> bool {
    v.len() == 7 && v.starts_with('#') && v[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn check(app: &StaffApp, mut w: WidgetSettings) -> Result<WidgetSettings, ApiError> {
    let e164 = app
        .phones
        .to_e164(&w.phone)
        .map_err(|e| bad(format!("phone: {e}")))?;
    w.phone = e164;
    let len = |field: &str, v: &str, min: usize, max: usize| {
        let n = v.chars().count();
        if n < min || n > max {
            Err(bad(format!("{field}: {min} to {max} characters")))
        } else {
            Ok(())
        }
    };
    len("prefilled_text", &w.prefilled_text, 0, 500)?;
    len("greeting", &w.greeting, 0, 200)?;
    len("label", w.label.trim(), 1, 40)?;
    for (field, v) in [("color", &w.color), ("text_color", &w.text_color)] {
        if !is_hex_color(v) {
            return Err(bad(format!("{field}: a colour like #25d366")));
        }
    }
    if w.pages.len() > 50 {
        return Err(bad("pages: at most 50"));
    }
    for (i, p) in w.pages.iter().enumerate() {
        let ok = p.starts_with('/')
            && p.len() <= 200
            && !p
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == ',');
        if !ok {
            return Err(bad(format!(
                "pages[{i}]: a path starting with / (a trailing * for a prefix), no spaces or commas"
            )));
        }
    }
    Ok(w)
}

#[utoipa::path(
    get,
    path = "/api/v1/settings/widget",
    tag = "settings",
    summary = "Click-to-chat widget settings",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The settings (defaults when never saved: off, no number)", body = WidgetSettings))
)]
async fn get_widget(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Json<WidgetSettings>, ApiError> {
    who.require_admin()?;
    Ok(Json(
        app.store
            .setting::<WidgetSettings>(SETTING)
            .await?
            .unwrap_or_else(|| WidgetSettings {
                enabled: false,
                phone: String::new(),
                prefilled_text: String::new(),
                greeting: String::new(),
                label: default_label(),
                position: Position::Right,
                color: default_color(),
                text_color: default_text_color(),
                pages: Vec::new(),
            }),
    ))
}

#[utoipa::path(
    put,
    path = "/api/v1/settings/widget",
    tag = "settings",
    summary = "Save the click-to-chat widget settings",
    security(("bearer" = ["admin"])),
    request_body = WidgetSettings,
    responses((status = 200, description = "The settings saved (the phone in E.164)", body = WidgetSettings))
)]
async fn put_widget(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Json<WidgetSettings>, ApiError> {
    who.require_admin()?;
    let w = check(&app, parse_json(&body)?)?;
    app.store.put_setting(SETTING, &w, (app.now_ms)()).await?;
    tracing::info!(staff_id = %who.staff_id, "widget settings saved");
    Ok(Json(w))
}

/// Escapes text for HTML content and quoted attribute values.
pub fn html_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn url_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len() * 3);
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The snippet for `w` (its phone already E.164).
pub fn render_snippet(w: &WidgetSettings) -> String {
    let digits: String = w.phone.chars().filter(char::is_ascii_digit).collect();
    let mut href = format!("https://wa.me/{digits}");
    if !w.prefilled_text.is_empty() {
        href.push_str("?text=");
        href.push_str(&url_encode(&w.prefilled_text));
    }
    let side = match w.position {
        Position::Right => "right",
        Position::Left => "left",
    };
    let greeting = if w.greeting.is_empty() {
        String::new()
    } else {
        format!(
            "<div class=\"wa-greeting\" style=\"background:#fff;color:#111;padding:8px 12px;border-radius:8px;box-shadow:0 2px 8px rgba(0,0,0,.2);margin-bottom:8px;max-width:260px\">{}</div>",
            html_escape(&w.greeting)
        )
    };
    format!(
        "<!-- WhatsApp click-to-chat: paste before </body> -->\n\
<div id=\"wa-chat-widget\" data-pages=\"{pages}\" style=\"position:fixed;bottom:20px;{side}:20px;z-index:2147483000;font-family:system-ui,sans-serif;display:flex;flex-direction:column;align-items:flex-{align}\">\n\
{greeting}\n\
<a class=\"wa-button\" href=\"{href}\" target=\"_blank\" rel=\"noopener noreferrer\" aria-label=\"{label}\" style=\"background:{color};color:{text_color};padding:12px 18px;border-radius:24px;text-decoration:none;font-weight:600;box-shadow:0 2px 8px rgba(0,0,0,.25)\">{label}</a>\n\
</div>\n\
<script>(function(){{var w=document.getElementById('wa-chat-widget');if(!w)return;var p=w.getAttribute('data-pages');if(!p)return;var here=location.pathname;var show=p.split(',').some(function(x){{return x.slice(-1)==='*'?here.indexOf(x.slice(0,-1))===0:here===x;}});if(!show)w.style.display='none';}})();</script>\n",
        pages = html_escape(&w.pages.join(",")),
        side = side,
        align = if side == "right" { "end" } else { "start" },
        greeting = greeting,
        href = html_escape(&href),
        label = html_escape(w.label.trim()),
        color = w.color,
        text_color = w.text_color,
    )
}

#[utoipa::path(
    get,
    path = "/api/v1/widget/snippet",
    tag = "settings",
    summary = "The click-to-chat widget's HTML snippet",
    description = "Self-contained HTML to paste into a website: a wa.me link button, no third-party script. 409 `widget_off` while the widget is off or never configured.",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The snippet", content_type = "text/html", body = String))
)]
async fn snippet(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<impl IntoResponse, ApiError> {
    who.require_admin()?;
    let w = app
        .store
        .setting::<WidgetSettings>(SETTING)
        .await?
        .filter(|w| w.enabled)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "widget_off",
                "the widget is off: enable it in PUT /api/v1/settings/widget",
            )
        })?;
    Ok((
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        render_snippet(&w),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_are_escaped_where_they_land() {
        let w = WidgetSettings {
            enabled: true,
            phone: "+15550783881".into(),
            prefilled_text: "Hi & \"bye\" <script>alert(1)</script>".into(),
            greeting: "<img src=x onerror=alert(1)>".into(),
            label: "Chat\" onclick=\"alert(1)".into(),
            position: Position::Left,
            color: "#25d366".into(),
            text_color: "#ffffff".into(),
            pages: vec!["/a\"><script>".into()],
        };
        let html = render_snippet(&w);
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("onclick=\"alert"), "{html}");
        assert!(
            html.contains("https://wa.me/15550783881?text=Hi%20%26%20%22bye%22%20%3Cscript%3E")
        );
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert_eq!(
            html.matches("<script>").count(),
            1,
            "only the widget's own script"
        );
        assert!(!html.contains("src=\"http"), "no third-party script");
        assert!(html.contains("left:20px"));
    }
}
