//! The fleet repo template validates, and every store's rendered state
//! survives the trip through canonical YAML unchanged (a release is exactly
//! those bytes, decoded again at the store).

use std::path::Path;

use schemas::StoreState;
use schemas::load::DirTree;
use schemas::render::render_store;
use schemas::validate::check_repo;
use schemas::yaml::{decode, to_canonical_yaml};

#[test]
fn template_validates_and_renders_round_trip() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fleet-repo-template");
    let (repo, diags) = check_repo(&DirTree::new(&root));
    assert!(diags.is_empty(), "template findings: {diags:#?}");
    assert!(repo.store_ids().count() >= 3);
    for tenant in repo.tenants.values() {
        assert!(tenant.base.menu.items.len() >= 30, "a realistic menu");
        for store in tenant.stores.values() {
            let state = render_store(&tenant.base, &store.file);
            let text = to_canonical_yaml(&state).expect("serialize");
            let again =
                to_canonical_yaml(&render_store(&tenant.base, &store.file)).expect("serialize");
            assert_eq!(text, again, "rendering {} is not deterministic", store.dir);
            let back: StoreState =
                decode("state.yaml", &text).unwrap_or_else(|d| panic!("{}: {d}", store.dir));
            assert_eq!(
                back, state,
                "{} does not round-trip through YAML",
                store.dir
            );
        }
    }
}
