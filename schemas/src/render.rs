//! Rendering: tenant base + one store's overrides → the store's complete
//! desired state (POS-MODEL.md "Rendering a store").
//!
//! Pure and deterministic: the same inputs give the same value, and the
//! same bytes once serialized. Top-level collections keyed by id (taxes,
//! categories, groups, items, discounts, roles, users, stations, devices)
//! are sorted by id, maps by key, and sets of references (an item's
//! `taxes` and `stations`, a role's `inherits`, routes) by id, so the order
//! they are written in does not matter. Ordered lists inside an entity (an
//! item's `variations` and `modifier_groups`, a group's `modifiers`) keep
//! their authored order: it is the display order on the register
//! (POS-MODEL.md "Rendering a store"). Rendering assumes nothing about
//! validity; it renders what it is given and leaves judgement to
//! [`crate::validate`].

use std::collections::BTreeSet;

use crate::Id;
use crate::load::TenantBase;
use crate::model::{
    Access, Item, Menu, ModifierGroup, Role, SettingValue, Settings, StoreFile, User,
};
use crate::registry::{canonical_permission, canonical_setting_key};
use crate::state::{KitchenState, StoreState};

/// Settings every store gets from its identity rather than from `settings`.
pub const DERIVED_SETTINGS: &[&str] = &["store.name", "store.timezone", "store.currency"];

/// Render one store.
pub fn render_store(base: &TenantBase, store: &StoreFile) -> StoreState {
    StoreState {
        settings: render_settings(base, store),
        menu: render_menu(&base.menu, store),
        access: render_access(&base.access, store),
        kitchen: render_kitchen(base, store),
    }
}

fn render_settings(base: &TenantBase, store: &StoreFile) -> Settings {
    let mut out = Settings::new();
    for layer in [&base.settings, &store.overrides.settings] {
        // Within one layer a current name beats its old alias, whatever the
        // key order (validation refuses both at once anyway).
        let mut layer_out = Settings::new();
        for (k, v) in layer {
            let canonical = canonical_setting_key(k);
            if canonical == k || !layer.contains_key(canonical) {
                layer_out.insert(canonical.to_owned(), v.clone());
            }
        }
        out.extend(layer_out);
    }
    let timezone = store
        .store
        .timezone
        .clone()
        .or_else(|| base.info.as_ref().map(|t| t.timezone.clone()));
    out.insert(
        "store.name".into(),
        SettingValue::Str(store.store.name.clone()),
    );
    if let Some(tz) = timezone {
        out.insert("store.timezone".into(), SettingValue::Str(tz));
    }
    if let Some(info) = &base.info {
        out.insert(
            "store.currency".into(),
            SettingValue::Str(info.currency.clone()),
        );
    }
    out
}

/// The ids a store lists as absent.
pub fn absent_ids(store: &StoreFile) -> BTreeSet<&str> {
    store.overrides.absent.iter().map(|i| i.as_str()).collect()
}

/// Whether `item` is on the store's menu: it is not absent and at least one
/// of its variations is not.
fn is_sold(item: &Item, absent: &BTreeSet<&str>) -> bool {
    !absent.contains(item.id.as_str())
        && item
            .variations
            .iter()
            .any(|v| !absent.contains(v.id.as_str()))
}

/// The items [`render_store`] keeps on the store's menu, by id, borrowed
/// rather than rendered: validation needs their ids, groups and routes, not
/// a copy of the menu with the store's prices.
pub fn sold_items<'a>(menu: &'a Menu, absent: &BTreeSet<&str>) -> Vec<&'a Item> {
    let mut items: Vec<&Item> = menu.items.iter().filter(|i| is_sold(i, absent)).collect();
    sort_by_id(&mut items, |i| i.id.as_str());
    items
}

/// The stations that get `item`'s tickets at the store, as rendered: the
/// item's own stations, else the routing of its category, else the default
/// route (the store's override before the tenant's). Neither sorted nor
/// deduplicated; [`render_store`] sorts them.
pub fn route<'a>(base: &'a TenantBase, store: &'a StoreFile, item: &'a Item) -> &'a [Id] {
    let o = &store.overrides.routing;
    let r = &base.kitchen.routing;
    if !item.stations.is_empty() {
        &item.stations
    } else if let Some(targets) = o
        .categories
        .get(&item.category)
        .or_else(|| r.categories.get(&item.category))
    {
        targets
    } else {
        o.default.as_deref().unwrap_or(&r.default)
    }
}

/// The users [`render_store`] puts at the store, borrowed: the tenant users
/// whose `stores` reach it, then the store's own.
pub fn users<'a>(access: &'a Access, store: &'a StoreFile) -> impl Iterator<Item = &'a User> {
    let store_id = store.store.id.as_str();
    access
        .users
        .iter()
        .filter(move |u| u.stores.iter().any(|s| s == "*" || s == store_id))
        .chain(store.access.users.iter())
}

fn render_menu(menu: &Menu, store: &StoreFile) -> Menu {
    let o = &store.overrides;
    let absent = absent_ids(store);
    let price = |id: &str, default| o.prices.get(id).copied().unwrap_or(default);

    let mut taxes = menu.taxes.clone();
    for t in &mut taxes {
        if let Some(rate) = o.tax_rates.get(&t.id) {
            t.rate = rate.clone();
        }
    }
    let modifier_groups = menu
        .modifier_groups
        .iter()
        .map(|g| {
            let modifiers: Vec<_> = g
                .modifiers
                .iter()
                .filter(|m| !absent.contains(m.id.as_str()))
                .cloned()
                .map(|mut m| {
                    m.price = price(m.id.as_str(), m.price);
                    m
                })
                .collect();
            ModifierGroup {
                modifiers,
                ..g.clone()
            }
        })
        .collect();
    let items = menu
        .items
        .iter()
        .filter(|i| is_sold(i, &absent))
        .map(|i| {
            let variations: Vec<_> = i
                .variations
                .iter()
                .filter(|v| !absent.contains(v.id.as_str()))
                .cloned()
                .map(|mut v| {
                    v.price = price(v.id.as_str(), v.price);
                    v
                })
                .collect();
            Item {
                variations,
                taxes: sorted_ids(&i.taxes),
                modifier_groups: first_occurrences(&i.modifier_groups),
                stations: sorted_ids(&i.stations),
                ..i.clone()
            }
        })
        .collect();
    let discounts = menu
        .discounts
        .iter()
        .filter(|d| !absent.contains(d.id.as_str()))
        .cloned()
        .map(|mut d| {
            d.requires = d
                .requires
                .map(|p| canonical_permission(&p).map(str::to_owned).unwrap_or(p));
            d
        })
        .collect();
    let mut out = Menu {
        taxes,
        categories: menu.categories.clone(),
        modifier_groups,
        items,
        discounts,
    };
    sort_by_id(&mut out.taxes, |t| t.id.as_str());
    sort_by_id(&mut out.categories, |c| c.id.as_str());
    sort_by_id(&mut out.modifier_groups, |g| g.id.as_str());
    sort_by_id(&mut out.items, |i| i.id.as_str());
    sort_by_id(&mut out.discounts, |d| d.id.as_str());
    out
}

fn render_access(access: &Access, store: &StoreFile) -> Access {
    let mut roles: Vec<Role> = access
        .roles
        .iter()
        .map(|r| {
            let permissions: BTreeSet<String> = r
                .permissions
                .iter()
                .map(|p| {
                    canonical_permission(p)
                        .map(str::to_owned)
                        .unwrap_or_else(|| p.clone())
                })
                .collect();
            Role {
                permissions: permissions.into_iter().collect(),
                inherits: sorted_ids(&r.inherits),
                ..r.clone()
            }
        })
        .collect();
    sort_by_id(&mut roles, |r| r.id.as_str());
    let mut users: Vec<User> = users(access, store)
        .map(|u| User {
            stores: Vec::new(),
            plaintext_pin: false,
            ..u.clone()
        })
        .collect();
    sort_by_id(&mut users, |u| u.id.as_str());
    Access { roles, users }
}

fn render_kitchen(base: &TenantBase, store: &StoreFile) -> KitchenState {
    let mut stations = base.kitchen.stations.clone();
    sort_by_id(&mut stations, |s| s.id.as_str());
    let mut devices = store.devices.clone();
    sort_by_id(&mut devices, |d| d.id.as_str());
    let mut routing = base.kitchen.routing.clone();
    let o = &store.overrides.routing;
    if let Some(default) = &o.default {
        routing.default = default.clone();
    }
    for (category, targets) in &o.categories {
        routing.categories.insert(category.clone(), targets.clone());
    }
    routing.default = sorted_ids(&routing.default);
    for targets in routing.categories.values_mut() {
        *targets = sorted_ids(targets);
    }
    KitchenState {
        stations,
        devices,
        routing,
    }
}

fn sort_by_id<T>(v: &mut [T], id: impl Fn(&T) -> &str) {
    v.sort_by(|a, b| id(a).cmp(id(b)));
}

/// An ordered list of references in its authored order, each id once (its
/// first place): validation reports a repeated id, rendering must still be
/// total.
fn first_occurrences(ids: &[Id]) -> Vec<Id> {
    let mut seen = BTreeSet::new();
    ids.iter()
        .filter(|id| seen.insert(id.as_str()))
        .cloned()
        .collect()
}

fn sorted_ids(ids: &[crate::Id]) -> Vec<crate::Id> {
    let set: BTreeSet<_> = ids.iter().cloned().collect();
    set.into_iter().collect()
}
