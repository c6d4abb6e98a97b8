//! What `fleet validate` accepts, every store applies (issue #15 item 2).
//!
//! Generated fleet repos — several tenants and stores, overrides of every
//! kind (prices, absent, tax rates, routing, settings, local users,
//! devices), unicode names and values at the edges of their bounds — are
//! judged by the validator (`schemas::validate::check_repo`, the function
//! `fleet validate` runs). Each repo that validates is signed by the real
//! `fleet sign`, and every one of its stores is converged by the real
//! `fleet-reconciler once` into a fresh, real `fleet-edge`: the pass must
//! converge with no refusal, and the edge must then hold exactly what
//! `fleet render` prints. A repo that does not validate is never signed;
//! its findings are tallied, and the tally must show the generator reaching
//! the failures this property found before issue #15 (a modifier group
//! emptied by `absent`, blank and over-long names, an over-long store name,
//! a blank device address), so that the property keeps guarding them. For
//! each of those, the test also shows what would happen without the rule
//! that now refuses it: the twisted store's render is signed by hand (as
//! `fleet sign` would have before the rule) and the real reconciler's pass
//! must fail at the real edge, the store keeping nothing of it.
//!
//! `FLEET_PROP_REPOS` sets how many repos (default 24); `FLEET_PROP_SEED`
//! the first seed. A failure prints the seed and keeps nothing: rerun with
//! that seed and `FLEET_PROP_REPOS=1` to see it again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use schemas::diag::Severity;
use schemas::load::DirTree;
use schemas::validate::check_repo;
use serde_json::{Map, Value, json};
use testkit::Rng;

use crate::e2e::{
    Edge, PROCESS_TIMEOUT, fleet, git, pos_state, reconciler_cmd, reconciler_config, run_process,
};

/// A valid argon2id PHC string (the users' PIN hash; its PIN is unknown).
const PIN_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ykQaenBiKzjUjBGOoLcAAg$CMW46GBK3yBqkL9n328iQaFTm1EphCPCM8vzxYlN3EE";

/// Name pieces: ASCII, accented Latin, CJK, emoji, right-to-left, and
/// characters YAML and HTML care about.
const WORDS: &[&str] = &[
    "Burger",
    "Crème brûlée",
    "Käsespätzle",
    "寿司",
    "🍔 Deluxe",
    "شاورما",
    "Jalapeño",
    "\"Quoted\"",
    "<b>Bold</b>",
    "a: b",
    "# not a comment",
    "Ünïcödé",
    "Ω",
    "- dash",
];

fn name(rng: &mut Rng) -> String {
    let n = rng.range(1, 3);
    (0..n)
        .map(|_| *rng.pick(WORDS))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A name of exactly `chars` characters, of multi-byte characters.
fn long_name(chars: usize) -> String {
    "é🍟".chars().cycle().take(chars).collect()
}

/// Money within bounds, edges included.
fn money(rng: &mut Rng) -> u64 {
    *rng.pick(&[0, 1, 99, 1099, 2_500, 999_999_999_999])
}

/// What a repo was generated with on purpose, beyond the ordinary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Twist {
    /// A store's `absent` removes every modifier of a group.
    EmptiedGroup,
    /// An entity named `""` or only spaces.
    BlankName,
    /// An entity named 501 characters.
    LongName,
    /// A store named 201 characters (its `store.name` setting is capped at 200).
    LongStoreName,
    /// A device whose address is blank.
    BlankAddress,
}

const TWISTS: [Twist; 5] = [
    Twist::EmptiedGroup,
    Twist::BlankName,
    Twist::LongName,
    Twist::LongStoreName,
    Twist::BlankAddress,
];

/// One generated repo: files by path (JSON, which is YAML), its stores,
/// and its twist.
struct Repo {
    files: BTreeMap<String, Value>,
    stores: Vec<String>,
    twist: Option<Twist>,
}

fn generate(seed: u64) -> Repo {
    let mut rng = Rng::new(seed);
    // Odd seeds are ordinary repos; even ones carry the twists in turn, so
    // any run of ten seeds has each of them.
    let twist = seed
        .is_multiple_of(2)
        .then(|| TWISTS[(seed / 2) as usize % TWISTS.len()]);
    let mut files = BTreeMap::new();
    files.insert(
        "fleet.yaml".to_owned(),
        json!({"apiVersion": "fleet/v1", "kind": "Fleet", "fleet": {"name": name(&mut rng)}}),
    );
    let mut stores = Vec::new();
    let tenants = rng.range(1, 2);
    // Where the twist goes: which tenant (the first) and which store (its first).
    for t in 0..tenants {
        let tid = format!("t{t}");
        let twist_here = if t == 0 { twist } else { None };
        tenant(&mut rng, &tid, twist_here, &mut files, &mut stores);
    }
    Repo {
        files,
        stores,
        twist,
    }
}

fn tenant(
    rng: &mut Rng,
    tid: &str,
    twist: Option<Twist>,
    files: &mut BTreeMap<String, Value>,
    all_stores: &mut Vec<String>,
) {
    let id = |kind: &str, n: usize| format!("{tid}-{kind}-{n}");
    let edge_name = |rng: &mut Rng| {
        if rng.one_in(6) {
            long_name(500)
        } else {
            name(rng)
        }
    };

    let taxes: Vec<Value> = (0..rng.range(1, 3))
        .map(|i| json!({"id": id("tax", i), "name": name(rng), "rate": rng.pick(&["0", "8.875", "100", "0.0001", "20"]), "inclusion": rng.pick(&["exclusive", "inclusive"])}))
        .collect();
    let tax_ids: Vec<String> = taxes
        .iter()
        .map(|t| t["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let categories: Vec<Value> = (0..rng.range(1, 3))
        .map(|i| json!({"id": id("cat", i), "name": edge_name(rng), "sort": rng.range(0, 10) as i64 - 5}))
        .collect();
    let cat_ids: Vec<String> = categories
        .iter()
        .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut groups = Vec::new();
    let mut group_modifiers: Vec<(String, Vec<String>, usize)> = Vec::new();
    for g in 0..rng.range(1, 3) {
        let n = rng.range(1, 4);
        let min = rng.range(0, n);
        let max = rng.range(min.max(1), n + 1);
        let defaults = rng.range(0, max.min(n));
        let modifiers: Vec<Value> = (0..n)
            .map(|m| json!({"id": id(&format!("g{g}-mod"), m), "name": name(rng), "price": money(rng), "default": m < defaults}))
            .collect();
        group_modifiers.push((
            id("group", g),
            modifiers
                .iter()
                .map(|m| m["id"].as_str().unwrap_or_default().to_owned())
                .collect(),
            min,
        ));
        groups.push(json!({"id": id("group", g), "name": name(rng), "min": min, "max": max, "modifiers": modifiers}));
    }
    let group_ids: Vec<String> = group_modifiers.iter().map(|g| g.0.clone()).collect();
    let stations: Vec<Value> = (0..rng.range(1, 3))
        .map(|i| json!({"id": id("station", i), "name": name(rng), "kind": rng.pick(&["printer", "kds"])}))
        .collect();
    let station_ids: Vec<String> = stations
        .iter()
        .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut items = Vec::new();
    let mut item_variations: Vec<(String, Vec<String>)> = Vec::new();
    for i in 0..rng.range(1, 6) {
        let variations: Vec<Value> = (0..rng.range(1, 3))
            .map(|v| json!({"id": id(&format!("item{i}-v"), v), "name": name(rng), "sku": format!("SKU-{i}-{v}"), "price": money(rng)}))
            .collect();
        let mut item = json!({
            "id": id("item", i),
            "name": edge_name(rng),
            "category": rng.pick(&cat_ids),
            "taxes": rng.some(&tax_ids, 0, 2),
            "modifier_groups": rng.some(&group_ids, 0, 2),
            "variations": variations,
        });
        if rng.one_in(3) {
            item["description"] = json!(edge_name(rng));
        }
        if rng.one_in(4) {
            item["stations"] = json!(rng.some(&station_ids, 1, 2));
        }
        item_variations.push((
            id("item", i),
            variations
                .iter()
                .map(|v| v["id"].as_str().unwrap_or_default().to_owned())
                .collect(),
        ));
        items.push(item);
    }
    let discounts: Vec<Value> = (0..rng.range(0, 2))
        .map(|d| {
            let mut v = if rng.one_in(2) {
                json!({"id": id("disc", d), "name": name(rng), "kind": "percent", "rate": rng.pick(&["100", "0.5", "15"])})
            } else {
                json!({"id": id("disc", d), "name": name(rng), "kind": "amount", "amount": rng.pick(&[1, 500, 999_999_999_999u64])})
            };
            if rng.one_in(2) {
                v["requires"] = json!("discount.restricted");
            }
            v
        })
        .collect();
    let disc_ids: Vec<String> = discounts
        .iter()
        .map(|d| d["id"].as_str().unwrap_or_default().to_owned())
        .collect();

    let store_ids: Vec<String> = (0..rng.range(1, 3)).map(|s| format!("s{s}")).collect();
    let roles = json!([
        {"id": "manager", "name": name(rng), "level": 50, "permissions": ["order.void", "order.create", "discount.restricted"]},
        {"id": "cashier", "name": name(rng), "level": 10, "permissions": ["order.create"], "inherits": []},
    ]);
    let users: Vec<Value> = (0..rng.range(1, 3))
        .map(|u| {
            let stores: Vec<String> = if u == 0 || rng.one_in(2) {
                vec!["*".to_owned()]
            } else {
                rng.some(&store_ids, 1, 2)
            };
            json!({"id": id("user", u), "name": edge_name(rng), "role": if u == 0 { "manager" } else { "cashier" }, "stores": stores, "pin_hash": PIN_HASH})
        })
        .collect();
    let mut routing = json!({"default": [station_ids[0].clone()], "categories": {}});
    if rng.one_in(2) {
        routing["categories"][rng.pick(&cat_ids).as_str()] = json!(rng.some(&station_ids, 1, 2));
    }

    let mut settings = Map::new();
    settings.insert("receipt.footer".into(), json!(edge_name(rng)));
    settings.insert("tips.enabled".into(), json!(rng.one_in(2)));
    settings.insert(
        "order.auto_close_minutes".into(),
        json!(rng.pick(&[0, 30, 1440])),
    );
    let mut tenant_file = json!({
        "apiVersion": "fleet/v1",
        "kind": "Tenant",
        "tenant": {"id": tid, "name": name(rng), "currency": rng.pick(&["USD", "EUR", "JPY"]), "timezone": rng.pick(&["UTC", "America/New_York", "Asia/Tokyo"])},
        "settings": settings,
        "menu": {"taxes": taxes, "categories": categories, "modifier_groups": groups, "items": items, "discounts": discounts},
        "access": {"roles": roles, "users": users},
        "kitchen": {"stations": stations, "routing": routing},
    });

    for (n, sid) in store_ids.iter().enumerate() {
        let twist = if n == 0 { twist } else { None };
        let store_name = if twist == Some(Twist::LongStoreName) {
            long_name(201)
        } else if rng.one_in(5) {
            long_name(200)
        } else {
            name(rng)
        };
        // Absent: a few items, variations, modifiers, discounts, never
        // leaving a group below its min (the twist does that on purpose).
        let mut absent = Vec::new();
        for (item, variations) in &item_variations {
            if rng.one_in(6) {
                absent.push(item.clone());
            } else if variations.len() > 1 && rng.one_in(4) {
                absent.push(rng.pick(variations).clone());
            }
        }
        for (_, modifiers, min) in &group_modifiers {
            if modifiers.len() > (*min).max(1) && rng.one_in(3) {
                absent.push(modifiers[modifiers.len() - 1].clone());
            }
        }
        if twist == Some(Twist::EmptiedGroup) {
            absent.extend(group_modifiers[0].1.iter().cloned());
        }
        if !disc_ids.is_empty() && rng.one_in(3) {
            absent.push(rng.pick(&disc_ids).clone());
        }
        let absent_set: BTreeSet<&String> = absent.iter().collect();
        let mut prices = Map::new();
        for (item, variations) in &item_variations {
            if absent_set.contains(item) {
                continue;
            }
            for v in variations {
                if !absent_set.contains(v) && rng.one_in(3) {
                    prices.insert(v.clone(), json!(money(rng)));
                }
            }
        }
        for (_, modifiers, _) in &group_modifiers {
            for m in modifiers {
                if !absent_set.contains(m) && rng.one_in(4) {
                    prices.insert(m.clone(), json!(money(rng)));
                }
            }
        }
        let mut overrides = json!({
            "prices": prices,
            "absent": absent,
            "tax_rates": {},
            "settings": {},
        });
        if rng.one_in(2) {
            overrides["tax_rates"][rng.pick(&tax_ids).as_str()] =
                json!(rng.pick(&["0", "7.25", "100"]));
        }
        if rng.one_in(2) {
            overrides["settings"]["receipt.footer"] = json!(edge_name(rng));
        }
        if rng.one_in(3) {
            overrides["routing"] = json!({"default": rng.some(&station_ids, 1, 2)});
        }
        let devices: Vec<Value> = station_ids
            .iter()
            .enumerate()
            .map(|(d, st)| {
                let address = if twist == Some(Twist::BlankAddress) && d == 0 {
                    " ".to_owned()
                } else {
                    format!("10.0.{n}.{d}:9100")
                };
                json!({"id": format!("dev-{d}"), "station": st, "type": rng.pick(&["escpos_net", "star_net", "kds"]), "address": address})
            })
            .collect();
        let mut store = json!({
            "apiVersion": "fleet/v1",
            "kind": "Store",
            "store": {"id": sid, "name": store_name},
            "overrides": overrides,
            "devices": devices,
        });
        if rng.one_in(3) {
            store["access"] = json!({"users": [{"id": format!("{tid}-{sid}-local"), "name": name(rng), "role": "cashier", "pin_hash": PIN_HASH}]});
        }
        files.insert(format!("tenants/{tid}/stores/{sid}/store.yaml"), store);
        all_stores.push(format!("{tid}/{sid}"));
    }

    match twist {
        Some(Twist::BlankName) => {
            tenant_file["menu"]["categories"][0]["name"] = json!(*rng.pick(&["", "   "]));
        }
        Some(Twist::LongName) => {
            tenant_file["menu"]["items"][0]["name"] = json!(long_name(501));
        }
        _ => {}
    }
    files.insert(format!("tenants/{tid}/tenant.yaml"), tenant_file);
}

/// The rules that must show up among the findings of generated repos: the
/// failures issue #15 reported, each a twist.
fn twist_rule(t: Twist) -> &'static str {
    match t {
        Twist::EmptiedGroup => "render/modifier-group-starved",
        Twist::BlankName | Twist::LongName => "entity/name",
        // Rendered as the setting `store.name`, which holds 200 characters.
        Twist::LongStoreName => "settings/type",
        Twist::BlankAddress => "device/address",
    }
}

#[test]
fn every_store_of_a_valid_generated_repo_applies_at_a_real_edge() {
    let repos: u64 = std::env::var("FLEET_PROP_REPOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let first: u64 = std::env::var("FLEET_PROP_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let tmp = tempfile::Builder::new()
        .prefix("fleet-prop-")
        .tempdir()
        .expect("tempdir");
    let root = tmp.path();
    fleet(root, &["keygen", "--out", "keys"]);
    let trust = root.join("trust");
    std::fs::create_dir_all(&trust).expect("trust dir");
    std::fs::copy(root.join("keys/minisign.pub"), trust.join("release.pub")).expect("pin key");
    let key = root.join("keys/minisign.key").display().to_string();

    let mut applied_stores = 0;
    let mut valid_repos = 0;
    let mut caught: BTreeMap<Twist, BTreeSet<&'static str>> = BTreeMap::new();
    let mut refused_at: BTreeMap<Twist, String> = BTreeMap::new();
    for seed in first..first + repos {
        let repo = generate(seed);
        let work = root.join(format!("repo-{seed}"));
        for (path, value) in &repo.files {
            let file = work.join(path);
            std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
            let text = serde_json::to_string_pretty(value).expect("json");
            std::fs::write(&file, text).expect("write source");
        }
        let (_, diags) = check_repo(&DirTree::new(&work));
        let errors: Vec<_> = diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        if let Some(twist) = repo.twist {
            // A twist must be refused by validation, by its own rule.
            let rules: BTreeSet<&'static str> = errors.iter().map(|d| d.rule).collect();
            assert!(
                rules.contains(twist_rule(twist)),
                "seed {seed}: {twist:?} was not refused by {}; findings: {diags:#?}",
                twist_rule(twist)
            );
            caught.entry(twist).or_default().extend(rules);
            let store = &repo.stores[0];
            if let std::collections::btree_map::Entry::Vacant(slot) = refused_at.entry(twist) {
                slot.insert(unvalidated_release_fails_at_the_edge(
                    root, &work, &key, &trust, store, seed, twist,
                ));
            }
            continue;
        }
        assert!(
            errors.is_empty(),
            "seed {seed}: the generator made an invalid repo without a twist:\n{}",
            errors
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        valid_repos += 1;
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "generated"]);
        let repo_arg = work.display().to_string();
        fleet(root, &["sign", "--key", &key, "--repo", &repo_arg]);
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "release"]);

        for store in &repo.stores {
            let dir = root.join(format!("store-{seed}-{}", store.replace('/', "-")));
            let edge = Edge::start(&dir.join("edge"), &dir.join("edge/edge.db"));
            let config = write_config(&dir, store, &work, &trust, &edge);
            let run = run_process(&mut reconciler_cmd(&config, &["once"]), PROCESS_TIMEOUT);
            assert!(
                run.code == Some(0) && run.outcome_of(store) == "converged",
                "seed {seed}: {store} validated but did not apply at a fresh edge:\n{run}\n--- edge log\n{}",
                edge.log()
            );
            let render = fleet(root, &["render", store, "--repo", &repo_arg]);
            let render: Value = serde_saphyr::from_str(&render.stdout).expect("render is YAML");
            assert_eq!(
                pos_state(&edge.get("/state")),
                render,
                "seed {seed}: {store}: the edge's state is not the render"
            );
            applied_stores += 1;
        }
        drop_dir(&work);
    }
    eprintln!(
        "validate ⇒ applies: {valid_repos} valid repos, {applied_stores} stores applied; twists refused: {caught:?}; without validation the edge refused: {refused_at:#?}"
    );
    assert!(
        valid_repos as u64 >= repos / 2,
        "too few valid repos: {valid_repos} of {repos}"
    );
    // Every twist occurs in ten seeds, so the property keeps reaching what
    // it found before the fix.
    if repos >= 10 {
        let missing: Vec<Twist> = TWISTS
            .iter()
            .copied()
            .filter(|t| !caught.contains_key(t))
            .collect();
        assert!(missing.is_empty(), "the seeds never generated {missing:?}");
        assert_eq!(refused_at.len(), TWISTS.len());
    }
}

/// A twisted repo as it reached stores before the rule that now refuses
/// it: `store`'s render (rendering judges nothing) in a release signed by
/// hand with the trusted key. The real reconciler must not converge it at a
/// fresh edge, and what the twist touched must not be there afterwards (a
/// menu batch rolls back whole). Returns the reconciler's summary line, for the log.
fn unvalidated_release_fails_at_the_edge(
    root: &Path,
    work: &Path,
    key: &str,
    trust: &Path,
    store: &str,
    seed: u64,
    twist: Twist,
) -> String {
    let (repo, _) = schemas::load::load_repo(&DirTree::new(work));
    let (tenant, store_dir) = store.split_once('/').expect("tenant/store");
    let t = &repo.tenants[tenant];
    let state = schemas::render::render_store(&t.base, &t.stores[store_dir].file);
    let now = chrono::Utc::now();
    let release = schemas::Release {
        api_version: schemas::state::ReleaseApiVersion::V1,
        kind: schemas::model::StoreReleaseKind,
        store: store.to_owned(),
        revision: 1,
        source_commit: "0000000".to_owned(),
        issued_at: now,
        expires_at: now + chrono::Duration::days(30),
        tenant_key: None,
        windows: None,
        effective_at: None,
        urgent: false,
        state,
    };
    let bytes = cli::ops::sign::release_bytes(&release);
    let secret = cli::ops::keygen::load_secret_key(Path::new(key), None).expect("secret key");
    let sig = cli::ops::sign::sign_bytes(&bytes, store, 1, &secret).expect("sign");
    let dir = work
        .join("tenants")
        .join(tenant)
        .join("stores")
        .join(store_dir);
    std::fs::write(dir.join("release.yaml"), &bytes).expect("write release");
    std::fs::write(dir.join("release.yaml.minisig"), sig).expect("write signature");
    git(work, &["init", "-q", "-b", "main"]);
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", "signed without validation"]);

    let dir = root.join(format!("unvalidated-{seed}"));
    let edge = Edge::start(&dir.join("edge"), &dir.join("edge/edge.db"));
    let config = write_config(&dir, store, work, trust, &edge);
    let run = run_process(&mut reconciler_cmd(&config, &["once"]), PROCESS_TIMEOUT);
    assert_ne!(
        run.outcome_of(store),
        "converged",
        "seed {seed}: the edge took a release validation refuses:\n{run}"
    );
    assert_eq!(
        run.code,
        Some(1),
        "seed {seed}: a failed pass exits 1\n{run}"
    );
    // What the twist touched is not at the store: the menu batch rolled
    // back whole; a setting or a device is one write that was refused.
    let state = edge.get("/state");
    match twist {
        Twist::EmptiedGroup | Twist::BlankName | Twist::LongName => {
            assert_eq!(
                state["menu"]["items"],
                json!([]),
                "seed {seed}: the menu batch rolled back"
            );
        }
        Twist::LongStoreName => {
            assert!(
                state["settings"].get("store.name").is_none(),
                "seed {seed}: {:#}",
                state["settings"]
            );
        }
        Twist::BlankAddress => {
            let devices = state["kitchen"]["devices"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(
                devices
                    .iter()
                    .all(|d| d["address"].as_str().is_some_and(|a| !a.trim().is_empty())),
                "seed {seed}: {devices:#?}"
            );
        }
    }
    run.stdout
        .lines()
        .find(|l| l.starts_with(&format!("{store}: ")))
        .unwrap_or_default()
        .to_owned()
}

/// `reconciler.toml` for `store` at `edge`, reading `work` (a local Git
/// repository) and trusting `trust`.
fn write_config(
    dir: &Path,
    store: &str,
    work: &Path,
    trust: &Path,
    edge: &Edge,
) -> std::path::PathBuf {
    let config = dir.join("reconciler.toml");
    let text = reconciler_config(
        store,
        &work.display().to_string(),
        trust,
        edge,
        &dir.join("state"),
        60,
    );
    std::fs::write(&config, text).expect("write config");
    config
}

/// Best effort: the temporary directory goes at the end anyway.
fn drop_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
