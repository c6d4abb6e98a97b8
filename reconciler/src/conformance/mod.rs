//! The edge conformance kit, `fleet conformance edge` (DESIGN.md §14):
//! every behaviour this reconciler relies on, checked against a running
//! backend through the reconciler's own client ([`EdgeClient`]) and planner
//! ([`planner::plan`]), so that what passes here is what a store's pass
//! will drive.
//!
//! The kit needs an empty backend (a fresh database): it converges the
//! backend to a store state with every entity kind ([`kit_state`]),
//! changes it, tries the writes a backend must refuse, reads the audit log,
//! and converges the backend back to empty. It refuses to start on a
//! backend that holds configuration, which it would otherwise delete.
//!
//! Each check yields one [`Outcome`]; a check the others depend on stops the
//! run when it fails, and the checks after it are reported as skipped.

use std::collections::BTreeSet;

use reqwest::Method;
use schemas::StoreState;
use schemas::diff::EntityKind;
use serde_json::{Value, json};
use wire::edge::{self, AuditEntry, AuditPage, ErrorBody, VerifyReport, header, path};

use crate::edge_client::{Bearer, EdgeClient, EdgeError, Writer};
use crate::planner::{self, Action, AppliedState, Op, Policy, Precondition};

/// Every check, in the order the kit runs them: name and what it shows.
pub const CHECKS: &[(&str, &str)] = &[
    (
        "contract",
        "GET /healthz names an edge contract version this reconciler drives",
    ),
    (
        "auth",
        "a request without the bearer token, or with a wrong one, is refused with 401 and the error body",
    ),
    (
        "state",
        "GET /state answers all four domains, every entity with its version, in the fields of POS-MODEL.md",
    ),
    (
        "empty",
        "the backend holds no configuration (the kit writes and deletes entities of every kind)",
    ),
    (
        "create",
        "the reconciler's writes create every entity kind, and GET /state then reads back exactly what was written",
    ),
    (
        "update",
        "updates and deletes apply; a written entity's version grows, and no other entity's version moves",
    ),
    (
        "preconditions",
        "a stale If-Match (on a PUT and in a batch) and If-None-Match: * on an existing entity answer 412 and change nothing",
    ),
    (
        "batch-atomic",
        "a POST /menu/batch with one failing op applies none of its ops",
    ),
    (
        "references",
        "a missing reference (an item's category, a user's role) and deleting a category that has items are refused with 409 or 422 and the error body",
    ),
    (
        "values",
        "a negative price and a tax rate over 100 are refused with 422 and the error body",
    ),
    (
        "not-found",
        "GET of an entity that does not exist answers 404 with the error body",
    ),
    (
        "override",
        "a user under a local override is shown in /state, left alone by the planner, and refused (409) to the reconciler",
    ),
    (
        "audit",
        "every write the reconciler made is in GET /audit with its actor, revision and commit, refused writes are not, and GET /audit/verify is ok",
    ),
    (
        "cleanup",
        "deleting everything the kit wrote leaves the backend empty again",
    ),
];

/// How one check came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Passed; what was seen.
    Pass(String),
    /// Failed; what was expected and what the backend did.
    Fail(String),
    /// Not run, because a check it needs failed.
    Skip(String),
}

/// One line of the kit's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub check: &'static str,
    pub verdict: Verdict,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (tag, text) = match &self.verdict {
            Verdict::Pass(t) => ("ok  ", t),
            Verdict::Fail(t) => ("FAIL", t),
            Verdict::Skip(t) => ("skip", t),
        };
        write!(f, "{tag} {:<14} {text}", self.check)
    }
}

/// The store state the kit converges the backend to.
pub fn kit_state() -> StoreState {
    schemas::yaml::decode("conformance/state.yaml", include_str!("state.yaml"))
        .expect("the kit's own state decodes")
}

/// The kit's change to [`kit_state`]: a price, a tax rate, a role's
/// permissions, a setting and the routing change; an item is removed.
pub fn kit_change(state: &StoreState) -> StoreState {
    let mut s = state.clone();
    s.settings.insert(
        "receipt.footer".to_owned(),
        schemas::model::SettingValue::Str("Conformance kit, changed".to_owned()),
    );
    for item in &mut s.menu.items {
        for v in &mut item.variations {
            if v.id.as_str() == "kit-burger-single" {
                v.price = schemas::Money(v.price.0 + 50);
            }
        }
    }
    s.menu.items.retain(|i| i.id.as_str() != "kit-soda");
    for t in &mut s.menu.taxes {
        if t.id.as_str() == "kit-sales" {
            t.rate = schemas::Rate::parse("9").expect("a rate");
        }
    }
    for r in &mut s.access.roles {
        if r.id.as_str() == "kit-cashier" {
            r.permissions.push("discount.apply".to_owned());
        }
    }
    s.kitchen
        .routing
        .default
        .push(schemas::Id::new("kit-grill"));
    s
}

/// The commit every kit write names (`X-Fleet-Commit`).
const KIT_COMMIT: &str = "c0f0e4ce00000000000000000000000000000001";

/// Revisions the kit writes as: the create, the update, the writes the
/// backend must refuse, and the cleanup.
const CREATE: u64 = 1;
const UPDATE: u64 = 2;
const REFUSED: u64 = 3;
const CLEANUP: u64 = 4;

/// The local person the override check writes as (`X-Fleet-Actor`).
const LOCAL_ACTOR: &str = "local:kit-manager";

fn writer(revision: u64) -> Writer {
    Writer {
        revision,
        commit: KIT_COMMIT.to_owned(),
    }
}

/// Run every check against the backend `client` talks to, calling `each`
/// with each outcome as it is known. Returns all of them.
pub async fn run(client: EdgeClient, mut each: impl FnMut(&Outcome)) -> Vec<Outcome> {
    let kit = Kit {
        raw: Raw {
            client: client.clone(),
        },
        client,
        desired: kit_state(),
        audit_from: 0,
        create_ops: Vec::new(),
        update_ops: Vec::new(),
    };
    let mut kit = kit;
    let mut out = Vec::new();
    let mut stopped: Option<&'static str> = None;
    for (name, _) in CHECKS {
        let verdict = match stopped {
            Some(failed) => Verdict::Skip(format!("needs `{failed}` to pass")),
            None => match kit.check(name).await {
                Ok(seen) => Verdict::Pass(seen),
                Err(Failure { why, stops }) => {
                    if stops {
                        stopped = Some(name);
                    }
                    Verdict::Fail(why)
                }
            },
        };
        let outcome = Outcome {
            check: name,
            verdict,
        };
        each(&outcome);
        out.push(outcome);
    }
    out
}

/// Why a check failed, and whether the checks after it can still run.
struct Failure {
    why: String,
    stops: bool,
}

impl Failure {
    /// A failure the later checks cannot run after.
    fn stops(why: impl Into<String>) -> Failure {
        Failure {
            why: why.into(),
            stops: true,
        }
    }
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        Failure { why, stops: false }
    }
}

impl From<EdgeError> for Failure {
    fn from(e: EdgeError) -> Failure {
        Failure::from(e.to_string())
    }
}

type CheckResult = Result<String, Failure>;

struct Kit {
    client: EdgeClient,
    raw: Raw,
    desired: StoreState,
    /// The audit log's last seq before the kit wrote anything.
    audit_from: u64,
    create_ops: Vec<Op>,
    update_ops: Vec<Op>,
}

impl Kit {
    async fn check(&mut self, name: &str) -> CheckResult {
        match name {
            "contract" => self.contract().await,
            "auth" => self.auth().await,
            "state" => self.state().await,
            "empty" => self.empty().await,
            "create" => self.create().await,
            "update" => self.update().await,
            "preconditions" => self.preconditions().await,
            "batch-atomic" => self.batch_atomic().await,
            "references" => self.references().await,
            "values" => self.values().await,
            "not-found" => self.not_found().await,
            "override" => self.local_override().await,
            "audit" => self.audit().await,
            "cleanup" => self.cleanup().await,
            other => Err(Failure::stops(format!("no such check {other}"))),
        }
    }

    async fn contract(&mut self) -> CheckResult {
        let n = self
            .client
            .contract()
            .await
            .map_err(|e| Failure::stops(e.to_string()))?;
        Ok(format!("GET /healthz says contract {n}"))
    }

    async fn auth(&mut self) -> CheckResult {
        for (auth, what) in [
            (Bearer::None, "without a bearer token"),
            (Bearer::Wrong, "with a wrong bearer token"),
        ] {
            let r = self
                .raw
                .send(Method::GET, path::STATE, &[], None, auth)
                .await?;
            if r.status != 401 {
                return Err(format!(
                    "GET /state {what} answered {}, not 401: a store's configuration would be open to anyone on its LAN",
                    r.status
                )
                .into());
            }
            r.error_body(&format!("GET /state {what}"))?;
        }
        Ok("GET /state without the token and with a wrong one: 401 with the error body".to_owned())
    }

    async fn state(&mut self) -> CheckResult {
        self.client
            .state()
            .await
            .map_err(|e| Failure::stops(e.to_string()))?;
        Ok(
            "GET /state has settings, menu, access and kitchen, and every entity decodes"
                .to_owned(),
        )
    }

    async fn empty(&mut self) -> CheckResult {
        let applied = self
            .client
            .state()
            .await
            .map_err(|e| Failure::stops(e.to_string()))?;
        let p = planner::plan(&StoreState::default(), &applied, &Policy::default());
        if let Some(first) = p.ops.first() {
            return Err(Failure::stops(format!(
                "the backend holds configuration already ({} entities, e.g. {} `{}`); the kit writes and \
                 deletes entities of every kind, so run it against a fresh, empty backend",
                p.ops.len(),
                first.kind,
                first.id
            )));
        }
        self.audit_from = self.raw.audit_end().await.map_err(Failure::stops)?;
        Ok("no configuration: the kit can write".to_owned())
    }

    /// Plan `desired` against the backend, apply it as `revision`, and
    /// check that the backend then reads back exactly `desired`.
    async fn converge(
        &mut self,
        desired: &StoreState,
        revision: u64,
    ) -> Result<(Vec<Op>, AppliedState, AppliedState), Failure> {
        let before = self.client.state().await?;
        let p = planner::plan(desired, &before, &Policy::default());
        self.client.apply(&p.ops, &writer(revision)).await?;
        let after = self.client.state().await?;
        let rest = planner::plan(desired, &after, &Policy::default());
        if let Some(op) = rest.ops.first() {
            let change = rest
                .diff
                .changes
                .iter()
                .find(|c| c.kind == op.kind && c.id == op.id)
                .map(|c| format!(": {c:?}"))
                .unwrap_or_default();
            return Err(format!(
                "every write succeeded, but GET /state then differs from what was written in {} entities, \
                 first {} `{}`{change}: a store would rewrite it at every pass",
                rest.ops.len(),
                op.kind,
                op.id
            )
            .into());
        }
        for (kind, id) in schemas::diff::entities(desired).keys() {
            if after.version(*kind, id).is_none() {
                return Err(format!("{kind} `{id}` has no version in GET /state").into());
            }
        }
        Ok((p.ops, before, after))
    }

    async fn create(&mut self) -> CheckResult {
        let desired = self.desired.clone();
        let (ops, _, _) = self
            .converge(&desired, CREATE)
            .await
            .map_err(|f| Failure::stops(f.why))?;
        let batched = ops.iter().filter(|o| o.batchable()).count();
        let kinds: BTreeSet<EntityKind> = ops.iter().map(|o| o.kind).collect();
        self.create_ops = ops.clone();
        Ok(format!(
            "{} writes of {} kinds ({batched} in menu batches); GET /state reads back what was written",
            ops.len(),
            kinds.len()
        ))
    }

    async fn update(&mut self) -> CheckResult {
        let changed = kit_change(&self.desired);
        let (ops, before, after) = self.converge(&changed, UPDATE).await?;
        self.desired = changed;
        self.update_ops = ops.clone();
        let written: BTreeSet<(EntityKind, String)> =
            ops.iter().map(|o| (o.kind, o.id.clone())).collect();
        for ((kind, id), v) in &after.versions {
            let was = before.version(*kind, id);
            let key = (*kind, id.clone());
            match was {
                Some(was) if written.contains(&key) && *v <= was => {
                    return Err(format!(
                        "{kind} `{id}` was updated but its version stayed {v} (was {was}): the next If-Match could not tell"
                    )
                    .into());
                }
                Some(was) if !written.contains(&key) && *v != was => {
                    return Err(format!(
                        "{kind} `{id}` was not written but its version moved from {was} to {v}: the reconciler's \
                         next write to it would fail its If-Match"
                    )
                    .into());
                }
                _ => {}
            }
        }
        let deletes = ops.iter().filter(|o| o.action == Action::Delete).count();
        Ok(format!(
            "{} writes ({deletes} deletes); written versions grew, the others stayed",
            ops.len()
        ))
    }

    /// The current version of `kind` `id`, and its body as `/state` has it.
    async fn current(&self, kind: EntityKind, id: &str) -> Result<(u64, Value), Failure> {
        let applied = self.client.state().await?;
        let version = applied
            .version(kind, id)
            .ok_or_else(|| format!("{kind} `{id}` is not in GET /state"))?;
        let body = schemas::diff::entities(&applied.state)
            .remove(&(kind, id.to_owned()))
            .ok_or_else(|| format!("{kind} `{id}` is not in GET /state"))?;
        Ok((version, body))
    }

    /// Apply `ops`, which the backend must refuse; `refusal` says which
    /// answer is expected. Returns what the backend answered.
    async fn refused(
        &self,
        ops: &[Op],
        what: &str,
        refusal: impl Fn(&EdgeError) -> bool,
        expected: &str,
    ) -> Result<String, Failure> {
        match self.client.apply(ops, &writer(REFUSED)).await {
            Ok(_) => Err(format!("{what} was accepted; expected {expected}").into()),
            Err(e) if refusal(&e) => Ok(e.to_string()),
            Err(e) => Err(format!("{what}: expected {expected}, got: {e}").into()),
        }
    }

    /// Whether the backend still holds exactly what the kit wrote last.
    async fn unchanged(&self, after: &str) -> Result<(), Failure> {
        let applied = self.client.state().await?;
        let p = planner::plan(&self.desired, &applied, &Policy::default());
        match p.ops.first() {
            None => Ok(()),
            Some(op) => Err(format!(
                "after {after}, GET /state differs from before it at {} `{}`: a refused write changed something",
                op.kind, op.id
            )
            .into()),
        }
    }

    async fn preconditions(&mut self) -> CheckResult {
        let (role_v, role) = self.current(EntityKind::Role, "kit-cashier").await?;
        let (cat_v, cat) = self.current(EntityKind::Category, "kit-drinks").await?;
        let stale = |v: u64| if v > 1 { v - 1 } else { v + 1 };
        let mut renamed_role = role.clone();
        renamed_role["name"] = json!("Kit cashier, stale");
        let mut renamed_cat = cat.clone();
        renamed_cat["name"] = json!("Kit drinks, stale");
        let attempts = [
            (
                upsert(
                    EntityKind::Role,
                    "kit-cashier",
                    Precondition::IfMatch(stale(role_v)),
                    renamed_role,
                ),
                "a PUT of role `kit-cashier` with a stale If-Match",
            ),
            (
                upsert(
                    EntityKind::Category,
                    "kit-drinks",
                    Precondition::IfMatch(stale(cat_v)),
                    renamed_cat.clone(),
                ),
                "a batch op on category `kit-drinks` with a stale if_match",
            ),
            (
                upsert(
                    EntityKind::Category,
                    "kit-drinks",
                    Precondition::IfAbsent,
                    renamed_cat,
                ),
                "a batch op creating category `kit-drinks` (if_none_match *), which exists",
            ),
            (
                upsert(EntityKind::Role, "kit-lead", Precondition::IfAbsent, {
                    let (_, mut lead) = self.current(EntityKind::Role, "kit-lead").await?;
                    lead["name"] = json!("Kit lead, stale");
                    lead
                }),
                "a PUT of role `kit-lead` with If-None-Match: *, which exists",
            ),
        ];
        for (op, what) in &attempts {
            self.refused(
                std::slice::from_ref(op),
                what,
                EdgeError::is_conflict,
                "412",
            )
            .await?;
            self.unchanged(what).await?;
        }
        Ok("stale If-Match on a PUT and in a batch, and If-None-Match: * on existing entities: 412, nothing changed".to_owned())
    }

    async fn batch_atomic(&mut self) -> CheckResult {
        let (cat_v, cat) = self.current(EntityKind::Category, "kit-mains").await?;
        let mut renamed = cat.clone();
        renamed["name"] = json!("Kit mains, renamed");
        let ops = [
            upsert(
                EntityKind::Category,
                "kit-new",
                Precondition::IfAbsent,
                json!({"id": "kit-new", "name": "Kit new", "sort": 3}),
            ),
            upsert(
                EntityKind::Category,
                "kit-mains",
                Precondition::IfMatch(cat_v),
                renamed,
            ),
            upsert(
                EntityKind::Item,
                "kit-orphan",
                Precondition::IfAbsent,
                item_body("kit-orphan", "kit-no-such-category", 100),
            ),
        ];
        let what = "a batch of three ops whose third names a category that does not exist";
        self.refused(
            &ops,
            what,
            |e| {
                matches!(
                    e,
                    EdgeError::Refused {
                        status: 409 | 422,
                        ..
                    }
                )
            },
            "a 409 or 422 refusal",
        )
        .await?;
        self.unchanged(what).await?;
        Ok("the batch was refused and neither of its two valid ops was applied".to_owned())
    }

    async fn references(&mut self) -> CheckResult {
        let (cat_v, _) = self.current(EntityKind::Category, "kit-mains").await?;
        let attempts = [
            (
                upsert(
                    EntityKind::Item,
                    "kit-orphan",
                    Precondition::IfAbsent,
                    item_body("kit-orphan", "kit-no-such-category", 100),
                ),
                "an item whose category does not exist",
            ),
            (
                Op {
                    kind: EntityKind::Category,
                    id: "kit-mains".to_owned(),
                    precondition: Precondition::IfMatch(cat_v),
                    action: Action::Delete,
                },
                "deleting category `kit-mains`, which has items",
            ),
            (
                upsert(
                    EntityKind::User,
                    "kit-orphan",
                    Precondition::IfAbsent,
                    json!({"id": "kit-orphan", "name": "Orphan Kit", "role": "kit-no-such-role"}),
                ),
                "a user whose role does not exist",
            ),
        ];
        let mut seen = Vec::new();
        for (op, what) in &attempts {
            self.refused(
                std::slice::from_ref(op),
                what,
                refused_with(&[409, 422]),
                "409 or 422 with the error body",
            )
            .await?;
            self.unchanged(what).await?;
            seen.push(*what);
        }
        Ok(format!(
            "refused with the error body, nothing written: {}",
            seen.join("; ")
        ))
    }

    async fn values(&mut self) -> CheckResult {
        let attempts = [
            (
                upsert(
                    EntityKind::Item,
                    "kit-negative",
                    Precondition::IfAbsent,
                    item_body("kit-negative", "kit-mains", -1),
                ),
                "an item with a negative price",
            ),
            (
                upsert(
                    EntityKind::Tax,
                    "kit-too-much",
                    Precondition::IfAbsent,
                    json!({"id": "kit-too-much", "name": "Too much", "rate": "150", "inclusion": "exclusive"}),
                ),
                "a tax rate of 150 %",
            ),
        ];
        for (op, what) in &attempts {
            self.refused(
                std::slice::from_ref(op),
                what,
                refused_with(&[422]),
                "422 with the error body",
            )
            .await?;
            self.unchanged(what).await?;
        }
        Ok(
            "a negative price and a 150 % tax rate: 422 with the error body, nothing written"
                .to_owned(),
        )
    }

    async fn not_found(&mut self) -> CheckResult {
        let p = edge::entity_path(EntityKind::Item, "kit-missing");
        let r = self
            .raw
            .send(Method::GET, &p, &[], None, Bearer::Token)
            .await?;
        if r.status != 404 {
            return Err(format!("GET {p} answered {}, not 404", r.status).into());
        }
        let body = r.error_body(&format!("GET {p}"))?;
        Ok(format!("GET {p}: 404 `{}`", body.error.code))
    }

    async fn local_override(&mut self) -> CheckResult {
        let (v, user) = self.current(EntityKind::User, "kit-alex").await?;
        let Some(p) = edge::override_path(EntityKind::User, "kit-alex") else {
            return Err("users have no override path".to_owned().into());
        };
        let set = |on: bool, version: u64| {
            let raw = &self.raw;
            let p = p.clone();
            async move {
                let r = raw
                    .send(
                        Method::POST,
                        &p,
                        &[
                            (header::IF_MATCH, version.to_string()),
                            (header::ACTOR, LOCAL_ACTOR.to_owned()),
                        ],
                        Some(&json!({"local_override": on})),
                        Bearer::Token,
                    )
                    .await?;
                if r.status != 200 {
                    return Err(Failure::from(format!(
                        "POST {p} {{\"local_override\": {on}}} as {LOCAL_ACTOR} answered {}: {}",
                        r.status,
                        clip(&r.body)
                    )));
                }
                Ok(())
            }
        };
        set(true, v).await?;
        let applied = self.client.state().await?;
        if !applied
            .overridden
            .contains(&(EntityKind::User, "kit-alex".to_owned()))
        {
            return Err("after POST .../override {\"local_override\": true}, GET /state does not show user `kit-alex` with local_override: true".to_owned().into());
        }
        let mut renamed = self.desired.clone();
        for u in &mut renamed.access.users {
            if u.id.as_str() == "kit-alex" {
                u.name = "Alex Kit, renamed in Git".to_owned();
            }
        }
        let p2 = planner::plan(&renamed, &applied, &Policy::default());
        if p2.ops.iter().any(|o| o.id == "kit-alex") {
            return Err("the planner would write the overridden user (the backend's /state did not mark it)".to_owned().into());
        }
        let now = applied
            .version(EntityKind::User, "kit-alex")
            .ok_or_else(|| "user `kit-alex` has no version".to_owned())?;
        let mut body = user.clone();
        body["name"] = json!("Alex Kit, renamed in Git");
        let what = "a reconciler write to user `kit-alex`, which is under a local override";
        self.refused(
            &[upsert(
                EntityKind::User,
                "kit-alex",
                Precondition::IfMatch(now),
                body,
            )],
            what,
            refused_with(&[409]),
            "409",
        )
        .await?;
        set(false, now).await?;
        let applied = self.client.state().await?;
        if applied
            .overridden
            .contains(&(EntityKind::User, "kit-alex".to_owned()))
        {
            return Err("after clearing the override, GET /state still shows it"
                .to_owned()
                .into());
        }
        self.unchanged("the override was set and cleared").await?;
        Ok("set locally, shown in /state, left alone by the planner, refused to the reconciler (409), cleared".to_owned())
    }

    async fn audit(&mut self) -> CheckResult {
        let entries = self.raw.audit_since(self.audit_from).await?;
        let mut unmatched: Vec<&AuditEntry> = entries.iter().collect();
        for (ops, revision) in [(&self.create_ops, CREATE), (&self.update_ops, UPDATE)] {
            for op in ops {
                let kind = op.kind.code();
                let found = unmatched.iter().position(|e| {
                    e.kind == kind && e.entity_id == op.id && e.revision == Some(revision)
                });
                let Some(i) = found else {
                    return Err(format!(
                        "GET /audit has no entry for the reconciler's write to {kind} `{}` at revision {revision}",
                        op.id
                    )
                    .into());
                };
                let e = unmatched.remove(i);
                if e.actor != header::RECONCILER_ACTOR || e.commit.as_deref() != Some(KIT_COMMIT) {
                    return Err(format!(
                        "the audit entry {} for {kind} `{}` names actor {:?} and commit {:?}, not {:?} and {KIT_COMMIT:?} \
                         from X-Fleet-Revision and X-Fleet-Commit",
                        e.seq, op.id, e.actor, e.commit, header::RECONCILER_ACTOR
                    )
                    .into());
                }
                let shape_ok = match (&op.action, e.action.as_str()) {
                    (Action::Delete, "delete") => e.before.is_some() && e.after.is_none(),
                    (Action::Upsert(_), "create") => e.before.is_none() && e.after.is_some(),
                    (Action::Upsert(_), "update") => e.before.is_some() && e.after.is_some(),
                    _ => false,
                };
                if !shape_ok {
                    return Err(format!(
                        "the audit entry {} for {kind} `{}` says action {:?} with before {} and after {}: \
                         a create has only after, an update both, a delete only before",
                        e.seq,
                        op.id,
                        e.action,
                        if e.before.is_some() { "set" } else { "null" },
                        if e.after.is_some() { "set" } else { "null" },
                    )
                    .into());
                }
            }
        }
        if let Some(e) = unmatched.iter().find(|e| e.revision == Some(REFUSED)) {
            return Err(format!(
                "GET /audit has entry {} for {} `{}` from a write the backend refused",
                e.seq, e.kind, e.entity_id
            )
            .into());
        }
        let local = unmatched.iter().filter(|e| e.actor == LOCAL_ACTOR).count();
        if local < 2 {
            return Err(format!(
                "GET /audit has {local} entries by {LOCAL_ACTOR}; setting and clearing the override are two writes"
            )
            .into());
        }
        let r = self
            .raw
            .send(Method::GET, path::AUDIT_VERIFY, &[], None, Bearer::Token)
            .await?;
        let report: VerifyReport = serde_json::from_str(&r.body).map_err(|e| {
            format!(
                "GET /audit/verify answered {} that is not a report ({e}): {}",
                r.status,
                clip(&r.body)
            )
        })?;
        if r.status != 200 || !report.ok {
            return Err(
                format!("GET /audit/verify answered {}: {}", r.status, clip(&r.body)).into(),
            );
        }
        Ok(format!(
            "{} entries with actor, revision and commit; none for refused writes; /audit/verify ok over {} entries",
            self.create_ops.len() + self.update_ops.len(),
            report.entries
        ))
    }

    async fn cleanup(&mut self) -> CheckResult {
        let (ops, _, after) = self.converge(&StoreState::default(), CLEANUP).await?;
        let left = planner::plan(&StoreState::default(), &after, &Policy::default());
        if !left.ops.is_empty() {
            return Err(format!("{} entities are left", left.ops.len()).into());
        }
        Ok(format!("{} deletes; the backend is empty again", ops.len()))
    }
}

/// An upsert op of `body`.
fn upsert(kind: EntityKind, id: &str, precondition: Precondition, body: Value) -> Op {
    Op {
        kind,
        id: id.to_owned(),
        precondition,
        action: Action::Upsert(body),
    }
}

/// An item of one variation at `price` in `category`.
fn item_body(id: &str, category: &str, price: i64) -> Value {
    json!({
        "id": id,
        "name": "Kit item",
        "category": category,
        "variations": [{"id": format!("{id}-v"), "name": "One", "price": price}],
    })
}

/// A refusal with one of `statuses` and the error body's code.
fn refused_with(statuses: &'static [u16]) -> impl Fn(&EdgeError) -> bool {
    move |e| match e {
        EdgeError::Refused { status, code, .. } => statuses.contains(status) && !code.is_empty(),
        _ => false,
    }
}

/// At most 200 characters of an answer, for a message.
fn clip(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_owned(),
    }
}

/// Requests the reconciler's client never makes: without the token, as a
/// local person, and reads of the audit log.
struct Raw {
    client: EdgeClient,
}

struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    /// The error body `{"error": {"code", "message"}}` of a refusal.
    fn error_body(&self, what: &str) -> Result<ErrorBody, String> {
        match serde_json::from_str::<ErrorBody>(&self.body) {
            Ok(b) if !b.error.code.is_empty() && !b.error.message.is_empty() => Ok(b),
            _ => Err(format!(
                "{what} answered {} without the error body {{\"error\": {{\"code\", \"message\"}}}}: {}",
                self.status,
                clip(&self.body)
            )),
        }
    }
}

impl Raw {
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&Value>,
        auth: Bearer,
    ) -> Result<Answer, String> {
        let json = body.map(|b| serde_json::to_vec(b).expect("a JSON value serializes"));
        let (status, body) = self
            .client
            .send(method.clone(), path, headers, json, auth)
            .await
            .map_err(|e| {
                format!(
                    "{method} {path}: cannot reach the backend at {}: {e}",
                    self.client.base()
                )
            })?;
        Ok(Answer {
            status: status.as_u16(),
            body,
        })
    }

    /// One page of `GET /audit?after=`.
    async fn audit_page(&self, after: u64) -> Result<AuditPage, String> {
        let p = format!("{}?after={after}", path::AUDIT);
        let r = self.send(Method::GET, &p, &[], None, Bearer::Token).await?;
        if r.status != 200 {
            return Err(format!("GET {p} answered {}: {}", r.status, clip(&r.body)));
        }
        serde_json::from_str(&r.body).map_err(|e| {
            format!(
                "GET {p}: the answer is not an audit page ({e}): {}",
                clip(&r.body)
            )
        })
    }

    /// Every audit entry after `after`.
    async fn audit_since(&self, after: u64) -> Result<Vec<AuditEntry>, String> {
        let mut out = Vec::new();
        let mut next = Some(after);
        while let Some(after) = next {
            let page = self.audit_page(after).await?;
            if page.next_after.is_some_and(|n| n <= after) {
                return Err(format!(
                    "GET /audit?after={after} answered next_after {:?}, which does not move on",
                    page.next_after
                ));
            }
            next = page.next_after;
            out.extend(page.entries);
        }
        Ok(out)
    }

    /// The last seq of the audit log (0 when it is empty).
    async fn audit_end(&self) -> Result<u64, String> {
        let entries = self.audit_since(0).await?;
        Ok(entries.last().map_or(0, |e| e.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kit_state_has_every_entity_kind() {
        let s = kit_state();
        let kinds: BTreeSet<EntityKind> = schemas::diff::entities(&s)
            .keys()
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(kinds.len(), EntityKind::ALL.len(), "{kinds:?}");
    }

    #[test]
    fn the_kit_change_writes_some_entities_and_deletes_one() {
        let a = kit_state();
        let b = kit_change(&a);
        let applied = AppliedState {
            state: a.clone(),
            ..AppliedState::default()
        };
        let p = planner::plan(&b, &applied, &Policy::default());
        let deletes: Vec<&str> = p
            .ops
            .iter()
            .filter(|o| o.action == Action::Delete)
            .map(|o| o.id.as_str())
            .collect();
        assert_eq!(deletes, ["kit-soda"]);
        let written: BTreeSet<EntityKind> = p.ops.iter().map(|o| o.kind).collect();
        for k in [
            EntityKind::Setting,
            EntityKind::Tax,
            EntityKind::Item,
            EntityKind::Role,
            EntityKind::Routing,
        ] {
            assert!(written.contains(&k), "{k} is not written: {:?}", p.ops);
        }
    }

    /// docs/edge-contract.md lists every check with what it shows, as the
    /// kit prints them.
    #[test]
    fn the_contract_doc_lists_every_check() {
        let doc = include_str!("../../../docs/edge-contract.md");
        for (name, what) in CHECKS {
            let what = what
                .replace("GET /healthz", "`GET /healthz`")
                .replace("GET /state", "`GET /state`")
                .replace("POST /menu/batch", "`POST /menu/batch`")
                .replace("GET /audit/verify", "`GET /audit/verify`")
                .replace("GET /audit ", "`GET /audit` ")
                .replace("/state,", "`/state`,")
                .replace("If-Match", "`If-Match`")
                .replace("If-None-Match: *", "`If-None-Match: *`")
                .replace("GET of", "`GET` of");
            let row = format!("| `{name}` | {what} |");
            assert!(
                doc.contains(&row),
                "docs/edge-contract.md lacks the row\n{row}"
            );
        }
    }

    #[test]
    fn check_names_are_unique() {
        let names: BTreeSet<&str> = CHECKS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), CHECKS.len(), "check names are unique");
    }
}
