//! The fleet overview's store table as a pure function: which of the rows
//! an operator may see a query selects, the counts per state, the order and
//! the page. Shared by `GET /api/v1/stores` and the `/` page, so both
//! filter, sort and page alike.
//!
//! No IO, no clock and no tenant check: the caller ([`crate::api::overview`])
//! passes only rows of the operator's tenants, each with its state computed.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::state::SyncState;
use crate::store::StoreRow;

/// Rows per page when a page is asked for without `per_page`, and on the
/// dashboard.
pub const DEFAULT_PAGE_SIZE: u64 = 100;

/// Largest `per_page` accepted.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// What the table can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    Store,
    State,
    Desired,
    Applied,
    LastSeen,
    Reconciler,
}

impl SortKey {
    pub const ALL: [SortKey; 6] = [
        SortKey::Store,
        SortKey::State,
        SortKey::Desired,
        SortKey::Applied,
        SortKey::LastSeen,
        SortKey::Reconciler,
    ];

    /// The query parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Store => "store",
            SortKey::State => "state",
            SortKey::Desired => "desired",
            SortKey::Applied => "applied",
            SortKey::LastSeen => "last_seen",
            SortKey::Reconciler => "reconciler",
        }
    }

    pub fn parse(s: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One page of the table, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: u64,
    pub size: u64,
}

/// The query parameters as sent (`?tenant=&state=&q=&root_below=&sort=&dir=&page=&per_page=`);
/// empty values count as absent, so a submitted filter form with blank
/// fields means "no filter".
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawQuery {
    pub tenant: Option<String>,
    pub state: Option<String>,
    pub root_below: Option<String>,
    pub q: Option<String>,
    pub sort: Option<String>,
    pub dir: Option<String>,
    pub page: Option<String>,
    pub per_page: Option<String>,
}

/// A query parameter that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("state: {0:?} is not a store state")]
    State(String),
    #[error("sort: {0:?} is not one of store, state, desired, applied, last_seen, reconciler")]
    Sort(String),
    #[error("dir: {0:?} is neither asc nor desc")]
    Dir(String),
    #[error("{param}: {value:?} is not a whole number from 1 to {max}")]
    Number {
        param: &'static str,
        value: String,
        max: u64,
    },
}

/// A parsed overview query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub tenant: Option<String>,
    pub state: Option<SyncState>,
    /// Only stores whose last report trusts a trust root version below
    /// this (or none: bare keys): who has not followed a rotation yet.
    pub root_below: Option<u64>,
    /// Case-insensitive substring of the store id.
    pub search: Option<String>,
    pub sort: SortKey,
    pub desc: bool,
    /// `None`: every matching store (the API's behaviour before paging).
    pub page: Option<Page>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn number(param: &'static str, v: &str, max: u64) -> Result<u64, QueryError> {
    v.parse::<u64>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| QueryError::Number {
            param,
            value: v.to_owned(),
            max,
        })
}

impl ListQuery {
    pub fn parse(raw: &RawQuery) -> Result<ListQuery, QueryError> {
        let state = match given(&raw.state) {
            None => None,
            Some(s) => Some(
                SyncState::ALL
                    .into_iter()
                    .find(|x| x.as_str() == s)
                    .ok_or_else(|| QueryError::State(s.to_owned()))?,
            ),
        };
        let sort = match given(&raw.sort) {
            None => SortKey::Store,
            Some(s) => SortKey::parse(s).ok_or_else(|| QueryError::Sort(s.to_owned()))?,
        };
        let desc = match given(&raw.dir) {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(d) => return Err(QueryError::Dir(d.to_owned())),
        };
        let number_of = |param, v: Option<&str>, max| v.map(|v| number(param, v, max)).transpose();
        let page = number_of("page", given(&raw.page), u64::from(u32::MAX))?;
        let size = number_of("per_page", given(&raw.per_page), MAX_PAGE_SIZE)?;
        let root_below = number_of("root_below", given(&raw.root_below), u64::from(u32::MAX))?;
        let page = match (page, size) {
            (None, None) => None,
            (n, s) => Some(Page {
                number: n.unwrap_or(1),
                size: s.unwrap_or(DEFAULT_PAGE_SIZE),
            }),
        };
        Ok(ListQuery {
            tenant: given(&raw.tenant).map(str::to_owned),
            state,
            root_below,
            search: given(&raw.q).map(str::to_owned),
            sort,
            desc,
            page,
        })
    }

    /// Page 1 of [`DEFAULT_PAGE_SIZE`] unless a page was asked for: the
    /// dashboard never renders every store at once.
    pub fn paged(mut self) -> ListQuery {
        if self.page.is_none() {
            self.page = Some(Page {
                number: 1,
                size: DEFAULT_PAGE_SIZE,
            });
        }
        self
    }

    /// Whether `row` passes the tenant and search filters (not the state
    /// filter: the counts per state are of these rows).
    fn admits(&self, row: &StoreRow) -> bool {
        self.tenant.as_deref().is_none_or(|t| t == row.tenant)
            && self
                .root_below
                .is_none_or(|n| row.root_version.is_none_or(|v| v < n))
            && self
                .search
                .as_deref()
                .is_none_or(|q| row.store.to_lowercase().contains(&q.to_lowercase()))
    }
}

/// What a query selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Stores per state among those passing the tenant and search filters
    /// (every state present, zeros included).
    pub counts: BTreeMap<&'static str, u64>,
    /// Stores passing every filter.
    pub total: u64,
    /// Pages of the query's size (1 for an empty or unpaged result).
    pub pages: u64,
    /// The requested page of them, in order.
    pub rows: Vec<(StoreRow, SyncState)>,
}

/// `a` against `b` by `key` (descending when `desc`), ties by store id
/// ascending so a page's order is stable.
fn compare(
    key: SortKey,
    desc: bool,
    a: &(StoreRow, SyncState),
    b: &(StoreRow, SyncState),
) -> Ordering {
    let (ra, rb) = (&a.0, &b.0);
    let primary = match key {
        SortKey::Store => ra.store.cmp(&rb.store),
        SortKey::State => a.1.cmp(&b.1),
        SortKey::Desired => ra.desired_revision.cmp(&rb.desired_revision),
        SortKey::Applied => ra.applied_revision.cmp(&rb.applied_revision),
        SortKey::LastSeen => ra.last_seen.cmp(&rb.last_seen),
        SortKey::Reconciler => ra.reconciler_version.cmp(&rb.reconciler_version),
    };
    let primary = if desc { primary.reverse() } else { primary };
    primary.then_with(|| ra.store.cmp(&rb.store))
}

/// Filter, count, sort and page `rows`.
pub fn select(rows: impl IntoIterator<Item = (StoreRow, SyncState)>, q: &ListQuery) -> Selection {
    let mut counts: BTreeMap<&'static str, u64> =
        SyncState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut matched: Vec<(StoreRow, SyncState)> = Vec::new();
    for (row, state) in rows {
        if !q.admits(&row) {
            continue;
        }
        *counts.entry(state.as_str()).or_default() += 1;
        if q.state.is_none_or(|s| s == state) {
            matched.push((row, state));
        }
    }
    matched.sort_by(|a, b| compare(q.sort, q.desc, a, b));
    let total = matched.len() as u64;
    let (pages, rows) = match q.page {
        None => (1, matched),
        Some(p) => {
            let pages = total.div_ceil(p.size).max(1);
            let skip = usize::try_from((p.number - 1).saturating_mul(p.size)).unwrap_or(usize::MAX);
            let take = usize::try_from(p.size).unwrap_or(usize::MAX);
            (pages, matched.into_iter().skip(skip).take(take).collect())
        }
    };
    Selection {
        counts,
        total,
        pages,
        rows,
    }
}

/// `application/x-www-form-urlencoded` encoding of one query value.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl ListQuery {
    /// The query string (with `?`, or empty) that asks for this query again:
    /// the dashboard's sort, filter and page links.
    pub fn to_query_string(&self) -> String {
        let mut parts: Vec<(&str, String)> = Vec::new();
        if let Some(t) = &self.tenant {
            parts.push(("tenant", t.clone()));
        }
        if let Some(s) = self.state {
            parts.push(("state", s.as_str().to_owned()));
        }
        if let Some(q) = &self.search {
            parts.push(("q", q.clone()));
        }
        if let Some(n) = self.root_below {
            parts.push(("root_below", n.to_string()));
        }
        if self.sort != SortKey::Store {
            parts.push(("sort", self.sort.as_str().to_owned()));
        }
        if self.desc {
            parts.push(("dir", "desc".to_owned()));
        }
        if let Some(p) = self.page {
            if p.number != 1 {
                parts.push(("page", p.number.to_string()));
            }
            if p.size != DEFAULT_PAGE_SIZE {
                parts.push(("per_page", p.size.to_string()));
            }
        }
        if parts.is_empty() {
            return String::new();
        }
        let joined: Vec<String> = parts
            .into_iter()
            .map(|(k, v)| format!("{k}={}", encode_component(&v)))
            .collect();
        format!("?{}", joined.join("&"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(store: &str, desired: Option<u64>, applied: Option<u64>, seen: Option<i64>) -> StoreRow {
        StoreRow {
            store: store.to_owned(),
            tenant: store.split('/').next().unwrap_or("").to_owned(),
            in_repo: true,
            desired_revision: desired,
            desired_commit: None,
            expires_at: None,
            release_valid: true,
            release_error: None,
            checked_at: None,
            last_seen: seen,
            last_outcome: None,
            applied_revision: applied,
            last_drift: 0,
            last_overridden: 0,
            reconciler_version: None,
            root_version: None,
            release_api: None,
            reported_revision: None,
            active_nodes: 1,
        }
    }

    #[test]
    fn root_below_keeps_stores_on_an_older_root_or_none() {
        let mut rows = Vec::new();
        for (name, root) in [
            ("acme/a", Some(1)),
            ("acme/b", Some(3)),
            ("acme/c", None),
            ("acme/d", Some(2)),
        ] {
            let mut r = row(name, Some(1), Some(1), Some(1));
            r.root_version = root;
            rows.push((r, SyncState::Synced));
        }
        let q = ListQuery::parse(&raw(&[("root_below", "3")])).unwrap();
        let names: Vec<String> = select(rows.clone(), &q)
            .rows
            .into_iter()
            .map(|(r, _)| r.store)
            .collect();
        assert_eq!(names, ["acme/a", "acme/c", "acme/d"]);
        assert_eq!(q.to_query_string(), "?root_below=3");
        assert!(ListQuery::parse(&raw(&[("root_below", "0")])).is_err());
        assert!(ListQuery::parse(&raw(&[("root_below", "x")])).is_err());
    }

    fn raw(pairs: &[(&str, &str)]) -> RawQuery {
        let mut r = RawQuery::default();
        for (k, v) in pairs {
            let v = Some((*v).to_owned());
            match *k {
                "tenant" => r.tenant = v,
                "state" => r.state = v,
                "root_below" => r.root_below = v,
                "q" => r.q = v,
                "sort" => r.sort = v,
                "dir" => r.dir = v,
                "page" => r.page = v,
                "per_page" => r.per_page = v,
                other => panic!("no parameter {other}"),
            }
        }
        r
    }

    fn fleet() -> Vec<(StoreRow, SyncState)> {
        vec![
            (
                row("acme/soho", Some(3), Some(3), Some(50)),
                SyncState::Synced,
            ),
            (
                row("acme/brooklyn", Some(3), Some(2), Some(10)),
                SyncState::OutOfSync,
            ),
            (
                row("globex/uptown", Some(1), None, None),
                SyncState::Offline,
            ),
            (
                row("acme/jfk-airport", Some(3), Some(3), Some(30)),
                SyncState::Drifted,
            ),
        ]
    }

    fn names(s: &Selection) -> Vec<&str> {
        s.rows.iter().map(|(r, _)| r.store.as_str()).collect()
    }

    #[test]
    fn parsing() {
        assert_eq!(ListQuery::parse(&raw(&[])), Ok(ListQuery::default()));
        // A submitted form with blank fields is no filter.
        assert_eq!(
            ListQuery::parse(&raw(&[("tenant", ""), ("state", " "), ("q", "")])),
            Ok(ListQuery::default())
        );
        let q = ListQuery::parse(&raw(&[
            ("sort", "last_seen"),
            ("dir", "desc"),
            ("page", "2"),
        ]))
        .unwrap();
        assert_eq!((q.sort, q.desc), (SortKey::LastSeen, true));
        assert_eq!(
            q.page,
            Some(Page {
                number: 2,
                size: DEFAULT_PAGE_SIZE
            })
        );
        let q = ListQuery::parse(&raw(&[("per_page", "10")])).unwrap();
        assert_eq!(
            q.page,
            Some(Page {
                number: 1,
                size: 10
            })
        );
        for (k, v) in [
            ("state", "happy"),
            ("sort", "price"),
            ("dir", "up"),
            ("page", "0"),
            ("page", "x"),
            ("per_page", "1001"),
        ] {
            assert!(ListQuery::parse(&raw(&[(k, v)])).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn filters_count_before_the_state_filter() {
        let q = ListQuery::parse(&raw(&[("tenant", "acme"), ("state", "synced")])).unwrap();
        let s = select(fleet(), &q);
        assert_eq!(names(&s), ["acme/soho"]);
        assert_eq!(s.total, 1);
        // The counts are of acme's stores in every state, so each count
        // can link to its filter.
        assert_eq!(
            (
                s.counts["synced"],
                s.counts["out_of_sync"],
                s.counts["drifted"],
                s.counts["offline"]
            ),
            (1, 1, 1, 0)
        );
        let q = ListQuery::parse(&raw(&[("q", "SO")])).unwrap();
        assert_eq!(names(&select(fleet(), &q)), ["acme/soho"]);
    }

    #[test]
    fn sorting_breaks_ties_by_store() {
        let sorted = |pairs: &[(&str, &str)]| {
            let q = ListQuery::parse(&raw(pairs)).unwrap();
            names(&select(fleet(), &q)).join(" ")
        };
        assert_eq!(
            sorted(&[]),
            "acme/brooklyn acme/jfk-airport acme/soho globex/uptown"
        );
        assert_eq!(
            sorted(&[("dir", "desc")]),
            "globex/uptown acme/soho acme/jfk-airport acme/brooklyn"
        );
        assert_eq!(
            sorted(&[("sort", "last_seen"), ("dir", "desc")]),
            "acme/soho acme/jfk-airport acme/brooklyn globex/uptown"
        );
        // Ties stay in store order when descending.
        assert_eq!(
            sorted(&[("sort", "desired"), ("dir", "desc")]),
            "acme/brooklyn acme/jfk-airport acme/soho globex/uptown"
        );
        assert_eq!(
            sorted(&[("sort", "applied")]),
            "globex/uptown acme/brooklyn acme/jfk-airport acme/soho"
        );
        assert_eq!(
            sorted(&[("sort", "state")]),
            "acme/soho acme/brooklyn acme/jfk-airport globex/uptown"
        );
    }

    #[test]
    fn paging() {
        let q = ListQuery::parse(&raw(&[("per_page", "3"), ("page", "2")])).unwrap();
        let s = select(fleet(), &q);
        assert_eq!((s.total, s.pages), (4, 2));
        assert_eq!(names(&s), ["globex/uptown"]);
        let q = ListQuery::parse(&raw(&[("per_page", "3"), ("page", "9")])).unwrap();
        assert!(select(fleet(), &q).rows.is_empty());
        let s = select(fleet(), &ListQuery::default());
        assert_eq!((s.total, s.pages, s.rows.len()), (4, 1, 4));
    }

    #[test]
    fn query_strings_round_trip() {
        let r = raw(&[
            ("tenant", "acme"),
            ("q", "a b&c"),
            ("sort", "state"),
            ("dir", "desc"),
            ("page", "3"),
        ]);
        let q = ListQuery::parse(&r).unwrap();
        assert_eq!(
            q.to_query_string(),
            "?tenant=acme&q=a%20b%26c&sort=state&dir=desc&page=3"
        );
        assert_eq!(ListQuery::default().to_query_string(), "");
    }
}
