//! Planner tests: small tables, a snapshot, and the property that applying
//! a plan to the applied state yields the desired state.

use std::path::Path;

use proptest::prelude::*;
use schemas::diff::EntityKind;
use schemas::load::DirTree;
use schemas::render::render_store;
use schemas::validate::check_repo;
use schemas::{Money, StoreState};

use super::*;

/// The template's soho store, rendered.
fn soho() -> StoreState {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fleet-repo-template");
    let (repo, diags) = check_repo(&DirTree::new(root));
    assert!(diags.is_empty(), "{diags:?}");
    let t = &repo.tenants["acme"];
    render_store(&t.base, &t.stores["soho"].file)
}

/// `state` as the edge would report it, every entity at `version`.
fn applied(state: &StoreState, version: u64) -> AppliedState {
    let versions = schemas::diff::entities(state)
        .into_keys()
        .map(|k| (k, version))
        .collect();
    AppliedState {
        state: state.clone(),
        versions,
        overridden: Default::default(),
        store_owned: Default::default(),
    }
}

/// Apply ops to an applied state the way the edge does (the model of the
/// edge's effect, used only by these pure tests).
fn apply(mut a: AppliedState, plan: &Plan) -> AppliedState {
    let mut entities = schemas::diff::entities(&a.state);
    for op in &plan.ops {
        let key = (op.kind, op.id.clone());
        match (&op.action, op.precondition) {
            (Action::Upsert(body), Precondition::IfAbsent) => {
                assert!(!entities.contains_key(&key), "create of existing {key:?}");
                entities.insert(key, body.clone());
            }
            (Action::Upsert(body), Precondition::IfMatch(v)) => {
                assert_eq!(
                    a.versions.get(&key).copied().unwrap_or(0),
                    v,
                    "stale If-Match for {key:?}"
                );
                entities.insert(key, body.clone());
            }
            (Action::Delete, Precondition::IfMatch(v)) => {
                assert_eq!(
                    a.versions.get(&key).copied(),
                    Some(v),
                    "stale If-Match for {key:?}"
                );
                entities.remove(&key);
            }
            (action, precondition) => {
                panic!("the planner never sends {action:?} with {precondition:?}: {key:?}")
            }
        }
    }
    a.state = from_entities(&entities);
    a
}

fn from_entities(entities: &BTreeMap<(EntityKind, String), Value>) -> StoreState {
    fn list<T: serde::de::DeserializeOwned>(
        entities: &BTreeMap<(EntityKind, String), Value>,
        kind: EntityKind,
    ) -> Vec<T> {
        let values = entities
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, v)| v.clone())
            .collect();
        serde_json::from_value(Value::Array(values)).expect("entities")
    }
    let mut s = StoreState::default();
    for ((k, id), v) in entities {
        if *k == EntityKind::Setting {
            s.settings.insert(
                id.clone(),
                serde_json::from_value(v.clone()).expect("setting"),
            );
        }
    }
    s.menu.taxes = list(entities, EntityKind::Tax);
    s.menu.categories = list(entities, EntityKind::Category);
    s.menu.modifier_groups = list(entities, EntityKind::ModifierGroup);
    s.menu.items = list(entities, EntityKind::Item);
    s.menu.discounts = list(entities, EntityKind::Discount);
    s.access.roles = list(entities, EntityKind::Role);
    s.access.users = list(entities, EntityKind::User);
    s.kitchen.stations = list(entities, EntityKind::Station);
    s.kitchen.devices = list(entities, EntityKind::Device);
    if let Some(r) = entities.get(&(EntityKind::Routing, "routing".to_owned())) {
        s.kitchen.routing = serde_json::from_value(r.clone()).expect("routing");
    }
    s
}

fn position(plan: &Plan, kind: EntityKind, id: &str) -> usize {
    plan.ops
        .iter()
        .position(|o| o.kind == kind && o.id == id)
        .unwrap_or_else(|| panic!("no op for {kind} {id}"))
}

#[test]
fn converge_from_empty_creates_in_dependency_order() {
    let desired = soho();
    let plan = plan(&desired, &AppliedState::default(), &Policy::default());
    assert!(
        plan.ops
            .iter()
            .all(|o| matches!(o.action, Action::Upsert(_)))
    );
    let entities = schemas::diff::entities(&desired).len();
    assert_eq!(plan.ops.len(), entities, "one op per entity");
    let ranks: Vec<usize> = plan.ops.iter().map(|o| rank(o.kind)).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "creates in kind order"
    );
    // Parents before heirs: manager inherits shift-lead inherits cashier.
    assert!(
        position(&plan, EntityKind::Role, "cashier")
            < position(&plan, EntityKind::Role, "shift-lead")
    );
    assert!(
        position(&plan, EntityKind::Role, "shift-lead")
            < position(&plan, EntityKind::Role, "manager")
    );
    assert!(
        position(&plan, EntityKind::Station, "grill")
            < position(&plan, EntityKind::Item, "classic-burger")
    );
    assert_eq!(apply(AppliedState::default(), &plan).state, desired);
}

#[test]
fn one_price_change_is_one_write() {
    let desired = soho();
    let mut before = desired.clone();
    before.menu.items[0].variations[0].price = Money(1);
    let plan = plan(&desired, &applied(&before, 7), &Policy::default());
    assert_eq!(plan.ops.len(), 1);
    let op = &plan.ops[0];
    assert_eq!(
        (op.kind, op.precondition),
        (EntityKind::Item, Precondition::IfMatch(7))
    );
    assert_eq!(op.id, desired.menu.items[0].id.as_str());
}

#[test]
fn in_sync_is_an_empty_plan() {
    let desired = soho();
    assert!(plan(&desired, &applied(&desired, 3), &Policy::default()).is_empty());
}

#[test]
fn overridden_users_and_roles_are_left_alone_and_reported() {
    let desired = soho();
    let mut edge = applied(&desired, 2);
    let user = desired.access.users[0].id.to_string();
    edge.state.access.users[0].name = "Changed at the store".into();
    edge.overridden.insert((EntityKind::User, user.clone()));
    // A store-made user that the repo does not know, also overridden.
    let mut extra = desired.access.users[0].clone();
    extra.id = schemas::Id::new("night-manager");
    edge.state.access.users.push(extra);
    edge.versions
        .insert((EntityKind::User, "night-manager".into()), 9);
    edge.overridden
        .insert((EntityKind::User, "night-manager".into()));
    let plan = plan(&desired, &edge, &Policy::default());
    assert!(plan.is_empty(), "{:?}", plan.ops);
    let ids: Vec<&str> = plan.overridden.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [user.as_str(), "night-manager"]
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
}

/// DESIGN.md §5's policy is an argument: with "the repo wins" for access,
/// an overridden user is planned like any other, and nothing is reported
/// as overridden.
#[test]
fn the_policy_decides_whether_an_override_is_respected() {
    let desired = soho();
    let mut edge = applied(&desired, 2);
    let user = desired.access.users[0].id.to_string();
    edge.state.access.users[0].name = "Changed at the store".into();
    edge.overridden.insert((EntityKind::User, user.clone()));
    let respected = plan(&desired, &edge, &Policy::default());
    assert!(respected.is_empty(), "{:?}", respected.ops);
    let repo_wins = Policy {
        access: Conflict::RepoWins,
        ..Policy::default()
    };
    let p = plan(&desired, &edge, &repo_wins);
    assert!(p.overridden.is_empty(), "{:?}", p.overridden);
    assert_eq!(p.ops.len(), 1, "{:?}", p.ops);
    assert_eq!(
        (p.ops[0].kind, p.ops[0].id.as_str()),
        (EntityKind::User, user.as_str())
    );
    assert_eq!(p.ops[0].precondition, Precondition::IfMatch(2));
}

#[test]
fn deletes_run_after_upserts_in_reverse_order() {
    let desired = soho();
    let mut desired_less = desired.clone();
    // Drop a whole category with its items, and the routes to it.
    let cat = "desserts";
    desired_less
        .menu
        .items
        .retain(|i| i.category.as_str() != cat);
    desired_less
        .menu
        .categories
        .retain(|c| c.id.as_str() != cat);
    desired_less.kitchen.routing.categories.remove(cat);
    let plan = plan(&desired_less, &applied(&desired, 4), &Policy::default());
    let cat_pos = position(&plan, EntityKind::Category, cat);
    let routing_pos = position(&plan, EntityKind::Routing, "routing");
    for op in plan.ops.iter().filter(|o| o.kind == EntityKind::Item) {
        assert!(matches!(op.action, Action::Delete));
        assert!(
            position(&plan, EntityKind::Item, &op.id) < cat_pos,
            "items go before their category"
        );
    }
    assert!(
        routing_pos < cat_pos,
        "the route goes before the category it names"
    );
    assert_eq!(apply(applied(&desired, 4), &plan).state, desired_less);
}

#[test]
fn snapshot_of_a_small_plan() {
    let desired = soho();
    let mut edge = desired.clone();
    edge.menu.items[1].variations[0].price = Money(999);
    edge.settings.insert(
        "receipt.footer".into(),
        schemas::model::SettingValue::Str("Local edit".into()),
    );
    edge.menu.discounts.pop();
    let mut a = applied(&edge, 5);
    a.versions
        .insert((EntityKind::Setting, "receipt.footer".into()), 11);
    let p = plan(&desired, &a, &Policy::default());
    let summary: Vec<String> = p
        .ops
        .iter()
        .map(|o| {
            format!(
                "{:?} {} {} {:?}",
                o.kind,
                o.id,
                matches!(o.action, Action::Delete)
                    .then_some("delete")
                    .unwrap_or("upsert"),
                o.precondition
            )
        })
        .collect();
    insta::assert_snapshot!("small_plan_ops", summary.join("\n"));
    insta::assert_json_snapshot!("small_plan_diff", p.diff);
}

fn perturb(base: &StoreState, seed: &[u8]) -> StoreState {
    let mut s = base.clone();
    for (i, b) in seed.iter().enumerate() {
        match b % 6 {
            0 if !s.menu.items.is_empty() => {
                let n = (*b as usize + i) % s.menu.items.len();
                s.menu.items.remove(n);
            }
            1 if !s.menu.items.is_empty() => {
                let n = (*b as usize * 7 + i) % s.menu.items.len();
                s.menu.items[n].variations[0].price = Money(*b as u64 * 13);
            }
            2 => {
                s.settings.insert(
                    format!("custom.k{b}"),
                    schemas::model::SettingValue::Int(i as i64),
                );
            }
            3 if !s.access.users.is_empty() => {
                let n = (*b as usize) % s.access.users.len();
                s.access.users[n].name = format!("Renamed {b}");
            }
            4 if !s.kitchen.devices.is_empty() => {
                let n = (*b as usize) % s.kitchen.devices.len();
                s.kitchen.devices.remove(n);
            }
            _ => {
                if let Some(c) = s.menu.categories.get_mut(i % 3) {
                    c.sort = *b as i32;
                }
            }
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Applying the plan to the applied state yields the desired state.
    #[test]
    fn applying_the_plan_converges(a in prop::collection::vec(any::<u8>(), 0..12), d in prop::collection::vec(any::<u8>(), 0..12), v in 1u64..1000) {
        let base = soho();
        let edge = applied(&perturb(&base, &a), v);
        let desired = perturb(&base, &d);
        let p = plan(&desired, &edge, &Policy::default());
        let after = apply(edge, &p);
        prop_assert_eq!(&after.state, &desired);
        // And then there is nothing left to do.
        prop_assert!(plan(&desired, &applied(&after.state, v + 1), &Policy::default()).is_empty());
    }
}
