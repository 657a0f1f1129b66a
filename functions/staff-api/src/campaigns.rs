//! `/api/v1/campaigns`: bulk template campaigns (`whatsapp_campaign:view/create/edit/delete`).
//!
//! A campaign is validated on save (the error naming the field), its template checked against
//! the stored one (approved, parameters), its sender against the numbers registry; each planned
//! run is an EventBridge Scheduler schedule that saving creates or moves. Once a run has
//! started only pause, resume and cancel change it. Reports: the campaign with its runs and
//! their totals, the recipients page by page (filtered by status), and a CSV of them.
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared::auth::{Action, Permission, Resource};
use shared::campaigns::model::{CampaignSpec, CampaignState};
use shared::campaigns::outcome::RecipientStatus;
use shared::campaigns::params::placeholders;
use shared::campaigns::schedules::{RunInput, continuation_name, schedule_name};
use shared::meta::outbound::{TemplateComponent, TemplateParameter};
use shared::store::campaigns::{CAMPAIGNS_PK, Campaign, CampaignRun, Recipient, RunTotals};
use shared::store::crud::new_id;
use utoipa::{IntoParams, ToSchema};

use crate::admin_crud::{ListQuery, PageAsked, path_id, perm};
use crate::conversations::Page;
use crate::{ApiError, Authed, StaffApp, parse_json};

const VIEW: Permission = perm(Resource::WhatsappCampaign, Action::View);
const CREATE: Permission = perm(Resource::WhatsappCampaign, Action::Create);
const EDIT: Permission = perm(Resource::WhatsappCampaign, Action::Edit);
const DELETE: Permission = perm(Resource::WhatsappCampaign, Action::Delete);
const SCOPE: &str = "campaigns";
const RECIPIENT_SCOPE: &str = "campaign-recipients";
/// Placeholders a campaign's template parameters may use.
const FIELDS: [&str; 3] = ["name", "first_name", "phone"];

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![
        list,
        create,
        read,
        update,
        remove,
        pause,
        resume,
        cancel,
        recipients,
        recipients_csv,
    ]
}

/// A campaign as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct CampaignView {
    pub id: String,
    #[serde(flatten)]
    pub spec: CampaignSpec,
    /// `scheduled`, `running`, `paused`, `cancelled`, `stopped` or `finished`.
    pub state: CampaignState,
    /// The sender (the default number when the campaign named none).
    pub sender: String,
    /// The template is a marketing one: customers who opted out are skipped.
    pub marketing: bool,
    /// The next run and when it starts (epoch ms).
    pub next_run: Option<u32>,
    pub next_run_at: Option<i64>,
    pub runs_started: u32,
    /// Why it is paused or stopped.
    pub reason: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl From<&Campaign> for CampaignView {
    fn from(c: &Campaign) -> Self {
        Self {
            id: c.id.clone(),
            spec: c.spec.clone(),
            state: c.state,
            sender: c.phone_number_id.clone(),
            marketing: c.marketing,
            next_run: c.next_run,
            next_run_at: c.next_run_at,
            runs_started: c.runs_started,
            reason: c.reason.clone(),
            created_by: c.created_by.clone(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            version: c.version,
        }
    }
}

/// One run with its totals (they add up: `total` = the sum of the statuses).
#[derive(Serialize, ToSchema)]
pub struct RunView {
    pub run: u32,
    /// `fanning_out`, `sending` or `done`.
    pub state: shared::store::campaigns::RunState,
    pub started_at: i64,
    pub fanned_out_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub totals: RunTotals,
}

/// A campaign, its runs and their totals.
#[derive(Serialize, ToSchema)]
pub struct CampaignReport {
    pub campaign: CampaignView,
    pub runs: Vec<RunView>,
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(e.to_string())
}

/// Checks what needs the store and builds the stored campaign.
async fn valid_campaign(
    app: &StaffApp,
    id: String,
    spec: CampaignSpec,
    who: &str,
    now: i64,
    created_at: i64,
) -> Result<Campaign, ApiError> {
    let now_dt = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default();
    spec.validate(now_dt).map_err(bad)?;
    // Placeholders over the recipient only.
    for (ci, c) in spec.template.components.iter().enumerate() {
        let params = match c {
            TemplateComponent::Header { parameters }
            | TemplateComponent::Body { parameters }
            | TemplateComponent::Button { parameters, .. } => parameters,
        };
        for (pi, p) in params.iter().enumerate() {
            if let TemplateParameter::Text { text, .. } = p {
                for (key, _) in placeholders(text) {
                    if !FIELDS.contains(&key.as_str()) {
                        return Err(bad(format!(
                            "template.components[{ci}].parameters[{pi}].text: unknown placeholder {{{key}}}; use {}",
                            FIELDS.map(|f| format!("{{{f}}}")).join(", ")
                        )));
                    }
                }
            }
        }
    }
    let m = app.messaging()?;
    let stored = crate::templates::check_send(app, m, &spec.template).await?;
    let marketing = stored
        .category
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case("MARKETING"));
    let sender = crate::inbox::sending_number(app, spec.phone_number_id.clone()).await?;
    let next_at = spec.run_at(1, now_dt);
    Ok(Campaign {
        pk: CAMPAIGNS_PK.into(),
        sk: id.clone(),
        id,
        spec,
        state: CampaignState::Scheduled,
        phone_number_id: sender,
        marketing,
        next_run: next_at.map(|_| 1),
        next_run_at: next_at.map(|t| t.timestamp_millis()),
        saved_at: now,
        runs_started: 0,
        reason: None,
        created_by: who.into(),
        created_at,
        updated_at: now,
        version: 0,
    })
}

fn schedules(
    app: &StaffApp,
) -> Result<&Arc<dyn shared::campaigns::schedules::RunSchedules>, ApiError> {
    app.campaign_schedules.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "campaigns_unavailable",
            "campaign scheduling is not configured (CAMPAIGN_SCHEDULE_GROUP)",
        )
    })
}

fn schedule_refusal(e: shared::campaigns::schedules::ScheduleError) -> ApiError {
    tracing::error!(error = %e, "EventBridge Scheduler refused");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "scheduler_unavailable",
        "the run could not be scheduled; retry",
    )
}

/// Plans (or moves) the schedule of the campaign's next run.
async fn plan_next(app: &StaffApp, c: &Campaign) -> Result<(), ApiError> {
    if let (Some(run), Some(at)) = (c.next_run, c.next_run_at) {
        schedules(app)?
            .plan(
                &schedule_name(&c.id, run),
                &RunInput {
                    campaign_id: c.id.clone(),
                    run,
                },
                chrono::DateTime::from_timestamp_millis(at).unwrap_or_default(),
            )
            .await
            .map_err(schedule_refusal)?;
    }
    Ok(())
}

async fn load(app: &StaffApp, id: &str) -> Result<Campaign, ApiError> {
    app.store
        .campaign(path_id(id, "campaign")?)
        .await?
        .ok_or_else(|| ApiError::not_found("campaign"))
}

fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message)
}

#[utoipa::path(
    get,
    path = "/api/v1/campaigns",
    tag = "campaigns",
    summary = "Campaigns",
    security(("bearer" = ["whatsapp_campaign:view"])),
    params(ListQuery),
    responses((status = 200, description = "One page of campaigns, in creation order", body = Page<CampaignView>))
)]
async fn list(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<CampaignView>>, ApiError> {
    who.require(VIEW)?;
    let page = q.page(&keys, SCOPE, 200)?;
    let found = app.store.campaigns_page(page.after(), page.limit).await?;
    Ok(page.answer(found, |c| CampaignView::from(&c)))
}

#[utoipa::path(
    post,
    path = "/api/v1/campaigns",
    tag = "campaigns",
    summary = "Create a campaign (and schedule its first run)",
    description = "`send_now` starts the first run at once (its schedule fires within a minute). The template must be APPROVED in the stored templates (404 `template_not_found`, 422 `template_invalid`).",
    security(("bearer" = ["whatsapp_campaign:create"])),
    request_body = CampaignSpec,
    responses((status = 201, description = "Created", body = CampaignView))
)]
async fn create(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<(StatusCode, Json<CampaignView>), ApiError> {
    who.require(CREATE)?;
    let spec: CampaignSpec = parse_json(&body)?;
    schedules(&app)?;
    let now = (app.now_ms)();
    let mut c = valid_campaign(&app, new_id(now), spec, &who.staff_id, now, now).await?;
    c.version = 1;
    if !app.store.create_campaign(&c).await? {
        return Err(conflict("already_exists", "a campaign with this id exists"));
    }
    plan_next(&app, &c).await?;
    tracing::info!(staff_id = %who.staff_id, campaign_id = %c.id, "campaign created");
    Ok((StatusCode::CREATED, Json(CampaignView::from(&c))))
}

#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{id}",
    tag = "campaigns",
    summary = "A campaign with its runs and their totals",
    security(("bearer" = ["whatsapp_campaign:view"])),
    params(("id" = String, Path, description = "Campaign id")),
    responses((status = 200, description = "The campaign", body = CampaignReport))
)]
async fn read(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<CampaignReport>, ApiError> {
    who.require(VIEW)?;
    let c = load(&app, &id).await?;
    let mut runs = Vec::new();
    for r in app.store.runs(&c.id).await? {
        let totals = app.store.run_totals(&c.id, r.run).await?;
        runs.push(run_view(r, totals));
    }
    Ok(Json(CampaignReport {
        campaign: CampaignView::from(&c),
        runs,
    }))
}

fn run_view(r: CampaignRun, totals: RunTotals) -> RunView {
    RunView {
        run: r.run,
        state: r.state,
        started_at: r.started_at,
        fanned_out_at: r.fanned_out_at,
        finished_at: r.finished_at,
        totals,
    }
}

#[utoipa::path(
    put,
    path = "/api/v1/campaigns/{id}",
    tag = "campaigns",
    summary = "Replace a campaign that has not started",
    description = "Refused (409 `campaign_started`) once a run has started: then only pause, resume and cancel apply.",
    security(("bearer" = ["whatsapp_campaign:edit"])),
    params(("id" = String, Path, description = "Campaign id")),
    request_body = CampaignSpec,
    responses((status = 200, description = "Saved", body = CampaignView))
)]
async fn update(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<CampaignView>, ApiError> {
    who.require(EDIT)?;
    let spec: CampaignSpec = parse_json(&body)?;
    let old = load(&app, &id).await?;
    if old.runs_started > 0 || old.state != CampaignState::Scheduled {
        return Err(conflict(
            "campaign_started",
            format!(
                "the campaign is {} with {} run(s) started: only pause, resume and cancel apply",
                old.state.as_str(),
                old.runs_started
            ),
        ));
    }
    let now = (app.now_ms)();
    let mut c = valid_campaign(
        &app,
        old.id.clone(),
        spec,
        &old.created_by,
        now,
        old.created_at,
    )
    .await?;
    c.version = old.version;
    if !app.store.save_campaign(&mut c).await? {
        return Err(conflict(
            "concurrent_update",
            "the campaign changed meanwhile (or its run started); read it again",
        ));
    }
    if c.next_run.is_none() {
        schedules(&app)?
            .forget(&schedule_name(&c.id, 1))
            .await
            .map_err(schedule_refusal)?;
    }
    plan_next(&app, &c).await?;
    tracing::info!(staff_id = %who.staff_id, campaign_id = %c.id, "campaign changed");
    Ok(Json(CampaignView::from(&c)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/campaigns/{id}",
    tag = "campaigns",
    summary = "Delete a campaign that is not running",
    description = "A running campaign is cancelled first (409 `campaign_running`).",
    security(("bearer" = ["whatsapp_campaign:delete"])),
    params(("id" = String, Path, description = "Campaign id")),
    responses((status = 204, description = "Deleted"))
)]
async fn remove(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(DELETE)?;
    let c = load(&app, &id).await?;
    if c.state == CampaignState::Running {
        return Err(conflict(
            "campaign_running",
            "cancel the campaign before deleting it",
        ));
    }
    if let Some(run) = c.next_run {
        schedules(&app)?
            .forget(&schedule_name(&c.id, run))
            .await
            .map_err(schedule_refusal)?;
    }
    if !app.store.delete_campaign(&c.id, c.version).await? {
        return Err(conflict(
            "concurrent_update",
            "the campaign changed meanwhile",
        ));
    }
    tracing::info!(staff_id = %who.staff_id, campaign_id = %c.id, "campaign deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Changes a campaign's state with optimistic locking (re-read on a concurrent change).
async fn transition(
    app: &StaffApp,
    id: &str,
    change: impl Fn(&mut Campaign) -> Result<(), ApiError>,
) -> Result<Campaign, ApiError> {
    for _ in 0..5 {
        let mut c = load(app, id).await?;
        change(&mut c)?;
        c.updated_at = (app.now_ms)();
        if app.store.save_campaign(&mut c).await? {
            return Ok(c);
        }
    }
    Err(conflict(
        "concurrent_update",
        "the campaign kept changing; retry",
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/pause",
    tag = "campaigns",
    summary = "Pause a campaign",
    description = "Nothing more is sent until it is resumed: recipients not yet sent stay pending; a planned run does not start.",
    security(("bearer" = ["whatsapp_campaign:edit"])),
    params(("id" = String, Path, description = "Campaign id")),
    responses((status = 200, description = "Paused", body = CampaignView))
)]
async fn pause(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    who.require(EDIT)?;
    let c = transition(&app, &id, |c| match c.state {
        CampaignState::Scheduled | CampaignState::Running => {
            c.state = CampaignState::Paused;
            c.reason = Some(format!("paused by staff {}", who.staff_id));
            Ok(())
        }
        CampaignState::Paused => Ok(()),
        s => Err(conflict(
            "campaign_final",
            format!("the campaign is {}", s.as_str()),
        )),
    })
    .await?;
    tracing::info!(staff_id = %who.staff_id, campaign_id = %c.id, "campaign paused");
    Ok(Json(CampaignView::from(&c)))
}

#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/resume",
    tag = "campaigns",
    summary = "Resume a paused campaign",
    description = "The current run goes on (its pending recipients are queued again); a planned run whose time passed starts now.",
    security(("bearer" = ["whatsapp_campaign:edit"])),
    params(("id" = String, Path, description = "Campaign id")),
    responses((status = 200, description = "Resumed", body = CampaignView))
)]
async fn resume(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    who.require(EDIT)?;
    schedules(&app)?;
    let now = (app.now_ms)();
    // The run in progress, if any (not done yet).
    let current = {
        let c = load(&app, &id).await?;
        match c.runs_started {
            0 => None,
            n => app
                .store
                .run(&c.id, n)
                .await?
                .filter(|r| r.state != shared::store::campaigns::RunState::Done)
                .map(|r| r.run),
        }
    };
    let c = transition(&app, &id, |c| match c.state {
        CampaignState::Paused => {
            c.state = if current.is_some() {
                CampaignState::Running
            } else {
                CampaignState::Scheduled
            };
            c.reason = None;
            if c.next_run_at.is_some_and(|t| t < now) {
                c.next_run_at = Some(now);
            }
            Ok(())
        }
        CampaignState::Scheduled | CampaignState::Running => Ok(()),
        s => Err(conflict(
            "campaign_final",
            format!("the campaign is {}", s.as_str()),
        )),
    })
    .await?;
    if let Some(run) = current {
        // The scheduler continues the fan-out, or queues the pending recipients again.
        schedules(&app)?
            .plan(
                &continuation_name(&c.id, run, c.version as u32),
                &RunInput {
                    campaign_id: c.id.clone(),
                    run,
                },
                chrono::DateTime::from_timestamp_millis(now).unwrap_or_default(),
            )
            .await
            .map_err(schedule_refusal)?;
    }
    plan_next(&app, &c).await?;
    tracing::info!(staff_id = %who.staff_id, campaign_id = %c.id, "campaign resumed");
    Ok(Json(CampaignView::from(&c)))
}

#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/cancel",
    tag = "campaigns",
    summary = "Cancel a campaign",
    description = "Nothing more is sent, ever: recipients not yet sent are skipped, planned runs are removed.",
    security(("bearer" = ["whatsapp_campaign:edit"])),
    params(("id" = String, Path, description = "Campaign id")),
    responses((status = 200, description = "Cancelled", body = CampaignView))
)]
async fn cancel(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    who.require(EDIT)?;
    schedules(&app)?;
    let c = transition(&app, &id, |c| match c.state {
        CampaignState::Cancelled => Ok(()),
        s if s.is_final() => Err(conflict(
            "campaign_final",
            format!("the campaign is {}", s.as_str()),
        )),
        _ => {
            c.state = CampaignState::Cancelled;
            c.reason = Some(format!("cancelled by staff {}", who.staff_id));
            Ok(())
        }
    })
    .await?;
    if let Some(run) = c.next_run {
        schedules(&app)?
            .forget(&schedule_name(&c.id, run))
            .await
            .map_err(schedule_refusal)?;
    }
    if c.runs_started > 0 {
        // The run in progress ends: the scheduler skips what was not sent and finishes it.
        schedules(&app)?
            .plan(
                &continuation_name(&c.id, c.runs_started, c.version as u32),
                &RunInput {
                    campaign_id: c.id.clone(),
                    run: c.runs_started,
                },
                chrono::DateTime::from_timestamp_millis((app.now_ms)()).unwrap_or_default(),
            )
            .await
            .map_err(schedule_refusal)?;
    }
    tracing::info!(staff_id = %who.staff_id, campaign_id = %c.id, "campaign cancelled");
    Ok(Json(CampaignView::from(&c)))
}

/// Which recipients.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RecipientQuery {
    /// The run (default: the latest started).
    run: Option<String>,
    /// `pending`, `sending`, `success` (2), `failed` (0), `invalid` (3), `unknown` or
    /// `skipped`.
    status: Option<String>,
    cursor: Option<String>,
    /// 1–500 (default 100).
    limit: Option<String>,
}

/// One recipient of a run.
#[derive(Serialize, ToSchema)]
pub struct RecipientView {
    pub phone: String,
    pub source: String,
    pub name: Option<String>,
    pub status: RecipientStatus,
    /// The seed's code: 0 failed, 2 success, 3 invalid (absent for the other states).
    pub status_code: Option<u8>,
    pub wamid: Option<String>,
    /// Meta's error code and text, or why it was not sent.
    pub error_code: Option<i64>,
    pub error: Option<String>,
    /// `sent`, `delivered`, `read` or `failed`.
    pub delivery: Option<String>,
    pub sent_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub read_at: Option<i64>,
    pub attempts: u32,
    pub updated_at: i64,
}

impl From<&Recipient> for RecipientView {
    fn from(r: &Recipient) -> Self {
        Self {
            phone: r.phone.clone(),
            source: r.source.clone(),
            name: r.name.clone(),
            status: r.status,
            status_code: r.status.seed_code(),
            wamid: r.wamid.clone(),
            error_code: r.error_code,
            error: r.error.clone(),
            delivery: r.delivery.clone(),
            sent_at: r.sent_at,
            delivered_at: r.delivered_at,
            read_at: r.read_at,
            attempts: r.attempts,
            updated_at: r.updated_at,
        }
    }
}

fn run_of(c: &Campaign, run: Option<String>) -> Result<u32, ApiError> {
    let run = run
        .map(|r| {
            r.parse::<u32>()
                .map_err(|_| bad("run must be a run number (1, 2, …)"))
        })
        .transpose()?;
    match run {
        Some(r) if r >= 1 && r <= c.runs_started => Ok(r),
        Some(_) => Err(ApiError::not_found("run")),
        None if c.runs_started > 0 => Ok(c.runs_started),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_run",
            "the campaign has not started a run yet",
        )),
    }
}

fn status_of(s: Option<&str>) -> Result<Option<RecipientStatus>, ApiError> {
    s.map(|s| {
        RecipientStatus::parse(s).ok_or_else(|| {
            bad("status must be pending, sending, success, failed, invalid, unknown or skipped")
        })
    })
    .transpose()
}

#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{id}/recipients",
    tag = "campaigns",
    summary = "A run's recipients, paged, with their status, delivery and errors",
    security(("bearer" = ["whatsapp_campaign:view"])),
    params(("id" = String, Path, description = "Campaign id"), RecipientQuery),
    responses((status = 200, description = "One page of recipients", body = Page<RecipientView>))
)]
async fn recipients(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Path(id): Path<String>,
    Query(q): Query<RecipientQuery>,
) -> Result<Json<Page<RecipientView>>, ApiError> {
    who.require(VIEW)?;
    let c = load(&app, &id).await?;
    let run = run_of(&c, q.run)?;
    let status = status_of(q.status.as_deref())?;
    let page = PageAsked::read(
        &keys,
        format!("{RECIPIENT_SCOPE}:{}:{run}", c.id),
        q.cursor.as_deref(),
        q.limit.as_deref(),
        (100, 500),
    )?;
    let found = app
        .store
        .recipients_page(&c.id, run, status, page.after(), page.limit)
        .await?;
    Ok(page.answer(found, |r| RecipientView::from(&r)))
}

/// Which run's recipients.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CsvQuery {
    /// The run (default: the latest started).
    run: Option<String>,
    status: Option<String>,
}

fn csv_field(s: &str) -> String {
    // Quoted when needed; a leading = + - @ is neutralised so a spreadsheet never runs it.
    let s = match s.chars().next() {
        Some('=' | '+' | '-' | '@')
            if !s.starts_with('+') || s.chars().skip(1).any(|c| !c.is_ascii_digit()) =>
        {
            format!("'{s}")
        }
        _ => s.to_string(),
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn csv_line(r: &Recipient) -> String {
    let opt = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
    [
        csv_field(&r.phone),
        csv_field(&r.source),
        csv_field(r.name.as_deref().unwrap_or("")),
        r.status.as_str().to_string(),
        r.status
            .seed_code()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        csv_field(r.wamid.as_deref().unwrap_or("")),
        opt(r.error_code),
        csv_field(r.error.as_deref().unwrap_or("")),
        r.delivery.clone().unwrap_or_default(),
        opt(r.sent_at),
        opt(r.delivered_at),
        opt(r.read_at),
    ]
    .join(",")
        + "\r\n"
}

/// Where a CSV too long for a response was written.
#[derive(Serialize, ToSchema)]
pub struct CsvExport {
    /// A presigned download link (S3), valid `expires_in` seconds.
    pub url: String,
    pub expires_in: u64,
    pub bytes: u64,
}

/// How long an export's link lives (the object itself expires after a day).
const EXPORT_LINK_TTL: std::time::Duration = std::time::Duration::from_secs(900);

#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{id}/recipients.csv",
    tag = "campaigns",
    summary = "A run's recipients as CSV",
    description = "Read page by page. Up to 5 MiB the CSV is the answer; a longer one (a Lambda answer carries at most 6 MB) is written to S3 and answered `303 See Other` to a presigned link, which clients following redirects download at once.",
    security(("bearer" = ["whatsapp_campaign:view"])),
    params(("id" = String, Path, description = "Campaign id"), CsvQuery),
    responses(
        (status = 200, description = "CSV (RFC 4180), one line per recipient", content_type = "text/csv", body = String),
        (status = 303, description = "Too long to answer inline: `Location` is a presigned link to the CSV", body = CsvExport)
    )
)]
async fn recipients_csv(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    Query(q): Query<CsvQuery>,
) -> Result<Response, ApiError> {
    who.require(VIEW)?;
    let c = load(&app, &id).await?;
    let run = run_of(&c, q.run)?;
    let status = status_of(q.status.as_deref())?;
    let filename = format!("campaign-{}-run-{run}.csv", c.id);
    let mut csv = String::from(
        "phone,source,name,status,status_code,wamid,error_code,error,delivery,sent_at,delivered_at,read_at\r\n",
    );
    let mut after: Option<String> = None;
    loop {
        let (rows, next) = app
            .store
            .recipients_page(&c.id, run, status, after.as_deref(), 500)
            .await?;
        csv.extend(rows.iter().map(csv_line));
        after = next;
        if csv.len() > app.csv_inline_bytes {
            break;
        }
        if after.is_none() {
            return Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{filename}\""),
                    ),
                ],
                csv,
            )
                .into_response());
        }
    }
    // Too long for a response: the rest goes to S3 as it is read, at most one part in memory.
    let bucket = crate::media::bucket(&app)?;
    let key = format!(
        "exports/campaigns/{}/run-{run}/{}.csv",
        c.id,
        new_id((app.now_ms)())
    );
    let mut out = bucket.writer(&key, "text/csv; charset=utf-8");
    out.write(csv.as_bytes())
        .await
        .map_err(crate::media::storage)?;
    drop(csv);
    while let Some(cursor) = after.take() {
        let page = app
            .store
            .recipients_page(&c.id, run, status, Some(&cursor), 500)
            .await;
        let (rows, next) = match page {
            Ok(p) => p,
            Err(e) => {
                out.abort().await;
                return Err(e.into());
            }
        };
        let chunk: String = rows.iter().map(csv_line).collect();
        out.write(chunk.as_bytes())
            .await
            .map_err(crate::media::storage)?;
        after = next;
    }
    let bytes = out.finish().await.map_err(crate::media::storage)?;
    let url = bucket
        .presign_download(&key, &filename, "text/csv; charset=utf-8", EXPORT_LINK_TTL)
        .await
        .map_err(crate::media::storage)?;
    tracing::info!(staff_id = %who.staff_id, campaign_id = %c.id, run, bytes, "recipients exported to S3");
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, url.clone())],
        Json(CsvExport {
            url,
            expires_in: EXPORT_LINK_TTL.as_secs(),
            bytes,
        }),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_field("Ana, Lima"), "\"Ana, Lima\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("+15551230001"), "+15551230001");
        assert_eq!(csv_field("@evil"), "'@evil");
    }
}
