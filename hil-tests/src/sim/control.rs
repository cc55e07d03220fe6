//! `/sim/…` control endpoints (not part of hawkBit) and the DDI fault-injection layer.
//!
//! | method & path | body | effect |
//! |---|---|---|
//! | `GET /sim/health` | – | `{"status":"ok"}` |
//! | `GET /sim/faults` | – | current [`FaultSet`] |
//! | `PUT /sim/faults` | [`FaultSet`] | replace all faults |
//! | `DELETE /sim/faults` | – | clear all faults |
//! | `PUT /sim/faults/global` | [`Faults`] | replace the global entry |
//! | `PUT /sim/faults/targets/{id}` / `DELETE` | [`Faults`] | per-target entry |
//! | `POST /sim/maintenance` | `{"target":"dev-01"?, "window":"open"\|"closed"\|"schedule"}` | force windows |
//! | `POST /sim/restart` | `{"downMs":500}` | drop all connections, refuse connections for `downMs` |
//! | `POST /sim/tick` | – | run the rollout scheduler once now |
//! | `GET /sim/stats` | – | `{"requests":N}` |
//! | `GET /sim/requests` / `DELETE` | – | request log (DDI + Mgmt, last 10,000): method, path, query, status, range, auth scheme |

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State as AxState};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use super::http::{basic_challenge, json_resp, parse_body};
use super::model::{Failure, WindowOverride};
use super::time::now_ms;
use super::{FaultSet, Faults, RequestRecord, Shared};

type Sh = AxState<Arc<Shared>>;

/// Control routes. Open on a loopback-only server (tests, the demo); bound to any other address
/// every route but `GET /sim/health` needs the Mgmt API's Basic credentials (issue 13 §14: anyone
/// on the network could inject faults or restart the server).
pub fn routes(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/sim/health",
            get(|| async { json_resp(StatusCode::OK, &json!({"status": "ok"})) }),
        )
        .route(
            "/sim/faults",
            get(faults_get).put(faults_put).delete(faults_clear),
        )
        .route("/sim/faults/global", put(faults_global))
        .route(
            "/sim/faults/targets/{cid}",
            put(faults_target).delete(faults_target_delete),
        )
        .route("/sim/maintenance", post(maintenance))
        .route("/sim/restart", post(restart))
        .route("/sim/tick", post(tick))
        .route("/sim/stats", get(stats))
        .route("/sim/requests", get(requests_get).delete(requests_clear))
        .route_layer(axum::middleware::from_fn_with_state(shared, sim_auth))
}

async fn sim_auth(AxState(sh): Sh, req: Request, next: Next) -> Response {
    if req.uri().path() == "/sim/health"
        || sh.loopback_only()
        || sh.mgmt_credentials_ok(req.headers())
    {
        next.run(req).await
    } else {
        basic_challenge(
            "the /sim control API of a server that is not bound to loopback needs the Mgmt API's HTTP Basic credentials",
        )
    }
}

fn ddi_target(path: &str) -> Option<&str> {
    let mut it = path.trim_start_matches('/').split('/');
    let _tenant = it.next()?;
    (it.next()? == "controller" && it.next()? == "v1").then_some(())?;
    it.next().filter(|s| !s.is_empty())
}

/// Middleware: counts requests, logs, and applies latency / error-rate faults to DDI requests.
pub async fn fault_layer(AxState(sh): Sh, req: Request, next: Next) -> Response {
    sh.requests.fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(String::from);
    let range = header_text(req.headers(), axum::http::header::RANGE);
    let if_range = header_text(req.headers(), axum::http::header::IF_RANGE);
    let auth_scheme = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(' ').next())
        .map(String::from);
    let at_ms = now_ms();
    let mut injected = None;
    if let Some(cid) = ddi_target(&path) {
        let (latency, rate, status) = {
            let f = sh.faults();
            let t = f.for_target(Some(cid));
            (t.latency_ms, t.error_rate, t.error_status.unwrap_or(503))
        };
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        if rate > 0.0 {
            let roll = (sh.state().rand() % 1_000_000) as f64 / 1_000_000.0;
            if roll < rate {
                injected = Some(status);
            }
        }
    }
    let resp = match injected {
        Some(s) => {
            let code = StatusCode::from_u16(s).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            Failure::new(
                s,
                "hawkbit.sim.injectedFault",
                format!("hawkbit-sim injected {code}"),
            )
            .into_response()
        }
        None => next.run(req).await,
    };
    if !path.starts_with("/sim/") {
        sh.record(RequestRecord {
            at_ms,
            method: method.to_string(),
            path: path.clone(),
            query,
            status: resp.status().as_u16(),
            range,
            if_range,
            auth_scheme,
            injected: injected.is_some(),
        });
    }
    if sh.log_requests {
        eprintln!(
            "hawkbit-sim: {method} {path} -> {} ({:.1} ms){}",
            resp.status().as_u16(),
            start.elapsed().as_secs_f64() * 1000.0,
            if injected.is_some() {
                " [injected]"
            } else {
                ""
            }
        );
    }
    resp
}

fn done(r: Result<Response, Failure>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn faults_get(AxState(sh): Sh) -> Response {
    let f = sh.faults().clone();
    json_resp(
        StatusCode::OK,
        &serde_json::to_value(f).unwrap_or(Value::Null),
    )
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], example: &str) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| Failure::bad(format!("{e}; expected e.g. {example}")))
}

const FAULTS_EXAMPLE: &str = r#"{"latencyMs":100,"errorRate":0.1,"errorStatus":503,"cutAfterBytes":1000,"cutCount":1,"corruptOffset":10,"bandwidthBytesPerSec":100000}"#;

async fn faults_put(AxState(sh): Sh, body: Bytes) -> Response {
    done((|| {
        let f: FaultSet = parse(
            &body,
            &format!("{{\"global\":{FAULTS_EXAMPLE},\"targets\":{{\"dev-01\":{{…}}}}}}"),
        )?;
        validate(&f.global)?;
        f.targets.values().try_for_each(validate)?;
        *sh.faults() = f;
        Ok(StatusCode::NO_CONTENT.into_response())
    })())
}

fn validate(f: &Faults) -> Result<(), Failure> {
    if !(0.0..=1.0).contains(&f.error_rate) {
        return Err(Failure::bad("errorRate must be within 0.0..=1.0"));
    }
    if let Some(s) = f.error_status
        && !(400..=599).contains(&s)
    {
        return Err(Failure::bad("errorStatus must be a 4xx or 5xx code"));
    }
    Ok(())
}

async fn faults_clear(AxState(sh): Sh, _body: Bytes) -> Response {
    *sh.faults() = FaultSet::default();
    StatusCode::NO_CONTENT.into_response()
}

async fn faults_global(AxState(sh): Sh, body: Bytes) -> Response {
    done((|| {
        let f: Faults = parse(&body, FAULTS_EXAMPLE)?;
        validate(&f)?;
        sh.faults().global = f;
        Ok(StatusCode::NO_CONTENT.into_response())
    })())
}

async fn faults_target(AxState(sh): Sh, Path(cid): Path<String>, body: Bytes) -> Response {
    done((|| {
        let f: Faults = parse(&body, FAULTS_EXAMPLE)?;
        validate(&f)?;
        sh.faults().targets.insert(cid, f);
        Ok(StatusCode::NO_CONTENT.into_response())
    })())
}

async fn faults_target_delete(AxState(sh): Sh, Path(cid): Path<String>, _body: Bytes) -> Response {
    sh.faults().targets.remove(&cid);
    StatusCode::NO_CONTENT.into_response()
}

async fn maintenance(AxState(sh): Sh, body: Bytes) -> Response {
    done((|| {
        let v = parse_body(&body)?;
        let target = v.get("target").and_then(Value::as_str);
        let w = match v.get("window").and_then(Value::as_str) {
            Some("open") => Some(WindowOverride::Open),
            Some("closed") => Some(WindowOverride::Closed),
            Some("schedule") => None,
            _ => {
                return Err(Failure::bad(
                    "body must be {\"target\":\"dev-01\" (optional), \"window\":\"open\"|\"closed\"|\"schedule\"}",
                ));
            }
        };
        sh.state().set_window_override(target, w);
        Ok(StatusCode::NO_CONTENT.into_response())
    })())
}

async fn restart(AxState(sh): Sh, body: Bytes) -> Response {
    done((|| {
        let down = if body.iter().all(u8::is_ascii_whitespace) {
            500
        } else {
            parse_body(&body)?
                .get("downMs")
                .and_then(Value::as_u64)
                .ok_or_else(|| Failure::bad("body must be {\"downMs\": 500}"))?
        };
        let sh2 = sh.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            sh2.restart(Duration::from_millis(down));
        });
        Ok(json_resp(
            StatusCode::ACCEPTED,
            &json!({ "restartInMs": 50, "downMs": down }),
        ))
    })())
}

async fn tick(AxState(sh): Sh, _body: Bytes) -> Response {
    sh.state().rollout_tick(now_ms());
    StatusCode::NO_CONTENT.into_response()
}

async fn stats(AxState(sh): Sh) -> Response {
    let st = sh.state();
    json_resp(
        StatusCode::OK,
        &json!({
            "requests": sh.requests.load(Ordering::Relaxed),
            "targets": st.targets.len(),
            "actions": st.actions.len(),
            "rollouts": st.rollouts.len(),
        }),
    )
}

async fn requests_get(AxState(sh): Sh) -> Response {
    json_resp(
        StatusCode::OK,
        &serde_json::to_value(sh.request_log()).unwrap_or(Value::Null),
    )
}

async fn requests_clear(AxState(sh): Sh, _body: Bytes) -> Response {
    sh.clear_request_log();
    StatusCode::NO_CONTENT.into_response()
}

/// A header's value as text, if present and visible ASCII.
fn header_text(
    headers: &axum::http::HeaderMap,
    name: axum::http::header::HeaderName,
) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}
