//! Packages and the environment of a session.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sandpit::PackageSpec;
use sandpit_service::types::{EnvVars, InstallPackages, Installed, PackageEntry, PackageList};
use sandpit_service::ServiceError;

use crate::auth::Auth;
use crate::body::JsonBody;
use crate::error::ApiResult;
use crate::routes::files::done;
use crate::state::AppState;

/// `POST /v1/sessions/{id}/packages`.
pub async fn install(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<InstallPackages>,
) -> ApiResult<Json<Installed>> {
    if req.packages.is_empty() && req.requirements.is_none() {
        return Err(
            ServiceError::invalid("name packages, or give a requirements file's text").into(),
        );
    }
    let busy = state.manager.busy(&owner, &id).await?;
    let session = busy.session();
    let mut installed = Vec::new();
    if !req.packages.is_empty() {
        let specs: Vec<PackageSpec> = req.packages.iter().map(PackageSpec::new).collect();
        let r = session.install_packages(&specs, req.upgrade).await;
        installed = done(&state, &owner, &id, r).await?;
    }
    if let Some(text) = &req.requirements {
        let r = session.install_requirements(text).await;
        done(&state, &owner, &id, r).await?;
        installed.push("requirements".into());
    }
    Ok(Json(Installed { installed }))
}

/// `GET /v1/sessions/{id}/packages`.
pub async fn list(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<PackageList>> {
    let busy = state.manager.hold(&owner, &id).await?;
    let r = busy.session().packages().await;
    let packages = done(&state, &owner, &id, r).await?;
    Ok(Json(PackageList {
        packages: packages
            .into_iter()
            .map(|p| PackageEntry {
                name: p.name,
                version: p.version,
            })
            .collect(),
    }))
}

/// `DELETE /v1/sessions/{id}/packages/{name}`.
pub async fn uninstall(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let busy = state.manager.busy(&owner, &id).await?;
    let r = busy.session().uninstall_package(&name).await;
    done(&state, &owner, &id, r).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/sessions/{id}/env`.
pub async fn get_env(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<EnvVars>> {
    let entry = state.manager.get(&owner, &id)?;
    Ok(Json(EnvVars {
        env: entry.session.env_vars(),
    }))
}

/// `PUT /v1/sessions/{id}/env`: replaces the environment.
pub async fn put_env(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<EnvVars>,
) -> ApiResult<Json<EnvVars>> {
    let entry = state.manager.get(&owner, &id)?;
    state.manager.set_env(&entry, req.env)?;
    Ok(Json(EnvVars {
        env: entry.session.env_vars(),
    }))
}
