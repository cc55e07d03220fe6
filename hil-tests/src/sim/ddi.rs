//! DDI API (device side): `/{tenant}/controller/v1/{controllerId}/…` (ddi-api.md §1).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Map, Value, json};

use super::artifacts::{self, StreamFaults};
use super::http::{
    DDI_BODY_LIMIT, base_url, check_accept, check_json_ct, encode_segment, href, json_get,
    parse_body, read_body,
};
use super::model::{
    Action, ActionType, Execution, Failure, Feedback, Finished, Res, State, Status, clip,
};
use super::time::{format_sleep, now_ms};
use super::{Peer, Shared};

type Sh = AxState<Arc<Shared>>;
type Q = Query<HashMap<String, String>>;

/// DDI routes.
pub fn routes() -> Router<Arc<Shared>> {
    let c = "/{tenant}/controller/v1/{cid}";
    Router::new()
        .route(c, get(base_poll))
        .route(&format!("{c}/deploymentBase/{{aid}}"), get(deployment_base))
        .route(
            &format!("{c}/deploymentBase/{{aid}}/feedback"),
            post(deployment_feedback),
        )
        .route(&format!("{c}/cancelAction/{{aid}}"), get(cancel_action))
        .route(
            &format!("{c}/cancelAction/{{aid}}/feedback"),
            post(cancel_feedback),
        )
        .route(&format!("{c}/configData"), put(config_data))
        .route(&format!("{c}/installedBase"), put(installed_base_put))
        .route(&format!("{c}/installedBase/{{aid}}"), get(installed_base))
        .route(&format!("{c}/confirmationBase"), get(confirmation_root))
        .route(
            &format!("{c}/confirmationBase/activateAutoConfirm"),
            post(activate_auto_confirm),
        )
        .route(
            &format!("{c}/confirmationBase/deactivateAutoConfirm"),
            post(deactivate_auto_confirm),
        )
        .route(
            &format!("{c}/confirmationBase/{{aid}}"),
            get(confirmation_base),
        )
        .route(
            &format!("{c}/confirmationBase/{{aid}}/feedback"),
            post(confirmation_feedback),
        )
        .route(
            &format!("{c}/softwaremodules/{{sm}}/artifacts"),
            get(artifact_list),
        )
        .route(
            &format!("{c}/softwaremodules/{{sm}}/artifacts/{{file}}"),
            get(artifact_download),
        )
}

fn unauthorized() -> Failure {
    Failure::empty(401)
}

/// DDI authentication (ddi-api.md §1.1). `register`: a gateway token may create the target.
fn auth(
    st: &mut State,
    headers: &HeaderMap,
    tenant: &str,
    cid: &str,
    register: bool,
    now: i64,
) -> Res<()> {
    if !tenant.eq_ignore_ascii_case(&st.tenant) {
        return Err(unauthorized());
    }
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(unauthorized)?;
    if let Some(tok) = value.strip_prefix("TargetToken ") {
        let ok = st.config.target_token_enabled
            && st
                .targets
                .get(cid)
                .is_some_and(|t| !tok.is_empty() && t.security_token == tok);
        return if ok { Ok(()) } else { Err(unauthorized()) };
    }
    if let Some(tok) = value.strip_prefix("GatewayToken ") {
        let key = &st.config.gateway_token_key;
        if !st.config.gateway_token_enabled || key.is_empty() || tok != key {
            return Err(unauthorized());
        }
        if !st.targets.contains_key(cid) {
            if !register {
                return Err(Failure::empty(404));
            }
            st.create_target(cid, None, "", None, None, now)?;
            if let Some(t) = st.targets.get_mut(cid) {
                t.update_status = "registered";
            }
        }
        return Ok(());
    }
    Err(unauthorized())
}

fn parse_aid(s: &str) -> Res<u64> {
    s.parse()
        .map_err(|_| Failure::bad(format!("action id '{}' is not a number", clip(s))))
}

fn ip(peer: Option<axum::Extension<Peer>>) -> Option<String> {
    peer.map(|p| p.0.0.ip().to_string())
}

/// 200 with no body, or the failure.
fn ok_or_failure(r: Res<()>) -> Response {
    match r {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

/// The JSON body (with `json_get`'s ETag and 304 handling), or the failure.
fn json_or_failure(headers: &HeaderMap, r: Res<Value>) -> Response {
    match r {
        Ok(v) => json_get(headers, &v),
        Err(e) => e.into_response(),
    }
}

fn links_base(headers: &HeaderMap, sh: &Shared, tenant: &str, cid: &str) -> String {
    format!(
        "{}/{}/controller/v1/{}",
        base_url(headers, &sh.host()),
        tenant,
        encode_segment(cid)
    )
}

/// The opaque `c` hash: changes when the action turns forced or its window opens.
fn c_hash(a: &Action, forced_now: bool, window: bool) -> i32 {
    let mut h: u32 = 0x811C_9DC5;
    for b in
        a.id.to_le_bytes()
            .into_iter()
            .chain([u8::from(forced_now), u8::from(window)])
    {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h as i32
}

fn forced_now(a: &Action, now: i64) -> bool {
    match a.kind {
        ActionType::Forced | ActionType::DownloadOnly => true,
        ActionType::TimeForced => a.forcetime > 0 && now >= a.forcetime,
        ActionType::Soft => false,
    }
}

fn action_c(st: &State, a: &Action, now: i64) -> i32 {
    c_hash(a, forced_now(a, now), st.window_available(a, now))
}

async fn base_poll(
    AxState(sh): Sh,
    Path((tenant, cid)): Path<(String, String)>,
    headers: HeaderMap,
    peer: Option<axum::Extension<Peer>>,
) -> Response {
    let r = (|| -> Res<Value> {
        check_accept(&headers)?;
        let now = now_ms();
        let mut st = sh.state();
        auth(&mut st, &headers, &tenant, &cid, true, now)?;
        st.touch(&cid, ip(peer), now);
        st.check_lapsed_windows(&cid, now);
        let base = links_base(&headers, &sh, &tenant, &cid);
        Ok(base_body(&mut st, &cid, &base, now))
    })();
    json_or_failure(&headers, r)
}

fn base_body(st: &mut State, cid: &str, base: &str, now: i64) -> Value {
    let (mut secs, jitter) =
        super::model::parse_polling(&st.config.polling_time).unwrap_or((300, 0));
    if jitter > 0 && secs > 0 {
        let span = secs * jitter.min(100) / 100;
        if span > 0 {
            let r = st.rand() % (2 * span + 1);
            secs = secs + r - span;
        }
    }
    let mut links = Map::new();
    if let Some(a) = st.current_action(cid) {
        let c = action_c(st, a, now);
        match a.status {
            Status::Canceling | Status::Canceled => {
                links.insert(
                    "cancelAction".into(),
                    href(format!("{base}/cancelAction/{}", a.id)),
                );
            }
            Status::WaitForConfirmation => {
                links.insert(
                    "confirmationBase".into(),
                    href(format!("{base}/confirmationBase/{}?c={c}", a.id)),
                );
            }
            _ => {
                links.insert(
                    "deploymentBase".into(),
                    href(format!("{base}/deploymentBase/{}?c={c}", a.id)),
                );
            }
        }
        if let Some(w) = &a.window
            && !st.window_available(a, now)
            && let Some(start) = w.next_start_ms(now)
        {
            let until = ((start - now).max(0) / 1000) as u64;
            if until < secs {
                secs = (until / st.limits.window_poll_count.max(1))
                    .max(st.limits.min_polling_secs)
                    .min(secs);
            }
        }
    }
    if let Some(t) = st.targets.get(cid) {
        if let Some(ia) = t.installed_action {
            links.insert(
                "installedBase".into(),
                href(format!("{base}/installedBase/{ia}")),
            );
        }
        if t.request_attributes {
            links.insert("configData".into(), href(format!("{base}/configData")));
        }
    }
    let mut v = json!({ "config": { "polling": { "sleep": format_sleep(secs) } } });
    if !links.is_empty() {
        v["_links"] = Value::Object(links);
    }
    v
}

fn part_name(kind: &str) -> &str {
    match kind {
        "application" => "bApp",
        "runtime" => "jvm",
        k => k,
    }
}

/// `DdiArtifact` JSON.
pub fn artifact_json(a: &super::model::Artifact, base: &str, sm: u64) -> Value {
    let url = format!(
        "{base}/softwaremodules/{sm}/artifacts/{}",
        encode_segment(&a.filename)
    );
    json!({
        "filename": a.filename,
        "hashes": { "sha1": a.sha1, "md5": a.md5, "sha256": a.sha256 },
        "size": a.size,
        "_links": {
            "download-http": { "href": url },
            "md5sum-http": { "href": format!("{url}.MD5SUM") },
        }
    })
}

fn deployment_json(st: &State, a: &Action, base: &str, now: i64) -> Value {
    let dl = if forced_now(a, now) {
        "forced"
    } else {
        "attempt"
    };
    let window_ok = st.window_available(a, now);
    let update = if a.kind == ActionType::DownloadOnly || !window_ok {
        "skip"
    } else {
        dl
    };
    let mut chunks = Vec::new();
    if let Some(ds) = st.sets.get(&a.ds) {
        for mid in &ds.modules {
            let Some(m) = st.modules.get(mid) else {
                continue;
            };
            let mut c = json!({
                "part": part_name(&m.kind),
                "version": m.version,
                "name": m.name,
                "artifacts": m.artifacts.iter().map(|x| artifact_json(x, base, m.id)).collect::<Vec<_>>(),
            });
            if m.encrypted {
                c["encrypted"] = json!(true);
            }
            let md: Vec<Value> = m
                .metadata
                .iter()
                .filter(|x| x.target_visible)
                .map(|x| json!({"key": x.key, "value": x.value}))
                .collect();
            if !md.is_empty() {
                c["metadata"] = Value::Array(md);
            }
            chunks.push(c);
        }
    }
    let mut d = json!({ "download": dl, "update": update, "chunks": chunks });
    if a.window.is_some() {
        d["maintenanceWindow"] = json!(if window_ok {
            "available"
        } else {
            "unavailable"
        });
    }
    d
}

fn action_history(a: &Action, q: &HashMap<String, String>) -> Res<Option<Value>> {
    let Some(n) = q.get("actionHistory") else {
        return Ok(None);
    };
    let n: i64 = n
        .parse()
        .map_err(|_| Failure::bad(format!("actionHistory '{}' is not a number", clip(n))))?;
    if n == 0 {
        return Ok(None);
    }
    let n = if !(0..100).contains(&n) {
        100
    } else {
        n as usize
    };
    let msgs: Vec<&String> = a
        .history
        .iter()
        .rev()
        .flat_map(|h| h.messages.iter().rev())
        .filter(|m| !m.starts_with("Update Server: "))
        .take(n)
        .collect();
    Ok(Some(
        json!({ "status": a.status.upper(), "messages": msgs }),
    ))
}

/// `GET …/{deploymentBase|installedBase|confirmationBase}/{id}`: checks `Accept`, authenticates,
/// looks the action up; 404 with no body unless `shown(action)`. The body is
/// `{"id", key: <deployment>, "actionHistory"?}`. With `log_retrieved`, an active action then
/// gets its RETRIEVED status (like hawkBit: after the response and its history were built).
fn action_view(
    sh: &Shared,
    (tenant, cid, aid): (String, String, String),
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    key: &str,
    shown: fn(&Action) -> bool,
    log_retrieved: bool,
) -> Response {
    let r = (|| -> Res<Value> {
        check_accept(headers)?;
        let now = now_ms();
        let mut st = sh.state();
        auth(&mut st, headers, &tenant, &cid, false, now)?;
        let id = parse_aid(&aid)?;
        let a = st.target_action(&cid, id)?;
        if !shown(a) {
            return Err(Failure::empty(404));
        }
        let active = a.active;
        let base = links_base(headers, sh, &tenant, &cid);
        let mut v = json!({ "id": id.to_string(), key: deployment_json(&st, a, &base, now) });
        if let Some(h) = action_history(a, q)? {
            v["actionHistory"] = h;
        }
        if log_retrieved && active {
            st.log_retrieved(id, now);
        }
        Ok(v)
    })();
    json_or_failure(headers, r)
}

async fn deployment_base(
    AxState(sh): Sh,
    Path(p): Path<(String, String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    let shown = |a: &Action| {
        !matches!(
            a.status,
            Status::Canceling | Status::Canceled | Status::WaitForConfirmation | Status::Scheduled
        )
    };
    action_view(&sh, p, &q, &headers, "deployment", shown, true)
}

/// Validates a `DdiActionFeedback` body.
pub fn parse_feedback(body: &[u8]) -> Res<Feedback> {
    let v = parse_body(body)?;
    let bad = |m: &str| {
        Failure::bad(format!(
            "invalid feedback: {m}; expected {{\"status\":{{\"execution\":\"closed\",\"result\":{{\"finished\":\"success\"}},\"details\":[\"…\"]}}}}"
        ))
    };
    let status = v
        .get("status")
        .filter(|s| s.is_object())
        .ok_or_else(|| bad("missing 'status' object"))?;
    let exec = status
        .get("execution")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing 'status.execution'"))?;
    let execution = Execution::parse(exec).ok_or_else(|| {
        bad(&format!(
            "'status.execution' '{}' is not one of closed, proceeding, canceled, scheduled, rejected, resumed, downloaded, download",
            clip(exec)
        ))
    })?;
    let result = status
        .get("result")
        .filter(|s| s.is_object())
        .ok_or_else(|| bad("missing 'status.result' object"))?;
    let fin = result
        .get("finished")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing 'status.result.finished' (required even for intermediate feedback: use \"none\")"))?;
    let finished = Finished::parse(fin).ok_or_else(|| {
        bad(&format!(
            "'status.result.finished' '{}' is not one of success, failure, none",
            clip(fin)
        ))
    })?;
    if let Some(p) = result.get("progress").filter(|p| !p.is_null())
        && p.get("cnt").and_then(Value::as_i64).is_none()
    {
        return Err(bad("'status.result.progress' needs an integer 'cnt'"));
    }
    let code = match status.get("code") {
        None | Some(Value::Null) => None,
        Some(c) => Some(
            c.as_i64()
                .ok_or_else(|| bad("'status.code' must be an integer"))?,
        ),
    };
    let mut details = Vec::new();
    match status.get("details") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for d in a {
                let s = d
                    .as_str()
                    .ok_or_else(|| bad("'status.details' must be an array of strings"))?;
                if s.contains('<') || s.contains('\0') {
                    return Err(Failure::new(
                        400,
                        "hawkbit.server.error.rest.param.constraintViolation",
                        format!(
                            "details entry '{}' is not clean text: HTML-like '<' is rejected by hawkBit (jsoup Safelist.none)",
                            clip(s)
                        ),
                    ));
                }
                details.push(s.to_string());
            }
        }
        Some(_) => return Err(bad("'status.details' must be an array of strings")),
    }
    let timestamp = match v.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(t) => Some(
            t.as_i64()
                .ok_or_else(|| bad("'timestamp' must be milliseconds since the epoch (integer)"))?,
        ),
    };
    Ok(Feedback {
        execution,
        finished,
        code,
        details,
        timestamp,
    })
}

/// `POST …/{deploymentBase|cancelAction}/{id}/feedback`: authenticates, checks the JSON
/// content type, the action id and the `DdiActionFeedback` body (in that order), then
/// hands the feedback to `apply`; 200 with no body, or the failure.
fn action_feedback(
    sh: &Shared,
    (tenant, cid, aid): (String, String, String),
    headers: &HeaderMap,
    body: Res<Bytes>,
    apply: fn(&mut State, &str, u64, &Feedback, i64) -> Res<()>,
) -> Response {
    let r = (|| -> Res<()> {
        let now = now_ms();
        let mut st = sh.state();
        auth(&mut st, headers, &tenant, &cid, false, now)?;
        let body = body?;
        check_json_ct(headers)?;
        let id = parse_aid(&aid)?;
        let fb = parse_feedback(&body)?;
        apply(&mut st, &cid, id, &fb, now)
    })();
    ok_or_failure(r)
}

async fn deployment_feedback(
    AxState(sh): Sh,
    Path(p): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = read_body(body, &headers, DDI_BODY_LIMIT).await;
    action_feedback(&sh, p, &headers, body, State::deployment_feedback)
}

async fn cancel_action(
    AxState(sh): Sh,
    Path((tenant, cid, aid)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Res<Value> {
        check_accept(&headers)?;
        let now = now_ms();
        let mut st = sh.state();
        auth(&mut st, &headers, &tenant, &cid, false, now)?;
        let id = parse_aid(&aid)?;
        let a = st.target_action(&cid, id)?;
        if !matches!(a.status, Status::Canceling | Status::Canceled) {
            return Err(Failure::empty(404));
        }
        if a.active {
            st.log_retrieved(id, now);
        }
        Ok(json!({ "id": id.to_string(), "cancelAction": { "stopId": id.to_string() } }))
    })();
    json_or_failure(&headers, r)
}

async fn cancel_feedback(
    AxState(sh): Sh,
    Path(p): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = read_body(body, &headers, DDI_BODY_LIMIT).await;
    action_feedback(&sh, p, &headers, body, State::cancel_feedback)
}

async fn config_data(
    AxState(sh): Sh,
    Path((tenant, cid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = read_body(body, &headers, DDI_BODY_LIMIT).await;
    let r = (|| -> Res<()> {
        let now = now_ms();
        let mut st = sh.state();
        auth(&mut st, &headers, &tenant, &cid, false, now)?;
        let body = body?;
        check_json_ct(&headers)?;
        let v = parse_body(&body)?;
        let data = v.get("data").and_then(Value::as_object).ok_or_else(|| {
            Failure::bad("configData needs a non-empty 'data' object, e.g. {\"mode\":\"merge\",\"data\":{\"hw_revision\":\"2\"}}")
        })?;
        let mode = match v.get("mode") {
            None | Some(Value::Null) => "merge",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => {
                return Err(Failure::bad(
                    "configData 'mode' must be \"merge\", \"replace\" or \"remove\"",
                ));
            }
        };
        st.config_data(&cid, data, mode)
    })();
    ok_or_failure(r)
}

async fn installed_base(
    AxState(sh): Sh,
    Path(p): Path<(String, String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    let shown = |a: &Action| {
        !a.active
            && (a.status == Status::Finished
                || (a.status == Status::Downloaded && a.kind == ActionType::DownloadOnly))
    };
    action_view(&sh, p, &q, &headers, "deployment", shown, false)
}

async fn installed_base_put(
    AxState(sh): Sh,
    Path((tenant, cid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = read_body(body, &headers, DDI_BODY_LIMIT).await;
    let r = (|| -> Res<bool> {
        let now = now_ms();
        let mut st = sh.state();
        auth(&mut st, &headers, &tenant, &cid, false, now)?;
        let body = body?;
        check_json_ct(&headers)?;
        let v = parse_body(&body)?;
        let field = |k: &str| {
            v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| {
                Failure::bad(format!("installedBase needs '{k}': {{\"name\":\"<DS name>\",\"version\":\"<DS version>\"}}"))
            })
        };
        let (name, version) = (field("name")?, field("version")?);
        st.installed_base_put(&cid, name, version, now)
    })();
    match r {
        Ok(true) => StatusCode::CREATED.into_response(),
        Ok(false) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn confirmation_root(
    AxState(sh): Sh,
    Path((tenant, cid)): Path<(String, String)>,
    headers: HeaderMap,
    peer: Option<axum::Extension<Peer>>,
) -> Response {
    let r = (|| -> Res<Value> {
        check_accept(&headers)?;
        let now = now_ms();
        let mut st = sh.state();
        auth(&mut st, &headers, &tenant, &cid, true, now)?;
        st.touch(&cid, ip(peer), now);
        let base = links_base(&headers, &sh, &tenant, &cid);
        let t = st.targets.get(&cid).ok_or_else(|| Failure::empty(404))?;
        let auto = match &t.auto_confirm {
            Some(a) => {
                let mut o = json!({ "active": true, "activatedAt": a.activated_at });
                if let Some(i) = &a.initiator {
                    o["initiator"] = json!(i);
                }
                if let Some(r) = &a.remark {
                    o["remark"] = json!(r);
                }
                o
            }
            None => json!({ "active": false, "activatedAt": 0 }),
        };
        let mut links = Map::new();
        if t.auto_confirm.is_some() {
            links.insert(
                "deactivateAutoConfirm".into(),
                href(format!("{base}/confirmationBase/deactivateAutoConfirm")),
            );
        } else {
            links.insert(
                "activateAutoConfirm".into(),
                href(format!("{base}/confirmationBase/activateAutoConfirm")),
            );
        }
        if let Some(a) = st
            .current_action(&cid)
            .filter(|a| a.status == Status::WaitForConfirmation)
        {
            let c = action_c(&st, a, now);
            links.insert(
                "confirmationBase".into(),
                href(format!("{base}/confirmationBase/{}?c={c}", a.id)),
            );
        }
        Ok(json!({ "autoConfirm": auto, "_links": links }))
    })();
    json_or_failure(&headers, r)
}

async fn confirmation_base(
    AxState(sh): Sh,
    Path(p): Path<(String, String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    let shown = |a: &Action| a.status == Status::WaitForConfirmation && a.active;
    action_view(&sh, p, &q, &headers, "confirmation", shown, false)
}

async fn confirmation_feedback(
    AxState(sh): Sh,
    Path((tenant, cid, aid)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = read_body(body, &headers, DDI_BODY_LIMIT).await;
    let r = (|| -> Res<()> {
        let now = now_ms();
        let mut st = sh.state();
        auth(&mut st, &headers, &tenant, &cid, false, now)?;
        let body = body?;
        check_json_ct(&headers)?;
        let id = parse_aid(&aid)?;
        let v = parse_body(&body)?;
        let bad = |m: &str| {
            Failure::bad(format!(
                "invalid confirmation feedback: {m}; expected {{\"confirmation\":\"confirmed\"|\"denied\",\"code\":0,\"details\":[\"…\"]}}"
            ))
        };
        let confirmed = match v.get("confirmation").and_then(Value::as_str) {
            Some("confirmed") => true,
            Some("denied") => false,
            Some(o) => {
                return Err(bad(&format!(
                    "'confirmation' '{}' is not confirmed or denied",
                    clip(o)
                )));
            }
            None => return Err(bad("missing 'confirmation'")),
        };
        let code = match v.get("code") {
            None | Some(Value::Null) => None,
            Some(c) => Some(c.as_i64().ok_or_else(|| bad("'code' must be an integer"))?),
        };
        let mut details = Vec::new();
        if let Some(d) = v.get("details").filter(|d| !d.is_null()) {
            for x in d
                .as_array()
                .ok_or_else(|| bad("'details' must be an array of strings"))?
            {
                let s = x
                    .as_str()
                    .ok_or_else(|| bad("'details' must be an array of strings"))?;
                if s.contains('<') {
                    return Err(bad("details must not contain HTML-like '<'"));
                }
                details.push(s.to_string());
            }
        }
        st.confirmation_feedback(&cid, id, confirmed, code, details, now)
    })();
    ok_or_failure(r)
}

async fn activate_auto_confirm(
    AxState(sh): Sh,
    Path((tenant, cid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = read_body(body, &headers, DDI_BODY_LIMIT).await;
    let r = (|| -> Res<()> {
        let now = now_ms();
        let mut st = sh.state();
        auth(&mut st, &headers, &tenant, &cid, false, now)?;
        let body = body?;
        let (mut initiator, mut remark) = (None, None);
        if !body.iter().all(u8::is_ascii_whitespace) {
            check_json_ct(&headers)?;
            let v = parse_body(&body)?;
            initiator = v.get("initiator").and_then(Value::as_str).map(String::from);
            remark = v.get("remark").and_then(Value::as_str).map(String::from);
        }
        st.activate_auto_confirm(&cid, initiator, remark, now)
    })();
    ok_or_failure(r)
}

async fn deactivate_auto_confirm(
    AxState(sh): Sh,
    Path((tenant, cid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = read_body(body, &headers, DDI_BODY_LIMIT).await;
    let r = (|| -> Res<()> {
        let now = now_ms();
        let mut st = sh.state();
        auth(&mut st, &headers, &tenant, &cid, false, now)?;
        body?;
        if let Some(t) = st.targets.get_mut(&cid) {
            t.auto_confirm = None;
        }
        Ok(())
    })();
    ok_or_failure(r)
}

async fn artifact_list(
    AxState(sh): Sh,
    Path((tenant, cid, sm)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Res<Value> {
        check_accept(&headers)?;
        let now = now_ms();
        let mut st = sh.state();
        auth(&mut st, &headers, &tenant, &cid, false, now)?;
        let sm: u64 = sm
            .parse()
            .map_err(|_| Failure::bad("software module id is not a number"))?;
        if !st.may_download(&cid, sm) {
            return Err(Failure::empty(404));
        }
        let base = links_base(&headers, &sh, &tenant, &cid);
        let m = st.modules.get(&sm).ok_or_else(|| Failure::empty(404))?;
        Ok(Value::Array(
            m.artifacts
                .iter()
                .map(|a| artifact_json(a, &base, sm))
                .collect(),
        ))
    })();
    json_or_failure(&headers, r)
}

async fn artifact_download(
    AxState(sh): Sh,
    Path((tenant, cid, sm, file)): Path<(String, String, String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let head = method == Method::HEAD;
    let r = (|| -> Res<Response> {
        let now = now_ms();
        let mut st = sh.state();
        auth(&mut st, &headers, &tenant, &cid, false, now)?;
        let sm: u64 = sm
            .parse()
            .map_err(|_| Failure::bad("software module id is not a number"))?;
        if !st.may_download(&cid, sm) {
            return Err(Failure::empty(404));
        }
        let m = st.modules.get(&sm).ok_or_else(|| Failure::empty(404))?;
        let what = format!("/{tenant}/controller/v1/{cid}/softwaremodules/{sm}/artifacts/{file}");
        if let Some(a) = m.artifacts.iter().find(|a| a.filename == file).cloned() {
            drop(st);
            let resp = {
                // selection, serving and spending a counted cut happen under one lock: with cutCount 1,
                // exactly one download is cut even when several run at once
                let mut fs = sh.faults();
                let f = if fs.targets.contains_key(&cid) {
                    fs.targets.get_mut(&cid)
                } else {
                    Some(&mut fs.global)
                };
                let mut sf = StreamFaults::default();
                if let Some(f) = f {
                    sf.corrupt_offset = f.corrupt_offset;
                    sf.bandwidth = f.bandwidth_bytes_per_sec;
                    if f.cut_count != Some(0) {
                        sf.cut_after = f.cut_after_bytes;
                    }
                    let resp = artifacts::serve(&a, &headers, head, sf);
                    // only a response that streams a body is a download (not HEAD, 304, 412, 416)
                    let body = !head
                        && matches!(resp.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT);
                    if body
                        && sf.cut_after.is_some()
                        && let Some(n) = f.cut_count
                    {
                        f.cut_count = Some(n.saturating_sub(1));
                    }
                    resp
                } else {
                    artifacts::serve(&a, &headers, head, sf)
                }
            };
            if !head && resp.status() == StatusCode::OK {
                // a full-body download is logged (range requests are not, since hawkBit 0.8.0)
                sh.state().log_download(&cid, sm, &what, now);
            }
            return Ok(resp);
        }
        if let Some(name) = file.strip_suffix(".MD5SUM")
            && let Some(a) = m.artifacts.iter().find(|a| a.filename == name).cloned()
        {
            if !head {
                st.log_download(&cid, sm, &what, now);
            }
            let mut r = format!("{}  {}", a.md5, a.filename).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("text/plain"),
            );
            return Ok(r);
        }
        Err(Failure::empty(404))
    })();
    r.unwrap_or_else(IntoResponse::into_response)
}
