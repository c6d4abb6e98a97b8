//! `fleet render <tenant>/<store>`: the rendered desired state of one store,
//! exactly what its release will carry as `state`.

use std::path::Path;

use schemas::StoreState;
use schemas::render::render_store;

use super::validate::{ValidateError, Validation, validate_dir};

/// Why a store could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    BadStoreId(#[from] schemas::store_id::StoreIdError),
    #[error(transparent)]
    Repo(#[from] ValidateError),
    /// The repo has errors: a store of an invalid repo is never rendered.
    #[error("the fleet repo does not validate ({} error(s))", .0.errors())]
    Invalid(Box<Validation>),
    #[error("no store {store} in the repo (known stores of tenant {tenant}: {known})")]
    UnknownStore {
        tenant: String,
        store: String,
        known: String,
    },
}

/// Render one store of the repo at `repo`, refusing an invalid repo.
pub fn render(repo: &Path, store_id: &str) -> Result<StoreState, RenderError> {
    let id: schemas::StoreId = store_id.parse()?;
    let (tenant, store) = (id.tenant(), id.store());
    let validation = validate_dir(repo)?;
    if !validation.is_valid() {
        return Err(RenderError::Invalid(Box::new(validation)));
    }
    let t = validation.repo.tenants.get(tenant);
    let Some(source) = t.and_then(|t| t.stores.get(store)) else {
        let known = t
            .map(|t| t.stores.keys().cloned().collect::<Vec<_>>().join(", "))
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "none".to_owned());
        return Err(RenderError::UnknownStore {
            tenant: tenant.to_owned(),
            store: store.to_owned(),
            known,
        });
    };
    let base = &t.expect("store found, so tenant found").base;
    Ok(render_store(base, &source.file))
}

/// The state as YAML, as `fleet render` prints it.
pub fn to_yaml(state: &StoreState) -> String {
    schemas::yaml::to_canonical_yaml(state).expect("the rendered state is plain data")
}
