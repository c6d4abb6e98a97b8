//! Waves, windows and effective time (DESIGN.md §12): the shapes of a
//! tenant's `rollout:` and a tenant's or store's `windows:`, and the pure
//! logic the operator CLI, the status service and the store share — which
//! wave takes which store, whether a deny window is open at a store's local
//! time, and when a store-local time happens.
//!
//! Store-local time is the store's IANA time zone (`store.timezone`, else
//! the tenant's) read from the time zone database built into this crate
//! (chrono-tz), so a Pi without tzdata and the operator's laptop agree.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{
    DateTime, Datelike as _, Duration, NaiveDate, NaiveDateTime, TimeZone as _, Timelike as _, Utc,
};
use chrono_tz::Tz;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::primitives::{Id, rule_error};

// ---------------------------------------------------------------- rollout

/// `rollout:` of a tenant base: the waves a change goes out in, how long a
/// wave stays healthy before the next, and when a rollout stops itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// In order; a wave without `select` and `stores` takes every store no
    /// earlier wave took (the catch-all, last).
    pub waves: Vec<Wave>,
    /// How long a complete wave must stay healthy before the next starts,
    /// such as `30m` or `2h` (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake: Option<Bake>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortPolicy>,
}

/// One wave of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wave {
    pub name: Id,
    /// Stores whose labels match every one given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<Selector>,
    /// Stores named by id (store directory).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<Id>,
    /// At most this many stores (`10`) or this share of the rollout's
    /// stores (`25%`, rounded up); the rest spill into the next wave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stores: Option<MaxStores>,
}

impl Wave {
    /// A wave with neither `select` nor `stores`: every store left.
    pub fn is_catch_all(&self) -> bool {
        self.select.is_none() && self.stores.is_empty()
    }

    /// Whether this wave selects the store `id` with `labels` (before
    /// earlier waves and `max_stores` are considered).
    pub fn selects(&self, id: &str, labels: &BTreeMap<String, String>) -> bool {
        if self.is_catch_all() {
            return true;
        }
        let by_name = self.stores.iter().any(|s| s.as_str() == id);
        let by_label = self.select.as_ref().is_some_and(|s| s.matches(labels));
        by_name || by_label
    }
}

/// `select:` of a wave.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// Label → value; a store matches when it has every one, exactly.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Selector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// `max_stores:` a count or a percentage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxStores {
    Count(u64),
    Percent(u64),
}

impl MaxStores {
    /// The cap for a rollout of `total` stores: a percentage rounds up and
    /// is at least one store.
    pub fn cap(self, total: usize) -> usize {
        match self {
            MaxStores::Count(n) => usize::try_from(n).unwrap_or(usize::MAX),
            MaxStores::Percent(p) => {
                let p = usize::try_from(p.min(100)).unwrap_or(100);
                (total * p).div_ceil(100).max(1)
            }
        }
    }
}

impl fmt::Display for MaxStores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxStores::Count(n) => write!(f, "{n}"),
            MaxStores::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Serialize for MaxStores {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MaxStores::Count(n) => s.serialize_u64(*n),
            MaxStores::Percent(_) => s.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for MaxStores {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const WHAT: &str = "max_stores is a number of stores (10) or a percentage (\"25%\")";
        impl Visitor<'_> for V {
            type Value = MaxStores;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(WHAT)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MaxStores, E> {
                Ok(MaxStores::Count(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MaxStores, E> {
                u64::try_from(v)
                    .map(MaxStores::Count)
                    .map_err(|_| rule_error("rollout/max-stores", format_args!("{WHAT}, got {v}")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MaxStores, E> {
                v.strip_suffix('%')
                    .filter(|n| {
                        !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|n| n.parse().ok())
                    .map(MaxStores::Percent)
                    .ok_or_else(|| {
                        rule_error("rollout/max-stores", format_args!("{WHAT}, got {v:?}"))
                    })
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for MaxStores {
    fn schema_name() -> Cow<'static, str> {
        "MaxStores".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A number of stores, or a percentage of the rollout's stores such as \"25%\".",
            "oneOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": "^(100|[1-9][0-9]?)%$"}
            ]
        })
    }
}

/// `abort:` of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortPolicy {
    /// Abort when failed and refused stores reach this percentage of the
    /// wave's stores that are not offline (1–100).
    pub failed_percent: u64,
    /// ...and are at least this many (default 1).
    #[serde(default = "one")]
    pub min_stores: u64,
    /// Sign the previous state again for the stores already moved.
    #[serde(default)]
    pub rollback: bool,
}

fn one() -> u64 {
    1
}

/// A duration written as `30m`, `2h`, `1h 30m` or `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bake(pub std::time::Duration);

impl Serialize for Bake {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for Bake {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .ok()
            .filter(|d| d.as_secs() <= 30 * 86_400)
            .map(Bake)
            .ok_or_else(|| {
                rule_error(
                    "rollout/duration",
                    format_args!(
                        "bake {text:?} is not a duration of at most 30 days such as 30m, 2h or 1d"
                    ),
                )
            })
    }
}

impl JsonSchema for Bake {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration such as 30m, 2h, 1h 30m or 1d (at most 30 days).",
            "minLength": 2
        })
    }
}

/// A store as waves see it.
#[derive(Debug, Clone, Copy)]
pub struct StoreRef<'a> {
    pub id: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

/// The stores of each wave, in wave order, for a rollout of `stores`: each
/// store goes to the first wave that selects it; a wave keeps at most its
/// `max_stores` (the stores first by id), and the rest spill into the next
/// wave ahead of its own; the last wave keeps what spills into it. Stores no
/// wave selects are returned apart (validation makes that an error).
pub fn assign_waves(rollout: &Rollout, stores: &[StoreRef<'_>]) -> (Vec<Vec<String>>, Vec<String>) {
    let mut sorted: Vec<&StoreRef<'_>> = stores.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(b.id));
    let mut taken: BTreeSet<&str> = BTreeSet::new();
    let mut out: Vec<Vec<String>> = Vec::with_capacity(rollout.waves.len());
    let mut spill: Vec<String> = Vec::new();
    let last = rollout.waves.len().saturating_sub(1);
    for (i, wave) in rollout.waves.iter().enumerate() {
        let mut members = std::mem::take(&mut spill);
        for s in &sorted {
            if !taken.contains(s.id) && wave.selects(s.id, s.labels) {
                taken.insert(s.id);
                members.push(s.id.to_owned());
            }
        }
        if let Some(max) = wave.max_stores
            && i < last
        {
            let cap = max.cap(stores.len());
            if members.len() > cap {
                spill = members.split_off(cap);
            }
        }
        out.push(members);
    }
    let unselected = sorted
        .iter()
        .filter(|s| !taken.contains(s.id))
        .map(|s| s.id.to_owned())
        .collect();
    (out, unselected)
}

// ---------------------------------------------------------------- rollout files

/// Where rollout files live: `rollouts/<tenant>/<id>.yaml`.
pub const ROLLOUTS_DIR: &str = "rollouts";

/// `rollouts/<tenant>/<id>.yaml`: one rollout of one tenant's change, as
/// `fleet sign` starts it and `fleet rollout …` moves it on. Every decision
/// is a change of this file, committed by the release job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutFile {
    #[serde(rename = "apiVersion")]
    pub api_version: crate::model::ApiVersion,
    pub kind: crate::model::RolloutKind,
    pub id: String,
    pub tenant: String,
    pub state: RolloutState,
    /// The commit the rollout's releases are rendered from.
    pub source_commit: String,
    /// HEAD before the rollout's first releases: where a rollback finds
    /// each store's previous release.
    pub base_commit: String,
    /// SHA-256 of the tenant's sources at the start: a change to them
    /// supersedes the rollout.
    pub sources_digest: String,
    /// SHA-256 of the bytes of the tenant's files at the start (release
    /// files left out): when they are unchanged, so is what the stores
    /// render, and `advance` need not render every store to know it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_digest: Option<String>,
    pub started_at: DateTime<Utc>,
    /// `fleet sign --effective-at`: every wave's releases take effect at
    /// this store-local time, however late the wave is signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_at: Option<NaiveDateTime>,
    /// Index into `waves` of the wave being rolled out.
    pub current_wave: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake: Option<Bake>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortPolicy>,
    pub waves: Vec<RolloutWave>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// Stores signed their previous state again after an abort.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rolled_back: BTreeMap<String, u64>,
    /// Every decision, oldest first.
    #[serde(default)]
    pub history: Vec<Decision>,
}

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    InProgress,
    Paused,
    Completed,
    Aborted,
    Superseded,
}

impl RolloutState {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::InProgress => "in_progress",
            RolloutState::Paused => "paused",
            RolloutState::Completed => "completed",
            RolloutState::Aborted => "aborted",
            RolloutState::Superseded => "superseded",
        }
    }

    /// In progress or paused: it still holds stores back.
    pub fn is_active(self) -> bool {
        matches!(self, RolloutState::InProgress | RolloutState::Paused)
    }
}

/// One wave of a rollout file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutWave {
    pub name: String,
    /// Its stores (directory names), frozen at the start.
    pub stores: Vec<String>,
    /// When its releases were signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<DateTime<Utc>>,
    /// The revision each store was signed, once signed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revisions: BTreeMap<String, u64>,
    /// When an advance first saw every store that reports at its revision:
    /// the bake starts here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_at: Option<DateTime<Utc>>,
}

/// One decision on a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub at: DateTime<Utc>,
    pub what: String,
}

// ---------------------------------------------------------------- gates

/// What the status service last saw of a store.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// Its state (`synced`, `failed`, `offline`, `scheduled`, …).
    pub state: &'a str,
    pub applied_revision: Option<u64>,
    /// The desired revision its last report named: the release it verified.
    pub reported_revision: Option<u64>,
}

/// Where a store of a wave is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// At the wave's revision (or holding it: scheduled, waiting for a window).
    AtTarget,
    /// Failed or refused below it.
    Failed,
    /// No recent report (offline, never enrolled, unknown): counted apart.
    Offline,
    /// Not there yet.
    Pending,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::AtTarget => "at_target",
            Standing::Failed => "failed",
            Standing::Offline => "offline",
            Standing::Pending => "pending",
        }
    }
}

/// The standing of a store a wave signed at `target` (DESIGN.md §12 gate
/// arithmetic): applied it (or a later one) → at target; offline, never
/// enrolled or unknown → offline; and, judged by the release its last
/// report named (a report about an older release says nothing of this
/// one): holding it, `scheduled` or `waiting_window` → at target; failed or
/// refused on it → failed; otherwise pending.
pub fn standing(seen: Option<Seen<'_>>, target: u64) -> Standing {
    let Some(s) = seen else {
        return Standing::Offline;
    };
    if s.applied_revision.is_some_and(|a| a >= target) {
        return Standing::AtTarget;
    }
    let about_target = s.reported_revision.is_some_and(|r| r >= target);
    match s.state {
        "offline" | "unenrolled" => Standing::Offline,
        "failed" | "refused" if about_target => Standing::Failed,
        "scheduled" | "waiting_window" if about_target => Standing::AtTarget,
        _ => Standing::Pending,
    }
}

/// A wave's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub stores: usize,
    pub at_target: usize,
    pub failed: usize,
    pub offline: usize,
    pub pending: usize,
}

impl Tally {
    /// The tally of `wave`, with `seen(store dir)` what the status service
    /// last saw of each store.
    pub fn of<'a>(wave: &RolloutWave, mut seen: impl FnMut(&str) -> Option<Seen<'a>>) -> Tally {
        let mut t = Tally::default();
        for s in &wave.stores {
            let target = wave.revisions.get(s).copied().unwrap_or(u64::MAX);
            t.add(standing(seen(s), target));
        }
        t
    }

    pub fn add(&mut self, s: Standing) {
        self.stores += 1;
        match s {
            Standing::AtTarget => self.at_target += 1,
            Standing::Failed => self.failed += 1,
            Standing::Offline => self.offline += 1,
            Standing::Pending => self.pending += 1,
        }
    }

    /// Stores that report.
    pub fn online(&self) -> usize {
        self.stores - self.offline
    }

    /// Every store that reports is at the target, and at least one reports.
    pub fn complete(&self) -> bool {
        self.online() > 0 && self.at_target == self.online()
    }

    /// Failed and refused stores reach the abort threshold: `failed_percent`
    /// of the stores that report, and at least `min_stores`.
    pub fn past_threshold(&self, abort: &AbortPolicy) -> bool {
        let online = self.online() as u64;
        let failed = self.failed as u64;
        online > 0 && failed >= abort.min_stores && failed * 100 >= abort.failed_percent * online
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at target, {} failed, {} waiting, {} offline of {}",
            self.at_target, self.failed, self.pending, self.offline, self.stores
        )
    }
}

// ---------------------------------------------------------------- windows

/// `windows:` of a tenant base or a store.yaml (the store's replace the
/// tenant's): when a non-urgent release must not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Windows {
    #[serde(default)]
    pub deny: Vec<DenyWindow>,
}

/// A time of day, store-local, when releases wait: on `days` of the week
/// and on `dates`, from `from` to `to`. A `to` earlier than `from` runs
/// past midnight into the next day; `to: "23:59"` (or `"24:00"`) means to
/// the end of the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyWindow {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<Day>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<NaiveDate>,
    pub from: LocalTime,
    pub to: LocalTime,
}

/// A day of the week, `mon` to `sun`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    pub const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    /// The day of the week of `date`.
    pub fn of(date: NaiveDate) -> Day {
        Day::ALL[date.weekday().num_days_from_monday() as usize]
    }
}

/// `"HH:MM"`, 24-hour, `00:00` to `24:00`; minutes since midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime(u16);

/// Minutes in a day.
const DAY_MINUTES: u16 = 24 * 60;

impl LocalTime {
    /// `HH:MM` as minutes since midnight; `None` unless well-formed.
    pub fn parse(text: &str) -> Option<LocalTime> {
        let (h, m) = text.split_once(':')?;
        if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        match (h, m) {
            (24, 0) => Some(LocalTime(DAY_MINUTES)),
            (0..=23, 0..=59) => Some(LocalTime(h * 60 + m)),
            _ => None,
        }
    }

    pub fn minutes(self) -> u16 {
        self.0
    }

    /// As the end of a window: `23:59` and `24:00` are the end of the day.
    fn end(self) -> u16 {
        if self.0 >= DAY_MINUTES - 1 {
            DAY_MINUTES
        } else {
            self.0
        }
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LocalTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 24-hour time \"HH:MM\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LocalTime, E> {
                LocalTime::parse(v).ok_or_else(|| {
                    rule_error(
                        "windows/time",
                        format_args!("{v:?} is not a 24-hour time \"HH:MM\" from 00:00 to 24:00"),
                    )
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LocalTime, E> {
                Err(rule_error(
                    "windows/time",
                    format_args!("{v} is not a time: quote it, \"HH:MM\""),
                ))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LocalTime, E> {
                Err(rule_error(
                    "windows/time",
                    format_args!("{v} is not a time: quote it, \"HH:MM\""),
                ))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for LocalTime {
    fn schema_name() -> Cow<'static, str> {
        "LocalTime".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "24-hour store-local time, \"HH:MM\" (00:00 to 24:00).",
            "pattern": "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
        })
    }
}

impl DenyWindow {
    /// Whether the window starts on `date`.
    fn starts_on(&self, date: NaiveDate) -> bool {
        self.days.contains(&Day::of(date)) || self.dates.contains(&date)
    }

    /// Whether the window is open at store-local `t`.
    pub fn covers(&self, t: NaiveDateTime) -> bool {
        let minute = (t.time().num_seconds_from_midnight() / 60) as u16;
        let (from, to) = (self.from.minutes(), self.to.end());
        if from < to {
            self.starts_on(t.date()) && (from..to).contains(&minute)
        } else if from > to {
            // Past midnight: the evening of its day, the morning after.
            (self.starts_on(t.date()) && minute >= from)
                || (t.date().pred_opt().is_some_and(|d| self.starts_on(d)) && minute < to)
        } else {
            false
        }
    }
}

/// How far [`Windows::next_clear`] looks.
pub const CLEAR_HORIZON_DAYS: i64 = 35;

impl Windows {
    /// The deny window open at store-local `t`, if any.
    pub fn open_at(&self, t: NaiveDateTime) -> Option<&DenyWindow> {
        self.deny.iter().find(|w| w.covers(t))
    }

    /// The first instant at or after `now` when no deny window is open at
    /// the store (time zone `tz`); `None` when none closes within
    /// [`CLEAR_HORIZON_DAYS`].
    pub fn next_clear(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let local = |t: DateTime<Utc>| t.with_timezone(&tz).naive_local();
        if self.open_at(local(now)).is_none() {
            return Some(now);
        }
        // Minute by minute: windows are whole minutes of wall-clock time,
        // and stepping in UTC walks through daylight-saving changes as the
        // store's clock does.
        let start = now
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(now);
        let mut t = start + Duration::minutes(1);
        let end = now + Duration::days(CLEAR_HORIZON_DAYS);
        while t <= end {
            if self.open_at(local(t)).is_none() {
                return Some(t);
            }
            t += Duration::minutes(1);
        }
        None
    }

    /// Whether the windows leave no minute of the week open (dates aside):
    /// a release could never apply.
    pub fn always_closed(&self) -> bool {
        // A Monday, then the 7 days and the night after: every minute of
        // a week, with windows running past midnight from the day before.
        let monday = NaiveDate::from_ymd_opt(2024, 1, 1).expect("a date");
        let weekly = Windows {
            deny: self
                .deny
                .iter()
                .filter(|w| !w.days.is_empty())
                .map(|w| DenyWindow {
                    dates: Vec::new(),
                    ..w.clone()
                })
                .collect(),
        };
        (0..7 * i64::from(DAY_MINUTES)).all(|m| {
            let t = monday.and_hms_opt(0, 0, 0).expect("midnight") + Duration::minutes(m + 1440);
            weekly.open_at(t).is_some()
        })
    }
}

// ---------------------------------------------------------------- time zones

/// The IANA time zone `name` from the built-in database.
pub fn time_zone(name: &str) -> Option<Tz> {
    name.parse().ok()
}

/// The instant store-local `t` happens in `tz`: when the store's clock first
/// shows `t` or later. An ambiguous time (clocks go back) is its first
/// occurrence; a time that does not exist (clocks go forward) is the
/// instant the clocks jump.
pub fn local_instant(t: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    use chrono::LocalResult;
    match tz.from_local_datetime(&t) {
        LocalResult::Single(x) => x.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => {
            // In a gap: the first wall-clock minute after it that exists.
            let mut probe = t;
            for _ in 0..(26 * 60) {
                probe += Duration::minutes(1);
                if let Some(x) = tz.from_local_datetime(&probe).earliest() {
                    // The jump itself: `probe` is the first minute after it.
                    let jump = x.with_timezone(&Utc);
                    return jump - Duration::seconds(i64::from(probe.time().second()));
                }
            }
            // No zone has a gap of a day; be safe anyway.
            tz.from_utc_datetime(&t).with_timezone(&Utc)
        }
    }
}

#[cfg(test)]
mod tests;
