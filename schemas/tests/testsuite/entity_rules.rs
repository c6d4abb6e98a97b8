//! `schemas::rules` is the whole of `fleet validate`'s judgement of one
//! entity: generated entities of every kind, put into an otherwise valid
//! repo, give exactly the errors the rules give them (same rule ids, at the
//! same lines), and nothing else. The edge applies the same functions, and
//! its own test (`edge::model`'s `shared_rules_only`) checks it accepts
//! exactly what they accept; together: what validates applies at the store.
//!
//! The one per-entity error only a repo reports is a user without
//! `pin_hash`: a store may hold such a user, a repo must give each a PIN.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::select;
use schemas::diag::{Rule, Severity};
use schemas::load::MemoryTree;
use schemas::model::*;
use schemas::primitives::MONEY_LIMIT;
use schemas::rules::{self, MAX_VARIATIONS, Violation};
use schemas::validate::check_repo;
use schemas::yaml::{PathIndex, YamlPath, to_canonical_yaml};
use schemas::{Id, Money, Rate};

// ---------------------------------------------------------------- a repo in memory

const TENANT: &str = "tenants/acme/tenant.yaml";
const STORE: &str = "tenants/acme/stores/soho/store.yaml";
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn id(s: &str) -> Id {
    Id::new(s)
}

// ---------------------------------------------------------------- generated entities

/// One generated entity of every kind, each free of references that do
/// not resolve and of ids that collide with the rest of the repo.
#[derive(Debug, Clone)]
struct Generated {
    tax: Tax,
    category: Category,
    group: ModifierGroup,
    item: Item,
    discount: Discount,
    role: Role,
    user: User,
    station: Station,
    device: Device,
    setting: (String, SettingValue),
    store: StoreInfo,
}

fn ids(pool: &'static [&'static str]) -> impl Strategy<Value = Id> {
    select(pool).prop_map(Id::new)
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just("Name".to_owned()),
        1 => Just(String::new()),
        1 => Just(" \t".to_owned()),
        1 => Just("x".repeat(501)),
        1 => Just("é".repeat(500)),
    ]
}

fn money() -> impl Strategy<Value = Money> {
    prop_oneof![
        4 => select(vec![0, 1, 1099, MONEY_LIMIT - 1]),
        1 => Just(MONEY_LIMIT),
    ]
    .prop_map(Money)
}

fn rate() -> impl Strategy<Value = Rate> {
    select(vec![
        "0", "8.875", "100", "20", "0.0001", "100.0001", "abc", "5.", "1000",
    ])
    .prop_map(Rate::new_unchecked)
}

fn item() -> impl Strategy<Value = Item> {
    let variation =
        (ids(&["v1", "v2", "V3"]), name(), money()).prop_map(|(id, name, price)| Variation {
            id,
            name,
            sku: None,
            price,
        });
    let too_many: Vec<Variation> = (0..=MAX_VARIATIONS)
        .map(|n| Variation {
            id: Id::new(format!("many-{n}")),
            name: "V".into(),
            sku: None,
            price: Money(1),
        })
        .collect();
    let variations = prop_oneof![
        20 => prop::collection::vec(variation, 0..4),
        1 => Just(too_many),
    ];
    (
        ids(&["gen", "Gen", ""]),
        name(),
        prop::collection::vec(ids(&["t1", "t2"]), 0..3),
        prop::collection::vec(ids(&["g1", "g2"]), 0..3),
        prop::collection::vec(ids(&["s1", "s2"]), 0..3),
        variations,
    )
        .prop_map(
            |(id, name, taxes, modifier_groups, stations, variations)| Item {
                id,
                name,
                category: Id::new("cat"),
                description: None,
                taxes,
                modifier_groups,
                stations,
                variations,
            },
        )
}

fn group() -> impl Strategy<Value = ModifierGroup> {
    let modifier = (ids(&["ma", "mb", "Mc"]), name(), money(), any::<bool>()).prop_map(
        |(id, name, price, default)| Modifier {
            id,
            name,
            price,
            default,
        },
    );
    (
        ids(&["grp", "Grp"]),
        name(),
        0..4u32,
        0..4u32,
        prop::collection::vec(modifier, 0..4),
    )
        .prop_map(|(id, name, min, max, modifiers)| ModifierGroup {
            id,
            name,
            min,
            max,
            modifiers,
        })
}

fn discount() -> impl Strategy<Value = Discount> {
    (
        ids(&["disc", "Disc"]),
        name(),
        select(vec![DiscountKind::Percent, DiscountKind::Amount]),
        prop::option::of(rate()),
        prop::option::of(money()),
        prop::option::of(select(vec!["discount.apply", "discount.manager", "nope"])),
    )
        .prop_map(|(id, name, kind, rate, amount, requires)| Discount {
            id,
            name,
            kind,
            rate,
            amount,
            requires: requires.map(str::to_owned),
        })
}

fn role() -> impl Strategy<Value = Role> {
    (
        ids(&["r2", "R2"]),
        name(),
        // `itself` stands for the role's own id.
        prop::collection::vec(select(vec!["boss", "itself"]), 0..3),
        prop::collection::vec(
            select(vec!["order.void", "reports.read", "order.fly"]),
            0..3,
        ),
    )
        .prop_map(|(id, name, inherits, permissions)| Role {
            inherits: inherits
                .into_iter()
                .map(|r| {
                    if r == "itself" {
                        id.clone()
                    } else {
                        Id::new(r)
                    }
                })
                .collect(),
            id,
            name,
            level: 5,
            permissions: permissions.into_iter().map(str::to_owned).collect(),
        })
}

fn user() -> impl Strategy<Value = User> {
    (
        ids(&["u2", "U2"]),
        name(),
        prop::option::of(select(vec![
            HASH.to_owned(),
            HASH.replace("argon2id", "argon2i"),
            "$argon2id$".to_owned(),
            "plain".to_owned(),
        ])),
    )
        .prop_map(|(id, name, pin_hash)| User {
            id,
            name,
            role: Id::new("boss"),
            stores: vec!["*".into()],
            pin_hash: pin_hash.map(Into::into),
            plaintext_pin: false,
        })
}

fn setting() -> impl Strategy<Value = (String, SettingValue)> {
    (
        select(vec![
            "tax.rounding",
            "order.auto_close_minutes",
            "receipt.footer_text",
            "tips.suggestions",
            "locale",
            "custom.x",
            "nope.x",
        ]),
        select(vec![
            SettingValue::Bool(true),
            SettingValue::Int(30),
            SettingValue::Int(5000),
            SettingValue::Str("half_up".into()),
            SettingValue::Str("en-US".into()),
            SettingValue::Str("x".repeat(501)),
            SettingValue::List(vec![SettingValue::Str("15".into())]),
            SettingValue::List(vec![SettingValue::Str("15%".into())]),
        ]),
    )
        .prop_map(|(k, v)| (k.to_owned(), v))
}

fn generated() -> impl Strategy<Value = Generated> {
    let tax = (ids(&["t3", "T3"]), name(), rate()).prop_map(|(id, name, rate)| Tax {
        id,
        name,
        rate,
        inclusion: Inclusion::Exclusive,
    });
    let category =
        (ids(&["c2", "C2"]), name()).prop_map(|(id, name)| Category { id, name, sort: 0 });
    let station = (ids(&["s3", "S3"]), name()).prop_map(|(id, name)| Station {
        id,
        name,
        kind: StationKind::Kds,
    });
    let device =
        (ids(&["d3", "D3"]), select(vec!["", " ", "10.0.0.9:9100"])).prop_map(|(id, address)| {
            Device {
                id,
                station: Id::new("s1"),
                kind: DeviceType::EscposNet,
                address: address.to_owned(),
            }
        });
    let store = (
        select(vec!["Soho".to_owned(), "x".repeat(201)]),
        prop::option::of(select(vec![
            "UTC".to_owned(),
            "Mars".to_owned(),
            format!("America/{}", "x".repeat(60)),
        ])),
    )
        .prop_map(|(name, timezone)| StoreInfo {
            id: Id::new("soho"),
            name,
            timezone,
            recipient: None,
            labels: Default::default(),
        });
    (
        (tax, category, group(), item(), discount(), role()),
        (user(), station, device, setting(), store),
    )
        .prop_map(
            |(
                (tax, category, group, item, discount, role),
                (user, station, device, setting, store),
            )| {
                Generated {
                    tax,
                    category,
                    group,
                    item,
                    discount,
                    role,
                    user,
                    station,
                    device,
                    setting,
                    store,
                }
            },
        )
}

// ---------------------------------------------------------------- the repo around them

/// The tenant base and the store file: valid fixtures with each generated
/// entity last in its list.
fn repo(g: &Generated) -> (TenantFile, StoreFile) {
    let modifier = |m: &str| Modifier {
        id: id(m),
        name: m.into(),
        price: Money(0),
        default: false,
    };
    let fixed_group = |g: &str, m: &str| ModifierGroup {
        id: id(g),
        name: g.into(),
        min: 0,
        max: 1,
        modifiers: vec![modifier(m)],
    };
    let station = |s: &str| Station {
        id: id(s),
        name: s.into(),
        kind: StationKind::Printer,
    };
    let tax = |t: &str| Tax {
        id: id(t),
        name: t.into(),
        rate: Rate::new_unchecked("8"),
        inclusion: Inclusion::Exclusive,
    };
    let tenant = TenantFile {
        api_version: ApiVersion,
        kind: TenantKind,
        tenant: Some(TenantInfo {
            id: id("acme"),
            name: "Acme".into(),
            currency: "USD".into(),
            timezone: "UTC".into(),
        }),
        settings: Some(Settings::from([g.setting.clone()])),
        menu: Some(Menu {
            taxes: vec![tax("t1"), tax("t2"), g.tax.clone()],
            categories: vec![
                Category {
                    id: id("cat"),
                    name: "Cat".into(),
                    sort: 0,
                },
                g.category.clone(),
            ],
            modifier_groups: vec![
                fixed_group("g1", "m-a"),
                fixed_group("g2", "m-b"),
                g.group.clone(),
            ],
            items: vec![
                Item {
                    id: id("base"),
                    name: "Base".into(),
                    category: id("cat"),
                    description: None,
                    taxes: vec![],
                    modifier_groups: vec![],
                    stations: vec![],
                    variations: vec![Variation {
                        id: id("base-v"),
                        name: "V".into(),
                        sku: None,
                        price: Money(100),
                    }],
                },
                g.item.clone(),
            ],
            discounts: vec![g.discount.clone()],
        }),
        access: Some(Access {
            roles: vec![
                Role {
                    id: id("boss"),
                    name: "Boss".into(),
                    level: 50,
                    inherits: vec![],
                    permissions: vec!["order.void".into()],
                },
                g.role.clone(),
            ],
            users: vec![
                User {
                    id: id("ann"),
                    name: "Ann".into(),
                    role: id("boss"),
                    stores: vec!["*".into()],
                    pin_hash: Some(HASH.into()),
                    plaintext_pin: false,
                },
                g.user.clone(),
            ],
        }),
        kitchen: Some(Kitchen {
            stations: vec![station("s1"), station("s2"), g.station.clone()],
            routing: Routing {
                default: vec![id("s1")],
                categories: BTreeMap::new(),
            },
        }),
        rollout: None,
        windows: None,
    };
    let device = |d: &str, s: &str| Device {
        id: id(d),
        station: id(s),
        kind: DeviceType::EscposNet,
        address: "10.0.0.1:9100".into(),
    };
    let store = StoreFile {
        api_version: ApiVersion,
        kind: StoreKind,
        store: g.store.clone(),
        overrides: Overrides::default(),
        access: StoreAccess::default(),
        devices: vec![device("d1", "s1"), device("d2", "s2"), g.device.clone()],
        windows: None,
        menu: None,
        kitchen: None,
        settings: None,
    };
    (tenant, store)
}

type Finding = (Rule, &'static str, usize);

/// What the shared rules say of the generated entities, placed where
/// `fleet validate` must report it.
fn expected(g: &Generated, tenant: &PathIndex, store: &PathIndex) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut place = |file: &'static str, at: YamlPath, found: Vec<Violation>| {
        let index = if file == TENANT { tenant } else { store };
        for v in found {
            out.push((v.rule, file, index.locate(&at.join(&v.field)).0));
        }
    };
    let p = |parts: &[&str]| YamlPath::of(parts);
    place(TENANT, p(&["menu", "taxes", "2"]), rules::tax(&g.tax));
    place(
        TENANT,
        p(&["menu", "categories", "1"]),
        rules::category(&g.category),
    );
    place(
        TENANT,
        p(&["menu", "modifier_groups", "2"]),
        rules::modifier_group(&g.group),
    );
    place(TENANT, p(&["menu", "items", "1"]), rules::item(&g.item));
    place(
        TENANT,
        p(&["menu", "discounts", "0"]),
        rules::discount(&g.discount),
    );
    place(TENANT, p(&["access", "roles", "1"]), rules::role(&g.role));
    place(TENANT, p(&["access", "users", "1"]), rules::user(&g.user));
    place(
        TENANT,
        p(&["kitchen", "stations", "2"]),
        rules::station(&g.station),
    );
    place(STORE, p(&["devices", "2"]), rules::device(&g.device));
    place(STORE, p(&["store"]), rules::store_info(&g.store));
    // A setting is one entry of the `settings` map: its field `key` is the
    // entry's key, `value` its value.
    let (key, value) = &g.setting;
    let entry = p(&["settings"]).key(key.clone());
    for v in rules::setting(key, value) {
        let (line, _) = if v.field == p(&["key"]) {
            tenant.locate_key(&entry)
        } else {
            tenant.locate(&entry)
        };
        out.push((v.rule, TENANT, line));
    }
    // The one rule only a repo has: every user gets a PIN.
    if g.user.pin_hash.is_none() {
        out.push((
            "user/pin-hash",
            TENANT,
            tenant.locate(&p(&["access", "users", "1"])).0,
        ));
    }
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn validate_reports_exactly_what_the_rules_find(g in generated()) {
        let (tenant, store) = repo(&g);
        let tenant_text = to_canonical_yaml(&tenant).expect("a tenant file serializes");
        let store_text = to_canonical_yaml(&store).expect("a store file serializes");
        let expected = expected(&g, &PathIndex::build(&tenant_text), &PathIndex::build(&store_text));
        let tree = MemoryTree(BTreeMap::from([
            ("fleet.yaml".to_owned(), "apiVersion: fleet/v1\nkind: Fleet\n".to_owned()),
            (TENANT.to_owned(), tenant_text.clone()),
            (STORE.to_owned(), store_text.clone()),
        ]));
        let (_, diags) = check_repo(&tree);
        let mut got: Vec<Finding> = diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| {
                let file = if d.file == TENANT { TENANT } else if d.file == STORE { STORE } else { "other" };
                (d.rule, file, d.line)
            })
            .collect();
        got.sort();
        prop_assert_eq!(got, expected, "\n{}\n---\n{}", tenant_text, store_text);
    }
}
