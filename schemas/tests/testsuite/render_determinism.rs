//! Rendering is deterministic: the same sources give the same bytes, in
//! whatever order the top-level collections of the sources happen to be
//! written; the ordered lists inside an entity (variations, modifiers, an
//! item's modifier groups) keep the order they are written in.

use proptest::prelude::*;
use schemas::load::TenantBase;
use schemas::model::*;
use schemas::render::render_store;
use schemas::{Id, Money, Rate};

fn id(prefix: &str, n: usize) -> Id {
    Id::new(format!("{prefix}-{n}"))
}

/// A tenant base with `n` items, built from generated prices and flags.
fn base(prices: &[u64], flags: &[bool]) -> TenantBase {
    let categories = (0..3)
        .map(|c| Category {
            id: id("cat", c),
            name: format!("Category {c}"),
            sort: c as i32,
        })
        .collect();
    let modifiers = (0..4)
        .map(|m| Modifier {
            id: id("mod", m),
            name: format!("M{m}"),
            price: Money(50 * m as u64),
            default: m == 0,
        })
        .collect();
    let items = prices
        .iter()
        .enumerate()
        .map(|(i, p)| Item {
            id: id("item", i),
            name: format!("Item {i}"),
            category: id("cat", i % 3),
            description: None,
            taxes: vec![id("tax", 0)],
            modifier_groups: if flags[i % flags.len()] {
                vec![id("grp", 0)]
            } else {
                vec![]
            },
            stations: vec![],
            variations: (0..3)
                .map(|v| Variation {
                    id: Id::new(format!("item-{i}-v{v}")),
                    name: format!("V{v}"),
                    sku: None,
                    price: Money(p + v as u64 * 100),
                })
                .collect(),
        })
        .collect();
    let mut b = TenantBase {
        info: Some(TenantInfo {
            id: Id::new("acme"),
            name: "Acme".into(),
            currency: "USD".into(),
            timezone: "UTC".into(),
        }),
        ..TenantBase::default()
    };
    b.settings
        .insert("tax.rounding".into(), SettingValue::Str("half_even".into()));
    b.settings.insert(
        "receipt.footer_text".into(),
        SettingValue::Str("alias".into()),
    );
    b.menu = Menu {
        taxes: vec![Tax {
            id: id("tax", 0),
            name: "Tax".into(),
            rate: Rate::new_unchecked("7.25"),
            inclusion: Inclusion::Exclusive,
        }],
        categories,
        modifier_groups: vec![ModifierGroup {
            id: id("grp", 0),
            name: "G".into(),
            min: 0,
            max: 2,
            modifiers,
        }],
        items,
        discounts: vec![],
    };
    b.access.roles = vec![
        Role {
            id: Id::new("manager"),
            name: "M".into(),
            level: 50,
            inherits: vec![Id::new("cashier")],
            permissions: vec!["order.void".into(), "reports.read".into()],
        },
        Role {
            id: Id::new("cashier"),
            name: "C".into(),
            level: 10,
            inherits: vec![],
            permissions: vec!["order.create".into()],
        },
    ];
    b.access.users = (0..5)
        .map(|u| User {
            id: id("user", u),
            name: format!("U{u}"),
            role: Id::new(if u == 0 { "manager" } else { "cashier" }),
            stores: vec![if u % 2 == 0 {
                "*".into()
            } else {
                "soho".into()
            }],
            pin_hash: Some(
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
            ),
            plaintext_pin: false,
        })
        .collect();
    b.kitchen.stations = vec![Station {
        id: Id::new("grill"),
        name: "Grill".into(),
        kind: StationKind::Printer,
    }];
    b.kitchen.routing.default = vec![Id::new("grill")];
    b
}

fn store(prices: &[u64]) -> StoreFile {
    let yaml = format!(
        "apiVersion: fleet/v1\nkind: Store\nstore: {{id: soho, name: SoHo}}\noverrides:\n  prices: {{item-0-v1: {}, mod-1: 75}}\n  absent: [item-1, item-2-v0]\n  tax_rates: {{tax-0: \"8.875\"}}\ndevices:\n  - {{id: p1, station: grill, type: escpos_net, address: \"10.0.0.1:9100\"}}\n",
        prices.first().copied().unwrap_or(1)
    );
    schemas::yaml::decode::<StoreFile>("store.yaml", &yaml).expect("store fixture decodes")
}

fn shuffled<T: Clone>(v: &[T], seed: u64) -> Vec<T> {
    // A small deterministic Fisher-Yates driven by the generated seed.
    let mut out = v.to_vec();
    let mut s = seed | 1;
    for i in (1..out.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.swap(i, (s % (i as u64 + 1)) as usize);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn same_sources_in_any_order_render_the_same_bytes(
        prices in prop::collection::vec(0u64..1_000_000, 3..40),
        flags in prop::collection::vec(any::<bool>(), 1..5),
        seed in any::<u64>(),
    ) {
        let b = base(&prices, &flags);
        let s = store(&prices);
        let first = serde_saphyr::to_string(&render_store(&b, &s)).expect("serialize");
        let again = serde_saphyr::to_string(&render_store(&b, &s)).expect("serialize");
        prop_assert_eq!(&first, &again);

        let mut permuted = b.clone();
        permuted.menu.items = shuffled(&b.menu.items, seed);
        permuted.menu.categories = shuffled(&b.menu.categories, seed.rotate_left(3));
        permuted.menu.modifier_groups = shuffled(&b.menu.modifier_groups, seed.rotate_left(5));
        permuted.access.roles = shuffled(&b.access.roles, seed.rotate_left(11));
        permuted.access.users = shuffled(&b.access.users, seed.rotate_left(19));
        for item in &mut permuted.menu.items {
            item.taxes = shuffled(&item.taxes, seed.rotate_left(29));
        }
        let mut s2 = s.clone();
        s2.overrides.absent = shuffled(&s.overrides.absent, seed);
        let other = serde_saphyr::to_string(&render_store(&permuted, &s2)).expect("serialize");
        prop_assert_eq!(first, other);
    }

    /// The display order: an item's variations and modifier groups and a
    /// group's modifiers come out in the order they are written, less what
    /// the store leaves out.
    #[test]
    fn ordered_lists_keep_their_authored_order(
        prices in prop::collection::vec(0u64..1_000_000, 3..40),
        flags in prop::collection::vec(any::<bool>(), 1..5),
        seed in any::<u64>(),
    ) {
        let mut b = base(&prices, &flags);
        for (n, item) in b.menu.items.iter_mut().enumerate() {
            let n = n as u64;
            item.variations = shuffled(&item.variations, seed.rotate_left(7) ^ n);
            item.modifier_groups = shuffled(&item.modifier_groups, seed.rotate_left(13) ^ n);
        }
        for g in &mut b.menu.modifier_groups {
            g.modifiers = shuffled(&g.modifiers, seed.rotate_left(23));
        }
        let s = store(&prices);
        let absent = schemas::render::absent_ids(&s);
        let kept = |ids: Vec<&Id>| -> Vec<String> {
            ids.into_iter()
                .filter(|id| !absent.contains(id.as_str()))
                .map(|id| id.0.clone())
                .collect()
        };
        let state = render_store(&b, &s);
        for rendered in &state.menu.items {
            let authored = b.menu.items.iter().find(|i| i.id == rendered.id).expect("an authored item");
            let got: Vec<String> = rendered.variations.iter().map(|v| v.id.0.clone()).collect();
            prop_assert_eq!(got, kept(authored.variations.iter().map(|v| &v.id).collect()));
            prop_assert_eq!(&rendered.modifier_groups, &authored.modifier_groups);
        }
        for rendered in &state.menu.modifier_groups {
            let authored = b.menu.modifier_groups.iter().find(|g| g.id == rendered.id).expect("an authored group");
            let got: Vec<String> = rendered.modifiers.iter().map(|m| m.id.0.clone()).collect();
            prop_assert_eq!(got, kept(authored.modifiers.iter().map(|m| &m.id).collect()));
        }
    }
}

#[test]
fn overrides_apply_and_absent_entities_are_left_out() {
    let b = base(&[1000, 2000, 3000], &[true]);
    let state = render_store(&b, &store(&[1000]));
    let items: Vec<&str> = state.menu.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(items, ["item-0", "item-2"], "item-1 is absent");
    let item0 = &state.menu.items[0];
    assert_eq!(
        item0.variations[1].price,
        Money(1000),
        "store price override"
    );
    assert_eq!(item0.variations[0].price, Money(1000), "base price kept");
    let item2: Vec<&str> = state.menu.items[1]
        .variations
        .iter()
        .map(|v| v.id.as_str())
        .collect();
    assert_eq!(
        item2,
        ["item-2-v1", "item-2-v2"],
        "absent variation left out"
    );
    assert_eq!(state.menu.taxes[0].rate.as_str(), "8.875");
    assert_eq!(state.menu.modifier_groups[0].modifiers[1].price, Money(75));
    // Aliases render under their current names.
    assert!(state.settings.contains_key("receipt.footer"));
    assert!(!state.settings.contains_key("receipt.footer_text"));
    assert!(
        state
            .access
            .roles
            .iter()
            .any(|r| r.permissions.contains(&"reports.view".to_owned()))
    );
    // Tenant users reach the store by `stores`; `stores` is not rendered.
    let users: Vec<&str> = state.access.users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(users, ["user-0", "user-1", "user-2", "user-3", "user-4"]);
    assert!(state.access.users.iter().all(|u| u.stores.is_empty()));
    assert_eq!(
        state.settings.get("store.name"),
        Some(&SettingValue::Str("SoHo".into()))
    );
}

/// The route of a rendered item, as validation computed it from the full
/// render before it used the borrowed outline.
fn rendered_route<'a>(state: &'a schemas::StoreState, item: &'a Item) -> &'a [Id] {
    let routing = &state.kitchen.routing;
    if !item.stations.is_empty() {
        &item.stations
    } else if let Some(r) = routing.categories.get(&item.category) {
        r
    } else {
        &routing.default
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// `fleet validate` checks rules 7–9 on `sold_items`, `route` and
    /// `users` instead of a full render (a third of its time for 10,000
    /// stores); they must say what the render says.
    #[test]
    fn borrowed_outline_agrees_with_the_render(
        prices in prop::collection::vec(0u64..1_000_000, 3..20),
        flags in prop::collection::vec(any::<bool>(), 1..5),
        absent_bits in any::<u64>(),
        station_bits in any::<u64>(),
        base_routes in prop::collection::vec(prop::option::of(0usize..3), 3),
        store_routes in prop::collection::vec(prop::option::of(0usize..3), 3),
        store_default in prop::option::of(0usize..3),
        store_users in 0usize..3,
    ) {
        let stations = ["grill", "bar", "grill"];
        let pick = |n: usize| -> Vec<Id> { stations[..n].iter().map(|s| Id::new(*s)).collect() };
        let mut b = base(&prices, &flags);
        for (i, item) in b.menu.items.iter_mut().enumerate() {
            if station_bits >> (i % 64) & 1 == 1 {
                item.stations = pick(1 + i % 3);
            }
        }
        for (c, r) in base_routes.iter().enumerate() {
            if let Some(n) = r {
                b.kitchen.routing.categories.insert(id("cat", c), pick(*n));
            }
        }
        let mut s = store(&prices);
        let mut bit = 0;
        s.overrides.absent.clear();
        for item in &b.menu.items {
            for v in std::iter::once(&item.id).chain(item.variations.iter().map(|v| &v.id)) {
                if absent_bits >> (bit % 64) & 1 == 1 && bit % 3 == 0 {
                    s.overrides.absent.push(v.clone());
                }
                bit += 1;
            }
        }
        for (c, r) in store_routes.iter().enumerate() {
            if let Some(n) = r {
                s.overrides.routing.categories.insert(id("cat", c), pick(*n));
            }
        }
        s.overrides.routing.default = store_default.map(pick);
        s.access.users = (0..store_users)
            .map(|u| User {
                id: id("local", u),
                name: format!("L{u}"),
                role: Id::new("manager"),
                stores: vec![],
                pin_hash: None,
                plaintext_pin: false,
            })
            .collect();
        s.store.id = Id::new(if store_users == 2 { "noho" } else { "soho" });

        let state = render_store(&b, &s);
        let absent = schemas::render::absent_ids(&s);
        let sold = schemas::render::sold_items(&b.menu, &absent);
        let sold_ids: Vec<&str> = sold.iter().map(|i| i.id.as_str()).collect();
        let rendered_ids: Vec<&str> = state.menu.items.iter().map(|i| i.id.as_str()).collect();
        prop_assert_eq!(sold_ids, rendered_ids);
        for (borrowed, rendered) in sold.iter().zip(&state.menu.items) {
            let a: std::collections::BTreeSet<&Id> = borrowed.modifier_groups.iter().collect();
            let r: std::collections::BTreeSet<&Id> = rendered.modifier_groups.iter().collect();
            prop_assert_eq!(a, r);
            let a: std::collections::BTreeSet<&Id> =
                schemas::render::route(&b, &s, borrowed).iter().collect();
            let r: std::collections::BTreeSet<&Id> = rendered_route(&state, rendered).iter().collect();
            prop_assert_eq!(a, r);
        }
        let mut users: Vec<&str> = schemas::render::users(&b.access, &s).map(|u| u.id.as_str()).collect();
        users.sort_unstable();
        let rendered_users: Vec<&str> = state.access.users.iter().map(|u| u.id.as_str()).collect();
        prop_assert_eq!(users, rendered_users);
    }
}
