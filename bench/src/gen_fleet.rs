//! `bench gen-fleet`: a synthetic fleet repo (DESIGN.md §3) of any size that
//! `fleet validate` accepts, as input for the §8 benchmarks.
//!
//! Files are built as `schemas::model` values and written with
//! `schemas::yaml::to_canonical_yaml`, so the generator follows the model: a renamed field breaks
//! this build, not the benchmark. The shapes follow POS-MODEL.md: every
//! tenant has a base split over `tenant.yaml`, `menu.yaml`, `access.yaml` and
//! `kitchen.yaml`; every store overrides a few prices and settings, leaves
//! out a variation, sometimes sets its own tax rate, time zone or routing,
//! binds a device to every station and now and then has a user of its own.
//!
//! Output is a pure function of the options: every tenant and store draws
//! from its own random stream (seed, tenant, store index), so the same
//! options give the same bytes, and store `i` does not change when more
//! stores are asked for. Nothing here measures time.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use schemas::model::{
    Access, ApiVersion, Category, Device, DeviceType, Discount, DiscountKind, FleetFile, FleetInfo,
    Inclusion, Item, Kitchen, Menu, Modifier, ModifierGroup, Overrides, ReleasePolicy, Role,
    Routing, RoutingOverride, SettingValue, Settings, Station, StationKind, StoreAccess, StoreFile,
    StoreInfo, StoreKind, Tax, TenantFile, TenantInfo, TenantKind, User, Variation,
};
use schemas::{Id, Money, Rate};

/// Tenants when `--tenants` is not given: 10,000 stores make 500 a tenant.
pub const DEFAULT_TENANTS: usize = 20;
/// Items on each tenant's menu when `--items` is not given.
pub const DEFAULT_ITEMS: usize = 30;
/// The seed when `--seed` is not given.
pub const DEFAULT_SEED: u64 = 1;

/// An argon2id PHC string made once with `echo 1234 | fleet hash-pin`.
/// Test data: every generated user shares it, since hashing 10,000 PINs
/// would only slow the generator down, and validation only checks the form.
pub const PIN_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$AiOWRKd3eoB4zwoePSwO6Q$GkxbaBMkj0tmFzLyK3hZED9KAYiS3nj8e/U4X3rtHMM";

/// Options of `bench gen-fleet`.
#[derive(Debug, Clone)]
pub struct GenFleet {
    /// Where to write the repo; must be absent or empty.
    pub out: PathBuf,
    /// Number of stores, spread round-robin over the tenants.
    pub stores: usize,
    pub tenants: usize,
    /// Items on each tenant's menu.
    pub items: usize,
    pub seed: u64,
}

/// What `gen_fleet` wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generated {
    pub tenants: usize,
    pub stores: usize,
    /// Every file written, `fleet.yaml` included.
    pub files: usize,
    pub bytes: u64,
    /// Bytes of all `store.yaml` files together.
    pub store_bytes: u64,
}

/// Why a fleet could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenFleetError {
    #[error("{what} must be at least 1")]
    TooFew { what: &'static str },
    #[error("{} is not empty; pass a new directory (the generator never overwrites)", path.display())]
    OutNotEmpty { path: PathBuf },
    #[error("writing {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("serializing {}: {message}", path.display())]
    Serialize { path: PathBuf, message: String },
}

/// Write a synthetic fleet repo into `opts.out`. `progress` is called with
/// the number of stores written so far, after every store.
pub fn gen_fleet(
    opts: &GenFleet,
    mut progress: impl FnMut(usize),
) -> Result<Generated, GenFleetError> {
    if opts.tenants == 0 {
        return Err(GenFleetError::TooFew { what: "--tenants" });
    }
    if opts.items == 0 {
        return Err(GenFleetError::TooFew { what: "--items" });
    }
    ensure_empty(&opts.out)?;
    let mut out = Writer {
        root: &opts.out,
        done: Generated::default(),
    };

    out.write("fleet.yaml", &fleet_file(), "")?;

    // Store i goes to tenant i % tenants, so every tenant gets its share.
    let mut plans: Vec<TenantPlan> = (0..opts.tenants)
        .map(|t| TenantPlan::new(opts.seed, t))
        .collect();
    for i in 0..opts.stores {
        let plan = &mut plans[i % opts.tenants];
        plan.stores.push(StorePlan::new(opts.seed, plan, i));
    }

    let mut written = 0;
    for plan in &plans {
        let catalog = TenantCatalog::new(opts.seed, plan, opts.items);
        let dir = format!("tenants/{}", plan.id);
        let header = "# yaml-language-server: $schema=../../.fleet/schemas/tenant.schema.json\n";
        for (name, file) in catalog.base_files(plan) {
            out.write(&format!("{dir}/{name}"), &file, header)?;
        }
        for store in &plan.stores {
            let file = catalog.store_file(opts.seed, plan, store);
            let path = format!("{dir}/stores/{}/store.yaml", store.id);
            let header =
                "# yaml-language-server: $schema=../../../../.fleet/schemas/store.schema.json\n";
            out.done.store_bytes += out.write(&path, &file, header)?;
            written += 1;
            progress(written);
        }
        out.done.tenants += 1;
    }
    out.done.stores = written;
    Ok(out.done)
}

fn ensure_empty(dir: &Path) -> Result<(), GenFleetError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(GenFleetError::OutNotEmpty {
                    path: dir.to_owned(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(GenFleetError::Io {
            path: dir.to_owned(),
            source,
        }),
    }
}

struct Writer<'a> {
    root: &'a Path,
    done: Generated,
}

impl Writer<'_> {
    /// Serialize `value` to `rel` under the root, after `header`; returns the bytes written.
    fn write<T: serde::Serialize>(
        &mut self,
        rel: &str,
        value: &T,
        header: &str,
    ) -> Result<u64, GenFleetError> {
        let path = self.root.join(rel);
        let body =
            schemas::yaml::to_canonical_yaml(value).map_err(|e| GenFleetError::Serialize {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let text = format!("{header}# Synthetic benchmark data from `bench gen-fleet`.\n{body}");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| GenFleetError::Io {
                path: parent.to_owned(),
                source,
            })?;
        }
        std::fs::write(&path, &text).map_err(|source| GenFleetError::Io {
            path: path.clone(),
            source,
        })?;
        self.done.files += 1;
        self.done.bytes += text.len() as u64;
        Ok(text.len() as u64)
    }
}

// ---------------------------------------------------------------- randomness

/// SplitMix64: small, fast and the same on every platform, which is all a
/// data generator needs (not for anything secret).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    /// An independent stream for `seed` and the given coordinates.
    fn stream(seed: u64, coords: &[u64]) -> Rng {
        let mut s = mix(seed ^ 0x5EED_F1EE_7000_0000);
        for c in coords {
            s = mix(s ^ c.wrapping_mul(0xD1B5_4A32_D192_ED03));
        }
        Rng(s)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n`; `n` > 0.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with `percent` % probability.
    fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Streams, so that tenant and store draws never overlap.
const STREAM_TENANT: u64 = 1;
const STREAM_CATALOG: u64 = 2;
const STREAM_STORE: u64 = 3;

// ---------------------------------------------------------------- vocabulary

const BRANDS: &[(&str, &str)] = &[
    ("acme", "Acme Burgers"),
    ("bluefern", "Blue Fern Diner"),
    ("copper", "Copper Grill"),
    ("dockside", "Dockside Eats"),
    ("ember", "Ember & Oak"),
    ("fairway", "Fairway Kitchen"),
    ("griddle", "Golden Griddle"),
    ("harbor", "Harbor Smash"),
    ("ironside", "Ironside Burgers"),
    ("juniper", "Juniper Cafe"),
    ("kettle", "Kettle & Bun"),
    ("lakeshore", "Lakeshore Grill"),
    ("maple", "Maple Street Diner"),
    ("northside", "Northside Burgers"),
    ("orchard", "Orchard Kitchen"),
    ("pinecrest", "Pinecrest Grill"),
];

/// Where a tenant operates: currency, home time zone, other zones its stores
/// may be in, locale, and its main tax (id, name, rates, inclusion).
struct Region {
    currency: &'static str,
    timezone: &'static str,
    store_zones: &'static [&'static str],
    locale: &'static str,
    tax: (
        &'static str,
        &'static str,
        &'static [&'static str],
        Inclusion,
    ),
    /// A second, smaller tax on drinks.
    drinks_tax: (&'static str, &'static str, &'static str, Inclusion),
}

const US_ZONES: &[&str] = &[
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
];
const US_RATES: &[&str] = &["6.25", "6.5", "7", "7.25", "8", "8.25", "8.875", "9.5"];

const REGIONS: &[Region] = &[
    Region {
        currency: "USD",
        timezone: "America/New_York",
        store_zones: US_ZONES,
        locale: "en-US",
        tax: ("sales-tax", "Sales Tax", US_RATES, Inclusion::Exclusive),
        drinks_tax: ("beverage-tax", "Beverage Tax", "1.5", Inclusion::Exclusive),
    },
    Region {
        currency: "USD",
        timezone: "America/Chicago",
        store_zones: US_ZONES,
        locale: "en-US",
        tax: ("sales-tax", "Sales Tax", US_RATES, Inclusion::Exclusive),
        drinks_tax: ("beverage-tax", "Beverage Tax", "1", Inclusion::Exclusive),
    },
    Region {
        currency: "CAD",
        timezone: "America/Toronto",
        store_zones: &[
            "America/Toronto",
            "America/Winnipeg",
            "America/Edmonton",
            "America/Vancouver",
            "America/Halifax",
        ],
        locale: "en-CA",
        tax: (
            "hst",
            "HST",
            &["13", "15", "5", "12", "14.975"],
            Inclusion::Exclusive,
        ),
        drinks_tax: (
            "deposit-levy",
            "Container Levy",
            "0.5",
            Inclusion::Exclusive,
        ),
    },
    Region {
        currency: "EUR",
        timezone: "Europe/Berlin",
        store_zones: &["Europe/Berlin", "Europe/Vienna", "Europe/Amsterdam"],
        locale: "de-DE",
        tax: ("vat", "MwSt", &["19", "20", "21"], Inclusion::Inclusive),
        drinks_tax: ("sugar-levy", "Zuckerabgabe", "0.75", Inclusion::Inclusive),
    },
    Region {
        currency: "GBP",
        timezone: "Europe/London",
        store_zones: &["Europe/London"],
        locale: "en-GB",
        tax: ("vat", "VAT", &["20"], Inclusion::Inclusive),
        drinks_tax: (
            "sugar-levy",
            "Soft Drinks Levy",
            "1.2",
            Inclusion::Inclusive,
        ),
    },
];

const NEIGHBOURHOODS: &[&str] = &[
    "Downtown",
    "Uptown",
    "Midtown",
    "Riverside",
    "Harbor",
    "Airport",
    "University",
    "Old Town",
    "Westfield",
    "Eastgate",
    "Northgate",
    "Southpoint",
    "Lakeside",
    "Hillcrest",
    "Parkview",
    "Mall",
    "Station",
    "Market Square",
    "Beach",
    "Business Park",
];

const FIRST_NAMES: &[&str] = &[
    "maria", "james", "aisha", "chen", "lucas", "priya", "omar", "sofia", "diego", "hannah",
    "kenji", "fatima", "noah", "olga", "samir", "grace", "mateo", "lena", "ravi", "zoe",
];

/// One menu category: how its items are named, sold and cooked.
struct CategorySpec {
    id: &'static str,
    name: &'static str,
    sku: &'static str,
    names: &'static [&'static str],
    /// Variation suffix, name and price step over the first.
    variations: &'static [(&'static str, &'static str, u64)],
    /// Base price range of the first variation, minor units.
    price: (u64, u64),
    groups: &'static [&'static str],
}

const CATEGORIES: &[CategorySpec] = &[
    CategorySpec {
        id: "burgers",
        name: "Burgers",
        sku: "BRG",
        names: &[
            "Classic Burger",
            "Cheeseburger",
            "Bacon Burger",
            "Mushroom Swiss Burger",
            "BBQ Burger",
            "Veggie Burger",
            "Chicken Burger",
            "Jalapeno Burger",
        ],
        variations: &[("single", "Single", 0), ("double", "Double", 400)],
        price: (899, 1399),
        groups: &["doneness", "addons"],
    },
    CategorySpec {
        id: "sandwiches",
        name: "Sandwiches",
        sku: "SND",
        names: &[
            "Grilled Chicken Sandwich",
            "Club Sandwich",
            "BLT",
            "Reuben",
            "Fish Sandwich",
            "Philly Cheesesteak",
        ],
        variations: &[("regular", "Regular", 0)],
        price: (849, 1249),
        groups: &["addons"],
    },
    CategorySpec {
        id: "sides",
        name: "Sides",
        sku: "SID",
        names: &[
            "Fries",
            "Onion Rings",
            "Sweet Potato Fries",
            "Tater Tots",
            "Coleslaw",
            "Mozzarella Sticks",
        ],
        variations: &[("regular", "Regular", 0), ("large", "Large", 150)],
        price: (299, 549),
        groups: &["sauces"],
    },
    CategorySpec {
        id: "salads",
        name: "Salads",
        sku: "SAL",
        names: &["Caesar Salad", "Cobb Salad", "Garden Salad", "Greek Salad"],
        variations: &[("half", "Half", 0), ("full", "Full", 350)],
        price: (599, 899),
        groups: &["dressing"],
    },
    CategorySpec {
        id: "drinks",
        name: "Drinks",
        sku: "DRK",
        names: &[
            "Fountain Soda",
            "Iced Tea",
            "Lemonade",
            "Root Beer",
            "Coffee",
            "Bottled Water",
        ],
        variations: &[
            ("small", "Small", 0),
            ("medium", "Medium", 50),
            ("large", "Large", 100),
        ],
        price: (149, 249),
        groups: &["ice"],
    },
    CategorySpec {
        id: "desserts",
        name: "Desserts",
        sku: "DST",
        names: &[
            "Chocolate Shake",
            "Vanilla Shake",
            "Apple Pie",
            "Brownie",
            "Sundae",
        ],
        variations: &[("regular", "Regular", 0)],
        price: (299, 599),
        groups: &[],
    },
];

/// Modifier groups: id, name, min, max, modifiers (id, name, price, default).
type GroupSpec = (
    &'static str,
    &'static str,
    u32,
    u32,
    &'static [(&'static str, &'static str, u64, bool)],
);

const GROUPS: &[GroupSpec] = &[
    (
        "doneness",
        "Doneness",
        1,
        1,
        &[
            ("medium-rare", "Medium Rare", 0, false),
            ("medium", "Medium", 0, true),
            ("well-done", "Well Done", 0, false),
        ],
    ),
    (
        "addons",
        "Add-ons",
        0,
        4,
        &[
            ("bacon", "Bacon", 200, false),
            ("cheese", "Cheese", 100, false),
            ("avocado", "Avocado", 150, false),
            ("fried-egg", "Fried Egg", 125, false),
            ("jalapenos", "Jalapeños", 75, false),
        ],
    ),
    (
        "sauces",
        "Sauces",
        0,
        2,
        &[
            ("ketchup", "Ketchup", 0, false),
            ("mayo", "Mayo", 0, false),
            ("bbq-sauce", "BBQ Sauce", 50, false),
            ("ranch", "Ranch", 50, false),
        ],
    ),
    (
        "dressing",
        "Dressing",
        1,
        1,
        &[
            ("vinaigrette", "Vinaigrette", 0, true),
            ("caesar-dressing", "Caesar", 0, false),
            ("ranch-dressing", "Ranch", 0, false),
            ("blue-cheese", "Blue Cheese", 50, false),
        ],
    ),
    (
        "ice",
        "Ice",
        0,
        1,
        &[
            ("no-ice", "No Ice", 0, false),
            ("light-ice", "Light Ice", 0, false),
            ("extra-ice", "Extra Ice", 0, false),
        ],
    ),
];

/// Kitchen stations and the device types a store binds to them.
const STATIONS: &[(&str, &str, StationKind, &[DeviceType])] = &[
    (
        "grill",
        "Grill Line",
        StationKind::Printer,
        &[DeviceType::EscposNet, DeviceType::StarNet],
    ),
    (
        "fryer",
        "Fryer",
        StationKind::Printer,
        &[DeviceType::EscposNet],
    ),
    (
        "cold",
        "Cold Prep",
        StationKind::Printer,
        &[DeviceType::EscposNet, DeviceType::EscposUsb],
    ),
    ("bar", "Drinks Bar", StationKind::Kds, &[DeviceType::Kds]),
];

// ---------------------------------------------------------------- plans

/// A tenant's identity and its stores, decided before any file is written
/// (tenant users name the stores they work at).
struct TenantPlan {
    index: u64,
    id: String,
    name: String,
    region: &'static Region,
    stores: Vec<StorePlan>,
}

impl TenantPlan {
    fn new(seed: u64, t: usize) -> TenantPlan {
        let (slug, brand) = BRANDS[t % BRANDS.len()];
        let round = t / BRANDS.len();
        let (id, name) = if round == 0 {
            (slug.to_owned(), brand.to_owned())
        } else {
            (
                format!("{slug}-{}", round + 1),
                format!("{brand} {}", round + 1),
            )
        };
        let mut rng = Rng::stream(seed, &[STREAM_TENANT, t as u64]);
        TenantPlan {
            index: t as u64,
            id,
            name,
            region: rng.pick(REGIONS),
            stores: Vec::new(),
        }
    }
}

struct StorePlan {
    /// Global store number, 0-based.
    index: usize,
    id: String,
    name: String,
}

impl StorePlan {
    fn new(seed: u64, tenant: &TenantPlan, index: usize) -> StorePlan {
        let mut rng = Rng::stream(seed, &[STREAM_STORE, tenant.index, index as u64, 0]);
        let place = *rng.pick(NEIGHBOURHOODS);
        let n = index + 1;
        StorePlan {
            index,
            id: format!("{}-{n:05}", slugify(place)),
            name: format!("{place} #{n}"),
        }
    }
}

fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

fn id(s: impl Into<String>) -> Id {
    Id::new(s)
}

fn rate(s: &str) -> Rate {
    Rate::parse(s).expect("generator rates are well-formed decimals")
}

fn str_setting(s: impl Into<String>) -> SettingValue {
    SettingValue::Str(s.into())
}

fn fleet_file() -> FleetFile {
    FleetFile {
        api_version: ApiVersion,
        kind: schemas::model::FleetKind,
        fleet: Some(FleetInfo {
            name: "Synthetic Benchmark Fleet".to_owned(),
        }),
        release: ReleasePolicy::default(),
        secrets: None,
    }
}

fn tenant_file() -> TenantFile {
    TenantFile {
        api_version: ApiVersion,
        kind: TenantKind,
        tenant: None,
        settings: None,
        menu: None,
        access: None,
        kitchen: None,
        rollout: None,
        windows: None,
    }
}

// ---------------------------------------------------------------- tenant base

/// One tenant's menu and what stores may refer to.
struct TenantCatalog {
    menu: Menu,
    /// Variations of items that have more than one: safe to leave out.
    optional_variations: Vec<(Id, Money)>,
    /// Every variation and priced modifier, with its tenant price.
    priced: Vec<(Id, Money)>,
    /// Modifiers of groups with `min: 0`: safe to leave out.
    optional_modifiers: Vec<Id>,
}

impl TenantCatalog {
    fn new(seed: u64, plan: &TenantPlan, items: usize) -> TenantCatalog {
        let mut rng = Rng::stream(seed, &[STREAM_CATALOG, plan.index]);
        let region = plan.region;
        let (tax_id, tax_name, tax_rates, inclusion) = region.tax;
        let (dtax_id, dtax_name, dtax_rate, dinclusion) = region.drinks_tax;
        let taxes = vec![
            Tax {
                id: id(tax_id),
                name: tax_name.to_owned(),
                rate: rate(rng.pick::<&str>(tax_rates)),
                inclusion,
            },
            Tax {
                id: id(dtax_id),
                name: dtax_name.to_owned(),
                rate: rate(dtax_rate),
                inclusion: dinclusion,
            },
        ];
        let categories = CATEGORIES
            .iter()
            .enumerate()
            .map(|(i, c)| Category {
                id: id(c.id),
                name: c.name.to_owned(),
                sort: (i as i32 + 1) * 10,
            })
            .collect();
        let mut optional_modifiers = Vec::new();
        let mut priced = Vec::new();
        let modifier_groups = GROUPS
            .iter()
            .map(|&(gid, name, min, max, mods)| ModifierGroup {
                id: id(gid),
                name: name.to_owned(),
                min,
                max,
                modifiers: mods
                    .iter()
                    .map(|&(mid, mname, price, default)| {
                        if min == 0 {
                            optional_modifiers.push(id(mid));
                        }
                        if price > 0 {
                            priced.push((id(mid), Money(price)));
                        }
                        Modifier {
                            id: id(mid),
                            name: mname.to_owned(),
                            price: Money(price),
                            default,
                        }
                    })
                    .collect(),
            })
            .collect();

        let mut optional_variations = Vec::new();
        let mut item_list = Vec::with_capacity(items);
        for k in 0..items {
            let cat = &CATEGORIES[k % CATEGORIES.len()];
            let nth = k / CATEGORIES.len();
            let base_name = cat.names[nth % cat.names.len()];
            let round = nth / cat.names.len();
            let (item_id, name) = if round == 0 {
                (slugify(base_name), base_name.to_owned())
            } else {
                (
                    format!("{}-{}", slugify(base_name), round + 1),
                    format!("{base_name} No. {}", round + 1),
                )
            };
            // Prices end in 9, as menus do.
            let base = rng.between(cat.price.0 / 10, cat.price.1 / 10) * 10 + 9;
            let variations: Vec<Variation> = cat
                .variations
                .iter()
                .enumerate()
                .map(|(j, &(suffix, vname, step))| Variation {
                    id: id(format!("{item_id}-{suffix}")),
                    name: vname.to_owned(),
                    sku: Some(format!("{}-{:03}{}", cat.sku, nth + 1, j + 1)),
                    price: Money(base + step),
                })
                .collect();
            for v in &variations {
                priced.push((v.id.clone(), v.price));
                if variations.len() > 1 {
                    optional_variations.push((v.id.clone(), v.price));
                }
            }
            let mut taxes = vec![id(tax_id)];
            if cat.id == "drinks" {
                taxes.push(id(dtax_id));
            }
            // Shakes are made at the bar, whatever their category's route says.
            let stations = if base_name.ends_with("Shake") {
                vec![id("bar")]
            } else {
                Vec::new()
            };
            let description = rng
                .chance(40)
                .then(|| format!("Our {} made fresh to order.", base_name.to_lowercase()));
            item_list.push(Item {
                id: id(item_id),
                name,
                category: id(cat.id),
                description,
                taxes,
                modifier_groups: cat.groups.iter().map(|g| id(*g)).collect(),
                stations,
                variations,
            });
        }
        let discounts = vec![
            Discount {
                id: id("staff-meal"),
                name: "Staff Meal".to_owned(),
                kind: DiscountKind::Percent,
                rate: Some(rate("50")),
                amount: None,
                requires: Some("discount.restricted".to_owned()),
            },
            Discount {
                id: id("two-off"),
                name: "2 Off".to_owned(),
                kind: DiscountKind::Amount,
                rate: None,
                amount: Some(Money(200)),
                requires: None,
            },
            Discount {
                id: id("happy-hour"),
                name: "Happy Hour".to_owned(),
                kind: DiscountKind::Percent,
                rate: Some(rate("15")),
                amount: None,
                requires: None,
            },
        ];
        TenantCatalog {
            menu: Menu {
                taxes,
                categories,
                modifier_groups,
                items: item_list,
                discounts,
            },
            optional_variations,
            priced,
            optional_modifiers,
        }
    }

    /// `tenant.yaml` (tenant + settings), `menu.yaml`, `access.yaml`, `kitchen.yaml`.
    fn base_files(&self, plan: &TenantPlan) -> Vec<(&'static str, TenantFile)> {
        let region = plan.region;
        let mut settings = Settings::new();
        settings.insert("tax.rounding".into(), str_setting("half_even"));
        settings.insert("receipt.header".into(), str_setting(plan.name.clone()));
        settings.insert("receipt.footer".into(), str_setting("Thanks for visiting!"));
        settings.insert("order.auto_close_minutes".into(), SettingValue::Int(30));
        settings.insert(
            "tips.enabled".into(),
            SettingValue::Bool(region.currency != "EUR"),
        );
        settings.insert(
            "tips.suggestions".into(),
            SettingValue::List(vec![
                str_setting("15"),
                str_setting("18"),
                str_setting("20"),
            ]),
        );
        settings.insert("drawer.require_count".into(), SettingValue::Bool(true));
        settings.insert("locale".into(), str_setting(region.locale));
        settings.insert(
            "custom.loyalty_banner".into(),
            str_setting("Double points on Tuesdays"),
        );

        let tenant = TenantFile {
            tenant: Some(TenantInfo {
                id: id(plan.id.clone()),
                name: plan.name.clone(),
                currency: region.currency.to_owned(),
                timezone: region.timezone.to_owned(),
            }),
            settings: Some(settings),
            ..tenant_file()
        };
        let menu = TenantFile {
            menu: Some(self.menu.clone()),
            ..tenant_file()
        };
        let access = TenantFile {
            access: Some(tenant_access(plan)),
            ..tenant_file()
        };
        let kitchen = TenantFile {
            kitchen: Some(tenant_kitchen()),
            ..tenant_file()
        };
        vec![
            ("tenant.yaml", tenant),
            ("menu.yaml", menu),
            ("access.yaml", access),
            ("kitchen.yaml", kitchen),
        ]
    }

    fn store_file(&self, seed: u64, plan: &TenantPlan, store: &StorePlan) -> StoreFile {
        let mut rng = Rng::stream(seed, &[STREAM_STORE, plan.index, store.index as u64, 1]);
        let region = plan.region;

        let mut settings = Settings::new();
        settings.insert(
            "receipt.footer".into(),
            str_setting(format!("Thanks for visiting {}!", store.name)),
        );
        if rng.chance(30) {
            settings.insert(
                "order.auto_close_minutes".into(),
                SettingValue::Int(*rng.pick(&[15, 45, 60, 90])),
            );
        }
        if rng.chance(20) {
            settings.insert(
                "tips.suggestions".into(),
                SettingValue::List(vec![
                    str_setting("18"),
                    str_setting("20"),
                    str_setting("22.5"),
                ]),
            );
        }
        if rng.chance(15) {
            settings.insert(
                "custom.wifi_ssid".into(),
                str_setting(format!("{}-guest", plan.id)),
            );
        }
        if rng.chance(10) {
            settings.insert("order.require_table".into(), SettingValue::Bool(true));
        }

        // Leave out one variation at most stores; never one that is repriced.
        let mut absent = Vec::new();
        if rng.chance(80) && !self.optional_variations.is_empty() {
            absent.push(rng.pick(&self.optional_variations).0.clone());
        }
        if rng.chance(15) && !self.optional_modifiers.is_empty() {
            absent.push(rng.pick(&self.optional_modifiers).clone());
        }
        if rng.chance(10) {
            absent.push(id("happy-hour"));
        }
        let mut prices = BTreeMap::new();
        for _ in 0..rng.between(2, 4) {
            let (vid, base) = rng.pick(&self.priced);
            if absent.contains(vid) {
                continue;
            }
            // Up or down by 5-15 %, still ending in 9 where the base did.
            let delta = base.0 * rng.between(5, 15) / 100 / 10 * 10;
            let price = if rng.chance(70) {
                base.0 + delta
            } else {
                base.0.saturating_sub(delta)
            };
            prices.insert(vid.clone(), Money(price));
        }
        let mut tax_rates = BTreeMap::new();
        if rng.chance(33) {
            let (tax_id, _, rates, _) = region.tax;
            tax_rates.insert(id(tax_id), rate(rng.pick::<&str>(rates)));
        }
        let routing = if rng.chance(5) {
            RoutingOverride {
                default: None,
                categories: BTreeMap::from([(id("desserts"), vec![id("bar")])]),
            }
        } else {
            RoutingOverride::default()
        };
        let timezone = rng
            .chance(20)
            .then(|| (*rng.pick(region.store_zones)).to_owned());

        let mut users = Vec::new();
        if rng.chance(25) {
            let first = *rng.pick(FIRST_NAMES);
            let initial = char::from(b'a' + rng.below(26) as u8);
            let role = if rng.chance(50) {
                "shift-lead"
            } else {
                "cashier"
            };
            // User ids are unique within the tenant, across its stores too.
            users.push(User {
                id: id(format!("{first}-{initial}-{}", store.index + 1)),
                name: format!(
                    "{}{} {}.",
                    first[..1].to_uppercase(),
                    &first[1..],
                    initial.to_ascii_uppercase()
                ),
                role: id(role),
                stores: Vec::new(),
                pin_hash: Some(PIN_HASH.into()),
                plaintext_pin: false,
            });
        }

        // A device for every station; busy stores get a second grill printer.
        let (a, b) = (store.index / 250 % 256, store.index % 250 + 1);
        let mut devices = Vec::new();
        for (n, &(sid, _, kind, types)) in STATIONS.iter().enumerate() {
            let copies = if sid == "grill" && rng.chance(30) {
                2
            } else {
                1
            };
            for c in 1..=copies {
                let ty = *rng.pick(types);
                let (word, address) = match (kind, ty) {
                    (_, DeviceType::EscposUsb) => ("printer", format!("/dev/usb/lp{}", c - 1)),
                    (StationKind::Kds, _) => {
                        ("kds", format!("10.{a}.{b}.{}:8080", 40 + n * 10 + c))
                    }
                    (StationKind::Printer, _) => {
                        ("printer", format!("10.{a}.{b}.{}:9100", 20 + n * 10 + c))
                    }
                };
                devices.push(Device {
                    id: id(format!("{sid}-{word}-{c}")),
                    station: id(sid),
                    kind: ty,
                    address,
                });
            }
        }

        StoreFile {
            api_version: ApiVersion,
            kind: StoreKind,
            store: StoreInfo {
                id: id(store.id.clone()),
                name: store.name.clone(),
                timezone,
                recipient: None,
                labels: Default::default(),
            },
            overrides: Overrides {
                settings,
                prices,
                absent,
                tax_rates,
                routing,
            },
            access: StoreAccess { users, roles: None },
            devices,
            windows: None,
            menu: None,
            kitchen: None,
            settings: None,
        }
    }
}

fn tenant_access(plan: &TenantPlan) -> Access {
    let role = |rid: &str, name: &str, level: u32, inherits: &[&str], perms: &[&str]| Role {
        id: id(rid),
        name: name.to_owned(),
        level,
        inherits: inherits.iter().map(|i| id(*i)).collect(),
        permissions: perms.iter().map(|p| (*p).to_owned()).collect(),
    };
    let roles = vec![
        role(
            "cashier",
            "Cashier",
            10,
            &[],
            &["order.create", "order.settle", "discount.apply"],
        ),
        role("cook", "Cook", 10, &[], &["kitchen.view", "menu.sold_out"]),
        role(
            "shift-lead",
            "Shift Lead",
            30,
            &["cashier"],
            &["order.void", "drawer.open", "shift.manage"],
        ),
        role(
            "manager",
            "Manager",
            50,
            &["shift-lead"],
            &[
                "order.refund",
                "order.reopen",
                "discount.restricted",
                "drawer.payout",
                "reports.view",
                "users.manage_local",
            ],
        ),
        role("owner", "Owner", 100, &[], &["admin.all"]),
    ];
    let user = |uid: String, name: String, role: &str, stores: Vec<String>| User {
        id: id(uid),
        name,
        role: id(role),
        stores,
        pin_hash: Some(PIN_HASH.into()),
        plaintext_pin: false,
    };
    let mut users = vec![
        user("owner".into(), "Owner".into(), "owner", vec!["*".into()]),
        user(
            "ops-director".into(),
            "Operations Director".into(),
            "manager",
            vec!["*".into()],
        ),
    ];
    // An area manager for every 25 stores, naming them.
    for (n, chunk) in plan.stores.chunks(25).enumerate() {
        let name = format!("Area Manager {}", n + 1);
        users.push(user(
            format!("area-{}", n + 1),
            name,
            "manager",
            chunk.iter().map(|s| s.id.clone()).collect(),
        ));
    }
    Access { roles, users }
}

fn tenant_kitchen() -> Kitchen {
    Kitchen {
        stations: STATIONS
            .iter()
            .map(|&(sid, name, kind, _)| Station {
                id: id(sid),
                name: name.to_owned(),
                kind,
            })
            .collect(),
        routing: Routing {
            default: vec![id("grill")],
            categories: BTreeMap::from([
                (id("sides"), vec![id("fryer")]),
                (id("salads"), vec![id("cold")]),
                (id("desserts"), vec![id("cold")]),
                (id("drinks"), vec![id("bar")]),
            ]),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::diag::Severity;
    use schemas::load::DirTree;
    use schemas::validate::check_repo;

    fn generate(dir: &Path, stores: usize, tenants: usize, items: usize, seed: u64) -> Generated {
        let opts = GenFleet {
            out: dir.to_owned(),
            stores,
            tenants,
            items,
            seed,
        };
        gen_fleet(&opts, |_| {}).expect("generates")
    }

    fn read_all(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("lists") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.insert(
                        p.strip_prefix(dir).expect("under dir").to_owned(),
                        std::fs::read(&p).expect("reads"),
                    );
                }
            }
        }
        out
    }

    #[test]
    fn generated_fleet_validates_with_no_findings() {
        for (stores, tenants, items) in [
            (60, 3, 30),
            (400, 1, 30),
            (7, 2, 1),
            (5, 1, 200),
            (3, 6, 12),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let done = generate(dir.path(), stores, tenants, items, 7);
            assert_eq!(done.stores, stores);
            let (repo, diags) = check_repo(&DirTree::new(dir.path()));
            assert_eq!(repo.store_ids().count(), stores);
            let errors: Vec<_> = diags
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .collect();
            assert!(
                errors.is_empty(),
                "{stores} stores, {items} items: {errors:#?}"
            );
        }
    }

    #[test]
    fn same_options_give_same_bytes_and_seeds_differ() {
        let (a, b, c) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
            tempfile::tempdir().expect("c"),
        );
        generate(a.path(), 20, 3, 30, 1);
        generate(b.path(), 20, 3, 30, 1);
        generate(c.path(), 20, 3, 30, 2);
        assert_eq!(read_all(a.path()), read_all(b.path()));
        assert_ne!(read_all(a.path()), read_all(c.path()));
    }

    #[test]
    fn default_store_file_is_about_one_kilobyte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let done = generate(
            dir.path(),
            200,
            DEFAULT_TENANTS,
            DEFAULT_ITEMS,
            DEFAULT_SEED,
        );
        let mean = done.store_bytes / done.stores as u64;
        assert!(
            (600..=1600).contains(&mean),
            "mean store.yaml is {mean} bytes"
        );
    }

    #[test]
    fn refuses_a_directory_that_is_not_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("keep"), "x").expect("writes");
        let opts = GenFleet {
            out: dir.path().to_owned(),
            stores: 1,
            tenants: 1,
            items: 1,
            seed: 1,
        };
        assert!(matches!(
            gen_fleet(&opts, |_| {}),
            Err(GenFleetError::OutNotEmpty { .. })
        ));
    }
}
