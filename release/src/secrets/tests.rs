//! Encrypting to stores and opening at one, with real age keys.

use super::*;
use age::secrecy::ExposeSecret as _;
use age::x25519::Recipient;
use schemas::model::{Access, User};
use std::io::Write as _;

// What head office makes (cli::ops::secret::seal, which this crate does not
// link), made here with the age crate directly.

fn encrypt(to: &[Recipient], plaintext: &[u8]) -> Vec<u8> {
    let e = age::Encryptor::with_recipients(to.iter().map(|r| r as &dyn age::Recipient))
        .expect("recipients");
    let mut out = Vec::new();
    let mut w = e.wrap_output(&mut out).expect("wrap");
    w.write_all(plaintext).expect("write");
    w.finish().expect("finish");
    out
}

fn seal(value: &str, to: &[Recipient], names: Vec<String>) -> Sealed {
    Sealed {
        age: base64::engine::general_purpose::STANDARD.encode(encrypt(to, value.as_bytes())),
        to: names,
    }
}

fn identity_text(i: &Identity) -> String {
    format!("# an identity\n{}\n", i.to_string().expose_secret())
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn user(id: &str, pin: Option<Secret>) -> User {
    User {
        id: schemas::Id(id.into()),
        name: id.into(),
        role: schemas::Id("staff".into()),
        stores: Vec::new(),
        pin_hash: pin,
        plaintext_pin: false,
    }
}

struct Fleet {
    a: Identity,
    b: Identity,
    escrow: Identity,
    tenant: Identity,
}

impl Fleet {
    fn new() -> Fleet {
        Fleet {
            a: Identity::generate(),
            b: Identity::generate(),
            escrow: Identity::generate(),
            tenant: Identity::generate(),
        }
    }

    fn wrap_for(&self, store: &Identity) -> Vec<u8> {
        encrypt(&[store.to_public()], identity_text(&self.tenant).as_bytes())
    }

    fn for_stores(&self, value: &str, stores: &[(&str, &Identity)]) -> Sealed {
        let mut to: Vec<String> = stores.iter().map(|(s, _)| (*s).to_owned()).collect();
        to.push("@escrow".into());
        let mut r: Vec<Recipient> = stores.iter().map(|(_, i)| i.to_public()).collect();
        r.push(self.escrow.to_public());
        seal(value, &r, to)
    }

    fn for_all(&self, value: &str) -> Sealed {
        seal(
            value,
            &[self.tenant.to_public(), self.escrow.to_public()],
            vec!["*".into(), "@escrow".into()],
        )
    }
}

#[test]
fn a_value_opens_for_its_stores_and_escrow_only() {
    let f = Fleet::new();
    let only_b = f.for_stores(HASH, &[("b", &f.b)]);
    assert_eq!(unseal(&only_b, &[&f.b]).expect("b reads its own"), HASH);
    assert_eq!(
        unseal(&only_b, &[&f.escrow]).expect("escrow reads all"),
        HASH
    );
    let e = unseal(&only_b, &[&f.a]).expect_err("a cannot");
    assert!(
        e.to_string().contains("not encrypted to this identity"),
        "{e}"
    );
    let all = f.for_all("terminal-key-1");
    assert!(
        unseal(&all, &[&f.a]).is_err(),
        "a store's own key is not the tenant key"
    );
    assert_eq!(
        unseal(&all, &[&f.tenant]).expect("tenant key"),
        "terminal-key-1"
    );
}

#[test]
fn opening_a_state_decrypts_what_is_meant_for_the_store_and_holds_back_the_rest() {
    let f = Fleet::new();
    let mut state = StoreState::default();
    state.settings.insert(
        "payment.terminal_key".into(),
        SettingValue::Sealed(f.for_all("tk-9")),
    );
    state
        .settings
        .insert("tips.enabled".into(), SettingValue::Bool(true));
    state.access = Access {
        roles: Vec::new(),
        users: vec![
            user(
                "ann",
                Some(Secret::Sealed(f.for_stores(HASH, &[("a", &f.a)]))),
            ),
            user(
                "bob",
                Some(Secret::Sealed(f.for_stores(HASH, &[("b", &f.b)]))),
            ),
            user("cat", Some(Secret::Plain(HASH.into()))),
            user("dan", None),
        ],
    };
    let wrap = f.wrap_for(&f.a);
    let opened = open_state(&state, "a", &f.a, Some(&wrap));
    assert_eq!(
        opened.state.settings["payment.terminal_key"],
        SettingValue::Str("tk-9".into())
    );
    let ids: Vec<&str> = opened
        .state
        .access
        .users
        .iter()
        .map(|u| u.id.as_str())
        .collect();
    assert_eq!(ids, ["ann", "cat", "dan"]);
    assert_eq!(
        opened.state.access.users[0].pin_hash,
        Some(Secret::Plain(HASH.into()))
    );
    assert_eq!(opened.held_back.len(), 1);
    assert_eq!(opened.held_back[0].id, "bob");
    assert!(
        opened.held_back[0]
            .reason
            .contains("encrypted for b, @escrow only"),
        "{:?}",
        opened.held_back
    );
    assert!(!opened.state.has_sealed());

    // A new Pi before its rewrap: no wrap, and a per-store value made for
    // the old identity. Both held back, the rest converges.
    let new_pi = Identity::generate();
    let opened = open_state(&state, "a", &new_pi, None);
    let held: Vec<&str> = opened.held_back.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(held, ["payment.terminal_key", "ann", "bob"]);
    assert!(
        opened.held_back[0].reason.contains("no tenant key"),
        "{:?}",
        opened.held_back[0]
    );
    assert!(
        opened.held_back[1].reason.contains("recipient changed"),
        "{:?}",
        opened.held_back[1]
    );
    assert_eq!(
        opened.state.settings["tips.enabled"],
        SettingValue::Bool(true)
    );
    // A wrap made for another store cannot be opened here.
    let opened = open_state(&state, "a", &f.a, Some(&f.wrap_for(&f.b)));
    assert!(
        opened.held_back[0]
            .reason
            .contains("tenant-key wrap cannot be opened"),
        "{:?}",
        opened.held_back[0]
    );
}

#[test]
fn held_back_entities_keep_what_the_store_has() {
    let f = Fleet::new();
    let mut desired = StoreState::default();
    desired.access.users = vec![user(
        "bob",
        Some(Secret::Sealed(f.for_stores(HASH, &[("b", &f.b)]))),
    )];
    let opened = open_state(&desired, "a", &f.a, None);
    let mut applied = StoreState::default();
    applied.access.users = vec![user("bob", Some(Secret::Plain(HASH.into())))];
    let mut d = opened.state.clone();
    keep_applied(&mut d, &applied, &opened.held_back);
    assert_eq!(
        d.access.users, applied.access.users,
        "neither rewritten nor deleted"
    );
    let mut d = opened.state.clone();
    keep_applied(&mut d, &StoreState::default(), &opened.held_back);
    assert!(d.access.users.is_empty(), "not created either");
}

#[test]
fn foreign_values_and_damaged_ciphertext_are_named() {
    let f = Fleet::new();
    let mut state = StoreState::default();
    let mut bad = f.for_stores(HASH, &[("a", &f.a)]);
    state.access.users = vec![user(
        "bob",
        Some(Secret::Sealed(f.for_stores(HASH, &[("b", &f.b)]))),
    )];
    assert_eq!(schemas::secrets::foreign_values(&state, "a"), ["user bob"]);
    assert!(schemas::secrets::foreign_values(&state, "b").is_empty());
    bad.age = bad.age.replace(|c: char| c.is_ascii_digit(), "A");
    assert!(unseal(&bad, &[&f.a]).is_err());
    bad.age = "***".into();
    assert!(
        unseal(&bad, &[&f.a])
            .expect_err("not base64")
            .to_string()
            .contains("base64")
    );
}

#[test]
fn identity_files_parse_and_a_release_without_secrets_needs_none() {
    let i = Identity::generate();
    let back = parse_identity(&identity_text(&i)).expect("parses");
    assert_eq!(back.to_public().to_string(), i.to_public().to_string());
    assert!(parse_identity("# nothing\n").is_none());
    // open_release reads the identity only when there is something to open.
    let missing = Path::new("/nonexistent/age.key");
    let release = |state: StoreState, tenant_key: Option<String>| Release {
        api_version: schemas::state::ReleaseApiVersion::needed(&state, tenant_key.as_deref()),
        kind: schemas::model::StoreReleaseKind,
        store: "acme/a".into(),
        revision: 1,
        source_commit: "c".into(),
        issued_at: chrono::Utc::now(),
        expires_at: chrono::Utc::now(),
        tenant_key,
        windows: None,
        effective_at: None,
        urgent: false,
        state,
    };
    let plain = open_release(&release(StoreState::default(), None), "a", missing);
    assert!(plain.held_back.is_empty());
    let f = Fleet::new();
    let mut state = StoreState::default();
    state.access.users = vec![user("ann", Some(Secret::Sealed(f.for_all(HASH))))];
    let held = open_release(&release(state.clone(), Some("YWdl".into())), "a", missing);
    assert_eq!(held.held_back.len(), 1);
    assert!(
        held.held_back[0].reason.contains("no age identity"),
        "{:?}",
        held.held_back
    );
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("age.key");
    std::fs::write(&key, identity_text(&f.a)).expect("key");
    let bad = open_release(&release(state.clone(), Some("***".into())), "a", &key);
    assert!(
        bad.held_back[0].reason.contains("not base64"),
        "{:?}",
        bad.held_back
    );
    let wrap = base64::engine::general_purpose::STANDARD.encode(f.wrap_for(&f.a));
    let ok = open_release(&release(state, Some(wrap)), "a", &key);
    assert!(ok.held_back.is_empty(), "{:?}", ok.held_back);
    assert_eq!(
        ok.state.access.users[0].pin_hash,
        Some(Secret::Plain(HASH.into()))
    );
}
