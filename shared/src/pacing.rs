//! Per-business-number send pacing that holds across concurrent Lambda invocations.
//!
//! Meta allows 80 messages/s per business number by default, up to 1000 (SYSTEM.md §4). Every
//! sender (replies, campaigns) asks a [`Pacer`] for a [`Permit`] before each send to Meta; the
//! limit is the number's configured throughput, or the pacer's default (80/s).
//!
//! ## Algorithm
//! Fixed one-second windows, one counter per (number, unix second), shared by every invocation
//! through DynamoDB: `pk=PACE#{phone_number_id}`, `sk={unix_second:010}`, updated with
//! `ADD n :one` under `attribute_not_exists(n) OR n < :limit` and `ReturnValues=UPDATED_NEW`.
//! The check and the increment are one atomic item write, so all invocations together never
//! take more than `limit` permits in one window; the new `n` minus one is the permit's slot; a
//! conditional-check failure means the window is full. Each window item carries `ttl` (the
//! table's TTL attribute) [`PACE_TTL_SECS`](crate::store::keys::PACE_TTL_SECS) after its second,
//! so old windows expire on their own.
//!
//! - **A full window: take a slot in a later one, then sleep to it.** When the current second is
//!   full, the pacer tries the next second at once (then the one after, …) and sleeps until the
//!   slot it got there, instead of sleeping to the boundary and racing every other waiter for
//!   it: no stampede at the top of the second, waiters are served about in arrival order, and a
//!   saturated number is known without waiting. Only windows that open within `max_wait` are
//!   tried; when all of them are full the answer is [`PaceError::Saturated`], whose
//!   `retry_after_ms` is when the first window not yet seen full opens.
//! - **Spread within the second** (the default, [`Pacer::with_spread`]): slot `k` of `limit` may
//!   start at `second + k·1000/limit` ms (every 12.5 ms at 80/s), so a window's quota goes out
//!   evenly rather than in one burst at the top of the second, which Meta, counting on its own
//!   clock, could see as over the rate. A window entered late lets its slots whose time has
//!   passed go at once (still within that window's quota).
//! - **Slots whose time has passed are forfeited.** In the current second, only slots whose
//!   start (`second + k·1000/limit`) is not yet past can be taken: the counter moves up to the
//!   first such slot (`min_slot`) before counting. So a backlog that arrives in the middle of a
//!   second does not take that second's earlier, unused slots at once, and every permit starts
//!   at its own slot time: the permits of consecutive seconds lie on one even grid of
//!   `1000/limit` ms, so no sliding one-second window ever holds more than `limit` of them.
//! - **A permit is only handed out while its window is current.** A grant that comes back after
//!   its second ended (a very slow write, a late wake-up) is not used: its slot stays counted
//!   (that window just carries one send fewer) and the pacer moves on to the current second.
//!
//! The guarantee holds per fixed window and, with the spread, per sliding second, on the
//! acquirers' clocks (Lambda clocks are NTP-synchronised; `benches/pacing.rs` reports the
//! busiest sliding second). Without the spread only the fixed windows hold.
//! - **Sub-counters above 200/s.** One DynamoDB item (and partition) takes about 1000 writes/s,
//!   rejected conditional writes included, so a window of a number paced above
//!   [`SHARD_CAPACITY`] is split over `ceil(limit / SHARD_CAPACITY)` items (5 at Meta's 1000/s
//!   tier), each in its own partition (`PACE#{id}~{j}`): sub-counter `j` owns the slots
//!   `k ≡ j (mod shards)` of the second's grid, so the slots stay distinct and evenly spaced
//!   and the sliding-second bound holds as with one counter. An acquirer starts at the
//!   sub-counter owning the earliest slot still ahead and tries the others of the same second
//!   before moving to the next second.
//! - **The limit of each number** is its `messages_per_second` in the numbers registry (a
//!   [`LimitSource`], read at most once a minute per number), or the pacer's default (80/s)
//!   when it has none or the registry cannot be read (the lowest tier is always safe).
//! - **One permit per attempt.** [`PacedRetries`] plugs the pacer into the Graph client's
//!   retries (`GraphClient::with_retry_gate`): the caller takes the first attempt's permit, each
//!   retry of a send (after a 130429, a 5xx, …) takes its own, and a retry that finds the number
//!   saturated is not made (the caller gets the rate-limit error and retries later).
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::store::keys;

/// Meta's default throughput of a business number (messages per second).
pub const DEFAULT_LIMIT: u32 = 80;
/// Meta's highest throughput tier of a business number.
pub const MAX_LIMIT: u32 = 1000;
/// How long [`Pacer::acquire`] may wait for a window with room, unless configured.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(2);
/// Most permits per second one counter item hands out; faster numbers use sub-counters.
pub const SHARD_CAPACITY: u32 = 200;
/// How long a number's configured limit is remembered.
pub const LIMIT_CACHE_MS: i64 = 60_000;

/// How many counter items one window of `limit` permits per second is split over.
pub fn shards_for(limit: u32) -> u32 {
    limit.div_ceil(SHARD_CAPACITY).max(1)
}

/// Port: where a number's configured send rate comes from (the numbers registry).
#[async_trait::async_trait]
pub trait LimitSource: Send + Sync {
    /// The number's messages per second, `None` when it has no configured rate.
    async fn limit_of(&self, phone_number_id: &str) -> Result<Option<u32>, PaceError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaceError {
    /// Every window opening within the maximum wait is full.
    #[error("send rate of this number is saturated; retry after {retry_after_ms} ms")]
    Saturated { retry_after_ms: i64 },
    #[error("pacing limit must be between 1 and 1000 messages per second, got {0}")]
    InvalidLimit(u32),
    /// The shared counter could not be read or written (never treated as "window full").
    #[error("pacing store failed: {0}")]
    Store(String),
}

// ---------- time ----------

/// Wall-clock milliseconds since the Unix epoch, injected so tests and benches run on virtual time.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// How the pacer waits; pairs with its [`Clock`].
#[async_trait::async_trait]
pub trait Sleeper: Send + Sync {
    async fn sleep_ms(&self, ms: i64);
}

#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

#[async_trait::async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep_ms(&self, ms: i64) {
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms as u64)).await;
        }
    }
}

/// Virtual time for tests and benchmarks: both the clock and the sleeper of a pacer. Sleeping
/// moves time forward to at least the end of the sleep, at once; time never goes back by sleeping.
#[derive(Debug, Clone, Default)]
pub struct VirtualClock {
    now: Arc<AtomicI64>,
}

impl VirtualClock {
    pub fn at(now_ms: i64) -> Self {
        Self {
            now: Arc::new(AtomicI64::new(now_ms)),
        }
    }

    pub fn set(&self, now_ms: i64) {
        self.now.store(now_ms, Ordering::SeqCst);
    }

    pub fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Sleeper for VirtualClock {
    async fn sleep_ms(&self, ms: i64) {
        let until = self.now_ms() + ms.max(0);
        self.now.fetch_max(until, Ordering::SeqCst);
    }
}

// ---------- storage ----------

/// Port: the shared per-second counters.
#[async_trait::async_trait]
pub trait WindowCounter: Send + Sync {
    /// Takes the first free slot of `key`'s window `window_second` that is not below
    /// `min_slot` (the slots below it are forfeited) if it is below `limit`: `Some(slot)`
    /// (0-based) or `None` when the window is full. `ttl_s` is the epoch second after which the
    /// window may be forgotten. Failures are errors, never `None`.
    async fn try_take(
        &self,
        key: &str,
        window_second: i64,
        min_slot: u32,
        limit: u32,
        ttl_s: i64,
    ) -> Result<Option<u32>, PaceError>;
}

#[async_trait::async_trait]
impl<T: WindowCounter + ?Sized> WindowCounter for Arc<T> {
    async fn try_take(
        &self,
        key: &str,
        window_second: i64,
        min_slot: u32,
        limit: u32,
        ttl_s: i64,
    ) -> Result<Option<u32>, PaceError> {
        (**self)
            .try_take(key, window_second, min_slot, limit, ttl_s)
            .await
    }
}

/// The windows in the main table (`PACE#{key}` / `{second:010}`, attributes `n` and `ttl`).
#[derive(Clone)]
pub struct DynamoWindowCounter {
    client: Client,
    table: String,
    /// The last take found its window behind `min_slot` (a number sending below its pace):
    /// the next take tries the move-up write first, so it costs one write too.
    behind: Arc<std::sync::atomic::AtomicBool>,
}

impl DynamoWindowCounter {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            behind: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Moves the window's count up to `min_slot + 1` when it is behind `min_slot` (or absent):
    /// `Ok(true)` took slot `min_slot`; `Ok(false)` with the count found when it was not behind.
    async fn move_up(
        &self,
        pk: &str,
        sk: &str,
        min_slot: u32,
        ttl_s: i64,
    ) -> Result<(bool, Option<u32>), PaceError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_string()))
            .key("sk", AttributeValue::S(sk.to_string()))
            .update_expression("SET #n = :next, #ttl = if_not_exists(#ttl, :ttl)")
            .condition_expression("attribute_not_exists(#n) OR #n < :min")
            .expression_attribute_names("#n", "n")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":next", AttributeValue::N((min_slot + 1).to_string()))
            .expression_attribute_values(":min", AttributeValue::N(min_slot.to_string()))
            .expression_attribute_values(":ttl", AttributeValue::N(ttl_s.to_string()))
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        match r {
            Ok(_) => Ok((true, None)),
            Err(e) => match found_count(&e) {
                Some(n) => Ok((false, n)),
                None => Err(PaceError::Store(DisplayErrorContext(&e).to_string())),
            },
        }
    }
}

/// The count a rejected conditional update found (`None`: no count yet).
fn found_count<R>(e: &SdkError<UpdateItemError, R>) -> Option<Option<u32>> {
    match e {
        SdkError::ServiceError(se) => match se.err() {
            UpdateItemError::ConditionalCheckFailedException(c) => Some(
                c.item()
                    .and_then(|i| i.get("n"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<u32>().ok()),
            ),
            _ => None,
        },
        _ => None,
    }
}

#[async_trait::async_trait]
impl WindowCounter for DynamoWindowCounter {
    async fn try_take(
        &self,
        key: &str,
        window_second: i64,
        min_slot: u32,
        limit: u32,
        ttl_s: i64,
    ) -> Result<Option<u32>, PaceError> {
        if min_slot >= limit {
            return Ok(None);
        }
        let pk = keys::pace_pk(key);
        let sk = keys::pace_sk(window_second);
        let store_err = |e: &dyn std::fmt::Display| PaceError::Store(e.to_string());
        // Two writes can take a slot: an ADD when the count is already at or past `min_slot`
        // (a busy number), a move-up when it is behind (a new window, or a number sending below
        // its pace). The one that worked last time is tried first, so a steady sender pays one
        // write per permit either way; a rejected write answers the count it found, so a full
        // window costs one write too.
        if self.behind.load(Ordering::Relaxed) {
            match self.move_up(&pk, &sk, min_slot, ttl_s).await? {
                (true, _) => return Ok(Some(min_slot)),
                (false, Some(n)) if n >= limit => return Ok(None),
                (false, _) => self.behind.store(false, Ordering::Relaxed),
            }
        }
        for _ in 0..4 {
            let r = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(pk.clone()))
                .key("sk", AttributeValue::S(sk.clone()))
                .update_expression("SET #ttl = if_not_exists(#ttl, :ttl) ADD #n :one")
                .condition_expression("#n >= :min AND #n < :limit")
                .expression_attribute_names("#n", "n")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":min", AttributeValue::N(min_slot.to_string()))
                .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
                .expression_attribute_values(":ttl", AttributeValue::N(ttl_s.to_string()))
                .return_values(ReturnValue::UpdatedNew)
                .return_values_on_condition_check_failure(
                    aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let found = match r {
                Ok(out) => {
                    let taken = out
                        .attributes()
                        .and_then(|a| a.get("n"))
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse::<u32>().ok())
                        .filter(|&n| n >= 1);
                    return match taken {
                        Some(n) => Ok(Some(n - 1)),
                        None => Err(PaceError::Store(format!(
                            "pacing window {pk}/{sk} came back without a readable count"
                        ))),
                    };
                }
                Err(e) => match found_count(&e) {
                    Some(n) => n,
                    None => return Err(store_err(&DisplayErrorContext(&e))),
                },
            };
            match found {
                Some(n) if n >= limit => return Ok(None),
                // Someone else moved it meanwhile: count again.
                Some(n) if n >= min_slot => continue,
                // Behind (or no count yet): the first free slot is `min_slot`.
                _ => {}
            }
            match self.move_up(&pk, &sk, min_slot, ttl_s).await? {
                (true, _) => {
                    self.behind.store(true, Ordering::Relaxed);
                    return Ok(Some(min_slot));
                }
                (false, Some(n)) if n >= limit => return Ok(None),
                // Moved meanwhile by someone else: count again.
                (false, _) => continue,
            }
        }
        // Taken from under us four times in a row: treated as full (the pacer tries the next
        // second).
        Ok(None)
    }
}

/// Window second → (taken, ttl_s), per key.
type MemoryWindows = HashMap<String, BTreeMap<i64, (u32, i64)>>;

/// In-process windows, for unit tests and benchmarks (and a single process). Windows are
/// forgotten once a window past their `ttl_s` is used.
#[derive(Debug, Default)]
pub struct MemoryWindowCounter {
    windows: Mutex<MemoryWindows>,
}

impl MemoryWindowCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Permits taken in each remembered window of `key`, oldest first.
    pub fn counts(&self, key: &str) -> BTreeMap<i64, u32> {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows
            .get(key)
            .map(|w| w.iter().map(|(s, (n, _))| (*s, *n)).collect())
            .unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl WindowCounter for MemoryWindowCounter {
    async fn try_take(
        &self,
        key: &str,
        window_second: i64,
        min_slot: u32,
        limit: u32,
        ttl_s: i64,
    ) -> Result<Option<u32>, PaceError> {
        let mut all = self
            .windows
            .lock()
            .map_err(|_| PaceError::Store("in-memory pacing counter poisoned".into()))?;
        let windows = match all.get_mut(key) {
            Some(w) => w,
            None => all.entry(key.to_string()).or_default(),
        };
        while let Some(oldest) = windows.first_entry() {
            if oldest.get().1 >= window_second {
                break;
            }
            oldest.remove();
        }
        let (taken, _) = windows.entry(window_second).or_insert((0, ttl_s));
        let slot = (*taken).max(min_slot);
        if slot >= limit {
            return Ok(None);
        }
        *taken = slot + 1;
        Ok(Some(slot))
    }
}

// ---------- the pacer ----------

/// Leave to send one message now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit {
    /// The unix second whose quota this send uses (the clock was inside it when handed out).
    pub window_second: i64,
    /// Position in that window, 0-based.
    pub slot: u32,
    /// The limit it was taken under.
    pub limit: u32,
    /// Earliest start of the send (ms); `acquire` waited for it.
    pub send_at_ms: i64,
    /// How long `acquire` took, waits and store calls included (ms).
    pub waited_ms: i64,
}

/// Hands out send permits per business number; see the module documentation.
pub struct Pacer<C: WindowCounter> {
    counter: C,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    default_limit: u32,
    max_wait_ms: i64,
    spread: bool,
    limits: Option<Arc<dyn LimitSource>>,
    /// phone_number_id → (configured limit, when read).
    limit_cache: Mutex<HashMap<String, (Option<u32>, i64)>>,
    /// phone_number_id → (window, slot) this pacer handed out last (split windows only).
    last_slots: Mutex<HashMap<String, (i64, u32)>>,
}

impl<C: WindowCounter> Pacer<C> {
    /// Real time, 80/s by default, waits up to [`DEFAULT_MAX_WAIT`], spread within the second.
    pub fn new(counter: C) -> Self {
        Self {
            counter,
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
            default_limit: DEFAULT_LIMIT,
            max_wait_ms: DEFAULT_MAX_WAIT.as_millis() as i64,
            spread: true,
            limits: None,
            limit_cache: Mutex::new(HashMap::new()),
            last_slots: Mutex::new(HashMap::new()),
        }
    }

    /// Read each number's configured rate from `source` (remembered for [`LIMIT_CACHE_MS`]).
    pub fn with_limits(mut self, source: Arc<dyn LimitSource>) -> Self {
        self.limits = Some(source);
        self
    }

    /// The rate `phone_number_id` is paced at when the caller names none: its configured
    /// rate, else the default. A registry that cannot be read gives the default (logged).
    pub async fn limit_for(&self, phone_number_id: &str) -> u32 {
        let Some(source) = &self.limits else {
            return self.default_limit;
        };
        let now = self.clock.now_ms();
        {
            let cache = self.limit_cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((limit, at)) = cache.get(phone_number_id)
                && now - at < LIMIT_CACHE_MS
            {
                return limit.unwrap_or(self.default_limit);
            }
        }
        match source.limit_of(phone_number_id).await {
            Ok(limit) => {
                let limit = limit.filter(|l| (1..=MAX_LIMIT).contains(l));
                let mut cache = self.limit_cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() > 1000 {
                    cache.clear();
                }
                cache.insert(phone_number_id.to_string(), (limit, now));
                limit.unwrap_or(self.default_limit)
            }
            Err(e) => {
                tracing::warn!(phone_number_id, error = %e, "pacing: number's rate unreadable, default used");
                self.default_limit
            }
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>, sleeper: Arc<dyn Sleeper>) -> Self {
        self.clock = clock;
        self.sleeper = sleeper;
        self
    }

    pub fn with_virtual_clock(self, clock: &VirtualClock) -> Self {
        self.with_clock(Arc::new(clock.clone()), Arc::new(clock.clone()))
    }

    /// The limit of numbers without a configured one (checked by `acquire`: 1..=1000).
    pub fn with_default_limit(mut self, limit: u32) -> Self {
        self.default_limit = limit;
        self
    }

    /// Longest wait for a window with room; a permit's spread within its window (< 1 s) comes on top.
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait_ms = i64::try_from(max_wait.as_millis()).unwrap_or(i64::MAX);
        self
    }

    /// Spread a window's permits evenly over its second (default) or release them at its start.
    pub fn with_spread(mut self, spread: bool) -> Self {
        self.spread = spread;
        self
    }

    pub fn default_limit(&self) -> u32 {
        self.default_limit
    }

    pub fn counter(&self) -> &C {
        &self.counter
    }

    /// Takes a slot of `window` not below `min_slot` from one of its `shards` sub-counters: the
    /// slot on the second's grid, or `None` when all are full. The first sub-counter tried is
    /// the one owning the earliest slot still ahead that this pacer has not handed out itself,
    /// then the next ones: a lone sender keeps the full rate, and as time moves the first one
    /// tried rotates over all of them.
    async fn take_in_window(
        &self,
        key: &str,
        window: i64,
        min_slot: u32,
        limit: u32,
        shards: u32,
        ttl: i64,
    ) -> Result<Option<u32>, PaceError> {
        if shards <= 1 {
            return self
                .counter
                .try_take(key, window, min_slot, limit, ttl)
                .await;
        }
        let first = {
            let last = self.last_slots.lock().unwrap_or_else(|p| p.into_inner());
            match last.get(key) {
                Some(&(w, slot)) if w == window => min_slot.max(slot + 1),
                _ => min_slot,
            }
        } % shards;
        for i in 0..shards {
            let j = (first + i) % shards;
            // Sub-counter j owns the global slots j, j + shards, j + 2·shards, … below limit.
            let shard_limit = (limit - j).div_ceil(shards);
            let shard_min = min_slot.saturating_sub(j).div_ceil(shards);
            if shard_min >= shard_limit {
                continue;
            }
            let shard_key = format!("{key}~{j}");
            if let Some(local) = self
                .counter
                .try_take(&shard_key, window, shard_min, shard_limit, ttl)
                .await?
            {
                let slot = local * shards + j;
                let mut last = self.last_slots.lock().unwrap_or_else(|p| p.into_inner());
                if last.len() > 1000 {
                    last.clear();
                }
                last.insert(key.to_string(), (window, slot));
                return Ok(Some(slot));
            }
        }
        Ok(None)
    }

    /// Waits until this number may send one message, under `limit` messages per second (the
    /// number's configured throughput) or the default limit when `None`.
    pub async fn acquire(
        &self,
        phone_number_id: &str,
        limit: Option<u32>,
    ) -> Result<Permit, PaceError> {
        let limit = match limit {
            Some(l) => l,
            None => self.limit_for(phone_number_id).await,
        };
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(PaceError::InvalidLimit(limit));
        }
        let shards = shards_for(limit);
        let start = self.clock.now_ms();
        let mut window = start.div_euclid(1000);
        loop {
            if window * 1000 - start > self.max_wait_ms {
                let now = self.clock.now_ms();
                tracing::debug!(phone_number_id, limit, "pacing: number saturated");
                return Err(PaceError::Saturated {
                    retry_after_ms: (window * 1000 - now).max(1),
                });
            }
            let ttl = window + keys::PACE_TTL_SECS;
            // In the current second, the slots whose start has passed are forfeited.
            let elapsed = self.clock.now_ms() - window * 1000;
            let min_slot = if self.spread && elapsed > 0 {
                u32::try_from((elapsed * i64::from(limit) + 999) / 1000).unwrap_or(u32::MAX)
            } else {
                0
            };
            let taken = self
                .take_in_window(phone_number_id, window, min_slot, limit, shards, ttl)
                .await?;
            let now = self.clock.now_ms();
            let Some(slot) = taken else {
                window = (window + 1).max(now.div_euclid(1000));
                continue;
            };
            let window_end = (window + 1) * 1000;
            let send_at = if self.spread {
                window * 1000 + i64::from(slot) * 1000 / i64::from(limit)
            } else {
                window * 1000
            };
            if send_at > now {
                crate::metrics::count("PaceWaits", 1)
                    .millis(
                        "PaceWait",
                        std::time::Duration::from_millis((send_at - now) as u64),
                    )
                    .dim("PhoneNumberId", phone_number_id)
                    .emit();
                self.sleeper.sleep_ms(send_at - now).await;
            }
            let now = self.clock.now_ms();
            if now >= window_end {
                tracing::debug!(
                    phone_number_id,
                    window,
                    "pacing: permit came too late, unused"
                );
                window = now.div_euclid(1000);
                continue;
            }
            return Ok(Permit {
                window_second: window,
                slot,
                limit,
                send_at_ms: send_at,
                waited_ms: now - start,
            });
        }
    }
}

/// The pacer of every sender: windows in the store's table, each number's rate from the
/// numbers registry.
pub fn table_pacer(store: &crate::store::Store) -> Arc<Pacer<DynamoWindowCounter>> {
    Arc::new(
        Pacer::new(DynamoWindowCounter::new(
            store.client.clone(),
            store.table.clone(),
        ))
        .with_limits(Arc::new(store.clone())),
    )
}

// ---------- one permit per attempt ----------

/// The pacer as the Graph client's retry gate: each retry of a send takes its own permit.
pub struct PacedRetries<C: WindowCounter> {
    pacer: Arc<Pacer<C>>,
}

impl<C: WindowCounter> PacedRetries<C> {
    pub fn new(pacer: Arc<Pacer<C>>) -> Self {
        Self { pacer }
    }
}

/// `graph` with each retry of a send paced by `pacer`.
pub fn paced_graph<C: WindowCounter + 'static>(
    graph: crate::meta::graph::GraphClient,
    pacer: &Arc<Pacer<C>>,
) -> crate::meta::graph::GraphClient {
    graph.with_retry_gate(Arc::new(PacedRetries::new(pacer.clone())))
}

#[async_trait::async_trait]
impl<C: WindowCounter + 'static> crate::meta::graph::RetryGate for PacedRetries<C> {
    async fn before_retry(&self, phone_number_id: &str) -> Result<(), String> {
        self.pacer
            .acquire(phone_number_id, None)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second boundary (2025-06-08T20:59:44Z).
    const T0: i64 = 1_749_416_384_000;
    const PNID: &str = "106540352242922";

    fn pacer(clock: &VirtualClock) -> Pacer<Arc<MemoryWindowCounter>> {
        Pacer::new(Arc::new(MemoryWindowCounter::new())).with_virtual_clock(clock)
    }

    fn per_window(permits: &[Permit]) -> BTreeMap<i64, u32> {
        let mut m = BTreeMap::new();
        for p in permits {
            *m.entry(p.window_second).or_insert(0) += 1;
        }
        m
    }

    #[tokio::test]
    async fn never_more_than_the_limit_in_a_window_and_the_rate_is_kept() {
        let clock = VirtualClock::at(T0 + 300);
        let p = pacer(&clock);
        let mut permits = Vec::new();
        for _ in 0..1000 {
            let permit = p.acquire(PNID, None).await.unwrap();
            // Handed out inside its window, at or after its start time.
            assert_eq!(clock.now_ms().div_euclid(1000), permit.window_second);
            assert!(clock.now_ms() >= permit.send_at_ms);
            permits.push(permit);
        }
        let counts = per_window(&permits);
        assert!(counts.values().all(|&n| n <= DEFAULT_LIMIT), "{counts:?}");
        let stored = p.counter().counts(PNID);
        for (w, n) in &counts {
            assert!(stored[w] >= *n, "{counts:?} {stored:?}");
        }
        // Entered 300 ms into the first second: its 24 slots before 300 ms are forfeited, 56
        // remain; then full seconds of 80, and the rest in the last (56 + 11·80 + 64 = 1000).
        assert_eq!(counts.len(), 13);
        assert_eq!(counts.values().next(), Some(&56));
        assert!(
            counts
                .values()
                .skip(1)
                .take(11)
                .all(|&n| n == DEFAULT_LIMIT)
        );
        // Never more than the limit in any sliding second.
        let times: Vec<i64> = permits.iter().map(|p| p.send_at_ms).collect();
        for (i, t) in times.iter().enumerate() {
            let n = times[i..].iter().take_while(|u| **u < t + 1000).count();
            assert!(
                n <= DEFAULT_LIMIT as usize,
                "{n} permits in the second from {t}"
            );
        }
        // Sends go out in order, spread: never two in the same ms after the first window.
        let times: Vec<i64> = permits.iter().map(|p| p.send_at_ms).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(
            permits[80..]
                .windows(2)
                .all(|w| w[1].send_at_ms - w[0].send_at_ms >= 12)
        );
    }

    #[tokio::test]
    async fn a_full_window_rolls_to_the_next_second() {
        let clock = VirtualClock::at(T0 + 500);
        let p = pacer(&clock).with_spread(false);
        for slot in 0..3 {
            let permit = p.acquire(PNID, Some(3)).await.unwrap();
            assert_eq!((permit.window_second, permit.slot), (T0 / 1000, slot));
            assert_eq!(permit.waited_ms, 0);
        }
        assert_eq!(
            clock.now_ms(),
            T0 + 500,
            "no wait while the window has room"
        );
        let permit = p.acquire(PNID, Some(3)).await.unwrap();
        assert_eq!((permit.window_second, permit.slot), (T0 / 1000 + 1, 0));
        assert_eq!(clock.now_ms(), T0 + 1000, "slept to the next boundary");
        assert_eq!(permit.waited_ms, 500);
    }

    #[tokio::test]
    async fn spread_slots_start_evenly_within_the_second() {
        let clock = VirtualClock::at(T0);
        let p = pacer(&clock);
        let mut starts = Vec::new();
        for _ in 0..8 {
            let permit = p.acquire(PNID, Some(4)).await.unwrap();
            starts.push(permit.send_at_ms - T0);
            assert_eq!(clock.now_ms(), permit.send_at_ms);
        }
        assert_eq!(starts, [0, 250, 500, 750, 1000, 1250, 1500, 1750]);
        // A window entered late: the slots whose time has passed are forfeited, nothing bursts.
        let clock = VirtualClock::at(T0 + 600);
        let p = pacer(&clock);
        let mut starts = Vec::new();
        for _ in 0..4 {
            p.acquire(PNID, Some(4)).await.unwrap();
            starts.push(clock.now_ms() - T0);
        }
        assert_eq!(starts, [750, 1000, 1250, 1500]);
    }

    #[tokio::test]
    async fn saturation_after_the_maximum_wait_without_sleeping() {
        let clock = VirtualClock::at(T0 + 200);
        let counter = Arc::new(MemoryWindowCounter::new());
        // Another invocation has filled this second and the next two.
        for w in 0..3 {
            for _ in 0..2 {
                let s = T0 / 1000 + w;
                counter.try_take(PNID, s, 0, 2, s + 300).await.unwrap();
            }
        }
        let p = Pacer::new(counter.clone())
            .with_virtual_clock(&clock)
            .with_max_wait(Duration::from_millis(1500));
        // Windows opening within 1.5 s (this one and the next) are full: saturated, and the
        // first window not seen full opens in 1.8 s.
        assert_eq!(
            p.acquire(PNID, Some(2)).await,
            Err(PaceError::Saturated {
                retry_after_ms: 1800
            })
        );
        assert_eq!(
            clock.now_ms(),
            T0 + 200,
            "saturation is known without waiting"
        );
        // A longer wait reaches the fourth window.
        let p = p.with_max_wait(Duration::from_secs(3));
        let permit = p.acquire(PNID, Some(2)).await.unwrap();
        assert_eq!(permit.window_second, T0 / 1000 + 3);
        assert_eq!(clock.now_ms(), T0 + 3000);
        // No wait allowed at all: only the current second is tried.
        let p = p.with_max_wait(Duration::ZERO).with_spread(false);
        clock.set(T0 + 3_400);
        p.acquire(PNID, Some(2)).await.unwrap();
        assert_eq!(
            p.acquire(PNID, Some(2)).await,
            Err(PaceError::Saturated {
                retry_after_ms: 600
            })
        );
    }

    #[tokio::test]
    async fn numbers_are_paced_independently() {
        let clock = VirtualClock::at(T0);
        let p = pacer(&clock).with_spread(false);
        for _ in 0..5 {
            p.acquire("111", Some(5)).await.unwrap();
        }
        let other = p.acquire("222", Some(5)).await.unwrap();
        assert_eq!((other.window_second, other.slot), (T0 / 1000, 0));
        assert_eq!(clock.now_ms(), T0);
        let again = p.acquire("111", Some(5)).await.unwrap();
        assert_eq!(again.window_second, T0 / 1000 + 1);
    }

    #[tokio::test]
    async fn the_configured_limit_is_respected() {
        let clock = VirtualClock::at(T0);
        let p = pacer(&clock).with_default_limit(7);
        for _ in 0..30 {
            p.acquire("default", None).await.unwrap();
        }
        for _ in 0..30 {
            p.acquire("configured", Some(3)).await.unwrap();
        }
        let d: Vec<u32> = p.counter().counts("default").into_values().collect();
        let c: Vec<u32> = p.counter().counts("configured").into_values().collect();
        assert_eq!(d, [7, 7, 7, 7, 2]);
        // Started 142 ms into a second (where the first 30 ended): its slot 0 (at 0 ms) is
        // forfeited, so 2 + 9·3 + 1 permits over 11 seconds, each second's count at most 3.
        assert_eq!(c, [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1]);
        assert_eq!(
            p.acquire("x", Some(0)).await,
            Err(PaceError::InvalidLimit(0))
        );
        assert_eq!(
            p.acquire("x", Some(1001)).await,
            Err(PaceError::InvalidLimit(1001))
        );
        assert_eq!(
            pacer(&clock).with_default_limit(0).acquire("x", None).await,
            Err(PaceError::InvalidLimit(0))
        );
        assert_eq!(pacer(&clock).default_limit(), 80);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_pacers_share_the_windows() {
        let clock = VirtualClock::at(T0 + 100);
        let counter = Arc::new(MemoryWindowCounter::new());
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let p = Pacer::new(counter.clone())
                .with_virtual_clock(&clock)
                .with_max_wait(Duration::from_secs(60));
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..100 {
                    got.push(p.acquire(PNID, Some(20)).await.unwrap());
                }
                got
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        assert_eq!(all.len(), 400);
        let counts = per_window(&all);
        let stored = counter.counts(PNID);
        // A permit can come back too late (another task moved time on) and go unused, so the
        // counters may hold more than was handed out, but never more than the limit.
        assert!(stored.values().all(|&n| n <= 20), "{stored:?}");
        for (w, n) in &counts {
            assert!(stored[w] >= *n, "{counts:?} {stored:?}");
        }
        let mut slots: Vec<(i64, u32)> = all.iter().map(|p| (p.window_second, p.slot)).collect();
        slots.sort();
        slots.dedup();
        assert_eq!(slots.len(), 400, "no slot handed out twice");
    }

    /// A store failure is an error, never "window full".
    struct Failing;
    #[async_trait::async_trait]
    impl WindowCounter for Failing {
        async fn try_take(
            &self,
            _: &str,
            _: i64,
            _: u32,
            _: u32,
            _: i64,
        ) -> Result<Option<u32>, PaceError> {
            Err(PaceError::Store("throttled".into()))
        }
    }

    #[tokio::test]
    async fn store_errors_surface() {
        let clock = VirtualClock::at(T0);
        let p = Pacer::new(Failing).with_virtual_clock(&clock);
        assert_eq!(
            p.acquire(PNID, None).await,
            Err(PaceError::Store("throttled".into()))
        );
    }

    /// A counter whose first answer comes back 1.2 s late.
    struct Slow {
        inner: MemoryWindowCounter,
        clock: VirtualClock,
        calls: AtomicI64,
    }
    #[async_trait::async_trait]
    impl WindowCounter for Slow {
        async fn try_take(
            &self,
            key: &str,
            w: i64,
            min_slot: u32,
            limit: u32,
            ttl: i64,
        ) -> Result<Option<u32>, PaceError> {
            let r = self.inner.try_take(key, w, min_slot, limit, ttl).await;
            if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                self.clock.advance(1200);
            }
            r
        }
    }

    #[tokio::test]
    async fn a_permit_granted_after_its_window_is_not_used() {
        let clock = VirtualClock::at(T0 + 900);
        let slow = Slow {
            inner: MemoryWindowCounter::new(),
            clock: clock.clone(),
            calls: AtomicI64::new(0),
        };
        let p = Pacer::new(slow).with_virtual_clock(&clock);
        let permit = p.acquire(PNID, Some(10)).await.unwrap();
        assert_eq!(permit.window_second, T0 / 1000 + 2);
        assert_eq!(clock.now_ms(), T0 + 2100);
        // The late slot stays counted: the first window carries one send fewer, never one more
        // (its nine slots before 900 ms were forfeited; in the third, the one before 100 ms).
        let counts = p.counter().inner.counts(PNID);
        assert_eq!(counts.get(&(T0 / 1000)), Some(&10));
        assert_eq!(counts.get(&(T0 / 1000 + 2)), Some(&2));
    }

    #[tokio::test]
    async fn the_memory_counter_forgets_expired_windows() {
        let c = MemoryWindowCounter::new();
        c.try_take("k", 100, 0, 5, 110).await.unwrap();
        c.try_take("k", 105, 0, 5, 115).await.unwrap();
        c.try_take("k", 111, 0, 5, 121).await.unwrap();
        // Slots below `min_slot` are forfeited.
        assert_eq!(c.try_take("k", 111, 3, 5, 121).await.unwrap(), Some(3));
        assert_eq!(c.try_take("k", 111, 0, 5, 121).await.unwrap(), Some(4));
        assert_eq!(c.try_take("k", 111, 0, 5, 121).await.unwrap(), None);
        assert_eq!(
            c.counts("k").keys().copied().collect::<Vec<_>>(),
            [105, 111]
        );
        assert!(c.counts("other").is_empty());
    }

    /// At Meta's 1000/s tier a window is split over five sub-counters, none taking more than
    /// its share, the slots stay distinct, and no sliding second holds more than the limit.
    #[tokio::test]
    async fn the_1000_per_second_tier_is_spread_over_sub_counters() {
        let clock = VirtualClock::at(T0 + 437);
        let counter = Arc::new(MemoryWindowCounter::new());
        let p = Pacer::new(counter.clone()).with_virtual_clock(&clock);
        assert_eq!(shards_for(1000), 5);
        assert_eq!(shards_for(80), 1);
        assert_eq!(shards_for(201), 2);
        let mut released = Vec::new();
        let mut slots = std::collections::HashSet::new();
        for _ in 0..3000 {
            let permit = p.acquire(PNID, Some(1000)).await.unwrap();
            assert!(
                slots.insert((permit.window_second, permit.slot)),
                "slot handed out twice"
            );
            released.push(clock.now_ms());
        }
        assert!(
            counter.counts(PNID).is_empty(),
            "the unsplit key is not used"
        );
        for j in 0..5 {
            let c = counter.counts(&format!("{PNID}~{j}"));
            assert!(!c.is_empty(), "sub-counter {j} is used");
            assert!(c.values().all(|&n| n <= 200), "{j}: {c:?}");
        }
        // Busiest sliding second of release times.
        let mut busiest = 0;
        let mut lo = 0;
        for hi in 0..released.len() {
            while released[hi] - released[lo] >= 1000 {
                lo += 1;
            }
            busiest = busiest.max(hi - lo + 1);
        }
        assert!(busiest <= 1000, "{busiest} in one sliding second");
        let elapsed = (released.last().unwrap() - released[0]) as f64 / 1000.0;
        let rate = 2999.0 / elapsed;
        assert!((950.0..=1000.5).contains(&rate), "rate {rate}");
    }

    struct Registry {
        rate: Option<u32>,
        fail: bool,
        reads: std::sync::atomic::AtomicU32,
    }

    #[async_trait::async_trait]
    impl LimitSource for Registry {
        async fn limit_of(&self, _: &str) -> Result<Option<u32>, PaceError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                Err(PaceError::Store("throttled".into()))
            } else {
                Ok(self.rate)
            }
        }
    }

    #[tokio::test]
    async fn a_numbers_configured_rate_is_used_and_read_once_a_minute() {
        let clock = VirtualClock::at(T0);
        let registry = Arc::new(Registry {
            rate: Some(5),
            fail: false,
            reads: Default::default(),
        });
        let p = pacer(&clock).with_limits(registry.clone());
        let permits: Vec<Permit> = {
            let mut v = Vec::new();
            for _ in 0..12 {
                v.push(p.acquire(PNID, None).await.unwrap());
            }
            v
        };
        assert!(permits.iter().all(|p| p.limit == 5));
        assert_eq!(
            per_window(&permits).values().copied().collect::<Vec<_>>(),
            [5, 5, 2]
        );
        assert_eq!(registry.reads.load(Ordering::SeqCst), 1, "remembered");
        // A caller's explicit limit wins; the registry is not read for it.
        assert_eq!(p.acquire(PNID, Some(7)).await.unwrap().limit, 7);
        clock.advance(LIMIT_CACHE_MS);
        p.acquire(PNID, None).await.unwrap();
        assert_eq!(
            registry.reads.load(Ordering::SeqCst),
            2,
            "read again after a minute"
        );

        // No configured rate, or a registry that cannot be read: the default (80).
        for (rate, fail) in [(None, false), (Some(5), true), (Some(5000), false)] {
            let registry = Arc::new(Registry {
                rate,
                fail,
                reads: Default::default(),
            });
            let p = pacer(&clock).with_limits(registry);
            assert_eq!(p.acquire(PNID, None).await.unwrap().limit, DEFAULT_LIMIT);
        }
    }

    /// The retry gate takes a real permit per retry, and says no when the number is saturated.
    #[tokio::test]
    async fn each_retry_takes_a_permit() {
        use crate::meta::graph::RetryGate;
        let clock = VirtualClock::at(T0);
        let p = Arc::new(
            pacer(&clock)
                .with_default_limit(2)
                .with_max_wait(Duration::ZERO),
        );
        let gate = PacedRetries::new(p.clone());
        p.acquire(PNID, None).await.unwrap();
        gate.before_retry(PNID).await.unwrap();
        assert_eq!(p.counter().counts(PNID).get(&(T0 / 1000)), Some(&2));
        let refused = gate.before_retry(PNID).await.unwrap_err();
        assert!(refused.contains("saturated"), "{refused}");
    }
}
